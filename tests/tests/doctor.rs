//! `traverse doctor` against a running gateway: it names what needs attention and says
//! so in its exit status.

use std::process::Command;

use traverse_e2e::gateway::binary;
use traverse_e2e::{config, route, service, Gateway, Upstream};

fn doctor(admin: std::net::SocketAddr) -> (Option<i32>, String) {
    let output = Command::new(binary())
        .args(["doctor", "--admin", &admin.to_string()])
        .env_remove("TRAVERSE_ADMIN")
        .output()
        .expect("running traverse doctor");
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_unresolved_routes_and_is_quiet_when_all_is_well() {
    let app = Upstream::start("app");
    let healthy = Gateway::start(
        &config(""),
        &[
            ("app", &service("app", &[app.addr()])),
            ("route", &route("app", "PathPrefix(`/`)", "app")),
        ],
    )
    .await;
    let (code, output) = doctor(healthy.addr("admin"));
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("every reference resolves (1 routes)"),
        "{output}"
    );
    assert!(output.contains("nothing needs attention"), "{output}");

    let broken = Gateway::start(
        &config(""),
        &[("route", &route("cart", "PathPrefix(`/`)", "missing"))],
    )
    .await;
    let (code, output) = doctor(broken.addr("admin"));
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(
            "UNRESOLVED IngressRoute default/cart: spec.routes[0].services[0].name: service default/missing not found"
        ),
        "{output}"
    );

    // Nothing listening: exit 2, and the address is named.
    let gone = broken.addr("admin");
    drop(broken);
    let (code, output) = doctor(gone);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains(&gone.to_string()), "{output}");
}
