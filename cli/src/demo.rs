//! `syctl sandbox demo`: the quickstart. Brings a sandbox up, pings between every
//! pair of pods, runs iperf3 TCP between two pods, prints a summary with the
//! datapath's own counters, and takes the sandbox down unless asked to keep it.

use crate::sandbox::{self, in_ns, wait_until, Opts};
use std::time::{Duration, Instant};
use switchyard_control::{call, Request, Response};

/// Measures TCP throughput from `client_ns` to `server_ip` (in `server_ns`), Gbit/s.
pub fn iperf3_gbps(
    server_ns: &str,
    server_ip: &str,
    client_ns: &str,
    seconds: u32,
) -> anyhow::Result<f64> {
    let mut server = std::process::Command::new("ip")
        .args([
            "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", server_ip,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let listening = wait_until(Duration::from_secs(5), || {
        in_ns(server_ns, &["ss", "-ltn"]).is_ok_and(|s| s.contains(":5201"))
    });
    if !listening {
        let _ = server.kill();
        let _ = server.wait();
        anyhow::bail!("iperf3 server did not start in {server_ns}");
    }
    let out = in_ns(
        client_ns,
        &["iperf3", "-c", server_ip, "-t", &seconds.to_string(), "-J"],
    );
    let _ = server.kill();
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_str(&out?)?;
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("iperf3 gave no result: {}", v["error"]))?;
    Ok(bps / 1e9)
}

pub async fn run(o: &Opts, pods: usize, seconds: u32, keep: bool) -> anyhow::Result<()> {
    if pods < 2 {
        anyhow::bail!("the demo needs at least 2 pods");
    }
    let t0 = Instant::now();
    println!("== bringing up a sandbox with {pods} pods");
    let st = sandbox::up(o, pods).await?;
    let result = exercise(&st, seconds);
    println!("\n== datapath counters (syctl vswitch pmd-stats)");
    if let Ok(Response::Pmds(p)) = call(&st.control_sock, &Request::PmdStats { clear: false }) {
        for p in p {
            let drops: u64 = p.drops.values().sum();
            println!(
                "packets {}  cache hits {}  slow path {}  cycles/packet {:.0}  drops {}",
                p.packets, p.emc_hits, p.emc_misses, p.cycles_per_packet, drops
            );
        }
    }
    if keep {
        println!("\nsandbox kept: try `syctl show`, `syctl lflow-list`, `syctl vswitch port-list`; remove it with `syctl sandbox down`");
    } else {
        sandbox::down(o)?;
        println!("\nsandbox removed (run with --keep to explore it)");
    }
    println!("demo took {:.1}s", t0.elapsed().as_secs_f64());
    result
}

fn exercise(st: &sandbox::State, seconds: u32) -> anyhow::Result<()> {
    println!("\n== ping between every pair of pods");
    let mut ok = 0;
    let mut failed = Vec::new();
    for a in &st.pods {
        for b in &st.pods {
            if a.name == b.name {
                continue;
            }
            if in_ns(
                &a.netns,
                &["ping", "-c", "3", "-i", "0.2", "-W", "1", "-q", &b.ip],
            )
            .is_ok()
            {
                ok += 1;
                let how = match (a.switch != b.switch, a.chassis != b.chassis) {
                    (true, true) => " (routed, Geneve to another chassis)",
                    (true, false) => " (routed)",
                    (false, true) => " (Geneve to another chassis)",
                    (false, false) => "",
                };
                println!("  {} -> {} ({}): ok{how}", a.name, b.name, b.ip);
            } else {
                println!("  {} -> {} ({}): FAILED", a.name, b.name, b.ip);
                failed.push(format!("{}->{}", a.name, b.name));
            }
        }
    }
    println!(
        "\n== TCP throughput, {} -> {} (iperf3, {seconds}s)",
        st.pods[0].name, st.pods[1].name
    );
    let gbps = iperf3_gbps(
        &st.pods[1].netns,
        &st.pods[1].ip,
        &st.pods[0].netns,
        seconds,
    );
    println!("\n== summary");
    let switches: Vec<String> = st
        .switches
        .iter()
        .map(|s| format!("{} ({})", s.name, s.subnet))
        .collect();
    println!(
        "  pods:        {} on {}{}, chassis {}",
        st.pods.len(),
        switches.join(", "),
        st.router
            .as_ref()
            .map(|r| format!(" joined by router {r}"))
            .unwrap_or_default(),
        st.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  ping pairs:  {ok}/{} ok", ok + failed.len());
    match &gbps {
        Ok(g) => println!(
            "  TCP:         {g:.2} Gbit/s through switchyard (AF_XDP){}",
            match (
                st.pods[0].switch != st.pods[1].switch,
                st.pods[0].chassis != st.pods[1].chassis,
            ) {
                (true, true) => ", routed, across chassis through Geneve",
                (true, false) => ", routed",
                (false, true) => ", across chassis through Geneve",
                (false, false) => "",
            }
        ),
        Err(e) => println!("  TCP:         failed: {e:#}"),
    }
    if !failed.is_empty() {
        anyhow::bail!("ping failed for {}", failed.join(", "));
    }
    gbps.map(|_| ())
}
