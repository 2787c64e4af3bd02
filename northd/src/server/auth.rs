//! Who may call what. Without TLS (loopback only, the default) every caller
//! may do everything, as before. With TLS, northd knows each caller by its
//! certificate (`switchyard_southbound::tls`) and, as OVN's RBAC does for
//! chassis:
//! - the NB (every RPC) needs an operator certificate, or a token from
//!   `--nb-token-file` (`authorization: Bearer TOKEN`) for scripts;
//! - the SB needs a chassis certificate, and a chassis may only register,
//!   watch and report as itself, and claim only ports that are free or its own.
//!
//! Every refusal is logged with who asked for what, and counted
//! (`switchyard_northd_auth_refused_total`).

use std::sync::atomic::{AtomicU64, Ordering};
use switchyard_southbound::tls::{peer, Peer, ROLE_CHASSIS, ROLE_OPERATOR};
use tonic::{Request, Status};

#[derive(Debug, Default)]
pub struct Auth {
    tls: bool,
    tokens: Vec<String>,
    refused: AtomicU64,
}

impl Auth {
    pub fn new(tls: bool, tokens: Vec<String>) -> Auth {
        Auth {
            tls,
            tokens,
            refused: AtomicU64::new(0),
        }
    }

    /// Reads a token file: one token per line, blank lines and `#` comments skipped.
    pub fn load_tokens(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
        let body = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the token file {}: {e}", path.display()))?;
        let tokens: Vec<String> = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        if let Some(t) = tokens.iter().find(|t| t.len() < 16) {
            anyhow::bail!(
                "token {}... in {} is shorter than 16 characters",
                &t[..t.len().min(3)],
                path.display()
            );
        }
        Ok(tokens)
    }

    /// Whether callers are checked at all.
    pub fn enforcing(&self) -> bool {
        self.tls || !self.tokens.is_empty()
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn refuse(&self, who: &str, rpc: &str, why: String) -> Status {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(who, rpc, %why, "refused");
        Status::permission_denied(why)
    }

    fn token_ok<T>(&self, req: &Request<T>) -> bool {
        let Some(given) = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        // Compared in time independent of where they differ.
        self.tokens.iter().any(|t| {
            t.len() == given.len()
                && t.bytes()
                    .zip(given.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }

    /// An NB call: an operator certificate or a token.
    pub fn operator<T>(&self, req: &Request<T>, rpc: &str) -> Result<(), Status> {
        if !self.enforcing() || self.token_ok(req) {
            return Ok(());
        }
        match peer(req) {
            Some(Peer { role, .. }) if role == ROLE_OPERATOR && self.tls => Ok(()),
            Some(Peer { name, role }) => Err(self.refuse(
                &name,
                rpc,
                format!("the NB needs an operator certificate or a token; {name:?} is a {role:?} certificate"),
            )),
            None => Err(self.refuse(
                "anonymous",
                rpc,
                "the NB needs an operator certificate or a token (--tls-cert, --token)".into(),
            )),
        }
    }

    /// An SB call made on behalf of `chassis`: that chassis's own certificate.
    pub fn chassis<T>(&self, req: &Request<T>, rpc: &str, chassis: &str) -> Result<(), Status> {
        if !self.tls {
            return Ok(());
        }
        match peer(req) {
            Some(Peer { name, role }) if role == ROLE_CHASSIS && name == chassis => Ok(()),
            Some(Peer { name, role }) if role == ROLE_CHASSIS => Err(self.refuse(
                &name,
                rpc,
                format!("chassis {name:?} may act only as itself, not as {chassis:?}"),
            )),
            Some(Peer { name, role }) => Err(self.refuse(
                &name,
                rpc,
                format!("the SB needs a chassis certificate; {name:?} is a {role:?} certificate"),
            )),
            None => Err(self.refuse(
                "anonymous",
                rpc,
                "the SB needs a chassis certificate".into(),
            )),
        }
    }

    /// A claim of `port` by `chassis` while `holder` has it: refused under TLS
    /// (a chassis may not take another's port; the operator frees it with
    /// chassis-del or by deleting the port).
    pub fn take_over(&self, chassis: &str, port: &str, holder: &str) -> Result<(), Status> {
        if self.tls && holder != chassis {
            return Err(self.refuse(
                chassis,
                "ClaimPort",
                format!(
                    "port {port:?} is bound to chassis {holder:?}; {chassis:?} may not take it"
                ),
            ));
        }
        Ok(())
    }
}
