//! The NB connection syctl and switchyard-cni share.

use anyhow::Context;
use switchyard_southbound::pb::northbound_client::NorthboundClient;
use tonic::transport::Channel;

/// Connects to the NB; `addrs` may list several northds, comma-separated (one
/// active, standbys refusing connections): the first that answers is used.
/// While none answers, keeps trying for `within` (a northd restarting, or a
/// standby taking over, binds its port within a lease TTL); zero tries once.
pub async fn connect(
    addrs: &str,
    within: std::time::Duration,
) -> anyhow::Result<NorthboundClient<Channel>> {
    let deadline = std::time::Instant::now() + within;
    let mut eps = Vec::new();
    for addr in addrs.split(',').map(str::trim) {
        eps.push(
            tonic::transport::Endpoint::from_shared(addr.to_string())
                .with_context(|| format!("bad NB address {addr:?}"))?
                .connect_timeout(std::time::Duration::from_secs(3)),
        );
    }
    loop {
        let mut last = None;
        for ep in &eps {
            match ep.connect().await {
                Ok(ch) => return Ok(client(ch)),
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

pub fn client(ch: Channel) -> NorthboundClient<Channel> {
    NorthboundClient::new(ch)
        .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE)
        .max_encoding_message_size(switchyard_southbound::MAX_MESSAGE)
}
