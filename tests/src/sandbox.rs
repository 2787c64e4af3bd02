//! A test's own sandbox, driven through the real `syctl` binary: unique prefix,
//! directory and ports per test; removed on drop, also when the test fails.

use crate::frames::hex;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Integration tests share two cores and the kernel: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Where cargo put the binaries (the test executable sits in `target/<profile>/deps`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Whether this test can run here; prints why not. Under CI it must run.
pub fn can_run(test: &str) -> bool {
    let mut why = None;
    if !is_root() {
        why = Some("needs root (network namespaces, AF_XDP)");
    } else if !bin_dir().join("syctl").exists() {
        why = Some("syctl is not built (scripts/test builds it first)");
    }
    runs_unless(test, why)
}

/// Whether a test that needs something (`why_not` says what is missing, or
/// None) runs: skipped loudly without it, a failure under CI.
pub fn runs_unless(test: &str, why_not: Option<&str>) -> bool {
    match why_not {
        None => true,
        Some(w) if std::env::var_os("CI").is_some() => panic!("{test}: cannot run in CI: {w}"),
        Some(w) => {
            record_skip(test, w);
            false
        }
    }
}

/// Makes a skipped test visible: a line on the terminal (written past the
/// harness's capture) and one in `$SWITCHYARD_SKIP_LOG`, which `scripts/test`
/// counts into its closing line ("N passed, M failed, K skipped") and which
/// fails the run when it was root and something still skipped.
fn record_skip(test: &str, why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED {test}: {why}");
    if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        let _ = writeln!(tty, "{line}");
    }
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("SWITCHYARD_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {why}");
        }
    }
}

/// Polls `f` until true or the deadline.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (success, stdout, stderr) of a finished command.
pub fn outcome(out: std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a command, returning (success, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    outcome(
        Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn"),
    )
}

/// A running sandbox.
pub struct Sandbox {
    pub dir: PathBuf,
    pub prefix: String,
    pub port_base: u16,
    pub state: Value,
    _serial: MutexGuard<'static, ()>,
}

impl Sandbox {
    /// Brings up a sandbox with `pods` pods. `id` (1..=99) keeps names and ports apart.
    pub fn up(id: u16, pods: usize) -> Sandbox {
        Sandbox::up_with(id, pods, &[])
    }

    /// Like [`Sandbox::up`], with more `syctl sandbox up` arguments.
    pub fn up_with(id: u16, pods: usize, extra: &[&str]) -> Sandbox {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("t{id}");
        let dir = PathBuf::from(format!("/run/switchyard-test-{id}"));
        let port_base = 17000 + id * 4;
        let mut sb = Sandbox {
            dir,
            prefix,
            port_base,
            state: Value::Null,
            _serial: serial,
        };
        let pods_s = pods.to_string();
        let mut args = vec!["sandbox", "up", "--pods", &pods_s];
        let common = sb.common_args();
        args.extend(common.iter().map(String::as_str));
        args.extend_from_slice(extra);
        let (ok, out, err) = sb.syctl_raw(&args);
        assert!(ok, "sandbox up failed:\n{out}\n{err}");
        sb.reload();
        sb
    }

    fn common_args(&self) -> Vec<String> {
        vec![
            "--dir".into(),
            self.dir.display().to_string(),
            "--prefix".into(),
            self.prefix.clone(),
            "--port-base".into(),
            self.port_base.to_string(),
        ]
    }

    /// Re-reads state.json.
    pub fn reload(&mut self) {
        let body = std::fs::read(self.dir.join("state.json")).expect("state.json");
        self.state = serde_json::from_slice(&body).expect("state.json parses");
    }

    fn syctl_raw(&self, args: &[&str]) -> (bool, String, String) {
        // Chassis 1's socket (a multi-chassis sandbox names it per chassis).
        let sock = self.state["control_sock"]
            .as_str()
            .map(PathBuf::from)
            .unwrap_or_else(|| self.dir.join("vswitchd.sock"));
        self.syctl_at(&sock, args)
    }

    /// Runs syctl with `sock` as the vswitchd it talks to.
    pub fn syctl_at(&self, sock: &Path, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(bin_dir().join("syctl"))
            .args(args)
            // Every northd of the sandbox (one, or the active and standbys).
            .env(
                "SYCTL_NB",
                self.state["nb"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("http://127.0.0.1:{}", self.port_base)),
            )
            .env("SYCTL_VSWITCHD", sock)
            .envs(self.tls_env())
            .stdin(Stdio::null())
            .output()
            .expect("run syctl");
        outcome(out)
    }

    /// With `--tls`: the operator's certificate for syctl (SYCTL_TLS_*).
    pub fn tls_env(&self) -> Vec<(String, PathBuf)> {
        if self.state["tls"] != true {
            return Vec::new();
        }
        let pki = self.dir.join("pki");
        vec![
            ("SYCTL_TLS_CA".into(), pki.join("ca.pem")),
            ("SYCTL_TLS_CERT".into(), pki.join("operator.pem")),
            ("SYCTL_TLS_KEY".into(), pki.join("operator.key")),
        ]
    }

    /// Runs syctl against this sandbox; panics with its stderr on failure.
    pub fn syctl(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.syctl_raw(args);
        assert!(ok, "syctl {args:?} failed: {err}\n{}", self.log_tails());
        out
    }

    /// `syctl sandbox restart DAEMON` of this sandbox (`kill`: SIGKILL first,
    /// a crash); returns once it serves again.
    pub fn restart(&self, daemon: &str, kill: bool) {
        let (dir, base) = (self.dir.display().to_string(), self.port_base.to_string());
        let mut args = vec!["sandbox", "restart", daemon];
        if kill {
            args.push("--kill");
        }
        args.extend([
            "--dir",
            &dir,
            "--prefix",
            &self.prefix,
            "--port-base",
            &base,
        ]);
        self.syctl(&args);
    }

    /// The last lines of every daemon log of the sandbox, for a failure's message.
    pub fn log_tails(&self) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        let mut s = String::new();
        for p in logs {
            let body = std::fs::read_to_string(&p).unwrap_or_default();
            // A daemon's error is followed by its backtrace: keep the message.
            let lines: Vec<&str> = body
                .lines()
                .take_while(|l| {
                    !l.starts_with("Stack backtrace:") && !l.starts_with("stack backtrace:")
                })
                .collect();
            s.push_str(&format!("--- {} (last lines)\n", p.display()));
            for l in &lines[lines.len().saturating_sub(12)..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// Runs syctl expecting failure; returns stderr.
    pub fn syctl_err(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.syctl_raw(args);
        assert!(!ok, "syctl {args:?} should have failed, printed {out}");
        err
    }

    /// Runs syctl with --json and parses the output.
    pub fn syctl_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.syctl(&a)).expect("syctl --json parses")
    }

    pub fn pod(&self, i: usize) -> &Value {
        &self.state["pods"][i]
    }
    pub fn netns(&self, i: usize) -> String {
        self.pod(i)["netns"].as_str().expect("netns").to_string()
    }
    pub fn ip(&self, i: usize) -> String {
        self.pod(i)["ip"].as_str().expect("ip").to_string()
    }
    /// The pod's IPv6 address (a sandbox made with `--ipv6`).
    pub fn ip6(&self, i: usize) -> String {
        self.pod(i)["ip6"]
            .as_str()
            .expect("ip6 (--ipv6)")
            .to_string()
    }

    /// One ping from pod `from` to `ip`.
    pub fn ping(&self, from: usize, ip: &str) -> bool {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.netns(from),
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                ip,
            ],
        )
        .0
    }

    /// iperf3 TCP from pod `client` to pod `server` for 2 s (`reverse`: the server
    /// sends); the bits per second received.
    pub fn iperf3_bps(&self, server: usize, client: usize, reverse: bool) -> f64 {
        self.iperf3_bps_to(server, client, &self.ip(server), reverse)
    }

    /// [`Sandbox::iperf3_bps`] to the server's address `ip` (its IPv6 one).
    pub fn iperf3_bps_to(&self, server: usize, client: usize, ip: &str, reverse: bool) -> f64 {
        let ns = self.netns(server);
        let ip = ip.to_string();
        let mut srv = Command::new("ip")
            .args(["netns", "exec", &ns, "iperf3", "-s", "-1", "-B", &ip])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 server");
        assert!(
            wait_until(Duration::from_secs(5), || self
                .exec(server, &["ss", "-ltn"])
                .1
                .contains(":5201")),
            "iperf3 server did not listen"
        );
        let mut args = vec!["iperf3", "-c", ip.as_str(), "-t", "2", "-J"];
        if reverse {
            args.push("-R");
        }
        let (ok, out, err) = self.exec(client, &args);
        let _ = srv.kill();
        let _ = srv.wait();
        assert!(ok, "iperf3 failed: {err}{out}");
        let v: Value = serde_json::from_str(&out).expect("iperf3 json");
        v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .expect("bps")
    }

    /// Runs a command in pod `i`.
    pub fn exec(&self, i: usize, args: &[&str]) -> (bool, String, String) {
        let ns = self.netns(i);
        let mut a = vec!["netns", "exec", ns.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// A datapath drop counter.
    pub fn drops(&self, reason: &str) -> u64 {
        let v = self.syctl_json(&["vswitch", "pmd-stats"]);
        v[0]["drops"][reason].as_u64().unwrap_or(0)
    }

    /// Sends raw frames out of pod `i`'s eth0.
    pub fn send_frames(&self, i: usize, frames: &[Vec<u8>]) {
        let helper = helper();
        let hexes: Vec<String> = frames.iter().map(|f| hex(f)).collect();
        let mut args = vec!["python3", helper.as_str(), "send", "eth0"];
        args.extend(hexes.iter().map(String::as_str));
        let (ok, _, err) = self.exec(i, &args);
        assert!(ok, "sending frames failed: {err}");
    }

    /// Sends raw frames out of interface `iface` of the root namespace (a
    /// host on the underlay bridge that is no chassis).
    pub fn send_frames_root(&self, iface: &str, frames: &[Vec<u8>]) {
        let helper = helper();
        let hexes: Vec<String> = frames.iter().map(|f| hex(f)).collect();
        let mut args = vec![helper.as_str(), "send", iface];
        args.extend(hexes.iter().map(String::as_str));
        let (ok, _, err) = run("python3", &args);
        assert!(ok, "sending frames failed: {err}");
    }

    /// Starts a sniffer in pod `i` and waits until it listens.
    pub fn sniff(&self, i: usize, tag: &str, marker: &str) -> Sniffer {
        sniff_in(&self.netns(i), "eth0", tag, marker)
    }
}

/// Starts a sniffer on `iface` in namespace `ns` (`pkt.py sniff`: frames
/// with `tag` until one with `marker`) and waits until it listens.
pub fn sniff_in(ns: &str, iface: &str, tag: &str, marker: &str) -> Sniffer {
    let (child, out) = start_helper(ns, &["sniff", iface, tag, marker, "15"]);
    Sniffer { child, out }
}

/// Runs `pkt.py ARGS` in namespace `ns` and waits for its READY line.
pub(crate) fn start_helper(
    ns: &str,
    args: &[&str],
) -> (Child, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead;
    let helper = helper();
    let mut a = vec!["netns", "exec", ns, "python3", helper.as_str()];
    a.extend_from_slice(args);
    let mut child = Command::new("ip")
        .args(&a)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pkt.py");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("pkt.py output");
    assert_eq!(
        line.trim(),
        "READY",
        "pkt.py {args:?} in {ns} did not start"
    );
    (child, out)
}

impl Sandbox {
    /// Restarts a daemon the way an operator would after a crash (SIGKILL).
    /// Runs `syctl sandbox SUB...` on this sandbox.
    pub fn sandbox(&self, sub: &[&str]) -> String {
        let args = self.common_args();
        let mut a = vec!["sandbox"];
        a.extend_from_slice(sub);
        a.extend(args.iter().map(String::as_str));
        self.syctl(&a)
    }

    pub fn kill_and_restart(&mut self, daemon: &str) {
        let args = self.common_args();
        let mut a = vec!["sandbox", "restart", daemon, "--kill"];
        a.extend(args.iter().map(String::as_str));
        self.syctl(&a);
        self.reload();
    }
}

/// A running sniffer.
pub struct Sniffer {
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Sniffer {
    /// Waits for the sniffer to end (marker or timeout) and returns its lines.
    pub fn finish(mut self) -> Vec<String> {
        use std::io::BufRead;
        let lines: Vec<String> = (&mut self.out).lines().map_while(Result::ok).collect();
        let _ = self.child.wait();
        lines
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process running in a pod for a test (a service, a held connection); it
/// is killed when dropped, also when the test fails.
pub struct Background {
    child: Child,
    out: Option<std::io::BufReader<std::process::ChildStdout>>,
}

impl Background {
    /// Sends a line to the process and reads one line of its answer.
    pub fn ask(&mut self) -> String {
        use std::io::Write;
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.write_all(b"next\n");
            let _ = stdin.flush();
        }
        self.line()
    }

    /// The next line the process prints ("" at its end).
    pub fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut s = String::new();
        if let Some(out) = self.out.as_mut() {
            let _ = out.read_line(&mut s);
        }
        s.trim().to_string()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service helper (`helpers/svc.py`).
pub fn svc_helper() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("helpers/svc.py")
        .display()
        .to_string()
}

impl Sandbox {
    /// Load balancer `name` with VIP `vip:port` -> pod `pod`'s IP at
    /// `backend_port`, served on switch ls0.
    pub fn service_on_ls0(&self, name: &str, vip: &str, port: u16, pod: usize, backend_port: u16) {
        self.syctl(&[
            "lb-add",
            name,
            &format!("{vip}:{port}"),
            &format!("{}:{backend_port}", self.ip(pod)),
        ]);
        self.syctl(&["ls-lb-add", "ls0", name]);
    }

    /// The external host's namespace (`--external`).
    pub fn ext_netns(&self) -> String {
        self.state["external"]["netns"]
            .as_str()
            .expect("sandbox up --external")
            .to_string()
    }

    /// Runs a command in namespace `ns`.
    pub fn exec_ns(&self, ns: &str, args: &[&str]) -> (bool, String, String) {
        let mut a = vec!["netns", "exec", ns];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Starts `svc.py serve PROTO PORT NAME` in namespace `ns`; returns once
    /// it listens.
    pub fn serve_in(&self, ns: &str, proto: &str, port: u16, name: &str) -> Background {
        let port_s = port.to_string();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "python3",
                &svc_helper(),
                "serve",
                proto,
                &port_s,
                name,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("svc.py serve");
        let flag = if proto == "udp" { "-lun" } else { "-ltn" };
        let want = format!(":{port} ");
        assert!(
            wait_until(Duration::from_secs(10), || self
                .exec_ns(ns, &["ss", flag])
                .1
                .contains(&want)),
            "{name} did not listen on {proto} {port}"
        );
        Background { child, out: None }
    }

    /// Starts `svc.py hold IP PORT` in namespace `ns`: one TCP connection kept
    /// open; [`Background::ask`] sends a request on it.
    pub fn hold_in(&self, ns: &str, ip: &str, port: u16) -> Background {
        let port_s = port.to_string();
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "python3",
                &svc_helper(),
                "hold",
                ip,
                &port_s,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("svc.py hold");
        let out = child.stdout.take().map(std::io::BufReader::new);
        Background { child, out }
    }

    /// Connects from `ns` to `ip:port` (one `svc.py connect` at a time) until
    /// the answer satisfies `want`, for at most 10 s: a configuration change
    /// reaching the datapath.
    pub fn connect_until(
        &self,
        ns: &str,
        ip: &str,
        port: u16,
        want: impl Fn(&str) -> bool,
    ) -> bool {
        wait_until(Duration::from_secs(10), || {
            want(&self.svc_in(ns, "connect", ip, port, 1)[0])
        })
    }

    /// `svc.py connect|udp IP PORT N` in namespace `ns`: its output lines.
    pub fn svc_in(&self, ns: &str, mode: &str, ip: &str, port: u16, n: usize) -> Vec<String> {
        let (port_s, n_s) = (port.to_string(), n.to_string());
        let (_, out, err) = self.exec_ns(ns, &["python3", &svc_helper(), mode, ip, &port_s, &n_s]);
        let lines: Vec<String> = out.lines().map(str::to_string).collect();
        assert_eq!(lines.len(), n, "svc.py {mode} printed {out}{err}");
        lines
    }

    /// One TCP connection (svc.py connect) from source port `sport`.
    pub fn connect_from(&self, ns: &str, ip: &str, port: u16, sport: u16) -> String {
        let (port_s, sport_s) = (port.to_string(), sport.to_string());
        let (_, out, err) = self.exec_ns(
            ns,
            &[
                "python3",
                &svc_helper(),
                "connect",
                ip,
                &port_s,
                "1",
                &sport_s,
            ],
        );
        out.lines()
            .next()
            .map_or(format!("ERR {err}"), str::to_string)
    }
}

pub(crate) fn helper() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("helpers/pkt.py")
        .display()
        .to_string()
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let args = self.common_args();
        let mut a = vec!["sandbox", "down"];
        a.extend(args.iter().map(String::as_str));
        let (ok, _, err) = self.syctl_raw(&a);
        if !ok {
            eprintln!("sandbox down failed: {err}");
        }
    }
}
