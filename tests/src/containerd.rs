//! A real container runtime for the CNI tests: containerd (Debian's) started
//! on a private socket, root and state directory, driven with `ctr`, running
//! containers from a static busybox rootfs (no image store needed). Whatever
//! it started is stopped and removed when it is dropped, also after a failure.

use crate::sandbox::{run, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What the runtime tests need that is missing, if anything.
pub fn missing() -> Option<&'static str> {
    for (bin, why) in [
        (
            "containerd",
            "containerd is not installed (scripts/setup installs it)",
        ),
        ("ctr", "ctr is not installed (Debian containerd)"),
        ("runc", "runc is not installed (scripts/setup installs it)"),
        ("nsenter", "nsenter is not installed (util-linux)"),
    ] {
        if !run("sh", &["-c", &format!("command -v {bin}")]).0 {
            return Some(why);
        }
    }
    if !Path::new("/bin/busybox").exists() && !Path::new("/usr/bin/busybox").exists() {
        return Some("busybox is not installed (Debian busybox-static)");
    }
    None
}

/// A running containerd of the test's own.
pub struct Containerd {
    pub dir: PathBuf,
    sock: PathBuf,
    daemon: Child,
    /// Foreground `ctr run --rm --cni` of each container: when its task
    /// ends, ctr runs the CNI DEL and exits.
    runs: Vec<(String, Child)>,
}

impl Containerd {
    pub fn start(dir: &Path) -> Containerd {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("containerd dir");
        let sock = dir.join("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{s}\"\n[ttrpc]\n  address = \"{s}.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n",
            d = dir.display(),
            s = sock.display()
        );
        std::fs::write(dir.join("config.toml"), config).expect("config");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("log");
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd {
            dir: dir.to_path_buf(),
            sock,
            daemon,
            runs: Vec::new(),
        };
        assert!(
            wait_until(Duration::from_secs(20), || c.ctr(&["version"]).0),
            "containerd did not come up; see {}/containerd.log",
            dir.display()
        );
        c
    }

    pub fn ctr(&self, args: &[&str]) -> (bool, String, String) {
        let sock = self.sock.display().to_string();
        let mut a = vec!["--address", sock.as_str()];
        a.extend_from_slice(args);
        run("ctr", &a)
    }

    /// A busybox rootfs of its own for container `id` (applets as relative links).
    pub fn rootfs(&self, id: &str) -> PathBuf {
        let root = self.dir.join("rootfs").join(id);
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "www"] {
            std::fs::create_dir_all(root.join(d)).expect("rootfs dir");
        }
        let bb = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox");
        std::fs::copy(bb, root.join("bin/busybox")).expect("copy busybox");
        let (ok, list, _) = run(bb, &["--list"]);
        assert!(ok);
        for applet in list.lines().filter(|a| *a != "busybox") {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        std::fs::write(root.join("www/index.html"), format!("served by {id}\n")).expect("www");
        root
    }

    /// Starts container `id` running `cmd`, networked by CNI (the runtime
    /// reads /etc/cni/net.d and execs plugins from /opt/cni/bin), and waits
    /// until it runs.
    pub fn run(&mut self, id: &str, cmd: &[&str]) {
        let root = self.rootfs(id);
        let sock = self.sock.display().to_string();
        let root_s = root.display().to_string();
        let log = std::fs::File::create(self.dir.join(format!("{id}.log"))).expect("log");
        let child = Command::new("ctr")
            .args([
                "--address",
                &sock,
                "run",
                "--rm",
                "--cni",
                "--null-io",
                "--rootfs",
                &root_s,
                id,
            ])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("ctr run");
        self.runs.push((id.to_string(), child));
        let running = wait_until(Duration::from_secs(30), || {
            self.ctr(&["task", "ls"])
                .1
                .lines()
                .any(|l| l.starts_with(id) && l.contains("RUNNING"))
        });
        assert!(
            running,
            "container {id} did not start: {}",
            std::fs::read_to_string(self.dir.join(format!("{id}.log"))).unwrap_or_default()
        );
    }

    /// Runs `cmd` inside container `id`.
    pub fn exec(&self, id: &str, cmd: &[&str]) -> (bool, String, String) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let exec_id = format!("x{n}");
        let mut a = vec!["task", "exec", "--exec-id", exec_id.as_str(), id];
        a.extend_from_slice(cmd);
        self.ctr(&a)
    }

    /// The container's IPv4 address on eth0.
    pub fn ip(&self, id: &str) -> String {
        let (_, out, err) = self.exec(id, &["/bin/ip", "-4", "-o", "addr", "show", "eth0"]);
        out.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .unwrap_or_else(|| panic!("{id} has no IPv4 address: {out} {err}"))
            .to_string()
    }

    /// Stops container `id` and waits for ctr to finish (its CNI DEL included);
    /// returns ctr's log.
    pub fn stop(&mut self, id: &str) -> String {
        let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
        if let Some(i) = self.runs.iter().position(|(n, _)| n == id) {
            let (_, mut child) = self.runs.remove(i);
            let _ = child.wait();
        }
        std::fs::read_to_string(self.dir.join(format!("{id}.log"))).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let ids: Vec<String> = self.runs.iter().map(|(n, _)| n.clone()).collect();
        for id in ids {
            self.stop(&id);
        }
        // Anything left (a container whose ctr run failed half-way).
        let (_, tasks, _) = self.ctr(&["task", "ls", "-q"]);
        for t in tasks.lines() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", t]);
            let _ = self.ctr(&["task", "delete", "-f", t]);
        }
        let (_, cs, _) = self.ctr(&["container", "ls", "-q"]);
        for c in cs.lines() {
            let _ = self.ctr(&["container", "delete", c]);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.daemon.id().to_string()])
            .status();
        if !wait_until(Duration::from_secs(10), || {
            matches!(self.daemon.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.daemon.kill();
            let _ = self.daemon.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
