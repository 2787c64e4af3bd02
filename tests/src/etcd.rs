//! A real etcd cluster for tests: N members on loopback ports of their own,
//! each a child process with a data directory, killed and removed on drop.

use crate::sandbox::{run, wait_until};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One member of the cluster.
struct Member {
    name: String,
    args: Vec<String>,
    child: Option<Child>,
}

/// An etcd cluster started for one test.
pub struct EtcdCluster {
    dir: PathBuf,
    members: Vec<Member>,
    pub endpoints: Vec<String>,
}

/// Why etcd tests cannot run here (None: they can).
pub fn missing() -> Option<&'static str> {
    (!run("sh", &["-c", "command -v etcd && command -v etcdctl"]).0)
        .then_some("needs etcd and etcdctl (scripts/setup installs etcd-server, etcd-client)")
}

impl EtcdCluster {
    /// Starts `n` members with client ports `base, base+2, ...` and peer
    /// ports one above each; waits until the cluster answers.
    pub fn start(n: usize, base: u16) -> EtcdCluster {
        let dir =
            std::env::temp_dir().join(format!("switchyard-etcd-{}-{base}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd dir");
        let port = |i: usize, peer: u16| base + 2 * i as u16 + peer;
        let initial: Vec<String> = (0..n)
            .map(|i| format!("m{i}=http://127.0.0.1:{}", port(i, 1)))
            .collect();
        let endpoints: Vec<String> = (0..n)
            .map(|i| format!("http://127.0.0.1:{}", port(i, 0)))
            .collect();
        let members = (0..n)
            .map(|i| {
                let client = &endpoints[i];
                let peer = format!("http://127.0.0.1:{}", port(i, 1));
                let args = vec![
                    "--name".to_string(),
                    format!("m{i}"),
                    "--data-dir".into(),
                    dir.join(format!("m{i}")).display().to_string(),
                    "--listen-client-urls".into(),
                    client.clone(),
                    "--advertise-client-urls".into(),
                    client.clone(),
                    "--listen-peer-urls".into(),
                    peer.clone(),
                    "--initial-advertise-peer-urls".into(),
                    peer,
                    "--initial-cluster".into(),
                    initial.join(","),
                    "--initial-cluster-state".into(),
                    "new".into(),
                    "--initial-cluster-token".into(),
                    format!("switchyard-test-{base}"),
                    // NB transactions are one etcd transaction each: let a
                    // bulk change of many rows through.
                    "--max-txn-ops".into(),
                    "100000".into(),
                    "--max-request-bytes".into(),
                    "67108864".into(),
                ];
                let mut m = Member {
                    name: format!("m{i}"),
                    args,
                    child: None,
                };
                m.spawn(&dir);
                m
            })
            .collect();
        let c = EtcdCluster {
            dir,
            members,
            endpoints,
        };
        assert!(
            wait_until(Duration::from_secs(20), || c.healthy(n)),
            "etcd cluster of {n} never became healthy"
        );
        c
    }

    /// Whether `want` members answer as healthy.
    pub fn healthy(&self, want: usize) -> bool {
        let (_, out, err) = run(
            "etcdctl",
            &[
                "--endpoints",
                &self.endpoints.join(","),
                "--command-timeout=1s",
                "endpoint",
                "health",
            ],
        );
        format!("{out}{err}").matches("is healthy").count() >= want
    }

    /// SIGKILLs member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data directory.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let dir = self.dir.clone();
        self.members[i].spawn(&dir);
    }
}

impl Member {
    fn spawn(&mut self, dir: &std::path::Path) {
        let log = std::fs::File::create(dir.join(format!("{}.log", self.name))).expect("etcd log");
        self.child = Some(
            Command::new("etcd")
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start etcd"),
        );
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
