//! A real switchyard-northd for tests that drive syctl against it.

use crate::sandbox::{bin_dir, wait_until};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A switchyard-northd on a file store in a temporary directory (no root needed).
pub struct Northd {
    child: Child,
    pub nb: String,
    port: u16,
    dir: TempDir,
}

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Northd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Northd {
    pub fn start(port: u16) -> Northd {
        let dir = TempDir(
            std::env::temp_dir().join(format!("switchyard-cli-test-{}-{port}", std::process::id())),
        );
        std::fs::create_dir_all(&dir.0).expect("temp dir");
        let n = Northd {
            child: Northd::spawn(&dir.0, port),
            nb: format!("http://127.0.0.1:{port}"),
            port,
            dir,
        };
        n.wait_up();
        n
    }

    fn spawn(dir: &std::path::Path, port: u16) -> Child {
        Command::new(bin_dir().join("switchyard-northd"))
            .args([
                "--db",
                &dir.join("db").display().to_string(),
                "--nb-listen",
                &format!("127.0.0.1:{port}"),
                "--sb-listen",
                &format!("127.0.0.1:{}", port + 1),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start switchyard-northd (cargo build --release --bins first)")
    }

    fn wait_up(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || self.syctl(&["ls-list"]).0),
            "northd never answered"
        );
    }

    /// kill -9 and start again on the same database.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Northd::spawn(&self.dir.0, self.port);
        self.wait_up();
    }

    /// (success, stdout, stderr) of `syctl ARGS` against this northd.
    pub fn syctl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(bin_dir().join("syctl"))
            .args(args)
            .env("SYCTL_NB", &self.nb)
            .stdin(Stdio::null())
            .output()
            .expect("run syctl");
        crate::sandbox::outcome(out)
    }

    pub fn ok(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        let (ok, out, err) = self.syctl(&args);
        assert!(ok, "syctl {line}: {err}");
        out
    }

    pub fn fails(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        let (ok, out, err) = self.syctl(&args);
        assert!(!ok, "syctl {line} should fail, printed {out}");
        err
    }

    pub fn switches(&self) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&self.ok("ls-list --json")).expect("json");
        v.as_array()
            .expect("a list")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// `syctl ARGS` that must succeed; its stdout.
pub fn must(n: &Northd, args: &[&str]) -> String {
    let (ok, out, err) = n.syctl(args);
    assert!(ok, "syctl {args:?}: {err}");
    out
}
