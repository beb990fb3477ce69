//! TLS end to end: a throwaway CA issues server and client certificates, and
//! both protocols complete real handshakes against rustls servers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use traverse_config::CertificateFiles;

use super::{
    Accepted, Compression, ConfigError, ExportError, ExporterOptions, OtlpExporter, Protocol,
    TlsOptions,
};

struct Pki {
    _dir: TempDir,
    ca_file: PathBuf,
    ca_cert: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
    client_cert_file: PathBuf,
    client_key_file: PathBuf,
    other_key_file: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("leaf key");
            let mut params = CertificateParams::new(vec![name.to_owned()]).expect("leaf params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
            (cert, key)
        };
        let (server_cert, server_key) = leaf("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf("exporter.test", ExtendedKeyUsagePurpose::ClientAuth);
        let other_key = KeyPair::generate().expect("other key");

        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, contents: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).expect("write PEM");
            path
        };
        Self {
            ca_file: write("ca.pem", ca_cert.pem()),
            client_cert_file: write("client.pem", client_cert.pem()),
            client_key_file: write("client.key", client_key.serialize_pem()),
            other_key_file: write("other.key", other_key.serialize_pem()),
            ca_cert: ca_cert.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
            _dir: dir,
        }
    }

    fn acceptor(&self, alpn: &[u8], require_client_cert: bool) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("protocol versions");
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca_cert.clone()).expect("client CA");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = builder
            .with_single_cert(vec![self.server_cert.clone()], key)
            .expect("server certificate");
        config.alpn_protocols = vec![alpn.to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    fn options(&self, protocol: Protocol, addr: SocketAddr) -> ExporterOptions {
        let endpoint = match protocol {
            Protocol::HttpProtobuf => format!("https://{addr}/v1/traces"),
            Protocol::Grpc => format!("https://{addr}"),
        };
        ExporterOptions {
            protocol,
            endpoint,
            headers: Vec::new(),
            timeout: Duration::from_secs(2),
            compression: Compression::None,
            tls: TlsOptions {
                files: CertificateFiles {
                    cert: Some(self.client_cert_file.clone()),
                    key: Some(self.client_key_file.clone()),
                    ca: Some(self.ca_file.clone()),
                },
                insecure_skip_verify: false,
            },
        }
    }
}

/// OTLP/HTTP collector over TLS that accepts every export.
async fn https_collector(acceptor: TlsAcceptor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

struct AcceptAll;

#[tonic::async_trait]
impl TraceService for AcceptAll {
    async fn export(
        &self,
        _request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// OTLP/gRPC collector over TLS that accepts every export.
async fn grpc_collector(acceptor: TlsAcceptor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = TraceServiceServer::new(AcceptAll);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn send(options: ExporterOptions) -> Result<Accepted, ExportError> {
    OtlpExporter::new(options)
        .expect("exporter")
        .send(&ExportTraceServiceRequest::default())
        .await
}

#[tokio::test]
async fn https_with_ca_file_and_client_certificate() {
    let pki = Pki::new();
    let addr = https_collector(pki.acceptor(b"http/1.1", true)).await;

    assert_eq!(
        send(pki.options(Protocol::HttpProtobuf, addr)).await,
        Ok(Accepted::default())
    );
}

#[tokio::test]
async fn https_without_required_client_certificate_fails() {
    let pki = Pki::new();
    let addr = https_collector(pki.acceptor(b"http/1.1", true)).await;
    let mut options = pki.options(Protocol::HttpProtobuf, addr);
    options.tls.files.cert = None;
    options.tls.files.key = None;

    let result = send(options).await;

    assert!(
        matches!(result, Err(ExportError::Retryable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn https_rejects_unknown_issuer_unless_verification_is_skipped() {
    let pki = Pki::new();
    let addr = https_collector(pki.acceptor(b"http/1.1", false)).await;
    let mut options = pki.options(Protocol::HttpProtobuf, addr);
    options.tls = TlsOptions::default();

    match send(options.clone()).await {
        Err(ExportError::Retryable { reason, .. }) => {
            assert!(reason.contains("UnknownIssuer"), "{reason}")
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }

    options.tls.insecure_skip_verify = true;
    assert_eq!(send(options).await, Ok(Accepted::default()));
}

#[tokio::test]
async fn grpc_with_ca_file_and_client_certificate() {
    let pki = Pki::new();
    let addr = grpc_collector(pki.acceptor(b"h2", true)).await;

    assert_eq!(
        send(pki.options(Protocol::Grpc, addr)).await,
        Ok(Accepted::default())
    );
}

#[tokio::test]
async fn grpc_insecure_skip_verify() {
    let pki = Pki::new();
    let addr = grpc_collector(pki.acceptor(b"h2", false)).await;
    let mut options = pki.options(Protocol::Grpc, addr);
    options.tls = TlsOptions {
        insecure_skip_verify: true,
        ..TlsOptions::default()
    };

    assert_eq!(send(options).await, Ok(Accepted::default()));
}

#[test]
fn mismatched_client_key_is_a_config_error() {
    let pki = Pki::new();
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let mut options = pki.options(protocol, SocketAddr::from(([127, 0, 0, 1], 4318)));
        options.tls.files.key = Some(pki.other_key_file.clone());
        match OtlpExporter::new(options) {
            Err(ConfigError::Tls(reason)) => {
                assert!(reason.contains("client certificate and key"), "{reason}")
            }
            other => panic!("expected a TLS configuration error, got {other:?}"),
        }
    }
}
