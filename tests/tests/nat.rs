//! Router NAT with real daemons, real pods and AF_XDP: pods on two subnets
//! behind lr0 and an external host on 172.16.0.0/24 that has no route to them
//! (`syctl sandbox up --subnets 2 --external`).

use switchyard_tests::sandbox::{can_run, Sandbox};

const EXT_IP: &str = "172.16.0.10";
const SNAT_IP: &str = "172.16.0.100";
const FLOATING_IP: &str = "172.16.0.50";

#[test]
fn snat_floating_ips_and_icmp_errors_between_pods_and_the_outside() {
    if !can_run("snat_floating_ips_and_icmp_errors_between_pods_and_the_outside") {
        return;
    }
    let sb = Sandbox::up_with(42, 2, &["--subnets", "2", "--external"]);
    let ext = sb.ext_netns();
    let (pod1, pod2) = (sb.netns(0), sb.netns(1));
    let _ext_srv = sb.serve_in(&ext, "tcp", 9000, "ext");
    let _pod2_srv = sb.serve_in(&pod2, "tcp", 8080, "p2");

    // Without NAT the outside cannot answer: it has no route to the pods.
    let l = sb.svc_in(&pod1, "connect", EXT_IP, 9000, 1);
    assert!(l[0].starts_with("ERR"), "{l:?}");

    // SNAT: the outside sees only the external IP.
    sb.syctl(&["lr-nat-add", "lr0", "snat", SNAT_IP, "10.244.0.0/16"]);
    assert!(
        sb.connect_until(&pod1, EXT_IP, 9000, |a| a
            .starts_with(&format!("ext {SNAT_IP} "))),
        "SNAT never worked"
    );
    let lines = sb.svc_in(&pod1, "connect", EXT_IP, 9000, 10);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with(&format!("ext {SNAT_IP} "))),
        "{lines:?}"
    );
    assert!(sb.ping(0, EXT_IP), "ping through SNAT");
    // An ICMP error about a translated connection is translated back: UDP to
    // a closed port outside is refused in the pod.
    let l = sb.svc_in(&pod1, "udp", EXT_IP, 9999, 1);
    assert_eq!(l[0], "ERR ConnectionRefusedError");

    // dnat_and_snat: a floating IP for pod2, reachable from the outside, and
    // pod2's own connections leave with it (longest prefix beats the SNAT).
    sb.syctl(&["lr-nat-add", "lr0", "dnat_and_snat", FLOATING_IP, &sb.ip(1)]);
    assert!(
        sb.connect_until(&ext, FLOATING_IP, 8080, |a| a
            .starts_with(&format!("p2 {EXT_IP} "))),
        "floating IP never reachable"
    );
    let l = sb.svc_in(&pod2, "connect", EXT_IP, 9000, 3);
    assert!(
        l.iter()
            .all(|x| x.starts_with(&format!("ext {FLOATING_IP} "))),
        "{l:?}"
    );
    let (ok, out, _) = sb.exec_ns(&ext, &["ping", "-c", "1", "-W", "1", FLOATING_IP]);
    assert!(ok, "{out}");
    assert!(sb.ping(1, EXT_IP));

    let show = sb.syctl(&["show"]);
    assert!(
        show.contains(&format!("nat snat {SNAT_IP} <-> 10.244.0.0/16")),
        "{show}"
    );
    // Conntrack shows the translations in the router's zone.
    let conns = sb.syctl_json(&["vswitch", "ct-list"]);
    let conns = conns.as_array().expect("list");
    assert!(
        conns.iter().any(|c| c["nat"] == true
            && c["reply"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("-> {SNAT_IP}:"))),
        "{conns:?}"
    );
    let t = sb.syctl(&[
        "trace",
        &format!("inport == \"ext-host\" && ip4.dst == {FLOATING_IP} && tcp.dst == 8080"),
        "--summary",
    ]);
    assert!(t.contains("ct_dnat") && t.contains("ls1-pod2"), "{t}");

    // Removing the floating IP closes the door again.
    sb.syctl(&["lr-nat-del", "lr0", "dnat_and_snat", FLOATING_IP]);
    sb.syctl(&["vswitch", "ct-flush"]);
    assert!(
        sb.connect_until(&ext, FLOATING_IP, 8080, |a| a.starts_with("ERR")),
        "floating IP still reachable"
    );

    // Bad input is refused with a clear error, and nothing is written.
    let before = sb.syctl_json(&["lr-nat-list", "lr0"]);
    let e = sb.syctl_err(&["lr-nat-add", "lr0", "snat", "192.0.2.1", "10.244.0.0/16"]);
    assert!(e.contains("no port of router"), "{e}");
    let e = sb.syctl_err(&["lr-nat-add", "lr0", "snat", SNAT_IP, "10.244.0.1/16"]);
    assert!(e.contains("host bits"), "{e}");
    let e = sb.syctl_err(&["lr-nat-add", "lr0", "masquerade", SNAT_IP, "10.244.0.0/16"]);
    assert!(e.contains("snat, dnat or dnat_and_snat"), "{e}");
    let e = sb.syctl_err(&["lb-add", "bad", "10.96.0.10", "10.244.0.11:80"]);
    assert!(e.contains("IP:PORT"), "{e}");
    sb.syctl(&["lb-add", "one", "10.96.0.10:80", "10.244.0.11:80"]);
    let e = sb.syctl_err(&["lb-add", "two", "10.96.0.10:80", "10.244.0.12:80"]);
    assert!(
        e.contains("already belongs to load balancer \"one\""),
        "{e}"
    );
    let e = sb.syctl_err(&["lb-add", "one", "10.96.0.10:80", "10.244.0.12:80"]);
    assert!(e.contains("--may-exist"), "{e}");
    let e = sb.syctl_err(&["ls-lb-add", "nosuch", "one"]);
    assert!(e.contains("does not exist"), "{e}");
    assert_eq!(sb.syctl_json(&["lr-nat-list", "lr0"]), before);
    let lbs = sb.syctl_json(&["lb-list"]);
    assert_eq!(lbs.as_array().map(Vec::len), Some(1), "{lbs}");
}
