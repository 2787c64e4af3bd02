//! The NB connection syctl and switchyard-cni share.

use switchyard_southbound::pb::northbound_client::NorthboundClient;
use switchyard_southbound::tls::{AuthChannel, TlsFiles, Token};
use tonic::transport::Channel;

/// An NB client (its calls carry the token, if any).
pub type Nb = NorthboundClient<AuthChannel>;

/// How a client proves who it is: a certificate (TLS), a token, both or neither.
#[derive(Debug, Clone, Default)]
pub struct Creds {
    pub tls: Option<TlsFiles>,
    pub token: Token,
}

/// Connects to the NB; `addrs` may list several northds, comma-separated (one
/// active, standbys refusing connections): the first that answers is used.
/// While none answers, keeps trying for `within` (a northd restarting, or a
/// standby taking over, binds its port within a lease TTL); zero tries once.
pub async fn connect(
    addrs: &str,
    within: std::time::Duration,
    creds: &Creds,
) -> anyhow::Result<Nb> {
    let deadline = std::time::Instant::now() + within;
    let mut eps = Vec::new();
    for addr in addrs.split(',').map(str::trim) {
        eps.push(
            switchyard_southbound::tls::endpoint(addr, creds.tls.as_ref())
                .map_err(|e| anyhow::anyhow!("NB address {addr:?}: {e}"))?
                .connect_timeout(std::time::Duration::from_secs(3)),
        );
    }
    loop {
        let mut last = None;
        for ep in &eps {
            match ep.connect().await {
                Ok(ch) => return Ok(client(ch, creds.token.clone())),
                Err(e) => last = Some(e),
            }
        }
        if std::time::Instant::now() >= deadline {
            let waited = if within.is_zero() {
                String::new()
            } else {
                format!(" within {} s (--connect-timeout)", within.as_secs_f32())
            };
            return Err(
                anyhow::Error::from(last.expect("at least one address")).context(format!(
                    "cannot reach switchyard-northd at {addrs}{waited} (is it running? see --nb)"
                )),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub fn client(ch: Channel, token: Token) -> Nb {
    NorthboundClient::with_interceptor(ch, token)
        .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE)
        .max_encoding_message_size(switchyard_southbound::MAX_MESSAGE)
}

/// A transaction of `ops`, each under the request's flags.
pub use switchyard_southbound::transaction as request;
