//! TLS and mutual TLS with certificates made at test time (no committed
//! keys), and the rule that an open server stays on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;

use funnel_pipeline::{Security, SecurityError, ServeOptions, TlsFiles};
use funnel_proto::v1::{self as pb, pipeline_service_client::PipelineServiceClient};
use funnel_testkit::TestDatabase;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A CA, a server certificate for localhost and a client certificate, as
/// PEM files in a temporary directory.
struct Pki {
    dir: TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "funnel test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca cert");
        let leaf = |names: &[&str]| {
            let key = KeyPair::generate().expect("leaf key");
            let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
            let cert = CertificateParams::new(names).expect("leaf params").signed_by(&key, &ca).expect("leaf cert");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(&["localhost", "127.0.0.1"]);
        let (client_cert_pem, client_key_pem) = leaf(&["funnel-client"]);
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in [("ca.pem", ca.pem()), ("server.pem", server_cert), ("server.key", server_key)] {
            std::fs::write(dir.path().join(name), text).expect("write pem");
        }
        Pki { dir, ca_pem: ca.pem(), client_cert_pem, client_key_pem }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server_files(&self, mutual: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: mutual.then(|| self.path("ca.pem")),
        }
    }

    fn client_tls(&self, with_certificate: bool) -> ClientTlsConfig {
        let config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem)).domain_name("localhost");
        match with_certificate {
            true => config.identity(Identity::from_pem(&self.client_cert_pem, &self.client_key_pem)),
            false => config,
        }
    }
}

/// `serve_with` on 127.0.0.1:0 with `security`; stops when the sender drops.
async fn serve(database: &TestDatabase, security: Security) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let options = ServeOptions::default().with_security(security);
    tokio::spawn(funnel_pipeline::serve_with(listener, database.store().await, options, async {
        let _ = stopped.await;
    }));
    (address, stop)
}

async fn get_sales(channel: Channel, token: &str) -> Result<pb::Pipeline, tonic::Status> {
    let mut request = tonic::Request::new(pb::GetPipelineRequest { name: "sales".into() });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    PipelineServiceClient::new(channel).get_pipeline(request).await.map(tonic::Response::into_inner)
}

fn security(tls: Option<&TlsFiles>) -> Security {
    let hash = funnel_pipeline::auth::TokenHash::of("tls-token").to_hex();
    Security::load(None, Some(&format!("svc:service::{hash}")), tls, false).expect("valid security")
}

#[tokio::test]
async fn a_tls_server_answers_a_client_that_trusts_its_ca_and_not_a_plaintext_one() {
    let pki = Pki::new();
    let database = TestDatabase::sqlite();
    let (address, _stop) = serve(&database, security(Some(&pki.server_files(false)))).await;

    let endpoint = Endpoint::from_shared(format!("https://{address}")).expect("url");
    let channel = endpoint.tls_config(pki.client_tls(false)).expect("tls config").connect().await.expect("handshake");
    let sales = get_sales(channel, "tls-token").await.expect("a call over TLS");
    assert_eq!(sales.name, "sales");

    let plaintext = Endpoint::from_shared(format!("http://{address}")).expect("url").connect_lazy();
    get_sales(plaintext, "tls-token").await.expect_err("plaintext to a TLS server fails");
}

#[tokio::test]
async fn under_mutual_tls_a_client_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let database = TestDatabase::sqlite();
    let (address, _stop) = serve(&database, security(Some(&pki.server_files(true)))).await;
    let endpoint = Endpoint::from_shared(format!("https://{address}")).expect("url");

    let anonymous = endpoint.clone().tls_config(pki.client_tls(false)).expect("tls config").connect_lazy();
    let refused = get_sales(anonymous, "tls-token").await.expect_err("no client certificate");
    assert_ne!(refused.code(), tonic::Code::Ok);

    let certified = endpoint.tls_config(pki.client_tls(true)).expect("tls config").connect().await.expect("handshake");
    get_sales(certified, "tls-token").await.expect("a client with a certificate gets through");
}

#[tokio::test]
async fn unusable_tls_files_stop_the_start() {
    let pki = Pki::new();
    let swapped = TlsFiles { cert: pki.path("server.key"), key: pki.path("server.pem"), client_ca: None };
    let error = Security::load(None, None, Some(&swapped), false).expect_err("key and certificate swapped");
    assert!(error.to_string().contains("holds no PEM certificate"), "{error}");
    let missing = TlsFiles { cert: pki.path("nope.pem"), ..pki.server_files(false) };
    let error = Security::load(None, None, Some(&missing), false).expect_err("missing file");
    assert!(matches!(error, SecurityError::File { .. }), "{error}");
}

#[test]
fn an_open_server_stays_on_loopback_unless_told_insecure() {
    let network: SocketAddr = "0.0.0.0:50051".parse().expect("address");
    let loopback: SocketAddr = "127.0.0.1:50051".parse().expect("address");
    let open = Security::default();
    assert!(matches!(open.check_exposure(network), Err(SecurityError::OpenOnNetwork { .. })));
    assert!(open.check_exposure(loopback).is_ok());
    assert!(Security { insecure: true, ..Security::default() }.check_exposure(network).is_ok());
    assert!(security(None).check_exposure(network).is_ok());
}

#[test]
fn the_binary_refuses_to_serve_open_on_a_network_address() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_funnel-pipeline"))
        .args(["--listen", "0.0.0.0:0", "--database-url", "sqlite::memory:", "--metrics-listen", "off"])
        .env_remove("FUNNEL_TOKENS")
        .env_remove("FUNNEL_TOKENS_FILE")
        .env_remove("FUNNEL_INSECURE")
        .output()
        .expect("run funnel-pipeline");
    assert!(!output.status.success(), "it must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to serve 0.0.0.0:0 without tokens"), "{stderr}");
}
