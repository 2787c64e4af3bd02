//! Mutual TLS for the NB and SB gRPC services (rustls through tonic), and who
//! the peer on the other end is.
//!
//! Every party holds a certificate signed by the deployment's CA. Its subject
//! says who it is: the common name is the party's name (a chassis name, an
//! operator's name, northd's host), the organisational unit its role
//! (`chassis`, `operator`, `northd`). northd asks every client for a
//! certificate but does not insist at the handshake, so that a script with a
//! token (and no certificate) can still reach the NB; each RPC then checks
//! the role it needs (see northd's `auth`).

use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The organisational units that carry a role.
pub const ROLE_CHASSIS: &str = "chassis";
pub const ROLE_OPERATOR: &str = "operator";
pub const ROLE_NORTHD: &str = "northd";

/// The files of one party: the CA it trusts, its certificate and key (PEM).
/// A client may go without a certificate (it then proves itself with a
/// token); a server may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn read(p: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read the {what} {}: {e}", p.display()))
}

impl TlsFiles {
    /// From three optional flags: none (plaintext), the CA alone (a client
    /// with a token), or all three.
    pub fn from_flags(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Option<TlsFiles>, String> {
        match (ca, cert, key) {
            (None, None, None) => Ok(None),
            (Some(ca), cert, key) if cert.is_some() == key.is_some() => Ok(Some(TlsFiles {
                ca: ca.into(),
                cert: cert.map(Into::into),
                key: key.map(Into::into),
            })),
            (None, _, _) => Err(
                "--tls-cert and --tls-key need --tls-ca (the CA that signed northd's certificate)"
                    .into(),
            ),
            _ => Err("--tls-cert and --tls-key go together".into()),
        }
    }

    fn identity(&self) -> Result<Option<Identity>, String> {
        match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Ok(Some(Identity::from_pem(
                read(c, "certificate")?,
                read(k, "private key")?,
            ))),
            _ => Ok(None),
        }
    }

    /// For a client: trust the CA, present our certificate if we have one.
    pub fn client(&self) -> Result<ClientTlsConfig, String> {
        let c = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca, "CA certificate")?));
        Ok(match self.identity()? {
            Some(id) => c.identity(id),
            None => c,
        })
    }

    /// For northd: our certificate; clients' certificates verified against the
    /// CA when presented (their role is checked per RPC).
    pub fn server(&self) -> Result<ServerTlsConfig, String> {
        let id = self
            .identity()?
            .ok_or("northd's TLS needs --tls-cert and --tls-key")?;
        Ok(ServerTlsConfig::new()
            .identity(id)
            .client_ca_root(Certificate::from_pem(read(&self.ca, "CA certificate")?))
            .client_auth_optional(true))
    }
}

/// A client's certificate, as far as authorization cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub role: String,
}

/// The verified client certificate of a request, if it came with one.
pub fn peer<T>(req: &tonic::Request<T>) -> Option<Peer> {
    let certs = req.peer_certs()?;
    let der = certs.first()?;
    peer_of_der(der.as_ref())
}

/// Name (CN) and role (OU) of a DER certificate.
pub fn peer_of_der(der: &[u8]) -> Option<Peer> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let role = subject
        .iter_organizational_unit()
        .next()
        .and_then(|ou| ou.as_str().ok())
        .unwrap_or_default()
        .to_string();
    Some(Peer { name, role })
}

/// Adds `https://` to an address given without a scheme when TLS is on, so
/// `--nb 10.0.0.1:6641` works with or without TLS.
pub fn url(addr: &str, tls: bool) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else if tls {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

/// Whether a listen address is loopback only (plaintext is allowed there).
pub fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// A client endpoint for `addr`, with TLS when `tls` is given.
pub fn endpoint(addr: &str, tls: Option<&TlsFiles>) -> Result<tonic::transport::Endpoint, String> {
    let url = url(addr.trim(), tls.is_some());
    if url.starts_with("https://") && tls.is_none() {
        return Err(format!(
            "{url} is TLS: give the CA that signed its certificate (--tls-ca), and an \
             operator certificate (--tls-cert, --tls-key) or a token"
        ));
    }
    if url.starts_with("http://") && tls.is_some() {
        return Err(format!(
            "{url} is plaintext, yet TLS files were given: use https://"
        ));
    }
    let mut ep = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| format!("bad address {addr:?}: {e}"))?;
    if let Some(t) = tls {
        ep = ep
            .tls_config(t.client()?)
            .map_err(|e| format!("TLS for {url}: {e}"))?;
    }
    Ok(ep)
}

/// Adds `authorization: Bearer TOKEN` to every call when a token is set.
#[derive(Debug, Clone, Default)]
pub struct Token(pub Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Token {
    pub fn new(token: Option<&str>) -> Result<Token, String> {
        token
            .map(|t| {
                format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| "the token has characters a header cannot carry".to_string())
            })
            .transpose()
            .map(Token)
    }
}

impl tonic::service::Interceptor for Token {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// The channel type of an NB or SB client: a channel that may carry a token.
pub type AuthChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Token>;
