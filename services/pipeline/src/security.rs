//! How the server is secured: which tokens it knows, whether it speaks TLS
//! (and demands client certificates), and the rule that keeps an open
//! server on loopback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tracing::{info, warn};

use crate::auth::Tokens;

/// Why the server will not start as configured.
#[derive(Debug, Error)]
pub enum SecurityError {
    #[error("tokens: {0}")]
    Tokens(String),
    #[error("reading {what} {}: {reason}", path.display())]
    File { what: &'static str, path: PathBuf, reason: String },
    #[error("{0}")]
    Tls(String),
    #[error(
        "refusing to serve {address} without tokens: it is not a loopback address, so anyone who can reach it \
         could read and change the whole pipeline; configure --tokens-file or FUNNEL_TOKENS, or pass --insecure"
    )]
    OpenOnNetwork { address: SocketAddr },
}

/// Certificate and key of the server, and optionally the CA whose client
/// certificates it demands (mTLS).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Authentication and transport security of the server. The default is open
/// mode over plaintext: what [`crate::serve`] runs, for tests and dev.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Known tokens; none means open mode.
    pub tokens: Arc<Tokens>,
    /// TLS, when the server has a certificate.
    pub tls: Option<ServerTlsConfig>,
    /// Whether TLS demands a client certificate.
    pub mutual_tls: bool,
    /// Serve open on a non-loopback address anyway.
    pub insecure: bool,
}

impl Security {
    /// Reads tokens from a file and/or the `FUNNEL_TOKENS` text, and TLS
    /// material from PEM files.
    pub fn load(
        tokens_file: Option<&Path>,
        tokens_env: Option<&str>,
        tls_files: Option<&TlsFiles>,
        insecure: bool,
    ) -> Result<Security, SecurityError> {
        let mut tokens = Tokens::default();
        if let Some(path) = tokens_file {
            let text = read("tokens file", path)?;
            tokens.add_file_text(&path.display().to_string(), &text).map_err(SecurityError::Tokens)?;
        }
        if let Some(text) = tokens_env {
            tokens.add_env_text(text).map_err(SecurityError::Tokens)?;
        }
        let tls = tls_files.map(server_tls).transpose()?;
        let mutual_tls = tls_files.is_some_and(|files| files.client_ca.is_some());
        Ok(Security { tokens: Arc::new(tokens), tls, mutual_tls, insecure })
    }

    /// Open mode: no tokens known.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The open-mode rule: without tokens, only a loopback address, unless
    /// `insecure` says otherwise (loudly).
    pub fn check_exposure(&self, address: SocketAddr) -> Result<(), SecurityError> {
        let loopback = address.ip().is_loopback();
        match (self.is_open(), loopback, self.insecure) {
            (true, false, false) => return Err(SecurityError::OpenOnNetwork { address }),
            (true, false, true) => warn!(
                %address,
                "INSECURE: serving without authentication on a non-loopback address (--insecure); \
                 anyone who can reach it can read and change the whole pipeline"
            ),
            (true, true, _) => {
                warn!(%address, "open mode: no tokens configured, every call is allowed (loopback only)")
            }
            (false, false, _) if self.tls.is_none() => {
                warn!(%address, "tokens configured without TLS: bearer tokens cross the network in clear text")
            }
            (false, _, _) => {
                info!(
                    principals = self.tokens.len(),
                    tls = self.tls.is_some(),
                    mtls = self.mutual_tls,
                    "authentication on"
                )
            }
        }
        Ok(())
    }
}

fn read(what: &'static str, path: &Path) -> Result<String, SecurityError> {
    std::fs::read_to_string(path).map_err(|error| SecurityError::File {
        what,
        path: path.to_owned(),
        reason: error.to_string(),
    })
}

/// The server's TLS configuration, checked now rather than at the first
/// handshake: a wrong file should stop the start, not every client.
fn server_tls(files: &TlsFiles) -> Result<ServerTlsConfig, SecurityError> {
    let cert = read("TLS certificate", &files.cert)?;
    let key = read("TLS key", &files.key)?;
    if !cert.contains("-----BEGIN CERTIFICATE-----") {
        return Err(SecurityError::Tls(format!("{} holds no PEM certificate", files.cert.display())));
    }
    if !key.contains("PRIVATE KEY-----") {
        return Err(SecurityError::Tls(format!("{} holds no PEM private key", files.key.display())));
    }
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(client_ca) = &files.client_ca {
        let ca = read("TLS client CA", client_ca)?;
        if !ca.contains("-----BEGIN CERTIFICATE-----") {
            return Err(SecurityError::Tls(format!("{} holds no PEM certificate", client_ca.display())));
        }
        // Without client_auth_optional, a client without a certificate
        // signed by this CA fails the handshake.
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    // Building the acceptor parses everything now.
    tonic::transport::Server::builder()
        .tls_config(config.clone())
        .map_err(|error| SecurityError::Tls(format!("the TLS certificate or key is unusable: {error}")))?;
    Ok(config)
}

impl Security {
    /// The security `config` asks for, with every file read and checked.
    pub fn from_config(config: &crate::Config) -> Result<Security, SecurityError> {
        let tls_files = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: config.tls_client_ca.clone() })
            }
            (None, None) => None,
            _ => return Err(SecurityError::Tls("--tls-cert and --tls-key go together".to_owned())),
        };
        Security::load(config.tokens_file.as_deref(), config.tokens.as_deref(), tls_files.as_ref(), config.insecure)
    }
}
