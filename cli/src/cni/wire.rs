//! The kernel side of an attachment: the veth pair, its container end moved
//! into the container's network namespace and configured there. Done with
//! iproute2 (`ip`, entering the namespace by its path with `nsenter`) as the
//! sandbox does, rather than hand-written netlink: every step is then one an
//! operator can repeat by hand when debugging a node.

use super::spec::{code, CniError};
use std::process::{Command, Stdio};

/// Runs a command; a failure is an I/O error naming the command and its stderr.
pub fn run(cmd: &str, args: &[&str]) -> Result<String, CniError> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CniError::new(code::IO_FAILURE, format!("cannot run {cmd}"), e.to_string()))?;
    if !out.status.success() {
        return Err(CniError::new(
            code::IO_FAILURE,
            format!("{cmd} {} failed", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command inside the network namespace at `netns` (a path).
pub fn in_netns(netns: &str, args: &[&str]) -> Result<String, CniError> {
    let net = format!("--net={netns}");
    let mut a = vec![net.as_str()];
    a.extend_from_slice(args);
    run("nsenter", &a)
}

pub fn link_exists(iface: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(iface).exists()
}

/// The MAC of a host interface.
pub fn host_mac(iface: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Removes a host interface (the veth's peer goes with it); absent is fine.
pub fn remove_link(iface: &str) -> Result<(), CniError> {
    if link_exists(iface) {
        run("ip", &["link", "del", iface]).map(|_| ())?;
    }
    Ok(())
}

/// What the container end is to look like.
pub struct PodEnd<'a> {
    pub netns: &'a str,
    pub ifname: &'a str,
    pub mac: &'a str,
    /// "10.0.0.5/24".
    pub address: &'a str,
    pub gateway: Option<&'a str>,
    pub mtu: u32,
}

/// Makes the veth pair `host`/`peer`, moves `peer` into the container as
/// `ifname` and configures it. The host end is left up with IPv6 off (it is
/// a switch port, not a host interface).
pub fn make(host: &str, peer: &str, pod: &PodEnd) -> Result<(), CniError> {
    if !std::path::Path::new(pod.netns).exists() {
        return Err(CniError::new(
            code::UNKNOWN_CONTAINER,
            format!("network namespace {} does not exist", pod.netns),
            "the container is gone, or CNI_NETNS is wrong",
        ));
    }
    if in_netns(pod.netns, &["ip", "link", "show", "dev", pod.ifname]).is_ok() {
        return Err(CniError::new(
            code::IO_FAILURE,
            format!("interface {} already exists in the container", pod.ifname),
            "another network owns it, or an earlier ADD was not deleted",
        ));
    }
    let mtu = pod.mtu.to_string();
    run(
        "ip",
        &[
            "link", "add", host, "mtu", &mtu, "type", "veth", "peer", "name", peer, "mtu", &mtu,
        ],
    )?;
    let _ = run(
        "sysctl",
        &["-qw", &format!("net.ipv6.conf.{host}.disable_ipv6=1")],
    );
    run("ip", &["link", "set", peer, "netns", pod.netns])?;
    let inside = |args: &[&str]| in_netns(pod.netns, args).map(|_| ());
    inside(&["ip", "link", "set", peer, "name", pod.ifname])?;
    inside(&["ip", "link", "set", pod.ifname, "address", pod.mac])?;
    inside(&["ip", "addr", "add", pod.address, "dev", pod.ifname])?;
    inside(&["ip", "link", "set", "lo", "up"])?;
    inside(&["ip", "link", "set", pod.ifname, "up"])?;
    if let Some(gw) = pod.gateway {
        inside(&[
            "ip", "route", "add", "default", "via", gw, "dev", pod.ifname,
        ])?;
    }
    // Checksum offload stays on (the datapath completes partial checksums);
    // segmentation offload goes off: GSO super-frames do not survive generic
    // XDP on veth here (docs/large-frames.md).
    inside(&["ethtool", "-K", pod.ifname, "tso", "off", "gso", "off"])?;
    run("ip", &["link", "set", host, "up"])?;
    Ok(())
}

/// What the container end looks like now: (MAC, "IP/len" addresses).
pub fn inspect(netns: &str, ifname: &str) -> Result<(String, Vec<String>), CniError> {
    let out = in_netns(netns, &["ip", "-j", "addr", "show", "dev", ifname])?;
    let v: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| CniError::new(code::IO_FAILURE, "cannot read ip -j addr", e.to_string()))?;
    let link = &v[0];
    let mac = link["address"].as_str().unwrap_or_default().to_string();
    let addrs = link["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect();
    Ok((mac, addrs))
}
