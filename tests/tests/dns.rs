//! DNS answered in the datapath, with real daemons, real pods, AF_XDP and
//! real resolvers (glibc's, `dig`), beside a real DNS server (`dnsmasq`) in
//! another pod for the names Switchyard has no record for.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchyard_tests::sandbox::{can_run, run, runs_unless, wait_until, Sandbox};

/// A resolver address no host has: the answer can only come from the datapath.
const NOWHERE: &str = "10.96.0.99";

/// `/etc/netns/NS/resolv.conf` (which `ip netns exec` mounts over
/// /etc/resolv.conf) for the life of the test, removed also when it fails.
struct ResolvConf(PathBuf);

impl ResolvConf {
    fn write(ns: &str, body: &str) -> ResolvConf {
        let dir = PathBuf::from(format!("/etc/netns/{ns}"));
        std::fs::create_dir_all(&dir).expect("/etc/netns");
        std::fs::write(dir.join("resolv.conf"), body).expect("resolv.conf");
        ResolvConf(dir)
    }
}

impl Drop for ResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process killed when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's dnsmasq in pod `i`, answering www.example.test (and any name
/// under example.test) with 192.0.2.7 and nothing else.
fn dnsmasq(sb: &Sandbox, i: usize) -> Killed {
    let k = Killed(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &sb.netns(i),
                "dnsmasq",
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--address=/example.test/192.0.2.7",
            ])
            .arg(format!("--listen-address={}", sb.ip(i)))
            .arg(format!(
                "--pid-file={}",
                sb.dir.join("dnsmasq.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq"),
    );
    // Serving once its socket is bound (a query before that is refused).
    let at = format!("{}:53", sb.ip(i));
    assert!(
        wait_until(Duration::from_secs(10), || {
            run("ip", &["netns", "exec", &sb.netns(i), "ss", "-H", "-lun"])
                .1
                .contains(&at)
        }),
        "dnsmasq never listened on {at}"
    );
    k
}

/// `dig` from pod `i`: (status, answer lines).
fn dig(sb: &Sandbox, i: usize, server: &str, name: &str, ty: &str) -> (String, Vec<String>) {
    let at = format!("@{server}");
    let (_, out, err) = sb.exec(
        i,
        &[
            "dig",
            "+tries=1",
            "+time=2",
            "+notcp",
            "+noall",
            "+comments",
            "+answer",
            &at,
            name,
            ty,
        ],
    );
    let status = out
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .unwrap_or_else(|| format!("no answer: {out}{err}"));
    let answers = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (status, answers)
}

fn dns_counters(sb: &Sandbox) -> [u64; 4] {
    let v = sb.syctl_json(&["vswitch", "pmd-stats"]);
    let d = &v[0]["dns"];
    std::array::from_fn(|i| d[i].as_u64().unwrap_or(0))
}

#[test]
fn pods_resolve_names_from_the_datapath_and_others_from_a_real_server() {
    if !can_run("pods_resolve_names_from_the_datapath_and_others_from_a_real_server") {
        return;
    }
    let has = |tool: &str| run("sh", &["-c", &format!("command -v {tool}")]).0;
    let missing = ["dig", "dnsmasq"].into_iter().find(|t| !has(t));
    let why = missing.map(|t| format!("{t} is not installed (scripts/setup installs it)"));
    if !runs_unless(
        "pods_resolve_names_from_the_datapath_and_others_from_a_real_server",
        why.as_deref(),
    ) {
        return;
    }
    let sb = Sandbox::up(70, 3);
    let (client, web, server) = (0, 1, 2);
    // A real DNS server in pod3, for the names outside Switchyard's records.
    let dnsmasq = dnsmasq(&sb, server);
    let _web = sb.serve_in(&sb.netns(web), "tcp", 8080, "web");
    let _conf = ResolvConf::write(
        &sb.netns(client),
        &format!(
            "nameserver {NOWHERE}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 attempts:2 timeout:1\n"
        ),
    );

    sb.syctl(&[
        "set",
        "Logical_Switch",
        "ls0",
        "other_config:dns_domain=cluster.local",
    ]);
    let web_name = "web.default.svc.cluster.local";
    sb.syctl(&[
        "--wait=hv",
        "dns-add",
        "ls0",
        "Web.Default.svc.cluster.local.",
        &sb.ip(web),
        "--srv",
        "0 100 8080 web.default.svc.cluster.local",
    ]);
    let listed = sb.syctl(&["dns-list", "ls0"]);
    assert!(listed.contains(web_name), "{listed}");
    let show = sb.syctl(&["show"]);
    assert!(
        show.contains("dns: 1 record, authoritative for cluster.local"),
        "{show}"
    );

    // By its short name through the search list, with glibc's resolver,
    // from a resolver address nothing answers at: the datapath does.
    let answer = sb.svc_in(&sb.netns(client), "connect", "web", 8080, 1);
    assert!(
        answer[0].starts_with("web "),
        "connect by name: {answer:?}\n{}",
        sb.syctl(&["vswitch", "pmd-stats"])
    );
    let (st, a) = dig(&sb, client, NOWHERE, "WEB.default.svc.cluster.local", "A");
    assert_eq!(st, "NOERROR");
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].ends_with(&format!("A {}", sb.ip(web))), "{a:?}");
    assert!(a[0].starts_with("WEB."), "the case asked: {a:?}");
    let (st, a) = dig(&sb, client, NOWHERE, web_name, "SRV");
    assert_eq!(st, "NOERROR");
    assert!(
        a[0].ends_with("SRV 0 100 8080 web.default.svc.cluster.local."),
        "{a:?}"
    );

    // An alias: dig gets the CNAME and, the target being here, its address;
    // glibc's resolver follows it to connect by the alias.
    sb.syctl(&[
        "--wait=hv",
        "dns-add",
        "ls0",
        "www.default.svc.cluster.local",
        "--cname",
        web_name,
    ]);
    let (st, a) = dig(&sb, client, NOWHERE, "www.default.svc.cluster.local", "A");
    assert_eq!(st, "NOERROR");
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(a[0].ends_with(&format!("CNAME {web_name}.")), "{a:?}");
    assert!(
        a[1].starts_with(&format!("{web_name}.")) && a[1].ends_with(&format!("A {}", sb.ip(web))),
        "{a:?}"
    );
    let answer = sb.svc_in(&sb.netns(client), "connect", "www", 8080, 1);
    assert!(
        answer[0].starts_with("web "),
        "connect by the alias: {answer:?}"
    );
    let e = sb.syctl_err(&[
        "dns-add",
        "ls0",
        "x.cluster.local",
        "10.0.0.1",
        "--cname",
        web_name,
    ]);
    assert!(e.contains("cannot be used with"), "{e}");
    sb.syctl(&["dns-del", "ls0", "www.default.svc.cluster.local"]);

    // syctl trace shows the answer a query gets, and where one goes on.
    let lport = sb.pod(client)["lport"].as_str().expect("lport").to_string();
    let tr = sb.syctl_json(&[
        "trace",
        &format!(
            "inport == \"{lport}\" && ip4.dst == {NOWHERE} && dns.qname == \"web.default.svc.cluster.local\" && dns.qtype == SRV"
        ),
    ]);
    assert_eq!(tr["verdict"], "dns", "{tr}");
    let note = tr["dns"].as_str().unwrap_or("");
    assert!(
        note.contains("SRV 0 100 8080 web.default.svc.cluster.local."),
        "{note}"
    );
    let tr = sb.syctl_json(&[
        "trace",
        &format!(
            "inport == \"{lport}\" && ip4.dst == {} && dns.qname == \"www.example.test\"",
            sb.ip(server)
        ),
    ]);
    assert_eq!(tr["verdict"], "output", "{tr}");
    assert_eq!(tr["outputs"][0]["port"], sb.pod(server)["lport"], "{tr}");
    assert!(tr["dns"].as_str().unwrap_or("").contains("goes on"), "{tr}");

    // A name under the domain without a record: authoritative NXDOMAIN.
    let before = dns_counters(&sb);
    let (st, a) = dig(&sb, client, NOWHERE, "nope.default.svc.cluster.local", "A");
    assert_eq!((st.as_str(), a.len()), ("NXDOMAIN", 0));
    assert_eq!(dns_counters(&sb)[1], before[1] + 1, "counted nxdomain");

    // A name outside it goes on to the server it was sent to, unchanged.
    let (st, a) = dig(&sb, client, &sb.ip(server), "www.example.test", "A");
    assert_eq!(st, "NOERROR", "{a:?}");
    assert!(a[0].ends_with("A 192.0.2.7"), "{a:?}");
    assert!(dns_counters(&sb)[2] > before[2], "counted as passed on");
    // ...and one to nowhere goes nowhere (no answer is invented).
    let (st, _) = dig(&sb, client, NOWHERE, "www.example.test", "A");
    assert!(st.starts_with("no answer"), "{st}");

    // A record change is answered at once (once the chassis has it).
    sb.syctl(&[
        "--wait=hv",
        "dns-add",
        "--may-exist",
        "ls0",
        web_name,
        &sb.ip(server),
    ]);
    let (_, a) = dig(&sb, client, NOWHERE, web_name, "A");
    assert!(a[0].ends_with(&format!("A {}", sb.ip(server))), "{a:?}");
    sb.syctl(&["--wait=hv", "dns-del", "ls0", web_name]);
    let (st, _) = dig(&sb, client, NOWHERE, web_name, "A");
    assert_eq!(st, "NXDOMAIN");
    // Bad input is refused with its reason, and nothing is written.
    let e = sb.syctl_err(&["dns-add", "ls0", "bad..name", "10.0.0.1"]);
    assert!(e.contains("label"), "{e}");
    let e = sb.syctl_err(&["dns-add", "ls0", "ok.cluster.local", "10.0.0.300"]);
    assert!(e.contains("not an IPv4 or IPv6 address"), "{e}");
    assert!(!sb.syctl(&["dns-list"]).contains("ok.cluster.local"));
    drop(dnsmasq);
}

#[test]
fn a_query_to_a_service_vip_is_answered_from_the_vip_or_balanced_to_the_server() {
    if !can_run("a_query_to_a_service_vip_is_answered_from_the_vip_or_balanced_to_the_server") {
        return;
    }
    if !runs_unless(
        "a_query_to_a_service_vip_is_answered_from_the_vip_or_balanced_to_the_server",
        (!run("sh", &["-c", "command -v dig && command -v dnsmasq"]).0)
            .then_some("dig or dnsmasq is not installed (scripts/setup installs them)"),
    ) {
        return;
    }
    let sb = Sandbox::up(71, 2);
    let (client, server) = (0, 1);
    let _dnsmasq = dnsmasq(&sb, server);
    // kube-dns's shape: a Service VIP on port 53 in front of the server pod.
    let vip = "10.96.0.10";
    sb.syctl(&[
        "lb-add",
        "kube-dns",
        &format!("{vip}:53"),
        &format!("{}:53", sb.ip(server)),
        "udp",
    ]);
    sb.syctl(&["ls-lb-add", "ls0", "kube-dns"]);
    sb.syctl(&[
        "--wait=hv",
        "dns-add",
        "ls0",
        "db.default.svc.cluster.local",
        "10.96.0.20",
    ]);
    // Ours, from the datapath: the answer comes from the VIP, as the
    // resolver expects (conntrack's reply translation applies to it).
    let mut last = (String::new(), vec![]);
    assert!(
        wait_until(Duration::from_secs(10), || {
            last = dig(&sb, client, vip, "db.default.svc.cluster.local", "A");
            last.1.iter().any(|l| l.ends_with("A 10.96.0.20"))
        }),
        "{last:?}"
    );
    // Not ours: balanced to the real server behind the VIP, and back.
    let (st, a) = dig(&sb, client, vip, "www.example.test", "A");
    assert_eq!(st, "NOERROR", "{a:?}");
    assert!(a[0].ends_with("A 192.0.2.7"), "{a:?}");
}

#[test]
fn a_service_from_a_real_manifest_is_reached_by_name_and_goes_with_it() {
    let name = "a_service_from_a_real_manifest_is_reached_by_name_and_goes_with_it";
    if !can_run(name) {
        return;
    }
    if !runs_unless(
        name,
        (!run("sh", &["-c", "command -v dig"]).0)
            .then_some("dig is not installed (scripts/setup installs it)"),
    ) {
        return;
    }
    let sb = Sandbox::up(73, 2);
    let (client, web) = (0, 1);
    let _web = sb.serve_in(&sb.netns(web), "tcp", 8080, "web");
    let _conf = ResolvConf::write(
        &sb.netns(client),
        &format!(
            "nameserver {NOWHERE}\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 attempts:2 timeout:1\n"
        ),
    );
    let manifest = sb.dir.join("web.yaml");
    std::fs::write(
        &manifest,
        format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  clusterIP: 10.96.0.50
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints:
- addresses: [{}]
  conditions: {{ready: true}}
"#,
            sb.ip(web)
        ),
    )
    .expect("manifest");
    let m = manifest.display().to_string();
    let out = sb.syctl(&["--wait=hv", "k8s", "apply", "-f", &m]);
    assert!(out.starts_with("ok: 1 services"), "{out}");
    // By its short name, through the search list and the service VIP.
    let answer = sb.svc_in(&sb.netns(client), "connect", "web", 80, 1);
    assert!(answer[0].starts_with("web "), "connect web:80: {answer:?}");
    let (st, a) = dig(
        &sb,
        client,
        NOWHERE,
        "_http._tcp.web.shop.svc.cluster.local",
        "SRV",
    );
    assert_eq!(st, "NOERROR");
    assert!(
        a[0].ends_with("SRV 0 100 80 web.shop.svc.cluster.local."),
        "{a:?}"
    );
    // The same manifest again writes nothing.
    let again = sb.syctl(&["k8s", "apply", "-f", &m]);
    assert!(again.starts_with("unchanged"), "{again}");
    // Deleted with its manifest: the name is gone (NXDOMAIN), the VIP too.
    let out = sb.syctl(&["--wait=hv", "k8s", "delete", "-f", &m]);
    assert!(out.starts_with("ok: 1 services removed"), "{out}");
    let (st, _) = dig(&sb, client, NOWHERE, "web.shop.svc.cluster.local", "A");
    assert_eq!(st, "NXDOMAIN");
    assert!(!sb.syctl(&["lb-list"]).contains("10.96.0.50"));
    // A manifest that is not one is refused before anything is written.
    std::fs::write(
        &manifest,
        "kind: Service\nmetadata: {name: x}\nspec: {ports: nope}\n",
    )
    .unwrap();
    let e = sb.syctl_err(&["k8s", "apply", "-f", &m]);
    assert!(e.contains("a Service"), "{e}");
}
