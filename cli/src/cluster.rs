//! Several chassis in one sandbox: each chassis is a network namespace with its
//! own switchyard-vswitchd, attached by a veth (`ul0`) to an underlay bridge in
//! the root namespace where northd's southbound API listens. Pods hang off their
//! chassis' namespace; traffic between chassis crosses the bridge as Geneve.

use crate::sandbox::proc::{in_ns, sh, Daemon};
use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Underlay MTU; pods get this less the Geneve overhead.
pub const UNDERLAY_MTU: u32 = 1500;
/// Pod MTU on a multi-chassis sandbox (underlay MTU − 100, as OVN documents).
pub const POD_MTU: u32 = UNDERLAY_MTU - switchyard_geneve::tunnel::MTU_OVERHEAD as u32;

/// One chassis of the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChassisNode {
    pub name: String,
    /// The chassis' namespace (none: the root namespace, single-chassis sandbox).
    pub netns: Option<String>,
    pub encap_ip: String,
    pub control_sock: PathBuf,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    pub vswitchd: Option<Daemon>,
}

/// The underlay /24 for a sandbox: 172.31.N.0/24 with N from the port base, so
/// that test sandboxes with different port bases never share one.
pub fn underlay_prefix(port_base: u16) -> String {
    format!("172.31.{}", (port_base / 4) % 250)
}

/// The bridge every chassis' `ul0` is attached to, with northd's address on it.
pub fn create_underlay(prefix: &str, net: &str) -> anyhow::Result<String> {
    let br = format!("{prefix}-ul");
    sh("ip", &["link", "add", &br, "type", "bridge"])?;
    sh("ip", &["addr", "add", &format!("{net}.1/24"), "dev", &br])?;
    sh("ip", &["link", "set", &br, "up"])?;
    Ok(format!("{net}.1"))
}

/// Chassis `k` (from 1): its namespace, its underlay veth on the bridge.
pub fn create_chassis(
    prefix: &str,
    k: usize,
    net: &str,
    dir: &std::path::Path,
    underlay_mtu: u32,
) -> anyhow::Result<ChassisNode> {
    if k > 200 {
        bail!("at most 200 chassis in a sandbox");
    }
    let ns = format!("{prefix}-ch{k}");
    let host = format!("{prefix}-c{k}u");
    if host.len() > 15 {
        bail!("interface name {host:?} is too long; use a shorter --prefix");
    }
    let ip = format!("{net}.{}", 10 + k);
    sh("ip", &["netns", "add", &ns])?;
    sh(
        "ip",
        &[
            "link", "add", &host, "type", "veth", "peer", "name", "ul0", "netns", &ns,
        ],
    )?;
    sh(
        "ip",
        &["link", "set", &host, "master", &format!("{prefix}-ul")],
    )?;
    sh(
        "ip",
        &["link", "set", &host, "mtu", &underlay_mtu.to_string()],
    )?;
    sh("ip", &["link", "set", &host, "up"])?;
    let _ = sh(
        "sysctl",
        &["-qw", &format!("net.ipv6.conf.{host}.disable_ipv6=1")],
    );
    in_ns(&ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
    in_ns(&ns, &["ip", "link", "set", "lo", "up"])?;
    in_ns(
        &ns,
        &["ip", "link", "set", "ul0", "mtu", &underlay_mtu.to_string()],
    )?;
    in_ns(
        &ns,
        &["ip", "addr", "add", &format!("{ip}/24"), "dev", "ul0"],
    )?;
    in_ns(&ns, &["ip", "link", "set", "ul0", "up"])?;
    // Outer UDP checksums are zero and the underlay is a veth: nothing to offload.
    in_ns(&ns, &["ethtool", "-K", "ul0", "tx", "off"])?;
    Ok(ChassisNode {
        name: format!("{prefix}-chassis{k}"),
        netns: Some(ns),
        encap_ip: ip,
        control_sock: dir.join(format!("vswitchd-ch{k}.sock")),
        state_dir: dir.join(format!("vswitchd-ch{k}-state")),
        log: dir.join(format!("vswitchd-ch{k}.log")),
        vswitchd: None,
    })
}
