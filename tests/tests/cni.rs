//! switchyard-cni: containers started by a real containerd get their network
//! from Switchyard (with a Debian plugin chained after ours), reach each
//! other and a Service VIP, and give their port and address back when they
//! go; and the plugin itself against the CNI spec: 20 concurrent ADDs,
//! CHECK, STATUS, GC, DEL twice, ADD after a crash, bad input with the
//! spec's error codes.

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use switchyard_tests::containerd::{self, Containerd};
use switchyard_tests::sandbox::{bin_dir, can_run, run, runs_unless, wait_until, Sandbox};

const NET_D: &str = "/etc/cni/net.d";
const BIN: &str = "/opt/cni/bin";

/// Debian's plugins live in /usr/lib/cni; ctr execs them from /opt/cni/bin.
/// Links made here are removed on drop.
struct Linked(Vec<PathBuf>);

impl Linked {
    fn plugins(names: &[&str]) -> Linked {
        let mut made = Vec::new();
        std::fs::create_dir_all(BIN).unwrap();
        for n in names {
            let to = Path::new(BIN).join(n);
            if !to.exists() {
                std::os::unix::fs::symlink(Path::new("/usr/lib/cni").join(n), &to).unwrap();
                made.push(to);
            }
        }
        Linked(made)
    }
}

impl Drop for Linked {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn cni_ports(sb: &Sandbox) -> Vec<Value> {
    sb.syctl_json(&["lsp-list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap_or("").starts_with("cni-"))
        .cloned()
        .collect()
}

#[test]
fn containers_from_containerd_get_their_network_reach_each_other_and_a_service_and_give_it_back() {
    let name = "containers_from_containerd_get_their_network_reach_each_other_and_a_service_and_give_it_back";
    if !can_run(name)
        || !runs_unless(name, containerd::missing())
        || !runs_unless(
            name,
            (!Path::new("/usr/lib/cni/tuning").exists())
                .then_some("Debian containernetworking-plugins is not installed"),
        )
    {
        return;
    }
    // One subnet: the sandbox's router still gives every container a default
    // route, and with it a way to the Service VIP.
    let sb = Sandbox::up_with(67, 0, &[]);
    let _links = Linked::plugins(&["tuning"]);
    sb.sandbox(&["cni-install", "--chain", "tuning"]);
    // The chained tuning plugin gets a sysctl to set: proof it ran on our result.
    let conf = Path::new(NET_D).join("10-switchyard.conflist");
    let mut list: Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    list["plugins"][1]["sysctl"] = json!({ "net.ipv4.conf.eth0.arp_ignore": "1" });
    std::fs::write(&conf, serde_json::to_vec_pretty(&list).unwrap()).unwrap();

    let mut ctd = Containerd::start(Path::new("/run/switchyard-test-67-containerd"));
    ctd.run("web", &["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]);
    ctd.run("client", &["/bin/sleep", "3600"]);
    let (web, client) = (ctd.ip("web"), ctd.ip("client"));
    assert_ne!(web, client);
    assert!(web.starts_with("10.244.0."), "{web}: not from ls0's subnet");
    let ports = cni_ports(&sb);
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(ports
        .iter()
        .all(|p| p["port_security"][0] == p["dynamic_addresses"]));
    let (_, arp, _) = ctd.exec(
        "client",
        &["/bin/cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore"],
    );
    assert_eq!(arp.trim(), "1", "the chained tuning plugin ran");

    assert!(
        wait_until(Duration::from_secs(10), || ctd
            .exec("client", &["/bin/ping", "-c", "1", "-W", "1", &web])
            .0),
        "client cannot ping web"
    );
    let fetch = |ctd: &Containerd, url: &str| {
        ctd.exec(
            "client",
            &["/bin/timeout", "3", "/bin/wget", "-q", "-O", "-", url],
        )
        .1
    };
    assert_eq!(
        fetch(&ctd, &format!("http://{web}:8080/")),
        "served by web\n"
    );
    // A Service: VIP -> the web container.
    sb.syctl(&["lb-add", "web", "10.96.0.10:80", &format!("{web}:8080")]);
    sb.syctl(&["ls-lb-add", "ls0", "web"]);
    assert!(
        wait_until(Duration::from_secs(10), || fetch(
            &ctd,
            "http://10.96.0.10/"
        ) == "served by web\n"),
        "the Service VIP does not reach web"
    );

    // Removing the container runs the plugin's DEL: port, address, veth gone.
    let host_if = |p: &Value| p["name"].as_str().unwrap().replacen("cni-", "sy", 1);
    let web_port = ports
        .iter()
        .find(|p| {
            p["dynamic_addresses"]
                .as_str()
                .unwrap()
                .ends_with(&format!(" {web}"))
        })
        .cloned()
        .expect("web's port");
    let log = ctd.stop("web");
    let left = cni_ports(&sb);
    assert_eq!(left.len(), 1, "{left:?}\nctr: {log}");
    assert!(!Path::new("/sys/class/net")
        .join(host_if(&web_port))
        .exists());
    // The freed address goes to the next container.
    ctd.run("again", &["/bin/sleep", "3600"]);
    assert_eq!(ctd.ip("again"), web);
}

/// Runs the plugin with `command` for attachment (`id`, eth0) in `netns`.
fn plugin(command: &str, conf: &Value, id: &str, netns: &str) -> (bool, Value) {
    let mut child = Command::new(bin_dir().join("switchyard-cni"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", bin_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run switchyard-cni");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), v)
}

fn code_of(r: (bool, Value)) -> u64 {
    assert!(!r.0, "should have failed: {}", r.1);
    r.1["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("no error object: {}", r.1))
}

#[test]
fn the_plugin_keeps_the_spec_through_concurrent_adds_a_crash_gc_and_bad_input() {
    let name = "the_plugin_keeps_the_spec_through_concurrent_adds_a_crash_gc_and_bad_input";
    if !can_run(name) || !runs_unless(name, containerd::missing()) {
        return;
    }
    let sb = Sandbox::up_with(68, 0, &[]);
    let conf = json!({
        "cniVersion": "1.1.0",
        "name": "switchyard",
        "type": "switchyard-cni",
        "nb": sb.state["nb"],
        "vswitchd": sb.state["control_sock"],
        "switch": "ls0",
        "mtu": 1500,
        "stateDir": sb.dir.join("cni-state"),
    });
    // Namespaces under the sandbox's prefix: `sandbox down` removes them.
    let netns = |i: usize| format!("/var/run/netns/t68-c{i}");
    for i in 0..20 {
        assert!(run("ip", &["netns", "add", &format!("t68-c{i}")]).0);
    }
    // 20 ADDs at once: 20 distinct addresses, every one of them working.
    let adds: Vec<_> = (0..20)
        .map(|i| {
            let (conf, ns) = (conf.clone(), netns(i));
            std::thread::spawn(move || plugin("ADD", &conf, &format!("ctr{i}"), &ns))
        })
        .collect();
    let results: Vec<Value> = adds
        .into_iter()
        .map(|h| {
            let (ok, v) = h.join().unwrap();
            assert!(ok, "ADD failed: {v}");
            v
        })
        .collect();
    let ip_of = |r: &Value| {
        r["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let mut ips: Vec<String> = results.iter().map(ip_of).collect();
    assert_eq!(results[0]["interfaces"][1]["sandbox"], netns(0));
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    let ping = |i: usize, ip: &str| {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &format!("t68-c{i}"),
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                ip,
            ],
        )
        .0
    };
    let last = ip_of(&results[19]);
    assert!(wait_until(Duration::from_secs(10), || ping(0, &last)));
    assert!(plugin("CHECK", &conf, "ctr3", &netns(3)).0);
    assert!(plugin("STATUS", &conf, "", "").0);
    let (ok, v) = plugin("VERSION", &conf, "", "");
    assert!(
        ok && v["supportedVersions"].as_array().unwrap().len() >= 4,
        "{v}"
    );

    // CHECK sees a container whose address was taken away.
    run(
        "ip",
        &[
            "netns", "exec", "t68-c3", "ip", "addr", "flush", "dev", "eth0",
        ],
    );
    assert_eq!(code_of(plugin("CHECK", &conf, "ctr3", &netns(3))), 100);

    // A crash: the host end vanished under a recorded attachment. ADD again
    // takes the same port and address back and works.
    let host = results[5]["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(run("ip", &["link", "del", &host]).0);
    let (ok, again) = plugin("ADD", &conf, "ctr5", &netns(5));
    assert!(ok, "{again}");
    assert_eq!(ip_of(&again), ip_of(&results[5]));
    assert!(wait_until(Duration::from_secs(10), || ping(5, &last)));

    // Bad input: the spec's codes, nothing made.
    let before = cni_ports(&sb).len();
    let mut bad = conf.clone();
    bad.as_object_mut().unwrap().remove("switch");
    assert_eq!(code_of(plugin("ADD", &bad, "x", &netns(0))), 7);
    let mut bad = conf.clone();
    bad["cniVersion"] = json!("0.1.0");
    assert_eq!(code_of(plugin("ADD", &bad, "x", &netns(0))), 1);
    let mut bad = conf.clone();
    bad["bridge"] = json!("br0");
    assert_eq!(code_of(plugin("ADD", &bad, "x", &netns(0))), 2);
    assert_eq!(code_of(plugin("ADD", &conf, "", &netns(0))), 4);
    assert_eq!(
        code_of(plugin("ADD", &conf, "gone", "/var/run/netns/t68-none")),
        3
    );
    let mut bad = conf.clone();
    bad["switch"] = json!("no-such-switch");
    assert_eq!(code_of(plugin("ADD", &bad, "x", &netns(0))), 7);
    let mut bad = conf.clone();
    bad["vswitchd"] = json!("/run/no-such-vswitchd.sock");
    assert_eq!(code_of(plugin("STATUS", &bad, "", "")), 50);
    assert_eq!(cni_ports(&sb).len(), before, "a refused ADD left a port");

    // DEL twice is fine; GC removes what the runtime no longer lists, and a
    // port of ours with no record (a crash before the record was written).
    for i in 0..5 {
        assert!(plugin("DEL", &conf, &format!("ctr{i}"), &netns(i)).0);
        assert!(plugin("DEL", &conf, &format!("ctr{i}"), &netns(i)).0);
    }
    assert_eq!(cni_ports(&sb).len(), 15);
    // An attachment whose record was lost (a state directory on tmpfs after
    // a reboot): GC still finds its port by the plugin's external_ids.
    assert!(run("ip", &["netns", "add", "t68-orphan"]).0);
    let (ok, v) = plugin("ADD", &conf, "orphan", "/var/run/netns/t68-orphan");
    assert!(ok, "{v}");
    std::fs::remove_file(sb.dir.join("cni-state/switchyard/orphan-eth0")).unwrap();
    assert_eq!(cni_ports(&sb).len(), 16);
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!((5..12)
        .map(|i| json!({ "containerID": format!("ctr{i}"), "ifname": "eth0" }))
        .collect::<Vec<_>>());
    let (ok, v) = plugin("GC", &gc, "", "");
    assert!(ok, "{v}");
    let left: Vec<String> = cni_ports(&sb)
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left.len(), 7, "{left:?}");
    assert!(wait_until(Duration::from_secs(10), || ping(
        5,
        &ip_of(&results[11])
    )));
    assert!(!Path::new("/sys/class/net")
        .join(results[15]["interfaces"][0]["name"].as_str().unwrap())
        .exists());
}
