//! `syctl sandbox status`: what the sandbox made and whether its daemons live.

use super::{pid_alive, Daemon, Opts, State};
use anyhow::bail;

/// `status`: the recorded state plus whether each daemon is alive.
pub fn status(o: &Opts, json: bool) -> anyhow::Result<()> {
    let Some(st) = State::load(&o.dir) else {
        bail!("no sandbox at {} (syctl sandbox up)", o.dir.display());
    };
    let alive = |d: &Option<Daemon>, n: &str| d.as_ref().is_some_and(|d| pid_alive(d.pid, n));
    if json {
        let mut v = serde_json::to_value(&st)?;
        v["northd_alive"] = alive(&st.northd, "switchyard-northd").into();
        v["vswitchd_alive"] = alive(&st.vswitchd, "switchyard-vswitchd").into();
        v["northds"] = st
            .northd
            .iter()
            .chain(&st.standbys)
            .map(|d| {
                serde_json::json!({
                    "pid": d.pid,
                    "nb": super::etcd::nb_listen(d),
                    "role": super::etcd::role(d),
                })
            })
            .collect::<Vec<_>>()
            .into();
        v["etcd_alive"] = st
            .etcd
            .iter()
            .map(|d| pid_alive(d.pid, "etcd"))
            .collect::<Vec<_>>()
            .into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (name, d) in [
        ("switchyard-northd", &st.northd),
        ("switchyard-vswitchd", &st.vswitchd),
    ] {
        match d {
            Some(d) => println!(
                "{name}: pid {} {} log {}",
                d.pid,
                if pid_alive(d.pid, name) {
                    "running"
                } else {
                    "DEAD"
                },
                d.log.display()
            ),
            None => println!("{name}: not started"),
        }
    }
    for n in st.nodes.iter().skip(1) {
        if let Some(d) = &n.vswitchd {
            println!(
                "switchyard-vswitchd ({}, netns {}): pid {} {} log {} control socket {}",
                n.name,
                n.netns.as_deref().unwrap_or("-"),
                d.pid,
                if pid_alive(d.pid, "switchyard-vswitchd") {
                    "running"
                } else {
                    "DEAD"
                },
                d.log.display(),
                n.control_sock.display()
            );
        }
    }
    for d in &st.standbys {
        println!(
            "switchyard-northd: pid {} {} NB {}",
            d.pid,
            super::etcd::role(d),
            super::etcd::nb_listen(d).unwrap_or("?")
        );
    }
    for (d, url) in st.etcd.iter().zip(&st.etcd_endpoints) {
        let state = if pid_alive(d.pid, "etcd") {
            "running"
        } else {
            "DEAD"
        };
        println!("etcd {url}: pid {} {state} log {}", d.pid, d.log.display());
    }
    println!(
        "NB {}  SB {}  control socket {}",
        st.nb,
        st.sb,
        st.control_sock.display()
    );
    let rows: Vec<Vec<String>> = st
        .pods
        .iter()
        .chain(&st.external)
        .map(|p| {
            vec![
                p.name.clone(),
                p.netns.clone(),
                p.host_iface.clone(),
                p.mac.clone(),
                [p.ip.as_str(), p.ip6.as_str()].join(" ").trim().to_string(),
                p.lport.clone(),
                p.chassis.clone(),
            ]
        })
        .collect();
    crate::table::print(
        &[
            "POD",
            "NETNS",
            "HOST IFACE",
            "MAC",
            "IP",
            "LPORT",
            "CHASSIS",
        ],
        &rows,
    );
    Ok(())
}
