//! `traverse doctor`: what an operator otherwise reconstructs from logs, read from a
//! running gateway's admin API: routes with unresolved references, uplinks and the
//! health of children, and what telemetry has dropped.
//!
//! Exit status: 0 when nothing needs attention, 1 when something does, 2 when the
//! gateway cannot be asked.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use traverse_provider::Reason;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Findings: the report's text, and how many things need attention.
#[derive(Debug, Default)]
pub struct Report {
    pub text: String,
    pub problems: usize,
}

pub fn doctor(admin: SocketAddr) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let fetched = runtime.block_on(async {
        let mut answers = Vec::new();
        for path in ["/api/routes", "/api/multicluster", "/api/telemetry"] {
            let reply = traverse_demo::http::get(admin, path, TIMEOUT)
                .await
                .map_err(|e| format!("{path}: {e:#}"))?;
            if !reply.status.is_success() {
                return Err(format!("{path} answered {}", reply.status));
            }
            let value: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| format!("{path}: not JSON: {e}"))?;
            answers.push(value);
        }
        Ok::<_, String>(answers)
    });
    let answers = match fetched {
        Ok(answers) => answers,
        Err(error) => {
            eprintln!("error: cannot ask the gateway's admin API at {admin}: {error}");
            return ExitCode::from(2);
        }
    };
    let report = diagnose(&answers[0], &answers[1], &answers[2]);
    print!("{}", report.text);
    if report.problems == 0 {
        println!("\nnothing needs attention");
        ExitCode::SUCCESS
    } else {
        println!("\n{} thing(s) need attention", report.problems);
        ExitCode::from(1)
    }
}

/// The report for the admin API's answers (pure, so its judgement is tested directly).
pub fn diagnose(routes: &Value, multicluster: &Value, telemetry: &Value) -> Report {
    let mut report = Report::default();
    let text = &mut report.text;
    let items = |value: &Value| value.as_array().cloned().unwrap_or_default();
    let string = |value: &Value, key: &str| value[key].as_str().unwrap_or("").to_owned();

    let _ = writeln!(
        text,
        "routes (configuration generation {})",
        routes["generation"]
    );
    let diagnostics = items(&routes["diagnostics"]);
    let unresolved: Vec<&Value> = diagnostics
        .iter()
        .filter(|d| Reason::deserialize(&d["reason"]).is_ok_and(Reason::is_unresolved_reference))
        .collect();
    let errors = diagnostics
        .iter()
        .filter(|d| d["severity"] == "error")
        .count();
    if unresolved.is_empty() {
        let _ = writeln!(
            text,
            "  every reference resolves ({} routes)",
            items(&routes["routes"]).len()
        );
    }
    for d in &unresolved {
        let object = &d["object"];
        let _ = writeln!(
            text,
            "  UNRESOLVED {} {}/{}: {}{}",
            string(object, "kind"),
            string(object, "namespace"),
            string(object, "name"),
            d["field"]
                .as_str()
                .map(|f| format!("{f}: "))
                .unwrap_or_default(),
            string(d, "message")
        );
    }
    if errors > 0 {
        let _ = writeln!(text, "  {errors} error diagnostic(s): see /api/routes");
    }
    // Endpoints passively ejected after failed requests, once per Service (routes share them).
    let mut ejected = std::collections::BTreeSet::new();
    for route in items(&routes["routes"]) {
        for service in items(&route["services"]) {
            for endpoint in items(&service["ejected"]) {
                ejected.insert((
                    string(&service, "name"),
                    endpoint.as_str().unwrap_or("").to_owned(),
                ));
            }
        }
    }
    for (service, endpoint) in &ejected {
        let _ = writeln!(
            text,
            "  EJECTED endpoint {endpoint} of service {service}: it failed requests in a row"
        );
    }
    report.problems += unresolved.len() + errors + ejected.len();

    let _ = writeln!(
        text,
        "\nuplinks (cluster {})",
        string(multicluster, "cluster")
    );
    let advertisement = &multicluster["advertisement"];
    let advertised = items(&advertisement["uplinks"]);
    if advertisement["draining"] == true {
        let _ = writeln!(
            text,
            "  this gateway is DRAINING: parents send it nothing new"
        );
    }
    for uplink in &advertised {
        let ready = uplink["ready"] == true;
        let _ = writeln!(
            text,
            "  advertised {}/{} weight {} {}",
            string(uplink, "namespace"),
            string(uplink, "name"),
            uplink["weight"],
            if ready { "ready" } else { "NOT READY" }
        );
        report.problems += usize::from(!ready);
    }
    let children = items(&multicluster["children"]);
    for child in &children {
        let available = child["available"] == true;
        let mut state = Vec::new();
        for (key, bad) in [("connected", "stream down"), ("healthy", "unhealthy")] {
            if child[key] != true {
                state.push(bad.to_owned());
            }
        }
        if let Some(seconds) = child["ejectedFor"].as_f64() {
            state.push(format!("ejected for {seconds:.0}s"));
        }
        if child["advertisement"]["draining"] == true {
            state.push("draining".to_owned());
        }
        let uplinks: Vec<String> = items(&child["advertisement"]["uplinks"])
            .iter()
            .map(|u| format!("{}/{}", string(u, "namespace"), string(u, "name")))
            .collect();
        let _ = writeln!(
            text,
            "  child {} ({}, cluster {}) {}{} uplinks [{}]",
            string(child, "name"),
            string(child, "address"),
            child["advertisement"]["cluster"].as_str().unwrap_or("?"),
            if available {
                "available"
            } else {
                "UNAVAILABLE"
            },
            if state.is_empty() {
                String::new()
            } else {
                format!(": {}", state.join(", "))
            },
            uplinks.join(", ")
        );
        report.problems += usize::from(!available);
    }
    if advertised.is_empty() && children.is_empty() {
        let _ = writeln!(text, "  none (neither a parent nor a child)");
    }

    let _ = writeln!(text, "\ntelemetry");
    let spans = &telemetry["traces"]["spans"];
    if telemetry["traces"]["enabled"] == true {
        let (dropped, failed) = (count(&spans["dropped"]), count(&spans["failed"]));
        let _ = writeln!(
            text,
            "  spans: {} exported, {dropped} dropped (queue full), {failed} failed (export errors)",
            count(&spans["exported"])
        );
        report.problems += usize::from(dropped + failed > 0);
    } else {
        let _ = writeln!(text, "  tracing off");
    }
    let access = &telemetry["accessLog"];
    if access.is_object() {
        let (dropped, errors) = (count(&access["dropped"]), count(&access["writeErrors"]));
        let _ = writeln!(
            text,
            "  access log: {} logged, {dropped} dropped, {errors} write errors",
            count(&access["logged"])
        );
        report.problems += usize::from(dropped + errors > 0);
    }
    report
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_healthy_gateway_needs_nothing() {
        let report = diagnose(
            &json!({"generation": 3, "routes": [{}, {}], "diagnostics": []}),
            &json!({"cluster": "edge", "advertisement": {"uplinks": []}, "children": [
                {"name": "a", "address": "a:9443", "available": true, "connected": true, "healthy": true,
                 "advertisement": {"cluster": "eu", "uplinks": [{"namespace": "apps", "name": "shop"}]}}
            ]}),
            &json!({"traces": {"enabled": true, "spans": {"exported": 10, "dropped": 0, "failed": 0}}}),
        );
        assert_eq!(report.problems, 0, "{}", report.text);
        assert!(report.text.contains("every reference resolves (2 routes)"));
        assert!(report
            .text
            .contains("child a (a:9443, cluster eu) available uplinks [apps/shop]"));
    }

    #[test]
    fn every_kind_of_trouble_is_counted_and_named() {
        let report = diagnose(
            &json!({"generation": 1, "routes": [
                {"services": [{"name": "apps/cart:80", "ejected": ["10.0.0.7:8080"]}]},
                {"services": [{"name": "apps/cart:80", "ejected": ["10.0.0.7:8080"]}]}
            ], "diagnostics": [
                {"severity": "warning", "reason": "ServiceNotFound", "field": "spec.routes[0].services[0].name",
                 "message": "service apps/cart not found", "object": {"kind": "IngressRoute", "namespace": "apps", "name": "cart"}},
                {"severity": "error", "reason": "InvalidRule", "message": "bad", "object": {}}
            ]}),
            &json!({"cluster": "eu", "advertisement": {"draining": true, "uplinks": [
                {"namespace": "apps", "name": "shop", "weight": 1, "ready": false}]}}),
            &json!({"traces": {"enabled": true, "spans": {"exported": 1, "dropped": 5, "failed": 0}},
                    "accessLog": {"logged": 3, "dropped": 0, "writeErrors": 2}}),
        );
        assert!(report.text.contains(
            "UNRESOLVED IngressRoute apps/cart: spec.routes[0].services[0].name: service apps/cart not found"
        ), "{}", report.text);
        assert!(report.text.contains("DRAINING"));
        assert!(report
            .text
            .contains("advertised apps/shop weight 1 NOT READY"));
        assert!(report.text.contains("5 dropped"));
        assert!(report.text.contains("2 write errors"));
        assert!(
            report
                .text
                .contains("EJECTED endpoint 10.0.0.7:8080 of service apps/cart:80"),
            "{}",
            report.text
        );
        // unresolved + error + ejected (once, though two routes share it) + not ready
        // + spans + access log
        assert_eq!(report.problems, 6, "{}", report.text);
    }

    #[test]
    fn an_unavailable_child_says_why() {
        let report = diagnose(
            &json!({"routes": [], "diagnostics": []}),
            &json!({"cluster": "edge", "children": [
                {"name": "b", "address": "b:9443", "available": false, "connected": false, "healthy": false,
                 "ejectedFor": 7.2, "advertisement": null}]}),
            &json!({"traces": {"enabled": false}}),
        );
        assert!(
            report.text.contains(
                "child b (b:9443, cluster ?) UNAVAILABLE: stream down, unhealthy, ejected for 7s"
            ),
            "{}",
            report.text
        );
        assert_eq!(report.problems, 1);
    }
}
