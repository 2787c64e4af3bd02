//! Control-plane scale (issue 18 part 5): a real switchyard-northd with
//! `--ports` logical ports (`--ports-per-switch` on each switch, as
//! OVN-Kubernetes puts a node's pods on the node's switch), watched by
//! `--chassis` lightweight SB clients in this one process (each registers
//! and keeps a Watch stream, as a vswitchd does, but applies nothing). Then
//! `--changes` single `lsp-add`s, each timed from the NB write to the moment
//! every chassis has the SB delta carrying it, with northd's CPU time for the
//! change (from /proc: compiling, storing, encoding the deltas) and its
//! memory. Prints one line per change and a summary.
//!
//!   cargo build --release --bins && target/release/sy-sbscale --ports 100000 --chassis 1000

use std::time::{Duration, Instant};
use switchyard_southbound::pb::{
    self, nb_op::Op, northbound_client::NorthboundClient, sb_update::Update,
    southbound_client::SouthboundClient,
};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// northd's CPU seconds so far (utime + stime) and resident MiB.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ
    let cpu = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    (cpu / ticks, rss / 1024.0)
}

fn port(sw: usize, i: usize) -> pb::LogicalSwitchPort {
    let n = sw * 100_000 + i;
    let mac = format!(
        "0a:00:{:02x}:{:02x}:{:02x}:{:02x}",
        (n >> 24) & 0xff,
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    );
    let ip = format!("10.{}.{}.{}", 128 + (sw >> 8), sw & 0xff, 2 + i);
    pb::LogicalSwitchPort {
        name: format!("n{sw}-p{i}"),
        switch_name: format!("n{sw}"),
        addresses: vec![format!("{mac} {ip}")],
        port_security: vec![format!("{mac} {ip}")],
        enabled: true,
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let (ports, chassis, changes) = (
        arg("--ports", 100_000),
        arg("--chassis", 1000),
        arg("--changes", 10),
    );
    let per = arg("--ports-per-switch", 100).clamp(1, 250);
    let base = arg("--port-base", 17950) as u16;
    let dir = std::env::temp_dir().join(format!("sy-sbscale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bin = std::env::current_exe()?.with_file_name("switchyard-northd");
    let mut northd = std::process::Command::new(&bin)
        .args(["--db", &dir.join("db").display().to_string()])
        .args(["--nb-listen", &format!("127.0.0.1:{base}")])
        .args(["--sb-listen", &format!("127.0.0.1:{}", base + 1)])
        // RUST_LOG=info shows northd's per-transaction time breakdown.
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(std::process::Stdio::null())
        .spawn()?;
    let pid = northd.id();
    let result = run(pid, base, ports, per, chassis, changes).await;
    let _ = northd.kill();
    let _ = northd.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(
    pid: u32,
    base: u16,
    ports: usize,
    per: usize,
    chassis: usize,
    changes: usize,
) -> anyhow::Result<()> {
    let nb_url = format!("http://127.0.0.1:{base}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let ch = loop {
        match tonic::transport::Endpoint::from_shared(nb_url.clone())?
            .connect()
            .await
        {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut nb = NorthboundClient::new(ch)
        .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE)
        .max_encoding_message_size(switchyard_southbound::MAX_MESSAGE);
    let tx = |ops: Vec<Op>| switchyard_southbound::transaction(ops, false, false);
    // Load in batches of 100 switches (one transaction each).
    let switches = ports.div_ceil(per);
    let t = Instant::now();
    for first in (0..switches).step_by(100) {
        let mut ops = Vec::new();
        for sw in first..(first + 100).min(switches) {
            ops.push(Op::LsAdd(pb::LogicalSwitch {
                name: format!("n{sw}"),
                ..Default::default()
            }));
            for i in 0..per.min(ports - sw * per) {
                ops.push(Op::LspAdd(port(sw, i)));
            }
        }
        nb.transact(tx(ops)).await?;
    }
    let (cpu0, rss0) = usage(pid);
    println!(
        "loaded {ports} ports on {switches} switches in {:.1} s; northd {rss0:.0} MiB, {cpu0:.1} CPU s",
        t.elapsed().as_secs_f64()
    );

    // The chassis: register, watch, report every update's NB version.
    let sb_url = format!("http://127.0.0.1:{}", base + 1);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u64, Instant)>();
    let t = Instant::now();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut ready = Vec::new();
    for c in 0..chassis {
        let (sb_url, seen, gate) = (sb_url.clone(), seen_tx.clone(), gate.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(ready_rx);
        tokio::spawn(async move {
            // Held until this chassis has its snapshot: 32 snapshots at a time.
            let mut permit = Some(gate.acquire_owned().await.expect("gate"));
            let ch = tonic::transport::Endpoint::from_shared(sb_url)
                .expect("url")
                .connect()
                .await
                .expect("SB");
            let mut sb = SouthboundClient::new(ch)
                .max_decoding_message_size(switchyard_southbound::MAX_MESSAGE);
            let name = format!("sim{c}");
            sb.register_chassis(pb::RegisterChassisRequest {
                chassis: Some(pb::Chassis {
                    name: name.clone(),
                    hostname: name.clone(),
                    encaps: vec![pb::Encap {
                        r#type: "geneve".into(),
                        ip: format!("10.255.{}.{}", c / 250, 1 + c % 250),
                    }],
                }),
            })
            .await
            .expect("register");
            let mut stream = sb
                .watch(pb::WatchSbRequest {
                    chassis: name,
                    from_version: 0,
                    epoch: String::new(),
                })
                .await
                .expect("watch")
                .into_inner();
            let mut ready_tx = Some(ready_tx);
            while let Ok(Some(u)) = stream.message().await {
                let v = match u.update {
                    Some(Update::Snapshot(s)) => s.nb_version,
                    Some(Update::Delta(d)) => d.nb_version,
                    None => continue,
                };
                if let Some(r) = ready_tx.take() {
                    let _ = r.send(());
                    permit.take();
                }
                let _ = seen.send((c, v, Instant::now()));
            }
        });
    }
    for r in ready {
        let _ = r.await;
    }
    let (cpu1, rss1) = usage(pid);
    println!(
        "{chassis} chassis watching (each got its snapshot) in {:.1} s; northd {rss1:.0} MiB, {:.1} CPU s for it",
        t.elapsed().as_secs_f64(),
        cpu1 - cpu0
    );
    while seen_rx.try_recv().is_ok() {}

    // The changes.
    let mut lat = Vec::new();
    let mut cpus = Vec::new();
    for k in 0..changes {
        let (cpu_a, _) = usage(pid);
        let t0 = Instant::now();
        let v = nb
            .transact(tx(vec![Op::LspAdd(port(0, per + k))]))
            .await?
            .into_inner()
            .version;
        let acked = t0.elapsed();
        let mut reached = std::collections::HashSet::new();
        let mut last = t0;
        while reached.len() < chassis {
            let (c, seen_v, at) = tokio::time::timeout(Duration::from_secs(120), seen_rx.recv())
                .await?
                .expect("chassis streams");
            if seen_v >= v && reached.insert(c) {
                last = at;
            }
        }
        let all = last.duration_since(t0);
        let (cpu_b, rss) = usage(pid);
        println!(
            "lsp-add {k}: acked {:.1} ms, on every chassis {:.1} ms, northd {:.0} ms CPU, {rss:.0} MiB",
            acked.as_secs_f64() * 1e3,
            all.as_secs_f64() * 1e3,
            (cpu_b - cpu_a) * 1e3
        );
        lat.push(all.as_secs_f64() * 1e3);
        cpus.push((cpu_b - cpu_a) * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    if !lat.is_empty() {
        println!(
            "summary: {ports} ports, {chassis} chassis: lsp-add to every chassis median {:.1} ms (min {:.1}, max {:.1}); northd CPU per change median {:.0} ms",
            lat[lat.len() / 2],
            lat[0],
            lat[lat.len() - 1],
            cpus[cpus.len() / 2]
        );
    }
    Ok(())
}
