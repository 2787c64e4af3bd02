//! A sandbox pod: a network namespace with a veth into the chassis, its
//! address, MAC, route and offloads set as the topology says.

use super::{in_ns, sh, Pod, State, SwitchInfo, EXT_SWITCH};
use anyhow::{bail, Context};

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
    let (ip, mac, host) = pod_addr(&sw.subnet, i)?;
    let name = name.to_string();
    // The external host knows only its own network.
    let routed = st.router.is_some() && sw.name != EXT_SWITCH;
    let ip6 = if st.slaac && sw.name != EXT_SWITCH {
        slaac_addr(&sw.subnet, &mac)?
    } else if st.ipv6 && sw.name != EXT_SWITCH {
        pod_addr6(&sw.subnet, host)
    } else {
        String::new()
    };
    let netns = format!("{}-{}", st.prefix, name);
    let host_iface = format!("{}-{}", st.prefix, name);
    if host_iface.len() > 15 {
        bail!("interface name {host_iface:?} is too long; use a shorter --prefix");
    }
    sh("ip", &["netns", "add", &netns])?;
    let q = st.queues.max(1).to_string();
    sh(
        "ip",
        &[
            "link",
            "add",
            &host_iface,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &netns,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
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
    }
    // Both ends of the veth: across chassis, room for the Geneve
    // encapsulation on the underlay.
    let mtu = super::pod_mtu(st).to_string();
    in_node(&["ip", "link", "set", &host_iface, "mtu", &mtu])?;
    in_ns(&netns, &["ip", "link", "set", "eth0", "mtu", &mtu])?;
    let _ = in_node(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{host_iface}.disable_ipv6=1"),
    ]);
    in_node(&["ip", "link", "set", &host_iface, "up"])?;
    // IPv6 stays off unless the pod is dual-stack: the kernel would otherwise
    // send ND, MLD and router solicitations nobody asked for.
    let v6_off = format!(
        "net.ipv6.conf.all.disable_ipv6={}",
        u8::from(ip6.is_empty())
    );
    in_ns(&netns, &["sysctl", "-qw", &v6_off])?;
    if st.slaac && !ip6.is_empty() {
        // SLAAC waits for the port to be bound (solicit_router): until then
        // eth0 has no IPv6, and its solicitation would be lost. No DAD and
        // no solicitation delay, as for a static address.
        for s in [
            "disable_ipv6=1",
            "accept_dad=0",
            "router_solicitation_delay=0",
        ] {
            in_ns(
                &netns,
                &["sysctl", "-qw", &format!("net.ipv6.conf.eth0.{s}")],
            )?;
        }
    }
    in_ns(&netns, &["ip", "link", "set", "lo", "up"])?;
    in_ns(&netns, &["ip", "link", "set", "eth0", "address", &mac])?;
    // With --dhcp the pod asks the datapath for its address once bound (the
    // external host keeps its static one).
    let dhcp = st.dhcp && sw.name != EXT_SWITCH;
    if !dhcp {
        in_ns(
            &netns,
            &["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
        )?;
    }
    if !ip6.is_empty() && !st.slaac {
        // No DAD delay: the switch, not the pod, keeps addresses unique.
        let a = format!("{ip6}/64");
        in_ns(
            &netns,
            &["ip", "-6", "addr", "add", &a, "dev", "eth0", "nodad"],
        )?;
    }
    in_ns(&netns, &["ip", "link", "set", "eth0", "up"])?;
    if routed && !dhcp {
        in_ns(
            &netns,
            &["ip", "route", "add", "default", "via", &sw.gateway],
        )?;
    }
    if routed && !ip6.is_empty() && !st.slaac {
        // The router port's global address, as the IPv4 route does (no RA yet).
        let gw6 = pod_addr6(&sw.subnet, 1);
        in_ns(
            &netns,
            &[
                "ip", "-6", "route", "add", "default", "via", &gw6, "dev", "eth0",
            ],
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
    // Checksum offload stays on: the datapath completes the partial TCP/UDP
    // checksums the pod leaves (copy-mode AF_XDP carries no checksum
    // metadata). Segmentation offload goes off: with generic XDP the veth
    // would hand the datapath 64 KB GSO super-frames, which it does not
    // segment (yet); docs/large-frames.md.
    in_ns(
        &netns,
        &["ethtool", "-K", "eth0", "tso", "off", "gso", "off"],
    )?;
    Ok(Pod {
        name: name.clone(),
        netns,
        host_iface,
        pod_iface: "eth0".into(),
        mac,
        ip,
        ip6,
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

/// The DHCP options row of a switch in a `--dhcp` sandbox.
pub(super) fn dhcp_id(switch: &str) -> String {
    format!("sandbox-{switch}")
}

/// One DHCP options row per switch: the router port as server and gateway,
/// the pods' MTU.
pub(super) fn dhcp_options(st: &State) -> Vec<switchyard_southbound::pb::nb_op::Op> {
    use switchyard_southbound::pb;
    let mtu = super::pod_mtu(st);
    st.switches
        .iter()
        .filter(|s| s.name != EXT_SWITCH)
        .map(|s| {
            let mut options: std::collections::HashMap<String, String> = [
                ("server_id", s.gateway.clone()),
                ("server_mac", s.gateway_mac.clone()),
                ("lease_time", "3600".to_string()),
                ("mtu", mtu.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            if st.router.is_some() {
                options.insert("router".into(), s.gateway.clone());
            }
            pb::nb_op::Op::DhcpOptionsAdd(pb::DhcpOptions {
                id: dhcp_id(&s.name),
                cidr: s.subnet.clone(),
                options,
                external_ids: Default::default(),
            })
        })
        .collect()
}

/// udhcpc's script: applies the lease (address, MTU, default route).
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
"#;

/// Runs busybox's DHCP client in pod `p` until it has its lease (the
/// datapath answers once the port is bound; the client retries until then).
pub(super) fn dhcp_client(st: &State, p: &Pod) -> anyhow::Result<()> {
    let script = st.dir.join("udhcpc.sh");
    if !script.exists() {
        std::fs::write(&script, UDHCPC_SCRIPT)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    let script = script.display().to_string();
    in_ns(
        &p.netns,
        &[
            "busybox",
            "udhcpc",
            "-i",
            &p.pod_iface,
            "-f",
            "-q",
            "-n",
            "-t",
            "15",
            "-T",
            "1",
            "-s",
            &script,
        ],
    )
    .map_err(|e| anyhow::anyhow!("pod {} got no DHCP lease: {e}", p.name))?;
    Ok(())
}

/// `--slaac`: the router ports advertise their /64s for SLAAC, with the
/// pods' MTU.
pub(super) fn ra_configs(st: &State, s: &SwitchInfo) -> std::collections::HashMap<String, String> {
    if !st.slaac || s.name == EXT_SWITCH {
        return Default::default();
    }
    [
        ("address_mode", "slaac".to_string()),
        ("mtu", super::pod_mtu(st).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `--slaac`: turns IPv6 on in bound pod `p`; the kernel solicits, the
/// router answers, and the pod configures its address, default route and MTU
/// (sandbox up then waits for it to reach the first pod over IPv6).
pub(super) fn solicit_router(st: &State, p: &Pod) -> anyhow::Result<()> {
    if st.slaac && !p.ip6.is_empty() {
        let on = format!("net.ipv6.conf.{}.disable_ipv6=0", p.pod_iface);
        in_ns(&p.netns, &["sysctl", "-qw", &on])?;
    }
    Ok(())
}

/// The address SLAAC gives interface `mac` on the /64 of `subnet`'s switch:
/// the modified EUI-64 interface identifier (RFC 4291 appendix A).
pub(super) fn slaac_addr(subnet: &str, mac: &str) -> anyhow::Result<String> {
    let m: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<Result<_, _>>()
        .with_context(|| format!("MAC {mac:?}"))?;
    let [a, b, c, d, e, f] = m[..] else {
        bail!("MAC {mac:?} is not 6 bytes");
    };
    let net: std::net::Ipv6Addr = pod_addr6(subnet, 0).parse()?;
    let mut o = net.octets();
    o[8..].copy_from_slice(&[a ^ 2, b, c, 0xff, 0xfe, d, e, f]);
    Ok(std::net::Ipv6Addr::from(o).to_string())
}

/// The IPv6 address of pod `host` on the switch of IPv4 `subnet`: one /64
/// per switch under fd00::/16 (10.244.1.0/24 -> fd00:af4:1::/64).
pub(super) fn pod_addr6(subnet: &str, host: u8) -> String {
    let o: Vec<u16> = subnet
        .split(['.', '/'])
        .filter_map(|x| x.parse().ok())
        .collect();
    let (a, b, c) = (o[0], o[1], o[2]);
    std::net::Ipv6Addr::new(0xfd00, a << 8 | b, c, 0, 0, 0, 0, host.into()).to_string()
}

pub(super) fn pod_addr(subnet: &str, i: usize) -> anyhow::Result<(String, String, u8)> {
    let net: std::net::Ipv4Addr = subnet
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .with_context(|| format!("--subnet {subnet:?} is not an IPv4 CIDR"))?;
    if !subnet.ends_with("/24") {
        bail!("--subnet {subnet:?}: the sandbox uses a /24");
    }
    let host = 10 + i;
    if host > 250 {
        bail!("at most 240 pods in a sandbox /24");
    }
    let o = net.octets();
    let ip = format!("{}.{}.{}.{}", o[0], o[1], o[2], host);
    let mac = format!("0a:58:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], host);
    Ok((ip, mac, host as u8))
}

#[cfg(test)]
mod tests {
    #[test]
    fn slaac_addr_is_the_kernels_eui64() {
        // What Linux configured from a sandbox RA for this pod's MAC.
        let a = super::slaac_addr("10.244.1.0/24", "0a:58:0a:f4:01:0c").unwrap();
        assert_eq!(a, "fd00:af4:1:0:858:aff:fef4:10c");
        assert!(super::slaac_addr("10.244.1.0/24", "0a:58:0a").is_err());
        assert!(super::slaac_addr("10.244.1.0/24", "zz:58:0a:f4:01:0c").is_err());
    }
}
