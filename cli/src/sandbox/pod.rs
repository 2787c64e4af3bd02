//! A sandbox pod: a network namespace with a veth into the chassis, its
//! address, MAC, route and offloads set as the topology says.

use super::{in_ns, pod_addr, sh, Pod, State, SwitchInfo, EXT_SWITCH};
use anyhow::bail;

/// The CPU mask of every core but the PMD's (None when there is no other core).
fn rps_mask(pmd_core: Option<usize>) -> Option<u64> {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(64);
    let core = pmd_core?;
    let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mask = all & !(1u64 << core);
    (mask != 0).then_some(mask)
}

pub(super) fn create_pod(
    st: &State,
    name: &str,
    i: usize,
    sw: &SwitchInfo,
    node: &crate::cluster::ChassisNode,
) -> anyhow::Result<Pod> {
    let (ip, mac, _) = pod_addr(&sw.subnet, i)?;
    let name = name.to_string();
    // The external host knows only its own network.
    let routed = st.router.is_some() && sw.name != EXT_SWITCH;
    let netns = format!("{}-{}", st.prefix, name);
    let host_iface = format!("{}-{}", st.prefix, name);
    if host_iface.len() > 15 {
        bail!("interface name {host_iface:?} is too long; use a shorter --prefix");
    }
    sh("ip", &["netns", "add", &netns])?;
    sh(
        "ip",
        &[
            "link",
            "add",
            &host_iface,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &netns,
        ],
    )?;
    let in_node = |args: &[&str]| -> anyhow::Result<String> {
        match &node.netns {
            Some(ns) => in_ns(ns, args),
            None => sh(args[0], &args[1..]),
        }
    };
    if let Some(ns) = &node.netns {
        sh("ip", &["link", "set", &host_iface, "netns", ns])?;
        // Room for the Geneve encapsulation on the underlay.
        let mtu = crate::cluster::POD_MTU.to_string();
        in_node(&["ip", "link", "set", &host_iface, "mtu", &mtu])?;
        in_ns(&netns, &["ip", "link", "set", "eth0", "mtu", &mtu])?;
    }
    let _ = in_node(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{host_iface}.disable_ipv6=1"),
    ]);
    in_node(&["ip", "link", "set", &host_iface, "up"])?;
    in_ns(
        &netns,
        &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
    )?;
    in_ns(&netns, &["ip", "link", "set", "lo", "up"])?;
    in_ns(&netns, &["ip", "link", "set", "eth0", "address", &mac])?;
    in_ns(
        &netns,
        &["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
    )?;
    in_ns(&netns, &["ip", "link", "set", "eth0", "up"])?;
    if routed {
        in_ns(
            &netns,
            &["ip", "route", "add", "default", "via", &sw.gateway],
        )?;
    }
    // Keep the pod's receive processing off the PMD core: with veth, the kernel
    // runs a pod's RX stack in the softirq of whoever transmits to it, which for
    // AF_XDP copy mode is vswitchd's sendto() on the PMD core.
    if let Some(mask) = rps_mask(st.pmd_core) {
        let _ = in_ns(
            &netns,
            &[
                "sh",
                "-c",
                &format!("echo {mask:x} > /sys/class/net/eth0/queues/rx-0/rps_cpus"),
            ],
        );
    }
    // The datapath does not complete partial checksums (copy-mode AF_XDP carries no
    // checksum metadata), so the pod computes them itself, as with OVS AF_XDP ports.
    in_ns(&netns, &["ethtool", "-K", "eth0", "tx", "off"])?;
    Ok(Pod {
        name: name.clone(),
        netns,
        host_iface,
        pod_iface: "eth0".into(),
        mac,
        ip,
        lport: format!("{}-{}", sw.name, name),
        chassis: node.name.clone(),
        switch: sw.name.clone(),
        gateway: if routed {
            sw.gateway.clone()
        } else {
            String::new()
        },
    })
}
