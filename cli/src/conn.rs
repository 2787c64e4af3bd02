//! Where syctl's daemons are and how it proves who it is to them: flags,
//! environment, else the running sandbox.

use crate::{sandbox, Cli, DEFAULT_SANDBOX_DIR};
use std::path::PathBuf;
use switchyard_southbound::tls::{TlsFiles, Token};

pub(crate) fn sandbox_state() -> Option<sandbox::State> {
    let dir = std::env::var_os("SWITCHYARD_SANDBOX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_SANDBOX_DIR.into());
    sandbox::State::load(&dir)
}

impl Cli {
    /// The NB credentials: --tls-* / --token, else the sandbox's operator
    /// certificate when the NB is the TLS sandbox's.
    pub(crate) fn creds(&self) -> anyhow::Result<switchyard_cli::nb_client::Creds> {
        let tls = TlsFiles::from_flags(
            self.tls_ca.as_deref(),
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let token = Token::new(self.token.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
        let tls = match tls {
            Some(t) => Some(t),
            None => sandbox_state()
                .filter(|s| s.tls && self.nb.as_ref().is_none_or(|n| *n == s.nb))
                .and_then(|s| sandbox::pki::operator_creds(&s).tls),
        };
        Ok(switchyard_cli::nb_client::Creds { tls, token })
    }
    /// The NB address: `--nb`/`SYCTL_NB`, else the running sandbox's (said
    /// on stderr, so that nobody writes into a sandbox believing it is the
    /// real deployment), else the default.
    /// --connect-timeout, checked.
    pub(crate) fn connect_within(&self) -> anyhow::Result<std::time::Duration> {
        std::time::Duration::try_from_secs_f64(self.connect_timeout).map_err(|_| {
            anyhow::anyhow!(
                "--connect-timeout {}: give a number of seconds, 0 or more",
                self.connect_timeout
            )
        })
    }
    pub(crate) fn nb_addr(&self) -> String {
        self.nb.clone().unwrap_or_else(|| match sandbox_state() {
            Some(s) => {
                eprintln!(
                    "syctl: using the sandbox's NB at {} (--nb or SYCTL_NB to choose)",
                    s.nb
                );
                s.nb
            }
            None => "http://127.0.0.1:6641".into(),
        })
    }
    /// The vswitchd control socket, chosen the same way.
    pub(crate) fn vswitchd_sock(&self) -> PathBuf {
        self.vswitchd.clone().unwrap_or_else(|| match sandbox_state() {
            Some(s) => {
                eprintln!(
                    "syctl: using the sandbox's vswitchd at {} (--vswitchd or SYCTL_VSWITCHD to choose)",
                    s.control_sock.display()
                );
                s.control_sock
            }
            None => "/run/switchyard/vswitchd.sock".into(),
        })
    }
}
