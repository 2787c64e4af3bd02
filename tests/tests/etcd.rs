//! The NB on a real etcd cluster: the store suite on both backends, and
//! northd writing through kill -9 of itself and of one etcd member with no
//! acknowledged write lost.

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchyard_northd::model::Nb;
use switchyard_northd::store::etcd::EtcdStore;
use switchyard_northd::store::{FileStore, NbStore, StoreError};
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_tests::etcd::{missing, EtcdCluster};
use switchyard_tests::sandbox::{bin_dir, run, runs_unless, wait_until, Sandbox};

fn switch(name: &str) -> Op {
    Op::LsAdd(pb::LogicalSwitch {
        name: name.into(),
        ..Default::default()
    })
}

/// Commits transactions 1..=n of a growing NB (every table gets rows, some
/// deleted again) to `st`; returns the NB after them.
fn write_history(st: &mut dyn NbStore, n: u64) -> Nb {
    let mut nb = Nb::default();
    for i in 1..=n {
        let mut next = nb.clone();
        let name = format!("ls{i}");
        let mut ops = vec![
            switch(&name),
            Op::LspAdd(pb::LogicalSwitchPort {
                name: format!("p{i}"),
                switch_name: name.clone(),
                addresses: vec![format!("0a:00:00:00:00:{i:02x} 10.0.0.{i}")],
                enabled: true,
                ..Default::default()
            }),
            Op::AclAdd(pb::Acl {
                switch_name: name.clone(),
                direction: "to-lport".into(),
                priority: 100,
                r#match: "tcp.dst == {22, 23}".into(),
                action: "drop".into(),
                name: String::new(),
            }),
            Op::LbAdd(pb::LoadBalancer {
                name: format!("lb{i}"),
                protocol: "tcp".into(),
                vips: [(format!("10.96.0.{i}:80"), format!("10.0.0.{i}:8080"))].into(),
                ..Default::default()
            }),
        ];
        if i % 3 == 0 {
            // A deletion of a whole switch (its port and ACL go with it).
            ops.push(Op::LsDel(format!("ls{}", i - 1)));
        }
        next.apply_all(ops).expect("valid ops");
        st.commit(&nb.diff(&next, i), &next).expect("commit");
        nb = next;
    }
    nb
}

/// What every backend must do: read back exactly what was acknowledged,
/// across reopening, and keep working after it.
fn suite(mut open: impl FnMut() -> Box<dyn NbStore>) {
    let mut st = open();
    assert_eq!(st.load().unwrap().version, 0, "a new store is empty");
    let nb = write_history(&mut *st, 7);
    drop(st);
    let mut st = open();
    let loaded = st.load().unwrap();
    assert_eq!(loaded.version, 7);
    assert_eq!(loaded.nb, nb);
    let mut next = nb.clone();
    next.apply_all(vec![switch("after-reopen")]).unwrap();
    st.commit(&nb.diff(&next, 8), &next).unwrap();
    drop(st);
    let loaded = open().load().unwrap();
    assert_eq!((loaded.version, loaded.nb), (8, next));
}

#[test]
fn the_store_suite_holds_on_the_file_store_and_on_etcd() {
    let dir = tempfile::tempdir().unwrap();
    suite(|| Box::new(FileStore::open(dir.path()).unwrap()));
    if !runs_unless(
        "the_store_suite_holds_on_the_file_store_and_on_etcd",
        missing(),
    ) {
        return;
    }
    let etcd = EtcdCluster::start(1, 17300);
    suite(|| Box::new(EtcdStore::connect(&etcd.endpoints, "/suite").unwrap()));
    // Another prefix is another database.
    let mut other = EtcdStore::connect(&etcd.endpoints, "/other").unwrap();
    assert_eq!(other.load().unwrap().version, 0);
}

#[test]
fn two_writers_on_one_etcd_never_interleave() {
    if !runs_unless("two_writers_on_one_etcd_never_interleave", missing()) {
        return;
    }
    let etcd = EtcdCluster::start(1, 17310);
    let mut a = EtcdStore::connect(&etcd.endpoints, "/nb").unwrap();
    let mut b = EtcdStore::connect(&etcd.endpoints, "/nb").unwrap();
    let base = a.load().unwrap().nb;
    b.load().unwrap();
    let mut one = base.clone();
    one.apply_all(vec![switch("from-a")]).unwrap();
    a.commit(&base.diff(&one, 1), &one).unwrap();
    // b read version 0: its version 1 would overwrite a's; it is refused.
    let mut two = base.clone();
    two.apply_all(vec![switch("from-b")]).unwrap();
    let e = b.commit(&base.diff(&two, 1), &two).unwrap_err();
    assert!(matches!(e, StoreError::Conflict(ref v) if v == "1"), "{e}");
    // Reloaded, b writes on top of a.
    let seen = b.load().unwrap();
    assert_eq!(seen.nb, one);
    let mut three = one.clone();
    three.apply_all(vec![switch("from-b")]).unwrap();
    b.commit(&one.diff(&three, 2), &three).unwrap();
    let fresh = EtcdStore::connect(&etcd.endpoints, "/nb")
        .unwrap()
        .load()
        .unwrap();
    assert_eq!((fresh.version, fresh.nb), (2, three));
}

struct Northd {
    child: Child,
    args: Vec<String>,
}

impl Northd {
    fn start(etcd: &[String], port: u16) -> Northd {
        let args = vec![
            "--nb-etcd".to_string(),
            etcd.join(","),
            "--nb-listen".into(),
            format!("127.0.0.1:{port}"),
            "--sb-listen".into(),
            format!("127.0.0.1:{}", port + 1),
        ];
        let child = spawn(&args);
        Northd { child, args }
    }

    fn kill9_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.args);
    }

    /// What systemd's Restart=on-failure does: a northd that fenced itself
    /// (its lease expired while etcd elected a leader) is started again.
    /// Returns whether it had to.
    fn supervise(&mut self) -> bool {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            self.child = spawn(&self.args);
            return true;
        }
        false
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new(bin_dir().join("switchyard-northd"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchyard-northd (cargo build --release --bins first)")
}

impl Drop for Northd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn syctl(port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin_dir().join("syctl"))
        .args(args)
        .env("SYCTL_NB", format!("http://127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .expect("syctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The switches northd at `port` serves, after checking every acknowledged
/// one is among them.
fn kept(port: u16, acked: &[String]) -> Vec<String> {
    let (ok, out) = syctl(port, &["ls-list", "--json"]);
    assert!(ok, "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).expect("json");
    let names: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect();
    for sw in acked {
        assert!(
            names.contains(sw),
            "{sw} was acknowledged and is gone: {names:?}"
        );
    }
    names
}

#[test]
fn northd_on_three_etcd_members_loses_no_acknowledged_write_through_kill_9() {
    let name = "northd_on_three_etcd_members_loses_no_acknowledged_write_through_kill_9";
    let not_built = (!bin_dir().join("syctl").exists()).then_some("syctl is not built");
    if !runs_unless(name, missing().or(not_built)) {
        return;
    }
    let mut etcd = EtcdCluster::start(3, 17320);
    let port = 17340;
    let mut northd = Northd::start(&etcd.endpoints, port);
    let up = || wait_until(Duration::from_secs(15), || syctl(port, &["ls-list"]).0);
    assert!(up(), "northd on etcd never answered");
    // A writer that never stops while northd and an etcd member are killed
    // under it: what it was told is committed must all be there afterwards.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut tried, mut refused) = (0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                let sw = format!("sw{tried}");
                tried += 1;
                match syctl(port, &["ls-add", &sw]) {
                    (true, _) => acked.lock().unwrap().push(sw),
                    // Refused (northd down, no quorum) is allowed; lost is not.
                    (false, _) => refused += 1,
                }
            }
            (tried, refused)
        })
    };
    let acks = || acked.lock().unwrap().len();
    let mut fenced = 0;
    let mut reach = |northd: &mut Northd, n: usize| {
        assert!(
            wait_until(Duration::from_secs(30), || {
                fenced += usize::from(northd.supervise());
                acks() >= n
            }),
            "writes stalled at {} (wanted {n})",
            acks()
        )
    };
    reach(&mut northd, 15);
    northd.kill9_and_restart();
    reach(&mut northd, 30);
    etcd.kill(0);
    reach(&mut northd, 45);
    etcd.restart(0);
    reach(&mut northd, 60);
    eprintln!("northd fenced itself {fenced} time(s) and was restarted");
    stop.store(true, Ordering::Relaxed);
    let (tried, refused) = writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{tried} writes tried, {} acknowledged, {refused} refused",
        acked.len()
    );
    assert!(
        wait_until(Duration::from_secs(20), || etcd.healthy(3)),
        "member 0 did not rejoin"
    );
    // Everything acknowledged is there, after one more kill -9 of northd.
    northd.kill9_and_restart();
    assert!(up());
    let names = kept(port, &acked);
    // Nothing appears that nobody wrote (a write cut off mid-way may land).
    assert!(names.len() <= tried as usize, "{names:?}");
}

#[test]
fn the_sandbox_runs_on_three_etcd_members_through_losing_northd_and_one_member() {
    use switchyard_tests::sandbox::can_run;
    let name = "the_sandbox_runs_on_three_etcd_members_through_losing_northd_and_one_member";
    if !can_run(name) || !runs_unless(name, missing()) {
        return;
    }
    let mut sb = Sandbox::up_with(57, 2, &["--etcd", "3"]);
    let eps: Vec<String> = sb.state["etcd_endpoints"]
        .as_array()
        .expect("etcd endpoints in state.json")
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(eps.len(), 3);
    assert!(sb.ping(0, &sb.ip(1)), "pods talk with the NB on etcd");
    // The NB is in etcd, not in a file: what etcd holds is what northd serves.
    let mut store = EtcdStore::connect(&eps, "/switchyard/nb").unwrap();
    let in_etcd = store.load().unwrap();
    let listed = sb.syctl_json(&["ls-list"]);
    assert_eq!(listed.as_array().unwrap().len(), in_etcd.nb.switches.len());
    assert!(in_etcd.nb.ports.len() >= 2, "{:?}", in_etcd.nb.ports.keys());
    // kill -9 one member and northd: the next write still lands and reaches
    // the datapath, and the pods keep talking.
    let pid = sb.state["etcd"][1]["pid"].as_u64().unwrap().to_string();
    assert!(run("kill", &["-9", &pid]).0);
    sb.kill_and_restart("northd");
    // The restarted northd binds once it holds the lock, which with a member
    // gone can take an etcd client failover: the write waits for it.
    let out = sb.syctl(&[
        "--connect-timeout",
        "20",
        "--wait=hv",
        "--timeout",
        "20",
        "ls-add",
        "after-failures",
    ]);
    assert!(out.contains("running on"), "{out}");
    assert!(sb.ping(0, &sb.ip(1)));
    let again = EtcdStore::connect(&eps, "/switchyard/nb")
        .unwrap()
        .load()
        .unwrap();
    assert!(again.nb.switches.contains_key("after-failures"));
    assert_eq!(again.nb.ports, in_etcd.nb.ports);
}

#[test]
fn two_northds_one_active_the_standby_takes_over_from_kill_9_with_every_write_kept() {
    let name = "two_northds_one_active_the_standby_takes_over_from_kill_9_with_every_write_kept";
    let not_built = (!bin_dir().join("syctl").exists()).then_some("syctl is not built");
    if !runs_unless(name, missing().or(not_built)) {
        return;
    }
    let etcd = EtcdCluster::start(3, 17350);
    let (pa, pb) = (17370, 17374);
    let mut a = Northd::start(&etcd.endpoints, pa);
    let answers = |p: u16| syctl(p, &["ls-list"]).0;
    assert!(
        wait_until(Duration::from_secs(15), || answers(pa)),
        "a never became active"
    );
    let b = Northd::start(&etcd.endpoints, pb);
    // b is a standby: it serves nothing while a lives.
    assert!(
        !wait_until(Duration::from_secs(1), || answers(pb)),
        "two active northds"
    );
    let both = format!("http://127.0.0.1:{pa},http://127.0.0.1:{pb}");
    let write = |sw: &str| {
        let out = Command::new(bin_dir().join("syctl"))
            .args(["--nb", &both, "ls-add", sw])
            .stdin(Stdio::null())
            .output()
            .expect("syctl");
        out.status.success()
    };
    let mut acked = Vec::new();
    for i in 0..10 {
        let sw = format!("before{i}");
        assert!(write(&sw), "write {sw} through the active northd");
        acked.push(sw);
    }
    // kill -9 the active one; time until the next write is acknowledged.
    let _ = a.child.kill();
    let _ = a.child.wait();
    let killed = std::time::Instant::now();
    let mut n = 0;
    assert!(
        wait_until(Duration::from_secs(15), || {
            n += 1;
            let sw = format!("after{n}");
            let ok = write(&sw);
            if ok {
                acked.push(sw);
            }
            ok
        }),
        "the standby never took over"
    );
    let failover = killed.elapsed();
    eprintln!(
        "failover: kill -9 of the active northd to the next acknowledged write: {failover:?}"
    );
    assert!(answers(pb), "b is active now");
    // a comes back as a standby of b.
    a.kill9_and_restart();
    assert!(
        !wait_until(Duration::from_secs(1), || answers(pa)),
        "a and b both active"
    );
    kept(pb, &acked);
    drop(b);
}

#[test]
fn chassis_follow_the_standby_northd_when_the_active_dies_and_keep_forwarding() {
    use switchyard_tests::sandbox::can_run;
    let name = "chassis_follow_the_standby_northd_when_the_active_dies_and_keep_forwarding";
    if !can_run(name) || !runs_unless(name, missing()) {
        return;
    }
    let sb = Sandbox::up_with(
        58,
        2,
        &[
            "--chassis",
            "2",
            "--pods-per-chassis",
            "1",
            "--etcd",
            "3",
            "--northd",
            "2",
            // The whole clustered control plane: replicated, failing over,
            // authenticated.
            "--tls",
        ],
    );
    let status = sb.syctl_json(&[
        "sandbox",
        "status",
        "--dir",
        "/run/switchyard-test-58",
        "--prefix",
        "t58",
    ]);
    let roles: Vec<&str> = status["northds"]
        .as_array()
        .expect("northds in status")
        .iter()
        .filter_map(|n| n["role"].as_str())
        .collect();
    assert_eq!(roles, ["active", "standby"], "{status}");
    assert!(sb.ping(0, &sb.ip(1)), "the overlay works");
    // A ping stream across chassis while the active northd is killed: the
    // datapaths keep their tables, so it loses nothing to the failover.
    let ns = sb.netns(0);
    let ip = sb.ip(1);
    let pinger = std::thread::spawn(move || {
        run(
            "ip",
            &[
                "netns", "exec", &ns, "ping", "-c", "30", "-i", "0.1", "-W", "1", &ip,
            ],
        )
        .1
    });
    std::thread::sleep(Duration::from_millis(500)); // (traffic before the kill, not a sync)
    let pid = sb.state["northd"]["pid"].as_u64().unwrap().to_string();
    assert!(run("kill", &["-9", &pid]).0);
    let killed = std::time::Instant::now();
    // The next change reaches every chassis through the standby (refused
    // until it has taken over: nothing listens meanwhile).
    let mut out = String::new();
    let args = [
        "--wait=hv",
        "--timeout",
        "20",
        "--may-exist",
        "ls-add",
        "after-failover",
    ];
    assert!(
        wait_until(Duration::from_secs(20), || {
            let (ok, o, _) = sb.syctl_at(
                &std::path::PathBuf::from(sb.state["control_sock"].as_str().unwrap()),
                &args,
            );
            out = o;
            ok
        }),
        "no northd took over"
    );
    let took = killed.elapsed();
    eprintln!(
        "failover: kill -9 of the active northd to a change applied on every chassis: {took:?}"
    );
    assert!(out.contains("running on 2 chassis"), "{out}");
    let pings = pinger.join().unwrap();
    let received: u32 = pings
        .split(", ")
        .find_map(|p| p.strip_suffix(" received"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        received >= 29,
        "forwarding stopped during the failover: {pings}"
    );
    assert!(sb.ping(0, &sb.ip(1)));
}
