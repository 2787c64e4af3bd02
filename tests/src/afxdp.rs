//! The AF_XDP runner of the traffic scenarios: the sandbox's real daemons and
//! pods, each case's frame sent from inside its pod by a raw socket, every frame
//! each endpoint receives captured inside the endpoint's namespace.
//!
//! No sleeps: a case is over when the datapath says so. The sender's port has
//! counted the frame, every PMD has finished the pass that processed it (its
//! iteration counter moved on), every Geneve packet a chassis sent has been
//! counted by the chassis it went to (which then finished its pass too), and
//! each endpoint's capture holds at least as many frames as vswitchd
//! transmitted to the endpoint's port since the case began.

use crate::frames::hex;
use crate::sandbox::{helper, run, start_helper, wait_until, Sandbox};
use crate::scenario::{syctl_args, Expect, Scenario, Tally, ROUNDS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Every frame an interface in a namespace receives, from start until drop.
struct Capture {
    child: Child,
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Capture {
    fn start(ns: &str, iface: &str) -> Capture {
        let (child, out) = start_helper(ns, &["capture", iface, "600"]);
        let frames = Arc::new(Mutex::new(Vec::new()));
        let sink = frames.clone();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if let Some(h) = l.strip_prefix("GOT ") {
                    let f = (0..h.len() / 2)
                        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
                        .collect();
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(f);
                }
            }
        });
        Capture { child, frames }
    }

    fn len(&self) -> usize {
        self.frames.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn since(&self, mark: usize) -> Vec<Vec<u8>> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner())[mark..].to_vec()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An endpoint as the sandbox made it.
struct Live {
    netns: String,
    host_iface: String,
    node: usize,
}

/// What one chassis' vswitchd counts, at one moment.
#[derive(Default)]
struct Counters {
    /// iface -> (rx, tx) packets.
    ports: BTreeMap<String, (u64, u64)>,
    /// remote chassis -> (tx, rx) packets.
    tunnels: BTreeMap<String, (u64, u64)>,
    iterations: u64,
    drops: BTreeMap<String, u64>,
}

impl Sandbox {
    /// Brings up the sandbox a scenario's topology needs (`id` as for
    /// [`Sandbox::up`]).
    pub fn for_scenario(id: u16, s: &Scenario) -> Sandbox {
        Sandbox::for_scenario_with(id, s, &[])
    }

    /// [`Self::for_scenario`] with more `syctl sandbox up` options.
    pub fn for_scenario_with(id: u16, s: &Scenario, extra: &[&str]) -> Sandbox {
        let args = s.topo.sandbox_args();
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend_from_slice(extra);
        Sandbox::up_with(id, s.topo.pods, &a)
    }

    /// Every chassis' control socket and name, chassis 1 first.
    fn nodes(&self) -> Vec<(String, PathBuf)> {
        let nodes = self.state["nodes"].as_array().cloned().unwrap_or_default();
        nodes
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or_default().to_string(),
                    PathBuf::from(n["control_sock"].as_str().unwrap_or_default()),
                )
            })
            .collect()
    }

    fn node_json(&self, node: &Path, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let (ok, out, err) = self.syctl_at(node, &a);
        assert!(ok, "syctl {args:?} on {}: {err}", node.display());
        serde_json::from_str(&out).expect("syctl --json parses")
    }

    fn counters(&self, node: &Path) -> Counters {
        let mut c = Counters::default();
        for p in self
            .node_json(node, &["vswitch", "port-list"])
            .as_array()
            .into_iter()
            .flatten()
        {
            c.ports.insert(
                p["iface"].as_str().unwrap_or_default().into(),
                (
                    p["rx_packets"].as_u64().unwrap_or(0),
                    p["tx_packets"].as_u64().unwrap_or(0),
                ),
            );
        }
        for t in self
            .node_json(node, &["vswitch", "tunnel-list"])
            .as_array()
            .into_iter()
            .flatten()
        {
            c.tunnels.insert(
                t["chassis"].as_str().unwrap_or_default().into(),
                (
                    t["tx_packets"].as_u64().unwrap_or(0),
                    t["rx_packets"].as_u64().unwrap_or(0),
                ),
            );
        }
        for p in self
            .node_json(node, &["vswitch", "pmd-stats"])
            .as_array()
            .into_iter()
            .flatten()
        {
            c.iterations += p["iterations"].as_u64().unwrap_or(0);
            for (r, n) in p["drops"].as_object().into_iter().flatten() {
                *c.drops.entry(r.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
        }
        c
    }

    /// Waits until the PMDs of `node` have begun a pass after the present one.
    fn fence(&self, node: &Path) -> bool {
        let now = self.counters(node).iterations;
        wait_until(WAIT, || self.counters(node).iterations > now)
    }

    /// Runs a scenario over AF_XDP in this sandbox (made by
    /// [`Sandbox::for_scenario`]); returns the mismatches.
    pub fn run_scenario(&self, s: &Scenario) -> Vec<String> {
        let nodes = self.nodes();
        let mut live = Vec::new();
        let mut failures = Vec::new();
        let mut pods: Vec<Value> = self.state["pods"].as_array().cloned().unwrap_or_default();
        if !self.state["external"].is_null() {
            pods.push(self.state["external"].clone());
        }
        // The memory runner builds this topology from the scenario's
        // description; the sandbox must have built the same one.
        for (e, p) in s.topo.endpoints().iter().zip(&pods) {
            let mac = switchyard_southbound::fmt_mac(e.mac);
            if p["lport"] != e.lport.as_str()
                || p["mac"] != mac.as_str()
                || p["ip"] != e.ip.to_string().as_str()
            {
                failures.push(format!(
                    "{}: the sandbox's {p} is not the scenario's {e:?}",
                    s.name
                ));
            }
            let chassis = p["chassis"].as_str().unwrap_or_default();
            live.push(Live {
                netns: p["netns"].as_str().unwrap_or_default().into(),
                host_iface: p["host_iface"].as_str().unwrap_or_default().into(),
                node: nodes.iter().position(|(n, _)| n == chassis).unwrap_or(0),
            });
        }
        if live.len() != s.topo.endpoints().len() || !failures.is_empty() {
            failures.push(format!(
                "{}: the sandbox has {} endpoints",
                s.name,
                live.len()
            ));
            return failures;
        }
        for op in &s.config {
            let args = syctl_args(op);
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            self.syctl(&a);
        }
        // Configuration applied: every chassis has the SB version northd serves.
        let sb = self.syctl_json(&["show"])["sb_version"]
            .as_u64()
            .unwrap_or(0);
        for (name, sock) in &nodes {
            let ok = wait_until(WAIT, || {
                self.node_json(sock, &["vswitch", "status"])["sb_version"]
                    .as_u64()
                    .unwrap_or(0)
                    >= sb
            });
            assert!(ok, "chassis {name} never applied SB version {sb}");
        }
        let caps: Vec<Capture> = live
            .iter()
            .map(|l| Capture::start(&l.netns, "eth0"))
            .collect();
        let mut tally = Tally::default();
        for case in &s.cases {
            for round in 0..ROUNDS {
                tally.record(s, case, round, self.run_case(case, &live, &caps, &nodes));
            }
        }
        failures.extend(tally.finish(s));
        failures
    }

    fn run_case(
        &self,
        case: &crate::scenario::Case,
        live: &[Live],
        caps: &[Capture],
        nodes: &[(String, PathBuf)],
    ) -> Result<Option<usize>, String> {
        let before: Vec<Counters> = nodes.iter().map(|(_, n)| self.counters(n)).collect();
        let marks: Vec<usize> = caps.iter().map(Capture::len).collect();
        let from = &live[case.from];
        let (ok, _, err) = run(
            "ip",
            &[
                "netns",
                "exec",
                &from.netns,
                "python3",
                &helper(),
                "send",
                "eth0",
                &hex(&case.frame),
            ],
        );
        assert!(ok, "sending from {}: {err}", from.netns);
        let rx = |c: &Counters| c.ports.get(&from.host_iface).map_or(0, |p| p.0);
        let sock = &nodes[from.node].1;
        if !wait_until(WAIT, || rx(&self.counters(sock)) > rx(&before[from.node])) {
            return Err(format!("{}: vswitchd never received the frame", case.name));
        }
        // Every chassis' passes done, and every tunnel packet counted where it went.
        let settled = wait_until(WAIT, || {
            if !nodes.iter().all(|(_, n)| self.fence(n)) {
                return false;
            }
            let now: Vec<Counters> = nodes.iter().map(|(_, n)| self.counters(n)).collect();
            nodes.iter().enumerate().all(|(a, (an, _))| {
                nodes.iter().enumerate().all(|(b, (bn, _))| {
                    let sent = now[a].tunnels.get(bn).map_or(0, |t| t.0)
                        - before[a].tunnels.get(bn).map_or(0, |t| t.0);
                    let got = now[b].tunnels.get(an).map_or(0, |t| t.1)
                        - before[b].tunnels.get(an).map_or(0, |t| t.1);
                    a == b || got >= sent
                })
            })
        });
        if !settled {
            return Err(format!("{}: the chassis never settled", case.name));
        }
        let after: Vec<Counters> = nodes.iter().map(|(_, n)| self.counters(n)).collect();
        for (e, l) in live.iter().enumerate() {
            let tx = |c: &Counters| c.ports.get(&l.host_iface).map_or(0, |p| p.1);
            let sent = (tx(&after[l.node]) - tx(&before[l.node])) as usize;
            if !wait_until(WAIT, || caps[e].len() >= marks[e] + sent) {
                return Err(format!(
                    "{}: vswitchd sent {sent} frames to endpoint {e}, its capture has {}",
                    case.name,
                    caps[e].len() - marks[e]
                ));
            }
        }
        let got: Vec<Vec<Vec<u8>>> = caps.iter().zip(&marks).map(|(c, m)| c.since(*m)).collect();
        let counted = match &case.expect {
            Expect::Dropped(r) => {
                let total = |c: &[Counters]| -> u64 {
                    c.iter()
                        .map(|x| x.drops.get(r.as_str()).copied().unwrap_or(0))
                        .sum()
                };
                total(&after) > total(&before)
            }
            _ => false,
        };
        case.judge(&got, counted)
    }
}
