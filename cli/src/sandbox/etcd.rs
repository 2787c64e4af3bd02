//! `syctl sandbox up --etcd N`: the NB on an etcd cluster of N members, each
//! a process of Debian's etcd on loopback with a data directory in the
//! sandbox's, started before northd and stopped after it.

use super::{stop_daemon, Daemon, Opts};
use anyhow::Context;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Client port of member `i` (peer: one above): `2 × port base − 4000 + 2i`,
/// so sandboxes whose port bases are 4 apart (the tests') never share one.
pub fn client_port(o: &Opts, i: usize) -> u16 {
    (2 * u32::from(o.port_base) - 4000 + 2 * i as u32) as u16
}

/// The members' client URLs.
pub fn endpoints(o: &Opts) -> Vec<String> {
    (0..o.etcd)
        .map(|i| format!("http://127.0.0.1:{}", client_port(o, i)))
        .collect()
}

/// Starts the members and waits until all answer as healthy.
pub fn start(o: &Opts) -> anyhow::Result<Vec<Daemon>> {
    if !(1..=5).contains(&o.etcd) {
        anyhow::bail!(
            "--etcd {}: 1 to 5 members (3 tolerates one failure)",
            o.etcd
        );
    }
    let peer = |i: usize| format!("http://127.0.0.1:{}", client_port(o, i) + 1);
    let cluster: Vec<String> = (0..o.etcd).map(|i| format!("m{i}={}", peer(i))).collect();
    let eps = endpoints(o);
    let mut members = Vec::new();
    for (i, client) in eps.iter().enumerate() {
        let args: Vec<String> = [
            "--name",
            &format!("m{i}"),
            "--data-dir",
            &o.dir.join(format!("etcd-m{i}")).display().to_string(),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            &peer(i),
            "--initial-advertise-peer-urls",
            &peer(i),
            "--initial-cluster",
            &cluster.join(","),
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            &format!("switchyard-sandbox-{}", o.prefix),
            // One NB transaction is one etcd transaction: room for bulk changes.
            "--max-txn-ops",
            "100000",
            "--max-request-bytes",
            "67108864",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let log = o.dir.join(format!("etcd-m{i}.log"));
        let f = std::fs::File::create(&log)?;
        let child = Command::new("etcd")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .context("cannot start etcd (scripts/setup installs etcd-server)")?;
        members.push(Daemon {
            pid: child.id(),
            log,
            args,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(&eps) {
        if Instant::now() > deadline {
            stop(&members);
            anyhow::bail!(
                "the etcd cluster did not become healthy; see {}",
                o.dir.join("etcd-m0.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(members)
}

/// Whether every endpoint answers as healthy.
pub fn healthy(eps: &[String]) -> bool {
    Command::new("etcdctl")
        .args([
            "--endpoints",
            &eps.join(","),
            "--command-timeout=1s",
            "endpoint",
            "health",
        ])
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .output()
        .map(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            text.matches("is healthy").count() == eps.len()
        })
        .unwrap_or(false)
}

/// Stops every member.
pub fn stop(members: &[Daemon]) {
    for d in members {
        stop_daemon(d, "etcd");
    }
}

/// `--northd N` with `--etcd`: the NB and SB addresses of standby northd `j`
/// (0-based among the extra ones), after the etcd members' ports.
pub fn standby_ports(o: &Opts, j: usize) -> (u16, u16) {
    let nb = client_port(o, o.etcd) + 2 * j as u16;
    (nb, nb + 1)
}

/// The `--nb-listen` address a northd was started with.
pub fn nb_listen(d: &Daemon) -> Option<&str> {
    let i = d.args.iter().position(|a| a == "--nb-listen")?;
    d.args.get(i + 1).map(String::as_str)
}

/// Whether a northd is the active one: only the active binds its ports.
pub fn role(d: &Daemon) -> &'static str {
    if !super::pid_alive(d.pid, "switchyard-northd") {
        return "dead";
    }
    match nb_listen(d).map(std::net::TcpStream::connect) {
        Some(Ok(_)) => "active",
        _ => "standby",
    }
}

/// Starts `--northd N`'s standbys on the same store, with ports of their own,
/// and gives clients every northd's address (`st.nb`, `st.sb` become lists).
pub fn start_standbys(o: &Opts, st: &mut super::State, store: &[String]) -> anyhow::Result<()> {
    // Standbys: the same store, ports of their own; clients get every address.
    let scheme = super::scheme(st.tls);
    let sb_host = st
        .sb
        .rsplit_once("://")
        .map_or(st.sb.as_str(), |(_, h)| h)
        .rsplit_once(':')
        .map(|(h, _)| h.to_string());
    let (mut nbs, mut sbs) = (vec![st.nb.clone()], vec![st.sb.clone()]);
    for j in 0..o.northds.saturating_sub(1) {
        let (nbp, sbp) = standby_ports(o, j);
        let host = sb_host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let mut args = store.to_vec();
        args.extend([
            "--nb-listen".into(),
            format!("127.0.0.1:{nbp}"),
            "--sb-listen".into(),
            format!("{host}:{sbp}"),
        ]);
        st.standbys.push(super::spawn(
            "switchyard-northd",
            &args,
            &o.dir.join(format!("northd-{}.log", j + 2)),
        )?);
        nbs.push(format!("{scheme}://127.0.0.1:{nbp}"));
        sbs.push(format!("{scheme}://{host}:{sbp}"));
    }
    st.nb = nbs.join(",");
    st.sb = sbs.join(",");
    st.save()?;
    Ok(())
}

/// northd's store flags: the etcd cluster it starts first (`--etcd N`), or
/// the file database in the sandbox's directory.
pub fn store_args(o: &Opts, st: &mut super::State) -> anyhow::Result<Vec<String>> {
    if o.etcd == 0 {
        return Ok(vec![
            "--db".into(),
            o.dir.join("northd-db").display().to_string(),
        ]);
    }
    st.etcd = start(o)?;
    st.etcd_endpoints = endpoints(o);
    st.save()?;
    Ok(vec!["--nb-etcd".into(), st.etcd_endpoints.join(",")])
}
