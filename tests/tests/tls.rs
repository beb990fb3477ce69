//! TLS end to end, as Traefik manifests use it: certificates from Secrets chosen by SNI
//! on a `tls: {}` entrypoint, rotation without a restart, a broken Secret reported while
//! the others serve, the default TLSStore, and the entrypoint redirect from http; towards
//! servers, a ServersTransport's CAs and client certificate, and forwardAuth's `tls`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncWriteExt, BufReader};
use traverse_e2e::client::send_tls;
use traverse_e2e::pki::{Leaf, TestCa, Usage};
use traverse_e2e::{eventually, http_request, service, Gateway, TlsFront, Upstream};

const CONFIG: &str = "entryPoints:
  web:
    address: \"{web}\"
    http:
      redirections:
        entryPoint: {to: websecure, scheme: https, permanent: true}
  websecure:
    address: \"{websecure}\"
    tls: {}
admin:
  address: \"{admin}\"
providers:
  file:
    directory: manifests
    watch: true
    debounce: 50ms
metrics:
  prometheus: {}
logs:
  access: {enabled: true, format: json, filePath: access.log}
";

/// A `kubernetes.io/tls` Secret as Kubernetes stores it: base64 `data`.
fn secret(name: &str, leaf: &Leaf) -> String {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(&leaf.cert),
        b64(&leaf.key)
    )
}

/// An IngressRoute for `host` to Service `service`, its certificate in Secret `secret`.
fn tls_route(name: &str, host: &str, service: &str, secret: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: {name}
spec:
  entryPoints: [websecure]
  routes:
    - match: Host(`{host}`)
      services: [{{name: {service}, port: 80}}]
  tls:
    secretName: {secret}
"
    )
}

fn server_leaf(ca: &TestCa, name: &str) -> Leaf {
    ca.issue(name, &[Usage::ServerAuth])
}

/// Accepts any server certificate: the tests compare what was served themselves.
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The leaf certificate (DER) the gateway presents for `sni`.
async fn served(addr: SocketAddr, sni: &str) -> Result<Vec<u8>, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCertificate))
    .with_no_client_auth();
    let name = ServerName::try_from(sni.to_owned()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| "handshake timed out".to_owned())?
    .map_err(|e| format!("handshake: {e}"))?;
    let (_, connection) = stream.get_ref();
    let leaf = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or("no certificate presented")?;
    Ok(leaf.as_ref().to_vec())
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate")
        .as_ref()
        .to_vec()
}

/// GET `/` for `host` over TLS, the certificate checked against `ca`: the upstream that
/// answered, or why the exchange failed.
async fn get(gateway: &Gateway, host: &str, ca: &str) -> Result<(u16, Option<String>), String> {
    let response = send_tls(
        gateway.addr("websecure"),
        host,
        ca,
        "GET",
        "/",
        &[("host", host)],
    )
    .await
    .map_err(|e| format!("{e:?}"))?;
    Ok((response.status, response.server()))
}

fn write(gateway: &Gateway, file: &str, text: &str) {
    std::fs::write(gateway.dir().join("manifests").join(file), text).expect("writing a manifest");
}

/// Two hosts behind one `tls: {}` entrypoint, each with its own Secret.
struct TwoHosts {
    gateway: Gateway,
    ca: TestCa,
    a: Leaf,
    b: Leaf,
    _upstreams: (Upstream, Upstream),
}

async fn two_hosts() -> TwoHosts {
    let (ups_a, ups_b) = (Upstream::start("a"), Upstream::start("b"));
    let ca = TestCa::new();
    let (a, b) = (server_leaf(&ca, "a.test"), server_leaf(&ca, "*.b.test"));
    let backends = format!(
        "{}---\n{}",
        service("a", &[ups_a.addr()]),
        service("b", &[ups_b.addr()])
    );
    let gateway = Gateway::start(
        CONFIG,
        &[
            ("backends", &backends),
            ("route-a", &tls_route("a", "a.test", "a", "cert-a")),
            ("route-b", &tls_route("b", "x.b.test", "b", "cert-b")),
            ("secret-a", &secret("cert-a", &a)),
            ("secret-b", &secret("cert-b", &b)),
        ],
    )
    .await;
    TwoHosts {
        gateway,
        ca,
        a,
        b,
        _upstreams: (ups_a, ups_b),
    }
}

#[tokio::test]
async fn each_host_is_served_the_certificate_of_its_secret() {
    let hosts = two_hosts().await;
    let gateway = &hosts.gateway;
    let addr = gateway.addr("websecure");
    assert_eq!(served(addr, "a.test").await, Ok(der(&hosts.a.cert)));
    // The wildcard of Secret cert-b covers x.b.test.
    assert_eq!(served(addr, "x.b.test").await, Ok(der(&hosts.b.cert)));
    assert_eq!(
        get(gateway, "a.test", &hosts.ca.pem).await,
        Ok((200, Some("a".into())))
    );
    assert_eq!(
        get(gateway, "x.b.test", &hosts.ca.pem).await,
        Ok((200, Some("b".into())))
    );

    // No Secret for the name, no certificate file, no TLSStore: the generated default,
    // which no client trusts.
    let other = served(addr, "other.test")
        .await
        .expect("a default certificate");
    assert!(other != der(&hosts.a.cert) && other != der(&hosts.b.cert));
    let refused = get(gateway, "other.test", &hosts.ca.pem).await;
    assert!(refused.is_err(), "{refused:?}");

    // The default TLSStore's certificate takes the generated one's place.
    let fallback = server_leaf(&hosts.ca, "fallback.test");
    write(
        gateway,
        "secret-fallback.yaml",
        &secret("fallback", &fallback),
    );
    write(
        gateway,
        "store.yaml",
        "apiVersion: traefik.io/v1alpha1\nkind: TLSStore\nmetadata: {name: default}\nspec:\n  defaultCertificate: {secretName: fallback}\n",
    );
    eventually(
        "the TLSStore's default certificate",
        Duration::from_secs(10),
        async || (served(addr, "other.test").await.ok()? == der(&fallback.cert)).then_some(()),
    )
    .await;
    assert_eq!(served(addr, "a.test").await, Ok(der(&hosts.a.cert)));
}

#[tokio::test]
async fn a_rotated_secret_is_served_on_new_handshakes_without_failing_a_request() {
    let hosts = two_hosts().await;
    let gateway = &hosts.gateway;
    let addr = gateway.addr("websecure");
    let next_ca = TestCa::new();
    let rotated = server_leaf(&next_ca, "a.test");
    // Clients trusting both CAs see no failure whichever certificate a handshake gets.
    let both = format!("{}{}", hosts.ca.pem, next_ca.pem);

    // A connection opened before the rotation keeps working after it.
    let mut open = KeepAlive::open(addr, "a.test", &hosts.ca.pem).await;
    assert_eq!(open.get("a.test").await, 200);

    let load = {
        let both = both.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            let until = tokio::time::Instant::now() + Duration::from_secs(3);
            while tokio::time::Instant::now() < until {
                match send_tls(addr, "a.test", &both, "GET", "/", &[("host", "a.test")]).await {
                    Ok(response) if response.status == 200 => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    write(gateway, "secret-a.yaml", &secret("cert-a", &rotated));
    eventually(
        "the rotated certificate",
        Duration::from_secs(10),
        async || (served(addr, "a.test").await.ok()? == der(&rotated.cert)).then_some(()),
    )
    .await;
    let (ok, failed) = load.await.expect("the load task");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
    assert!(ok > 10, "only {ok} requests in 3 s");

    // Only clients trusting the new CA accept the new certificate now.
    assert_eq!(
        get(gateway, "a.test", &next_ca.pem).await,
        Ok((200, Some("a".into())))
    );
    assert_eq!(open.get("a.test").await, 200);
    // The other host is untouched.
    assert_eq!(served(addr, "x.b.test").await, Ok(der(&hosts.b.cert)));
}

#[tokio::test]
async fn a_broken_secret_is_reported_and_keeps_its_last_good_certificate() {
    let hosts = two_hosts().await;
    let gateway = &hosts.gateway;
    let addr = gateway.addr("websecure");
    // A valid certificate with the key of another: the kind of mistake a rotation makes.
    let stranger = server_leaf(&hosts.ca, "x.b.test");
    let mismatched = Leaf {
        cert: hosts.b.cert.clone(),
        key: stranger.key,
    };
    write(gateway, "secret-b.yaml", &secret("cert-b", &mismatched));
    let problems = eventually(
        "the broken Secret reported",
        Duration::from_secs(10),
        async || {
            let routes = traverse_e2e::http_get(gateway.addr("admin"), "/api/routes", &[])
                .await
                .json();
            let found: Vec<serde_json::Value> = traverse_e2e::diagnostics(&routes)
                .into_iter()
                .filter(|d| traverse_e2e::field(d, "reason") == "InvalidCertificate")
                .collect();
            (found.len() >= 2).then_some(found)
        },
    )
    .await;
    let on = |kind: &str| {
        problems
            .iter()
            .find(|d| d["object"]["kind"] == kind)
            .unwrap_or_else(|| panic!("no diagnostic on the {kind}: {problems:?}"))
    };
    let secret = on("Secret");
    assert_eq!(secret["object"]["name"], "cert-b");
    assert_eq!(secret["field"], "data.tls.key");
    assert!(
        traverse_e2e::field(secret, "message").contains("last good certificate keeps serving"),
        "{secret}"
    );
    let route = on("IngressRoute");
    assert_eq!(route["object"]["name"], "b");
    assert_eq!(route["field"], "spec.tls.secretName");

    assert_eq!(served(addr, "x.b.test").await, Ok(der(&hosts.b.cert)));
    assert_eq!(
        get(gateway, "x.b.test", &hosts.ca.pem).await,
        Ok((200, Some("b".into())))
    );
    assert_eq!(
        get(gateway, "a.test", &hosts.ca.pem).await,
        Ok((200, Some("a".into())))
    );

    // `traverse validate` finds the same problem in the same files.
    let output = std::process::Command::new(traverse_e2e::gateway::binary())
        .arg("validate")
        .arg("--config")
        .arg(gateway.dir().join("traverse.yaml"))
        .output()
        .expect("running traverse validate");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("Secret default/cert-b") && l.contains("data.tls.key")),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_web_entrypoint_redirects_to_websecure() {
    let hosts = two_hosts().await;
    let gateway = &hosts.gateway;
    let web = gateway.addr("web");
    let port = gateway.port("websecure");
    let cases = [
        (
            "GET",
            "/path?q=1",
            301,
            format!("https://a.test:{port}/path?q=1"),
        ),
        ("HEAD", "/", 301, format!("https://a.test:{port}/")),
        ("POST", "/form", 308, format!("https://a.test:{port}/form")),
    ];
    for (method, path, status, location) in &cases {
        let body: &[u8] = if *method == "POST" { b"x=1" } else { b"" };
        let response = http_request(web, method, path, &[("host", "a.test:80")], body).await;
        assert_eq!(response.status, *status, "{method} {path}");
        assert_eq!(
            response.header("location"),
            Some(location.as_str()),
            "{method} {path}"
        );
    }
    // The route with tls does not serve on the plain entrypoint: every request redirects.
    assert!(hosts._upstreams.0.requests().is_empty());

    // Each answer is recorded like a middleware's: access log and metrics.
    let path = gateway.dir().join("access.log");
    let records = eventually(
        "the redirects logged",
        Duration::from_secs(10),
        async || {
            let text = std::fs::read_to_string(&path).ok()?;
            let records: Vec<serde_json::Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).expect("a JSON record"))
                .filter(|record: &serde_json::Value| record["entryPointName"] == "web")
                .collect();
            (records.len() >= cases.len()).then_some(records)
        },
    )
    .await;
    assert_eq!(records.len(), cases.len(), "{records:#?}");
    // Each request is logged when it ends, which is not always in the order they were sent.
    for (method, path, status, _) in &cases {
        let record = records
            .iter()
            .find(|r| r["RequestMethod"] == *method)
            .unwrap_or_else(|| panic!("no {method} in {records:#?}"));
        assert_eq!(record["RequestPath"], *path, "{record:#}");
        assert_eq!(record["DownstreamStatus"], *status, "{record:#}");
        assert_eq!(
            record["traverse.middleware"], "redirect-web-to-websecure@internal",
            "{record:#}"
        );
    }
    let metrics = gateway.get("admin", "/metrics", &[]).await.text();
    let families =
        traverse_e2e::prometheus::parse(&metrics, traverse_e2e::prometheus::Format::Text)
            .unwrap_or_else(|e| panic!("{e}\n{metrics}"));
    let count = |code| {
        traverse_e2e::prometheus::sum(
            &families,
            "traverse_entrypoint_requests_total",
            &[("entrypoint", "web"), ("code", code)],
        )
    };
    assert_eq!((count("301"), count("308")), (2.0, 1.0), "{metrics}");
}

/// One TLS connection kept open across requests.
struct KeepAlive {
    stream: BufReader<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
}

impl KeepAlive {
    async fn open(addr: SocketAddr, sni: &str, ca: &str) -> KeepAlive {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(cert.expect("CA")).expect("CA");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from(sni.to_owned()).expect("name");
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("handshake");
        KeepAlive {
            stream: BufReader::new(stream),
        }
    }

    async fn get(&mut self, host: &str) -> u16 {
        let request = format!("GET / HTTP/1.1\r\nhost: {host}\r\n\r\n");
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("write");
        self.stream.get_mut().flush().await.expect("flush");
        let head = traverse_e2e::http1::read_head(&mut self.stream)
            .await
            .expect("read")
            .expect("a response");
        let status: u16 = head
            .start_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let framing = traverse_e2e::http1::response_framing(&head, "GET", status).expect("framing");
        traverse_e2e::http1::read_body(&mut self.stream, framing)
            .await
            .expect("body");
        status
    }
}

/// GET `/` for `sni` with a client offering only `versions` (and presenting `client`):
/// the protocol version negotiated and the status, or why it failed.
async fn exchange(
    addr: SocketAddr,
    sni: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<&Leaf>,
) -> Result<(rustls::ProtocolVersion, u16), String> {
    exchange_with(addr, sni, versions, client, "").await
}

/// [`exchange`], the request carrying `headers` (whole `name: value\r\n` lines).
async fn exchange_with(
    addr: SocketAddr,
    sni: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<&Leaf>,
    headers: &str,
) -> Result<(rustls::ProtocolVersion, u16), String> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .map_err(|e| e.to_string())?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCertificate));
    let config = match client {
        Some(leaf) => {
            let chain = vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).expect("cert")];
            let key =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from(sni.to_owned()).map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let version = stream.get_ref().1.protocol_version().ok_or("no version")?;
        let mut stream = BufReader::new(stream);
        let request =
            format!("GET / HTTP/1.1\r\nhost: {sni}\r\n{headers}connection: close\r\n\r\n");
        stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let head = traverse_e2e::http1::read_head(&mut stream)
            .await
            .map_err(|e| format!("reading: {e}"))?
            .ok_or("closed before a response")?;
        let status = head
            .start_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no status")?;
        Ok((version, status))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

#[tokio::test]
async fn tls_options_apply_to_their_hosts_only() {
    let hosts = two_hosts().await;
    let gateway = &hosts.gateway;
    let addr = gateway.addr("websecure");
    let client_ca = TestCa::new();
    let client = client_ca.issue("client", &[Usage::ClientAuth]);
    let stranger = TestCa::new().issue("client", &[Usage::ClientAuth]);
    let ups_c = Upstream::start("c");
    write(gateway, "backend-c.yaml", &service("c", &[ups_c.addr()]));
    write(
        gateway,
        "options.yaml",
        &format!(
            "apiVersion: traefik.io/v1alpha1
kind: TLSOption
metadata: {{name: modern}}
spec:
  minVersion: VersionTLS13
---
apiVersion: traefik.io/v1alpha1
kind: TLSOption
metadata: {{name: mutual}}
spec:
  clientAuth:
    secretNames: [client-ca]
    clientAuthType: RequireAndVerifyClientCert
---
apiVersion: v1
kind: Secret
metadata: {{name: client-ca}}
stringData:
  ca.crt: {:?}
",
            client_ca.pem
        ),
    );
    // a.test now requires TLS 1.3; c.test requires a client certificate.
    write(
        gateway,
        "route-a.yaml",
        &tls_route("a", "a.test", "a", "cert-a").replace(
            "    secretName: cert-a\n",
            "    secretName: cert-a\n    options: {name: modern}\n",
        ),
    );
    write(
        gateway,
        "route-c.yaml",
        &tls_route("c", "c.test", "c", "cert-a").replace(
            "    secretName: cert-a\n",
            "    secretName: cert-a\n    options: {name: mutual}\n",
        ),
    );
    let tls12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let any: &[&'static rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS12, &rustls::version::TLS13];
    eventually(
        "TLS 1.2 refused for a.test",
        Duration::from_secs(10),
        async || {
            exchange(addr, "a.test", tls12, None)
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    // The same TLS 1.2 client still reaches the other host, and a.test speaks TLS 1.3.
    assert_eq!(
        exchange(addr, "x.b.test", tls12, None).await,
        Ok((rustls::ProtocolVersion::TLSv1_2, 200))
    );
    assert_eq!(
        exchange(addr, "a.test", any, None).await,
        Ok((rustls::ProtocolVersion::TLSv1_3, 200))
    );

    eventually("c.test served", Duration::from_secs(10), async || {
        exchange(addr, "c.test", any, Some(&client))
            .await
            .ok()
            .filter(|(_, s)| *s == 200)
    })
    .await;
    let without = exchange(addr, "c.test", any, None).await;
    assert!(without.is_err(), "no client certificate: {without:?}");
    let untrusted = exchange(addr, "c.test", any, Some(&stranger)).await;
    assert!(
        untrusted.is_err(),
        "a certificate of another CA: {untrusted:?}"
    );
    // Client authentication is c.test's alone.
    assert_eq!(
        exchange(addr, "x.b.test", any, None).await,
        Ok((rustls::ProtocolVersion::TLSv1_3, 200))
    );
    assert_eq!(ups_c.requests().len(), 1);
}

#[tokio::test]
async fn pass_tls_client_cert_sends_the_handshakes_certificate_upstream() {
    let hosts = two_hosts().await;
    let gateway = &hosts.gateway;
    let addr = gateway.addr("websecure");
    let client_ca = TestCa::new();
    let client = client_ca.issue("client", &[Usage::ClientAuth]);
    let ups_c = Upstream::start("c");
    write(gateway, "backend-c.yaml", &service("c", &[ups_c.addr()]));
    write(
        gateway,
        "options.yaml",
        &format!(
            "apiVersion: traefik.io/v1alpha1
kind: TLSOption
metadata: {{name: mutual}}
spec:
  clientAuth:
    secretNames: [client-ca]
    clientAuthType: VerifyClientCertIfGiven
---
apiVersion: v1
kind: Secret
metadata: {{name: client-ca}}
stringData:
  ca.crt: {:?}
---
# Traefik's documented example (pem and info).
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: test-passtlsclientcert
spec:
  passTLSClientCert:
    pem: true
    info:
      notAfter: true
      notBefore: true
      sans: true
      subject:
        country: true
        province: true
        locality: true
        organization: true
        organizationalUnit: true
        commonName: true
        serialNumber: true
        domainComponent: true
      issuer:
        country: true
        province: true
        locality: true
        organization: true
        commonName: true
        serialNumber: true
        domainComponent: true
",
            client_ca.pem
        ),
    );
    write(
        gateway,
        "route-c.yaml",
        &tls_route("c", "c.test", "c", "cert-a")
            .replace(
                "    secretName: cert-a\n",
                "    secretName: cert-a\n    options: {name: mutual}\n",
            )
            .replace(
                "      services:",
                "      middlewares: [{name: test-passtlsclientcert}]\n      services:",
            ),
    );
    let any: &[&'static rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS12, &rustls::version::TLS13];
    let spoofed =
        "X-Forwarded-Tls-Client-Cert: forged\r\nX-Forwarded-Tls-Client-Cert-Info: forged\r\n";
    eventually("c.test served", Duration::from_secs(10), async || {
        exchange_with(addr, "c.test", any, Some(&client), spoofed)
            .await
            .ok()
            .filter(|(_, s)| *s == 200)
    })
    .await;
    let seen = ups_c
        .requests()
        .last()
        .cloned()
        .expect("a request upstream");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der(&client.cert));
    assert_eq!(
        seen.header_all("X-Forwarded-Tls-Client-Cert"),
        [b64.as_str()]
    );
    // The test CA names only CNs; the leaf is valid from issue for rcgen's default span.
    let info = seen
        .header("X-Forwarded-Tls-Client-Cert-Info")
        .expect("info");
    let prefix = "Subject%3D%22CN%3Dclient%22%3BIssuer%3D%22CN%3DTraverse+test+CA%22%3BNB%3D%22";
    assert!(info.starts_with(prefix), "{info}");
    assert!(info.ends_with("%22%3BSAN%3D%22client%22"), "{info}");
    assert_eq!(seen.header_all("X-Forwarded-Tls-Client-Cert-Info").len(), 1);

    // Without a certificate, what the client claims is removed, not passed on.
    assert_eq!(
        exchange_with(addr, "c.test", any, None, spoofed)
            .await
            .map(|(_, status)| status),
        Ok(200)
    );
    let seen = ups_c
        .requests()
        .last()
        .cloned()
        .expect("a request upstream");
    assert_eq!(seen.header("X-Forwarded-Tls-Client-Cert"), None);
    assert_eq!(seen.header("X-Forwarded-Tls-Client-Cert-Info"), None);
}

/// An HTTPS server with a certificate of a private CA, answering 200 to every request;
/// it counts the requests that presented a client certificate of `client_ca`.
struct PrivateUpstream {
    addr: SocketAddr,
    with_client_cert: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl PrivateUpstream {
    async fn start(leaf: &Leaf, client_ca: &TestCa) -> PrivateUpstream {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(client_ca.pem.as_bytes()).expect("CA"))
            .expect("CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .expect("verifier");
        let config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).expect("cert")],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key"),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let with_client_cert = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&with_client_cert);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, counter) = (acceptor.clone(), Arc::clone(&counter));
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if stream.get_ref().1.peer_certificates().is_some() {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    let mut stream = BufReader::new(stream);
                    while let Ok(Some(_)) = traverse_e2e::http1::read_head(&mut stream).await {
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nprivate";
                        if stream.get_mut().write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        PrivateUpstream {
            addr,
            with_client_cert,
            task,
        }
    }
}

impl Drop for PrivateUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A ServersTransport `name` trusting the CA `ca_pem` of ConfigMap `config_map` (key
/// `ca.crt`), for servers named `backend.internal`; and that ConfigMap.
fn config_map_transport(name: &str, config_map: &str, ca_pem: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: {name}}}
spec:
  serverName: backend.internal
  rootCAs: [{{configMap: {config_map}}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {config_map}}}
data:
  ca.crt: {ca_pem:?}
"
    )
}

#[tokio::test]
async fn a_servers_transport_reaches_an_https_upstream_with_a_private_ca() {
    let server_ca = TestCa::new();
    let client_ca = TestCa::new();
    let upstream =
        PrivateUpstream::start(&server_leaf(&server_ca, "backend.internal"), &client_ca).await;
    let client = client_ca.issue("gateway", &[Usage::ClientAuth]);
    let route = |name: &str, host: &str, transport: &str| {
        format!(
            "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: {name}}}
spec:
  routes:
    - match: Host(`{host}`)
      services: [{{name: private, port: 80, scheme: https{transport}}}]
"
        )
    };
    let manifests = format!(
        "{}---
{}---
{}---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: internal}}
spec:
  serverName: backend.internal
  rootCAs: [{{secret: private-ca}}]
  certificatesSecrets: [gateway-client]
  forwardingTimeouts: {{dialTimeout: 5s, responseHeaderTimeout: 10s, idleConnTimeout: 1m}}
---
apiVersion: v1
kind: Secret
metadata: {{name: private-ca}}
stringData:
  tls.ca: {:?}
---
{}",
        service("private", &[upstream.addr]),
        route("trusted", "trusted.test", ", serversTransport: internal"),
        route("untrusted", "untrusted.test", ""),
        server_ca.pem,
        secret("gateway-client", &client),
    ) + &format!(
        "---\n{}---\n{}",
        route("mapped", "mapped.test", ", serversTransport: mapped"),
        config_map_transport("mapped", "private-ca-map", &server_ca.pem)
    );
    let gateway = Gateway::start(&traverse_e2e::config(""), &[("all", &manifests)]).await;
    let web = gateway.addr("web");

    let trusted = http_request(web, "GET", "/", &[("host", "trusted.test")], b"").await;
    assert_eq!(
        (trusted.status, trusted.text()),
        (200, "private".to_owned())
    );
    assert_eq!(
        upstream
            .with_client_cert
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the transport's client certificate was presented"
    );
    // The CA from a ConfigMap, without a client certificate.
    let mapped = http_request(web, "GET", "/", &[("host", "mapped.test")], b"").await;
    assert_eq!((mapped.status, mapped.text()), (200, "private".to_owned()));
    // Without the transport, the private CA is not trusted (and the SNI is untrusted.test).
    let untrusted = http_request(web, "GET", "/", &[("host", "untrusted.test")], b"").await;
    assert_eq!(untrusted.status, 502);
    let routes = traverse_e2e::http_get(gateway.addr("admin"), "/api/routes", &[])
        .await
        .json();
    let problems = traverse_e2e::diagnostics(&routes);
    assert!(problems.is_empty(), "{problems:?}");
}

/// A forwardAuth Middleware `name` asking `address`, with `tls`.
fn forward_auth(name: &str, address: &str, tls: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: {name}}}
spec:
  forwardAuth:
    address: {address}
    authResponseHeaders: [X-Upstream]
    tls: {tls}
"
    )
}

/// A Secret holding the CA `pem` under `tls.ca`.
fn ca_secret(name: &str, pem: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData:\n  tls.ca: {pem:?}\n")
}

/// forwardAuth to an https server that requires a client certificate: the CA of
/// `tls.caSecret` verifies the server and `tls.certSecret` is presented, so its answers
/// allow and deny; a wrong CA or no client certificate fails the call, which answers 500
/// as Traefik does; a missing Secret is a diagnostic and its routes answer 503, while the
/// other routes serve.
#[tokio::test]
async fn forward_auth_reaches_an_https_server_with_its_tls_secrets() {
    let (server_ca, other_ca, client_ca) = (TestCa::new(), TestCa::new(), TestCa::new());
    let auth = Upstream::start("auth");
    // The address names the server by IP, so its certificate is for that IP.
    let front = TlsFront::start(
        &server_leaf(&server_ca, "127.0.0.1"),
        Some(&client_ca),
        auth.addr(),
    )
    .await;
    // A server offering HTTP/2 by ALPN gets the call over HTTP/2, as Go's client does.
    let auth_h2 = Upstream::start_h2c("auth-h2");
    let h2_front = TlsFront::start_h2(&server_leaf(&server_ca, "127.0.0.1"), auth_h2.addr()).await;
    let app = Upstream::start("app");
    let server = format!("https://{}", front.addr());
    let with_cert = "{caSecret: auth-ca, certSecret: gateway-cert}";
    let middlewares = [
        forward_auth("allow", &format!("{server}/status/200"), with_cert),
        forward_auth("deny", &format!("{server}/status/401"), with_cert),
        forward_auth(
            "wrong-ca",
            &format!("{server}/status/200"),
            "{caSecret: other-ca, certSecret: gateway-cert}",
        ),
        forward_auth(
            "no-cert",
            &format!("{server}/status/200"),
            "{caSecret: auth-ca}",
        ),
        forward_auth(
            "h2",
            &format!("https://{}/status/204", h2_front.addr()),
            "{caSecret: auth-ca}",
        ),
        forward_auth(
            "missing",
            &format!("{server}/status/200"),
            "{caSecret: nowhere, certSecret: gateway-cert}",
        ),
        ca_secret("auth-ca", &server_ca.pem),
        ca_secret("other-ca", &other_ca.pem),
        secret(
            "gateway-cert",
            &client_ca.issue("gateway", &[Usage::ClientAuth]),
        ),
    ]
    .join("---\n");
    let routes = ["allow", "deny", "wrong-ca", "no-cert", "h2", "missing"]
        .iter()
        .map(|name| {
            format!(
                "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: {name}}}
spec:
  routes:
    - match: PathPrefix(`/{name}`)
      middlewares: [{{name: {name}}}]
      services: [{{name: app, port: 80}}]
"
            )
        })
        .chain([traverse_e2e::route("plain", "PathPrefix(`/plain`)", "app")])
        .collect::<Vec<_>>()
        .join("---\n");
    let gateway = Gateway::start(
        &traverse_e2e::config(""),
        &[
            ("app", &service("app", &[app.addr()])),
            ("middlewares", &middlewares),
            ("routes", &routes),
        ],
    )
    .await;
    let web = gateway.addr("web");

    let allowed = http_request(web, "GET", "/allow/page", &[], b"").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.server().as_deref(), Some("app"));
    assert_eq!(allowed.upstream_headers("X-Upstream"), ["auth"]);
    let asked = auth.requests();
    let asked = asked.last().expect("the server was asked");
    assert_eq!(asked.path, "/status/200");
    assert_eq!(asked.header("X-Forwarded-Uri"), Some("/allow/page"));
    assert!(
        front.client_certificates() >= 1,
        "the certificate was presented"
    );

    let denied = http_request(web, "GET", "/deny", &[], b"").await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.server().as_deref(), Some("auth"));

    let over_h2 = http_request(web, "GET", "/h2", &[], b"").await;
    assert_eq!(over_h2.status, 200, "{}", over_h2.text());
    let asked = auth_h2.requests();
    let asked = asked.last().expect("the HTTP/2 server was asked");
    assert_eq!(asked.path, "/status/204");
    assert_eq!(asked.header(":scheme"), Some("https"));
    assert_eq!(
        asked.header(":authority"),
        Some(h2_front.addr().to_string().as_str())
    );

    // The server's certificate is not of the CA trusted: the handshake fails.
    let failed = front.failed_handshakes();
    let (asked, served) = (auth.count(), app.count());
    let wrong_ca = http_request(web, "GET", "/wrong-ca", &[], b"").await;
    assert_eq!(wrong_ca.status, 500, "{}", wrong_ca.text());
    eventually(
        "the handshake refused",
        Duration::from_secs(5),
        async || (front.failed_handshakes() > failed).then_some(()),
    )
    .await;
    // Without a client certificate, the server refuses the handshake.
    let no_cert = http_request(web, "GET", "/no-cert", &[], b"").await;
    assert_eq!(no_cert.status, 500, "{}", no_cert.text());
    assert_eq!(
        (auth.count(), app.count()),
        (asked, served),
        "nothing got through"
    );

    // A missing Secret: the Middleware is unusable, its route answers 503 and says why.
    let missing = http_request(web, "GET", "/missing", &[], b"").await;
    assert_eq!(missing.status, 503);
    let diagnostics = traverse_e2e::diagnostics(&gateway.routes_json().await);
    let named: Vec<(&str, &str, &str)> = diagnostics
        .iter()
        .map(|d| {
            (
                traverse_e2e::field(d, "severity"),
                traverse_e2e::field(&d["object"], "name"),
                traverse_e2e::field(d, "field"),
            )
        })
        .collect();
    // The Middleware's error, and the route naming it.
    assert_eq!(
        named,
        [
            ("error", "missing", "spec.forwardAuth.tls.caSecret"),
            ("warning", "missing", "spec.routes[0].middlewares[0]"),
        ],
        "{diagnostics:#?}"
    );
    let message = traverse_e2e::field(&diagnostics[0], "message");
    assert!(message.contains("Secret default/nowhere"), "{message}");
    assert!(
        traverse_e2e::field(&diagnostics[0], "source").contains("middlewares.yaml:"),
        "{diagnostics:#?}"
    );
    let plain = http_request(web, "GET", "/plain", &[], b"").await;
    assert_eq!(
        (plain.status, plain.server().as_deref()),
        (200, Some("app"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_provider_serves_and_rotates_secrets() {
    let kmock = traverse_e2e::Kmock::start().await;
    let app = Upstream::start("app");
    let ca = TestCa::new();
    let (first, second) = (server_leaf(&ca, "k.test"), server_leaf(&ca, "k.test"));
    kmock
        .apply(&format!(
            "{}---\n{}---\n{}",
            service("app", &[app.addr()]),
            tls_route("k", "k.test", "app", "cert-k"),
            secret("cert-k", &first)
        ))
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kmock.kubeconfig(dir.path());
    let config = format!(
        "entryPoints:
  websecure: {{address: \"{{websecure}}\", tls: {{}}}}
admin: {{address: \"{{admin}}\"}}
providers:
  kubernetes:
    kubeconfig: \"{}\"
    throttle: 100ms
",
        kubeconfig.display()
    );
    let gateway = Gateway::start(&config, &[]).await;
    let addr = gateway.addr("websecure");
    assert_eq!(served(addr, "k.test").await, Ok(der(&first.cert)));
    assert_eq!(
        get(&gateway, "k.test", &ca.pem).await,
        Ok((200, Some("app".into())))
    );

    kmock.apply(&secret("cert-k", &second)).await;
    eventually(
        "the rotated Secret served",
        Duration::from_secs(5),
        async || (served(addr, "k.test").await.ok()? == der(&second.cert)).then_some(()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_provider_reads_cas_from_config_maps() {
    let kmock = traverse_e2e::Kmock::start().await;
    let server_ca = TestCa::new();
    let upstream =
        PrivateUpstream::start(&server_leaf(&server_ca, "backend.internal"), &TestCa::new()).await;
    kmock
        .apply(&format!(
            "{}---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: mapped}}
spec:
  routes:
    - match: Host(`mapped.test`)
      services: [{{name: private, port: 80, scheme: https, serversTransport: mapped}}]
---
{}",
            service("private", &[upstream.addr]),
            config_map_transport("mapped", "private-ca", &server_ca.pem)
        ))
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kmock.kubeconfig(dir.path());
    let config = format!(
        "entryPoints:
  web: {{address: \"{{web}}\"}}
admin: {{address: \"{{admin}}\"}}
providers:
  kubernetes:
    kubeconfig: \"{}\"
    throttle: 100ms
",
        kubeconfig.display()
    );
    let gateway = Gateway::start(&config, &[]).await;
    let web = gateway.addr("web");
    let mapped = http_request(web, "GET", "/", &[("host", "mapped.test")], b"").await;
    assert_eq!((mapped.status, mapped.text()), (200, "private".to_owned()));
    let routes = traverse_e2e::http_get(gateway.addr("admin"), "/api/routes", &[])
        .await
        .json();
    let problems = traverse_e2e::diagnostics(&routes);
    assert!(problems.is_empty(), "{problems:?}");
}
