//! `syctl --wait=sb|hv` against a real two-chassis sandbox: a write returns
//! only once every chassis runs it in its datapath (the next packet already
//! sees it, with no polling), and a chassis that cannot keep up is named; a
//! chassis whose SB connection breaks resumes from its version.

use switchyard_tests::sandbox::{can_run, run, Sandbox};

/// Resumes a stopped process when dropped, so a failing test does not leave a
/// vswitchd the sandbox cannot stop.
struct Resume(String);

impl Drop for Resume {
    fn drop(&mut self) {
        run("kill", &["-CONT", &self.0]);
    }
}

#[test]
fn wait_hv_returns_once_every_chassis_forwards_with_the_change_and_names_a_lagging_one() {
    if !can_run(
        "wait_hv_returns_once_every_chassis_forwards_with_the_change_and_names_a_lagging_one",
    ) {
        return;
    }
    let sb = Sandbox::up_with(56, 2, &["--chassis", "2", "--pods-per-chassis", "1"]);
    let node = |k: usize, f: &str| sb.state["nodes"][k][f].clone();
    let chassis2 = node(1, "name").as_str().unwrap().to_string();
    let (here, there) = if sb.pod(0)["chassis"] == chassis2.as_str() {
        (1, 0)
    } else {
        (0, 1)
    };
    let ip = sb.ip(there);
    assert!(sb.ping(here, &ip), "the overlay works");
    let lport = sb.pod(there)["lport"].as_str().unwrap().to_string();
    let switch = sb.pod(there)["switch"].as_str().unwrap().to_string();
    let addr = format!("{} {}", sb.pod(there)["mac"].as_str().unwrap(), ip);

    // Each write is in both datapaths when syctl returns: the very next ping
    // (one packet, no retry) sees it.
    sb.syctl(&["--wait=hv", "lsp-set-enabled", &lport, "disabled"]);
    assert!(!sb.ping(here, &ip), "a disabled port still forwards");
    sb.syctl(&["--wait=hv", "lsp-set-enabled", &lport, "enabled"]);
    assert!(sb.ping(here, &ip), "the enabled port does not forward yet");
    // A port deleted and added again: its chassis binds and claims it while
    // applying the change, and the other chassis must have seen the claim.
    sb.syctl(&["--wait=hv", "lsp-del", &lport]);
    assert!(!sb.ping(here, &ip), "a deleted port still forwards");
    let out = sb.syctl(&[
        "--wait=hv",
        "lsp-add",
        &switch,
        &lport,
        &addr,
        "--",
        "lsp-set-port-security",
        &lport,
        &addr,
    ]);
    assert!(out.contains("running on 2 chassis"), "{out}");
    assert!(sb.ping(here, &ip), "the new port does not forward yet");

    // Chassis 2 stopped: --wait=sb still returns, --wait=hv times out naming
    // it (and only it).
    let pid = node(1, "vswitchd")["pid"].as_u64().unwrap().to_string();
    assert!(run("kill", &["-STOP", &pid]).0);
    let resume = Resume(pid);
    let out = sb.syctl(&["--wait=sb", "ls-add", "compiled"]);
    assert!(out.contains("in SB version"), "{out}");
    let err = sb.syctl_err(&["--wait=hv", "--timeout", "1", "ls-add", "lagging"]);
    let chassis1 = node(0, "name").as_str().unwrap().to_string();
    assert!(
        err.contains(&format!("{chassis2} runs NB version")) && !err.contains(&chassis1),
        "{err}"
    );
    // The write itself committed (syctl said so and named the version).
    assert!(err.contains("committed"), "{err}");
    drop(resume);
    // Resumed, it catches up; `show` then lists both at the latest version.
    let out = sb.syctl(&["--wait=hv", "--timeout", "20", "ls-add", "caught-up"]);
    let v: u64 = out
        .trim()
        .strip_prefix("ok (NB version ")
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no version in {out:?}"));
    let show = sb.syctl_json(&["show"]);
    for k in 0..2 {
        let name = node(k, "name").as_str().unwrap().to_string();
        assert_eq!(
            show["chassis_nb_version"][&name].as_u64(),
            Some(v),
            "{show}"
        );
    }
}

#[test]
fn a_broken_sb_connection_resumes_with_deltas_not_a_new_snapshot() {
    if !can_run("a_broken_sb_connection_resumes_with_deltas_not_a_new_snapshot") {
        return;
    }
    let sb = Sandbox::up_with(75, 2, &[]);
    let status = || sb.syctl_json(&["vswitch", "status"]);
    let s0 = status();
    assert_eq!(
        (s0["sb_snapshots"].as_u64(), s0["sb_resumes"].as_u64()),
        (Some(1), Some(0)),
        "{s0}"
    );
    let ip = sb.ip(1);
    assert!(sb.ping(0, &ip));
    let lport = sb.pod(1)["lport"].as_str().unwrap().to_string();

    // Cut vswitchd's connections to the SB port (the kernel aborts them, as
    // a network failure would), then change the NB: the chassis reconnects to
    // the same northd, asks for the deltas since its version and applies the
    // change without a snapshot.
    let sb_port = (sb.port_base + 1).to_string();
    let (ok, _, err) = run("ss", &["-K", "dst", "127.0.0.1", "dport", "=", &sb_port]);
    assert!(ok, "ss -K (kernel socket destroy): {err}");
    assert!(
        switchyard_tests::sandbox::wait_until(std::time::Duration::from_secs(10), || {
            status()["sb_resumes"].as_u64() == Some(1)
        }),
        "vswitchd never resumed: {}",
        status()
    );
    sb.syctl(&["--wait=hv", "lsp-set-enabled", &lport, "disabled"]);
    assert!(!sb.ping(0, &ip), "the change reached the datapath");
    sb.syctl(&["--wait=hv", "lsp-set-enabled", &lport, "enabled"]);
    assert!(sb.ping(0, &ip));
    let s1 = status();
    assert_eq!(
        s1["sb_snapshots"].as_u64(),
        Some(1),
        "no second snapshot: {s1}"
    );
    assert!(
        s1["sb_version"].as_u64() > s0["sb_version"].as_u64(),
        "{s1}"
    );

    // A restarted northd is another version sequence: a snapshot, as before.
    sb.restart("northd", false);
    assert!(
        switchyard_tests::sandbox::wait_until(std::time::Duration::from_secs(10), || {
            status()["sb_snapshots"].as_u64() == Some(2)
        }),
        "a new northd's snapshot: {}",
        status()
    );
    assert!(sb.ping(0, &ip));
}
