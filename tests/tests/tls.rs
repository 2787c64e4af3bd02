//! The control plane on mutual TLS: a two-chassis sandbox with `--tls`
//! forwards across chassis; a chassis may act only as itself and may not
//! take another chassis' port; the NB needs an operator certificate or a
//! token; plaintext and anonymous clients are refused; every refusal is
//! logged and counted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use switchyard_southbound::pb::{self, southbound_client::SouthboundClient};
use switchyard_southbound::tls::{endpoint, TlsFiles};
use switchyard_tests::sandbox::{bin_dir, can_run, run, wait_until, Sandbox};

fn files(pki: &Path, who: &str) -> TlsFiles {
    TlsFiles {
        ca: pki.join("ca.pem"),
        cert: Some(pki.join(format!("{who}.pem"))),
        key: Some(pki.join(format!("{who}.key"))),
    }
}

/// A ClaimPort as `as_chassis`, presenting `who`'s certificate.
fn claim(sb_url: &str, tls: &TlsFiles, as_chassis: &str, port: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = endpoint(sb_url, Some(tls))?
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))?;
        SouthboundClient::new(ch)
            .claim_port(pb::ClaimRequest {
                chassis: as_chassis.into(),
                logical_port: port.into(),
                release: false,
            })
            .await
            .map(|_| ())
            .map_err(|s| s.message().to_string())
    })
}

#[test]
fn on_mutual_tls_chassis_act_only_as_themselves_and_the_nb_needs_an_operator() {
    let name = "on_mutual_tls_chassis_act_only_as_themselves_and_the_nb_needs_an_operator";
    if !can_run(name) {
        return;
    }
    let sb = Sandbox::up_with(69, 2, &["--tls", "--chassis", "2"]);
    assert_eq!(sb.state["tls"], true);
    let nb = sb.state["nb"].as_str().unwrap().to_string();
    assert!(nb.starts_with("https://"), "{nb}");
    // The pods talk across chassis: both chassis came in over TLS.
    assert!(sb.ping(0, &sb.ip(1)), "pods on two chassis talk");
    let show = sb.syctl_json(&["show"]);
    assert_eq!(
        show["chassis_nb_version"].as_object().unwrap().len(),
        2,
        "{show}"
    );

    let pki = sb.dir.join("pki");
    let (c1, c2) = (
        sb.state["nodes"][0]["name"].as_str().unwrap().to_string(),
        sb.state["nodes"][1]["name"].as_str().unwrap().to_string(),
    );
    let port_of_c1 = sb.pod(0)["lport"].as_str().unwrap().to_string();
    assert_eq!(sb.pod(0)["chassis"], c1.as_str());
    let sb_url = sb.state["sb"].as_str().unwrap().to_string();
    // Chassis 2, with its own valid certificate, may neither pose as chassis 1
    // nor take chassis 1's port as itself.
    let e = claim(&sb_url, &files(&pki, &c2), &c1, &port_of_c1).unwrap_err();
    assert!(e.contains("may act only as itself"), "{e}");
    let e = claim(&sb_url, &files(&pki, &c2), &c2, &port_of_c1).unwrap_err();
    assert!(e.contains("is bound to chassis"), "{e}");
    // The operator's certificate is not a chassis's.
    let e = claim(&sb_url, &files(&pki, "operator"), &c1, &port_of_c1).unwrap_err();
    assert!(e.contains("needs a chassis certificate"), "{e}");
    // Nothing moved: the port still forwards on chassis 1.
    assert!(sb.ping(1, &sb.ip(0)));
    let show = sb.syctl_json(&["show"]);
    let bound: Vec<_> = show["switches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["ports"].as_array().unwrap().iter())
        .filter(|p| p["name"] == port_of_c1.as_str())
        .map(|p| p["chassis"].clone())
        .collect();
    assert_eq!(bound, vec![serde_json::json!(c1)]);

    // The NB: a chassis certificate, no certificate, plaintext: refused.
    let syctl = |env: &[(&str, &Path)], nb: &str| {
        let out = Command::new(bin_dir().join("syctl"))
            .args(["--connect-timeout", "0", "ls-list"])
            .env("SYCTL_NB", nb)
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_path_buf())))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ca = pki.join("ca.pem");
    let (cert, key) = (pki.join(format!("{c1}.pem")), pki.join(format!("{c1}.key")));
    let (ok, err) = syctl(
        &[
            ("SYCTL_TLS_CA", &ca),
            ("SYCTL_TLS_CERT", &cert),
            ("SYCTL_TLS_KEY", &key),
        ],
        &nb,
    );
    assert!(
        !ok && err.contains("needs an operator certificate"),
        "{err}"
    );
    let (ok, err) = syctl(&[("SYCTL_TLS_CA", &ca)], &nb);
    assert!(
        !ok && err.contains("needs an operator certificate or a token"),
        "{err}"
    );
    let (ok, err) = syctl(&[], &nb.replace("https://", "http://"));
    assert!(!ok && err.contains("TLS"), "{err}");
    // The operator's certificate works (what the sandbox helper passes).
    assert!(sb.syctl(&["ls-list"]).contains("ls0"));

    // Every refusal was logged with who asked, and counted.
    let log = std::fs::read_to_string(sb.dir.join("northd.log")).unwrap();
    assert!(
        log.contains("refused") && log.contains(&format!("who=\"{c2}\"")),
        "{log}"
    );
    let url = sb.state["northd_metrics"].as_str().unwrap();
    let refused = switchyard_tests::metrics::value(
        &switchyard_tests::metrics::scrape(url),
        "switchyard_northd_auth_refused_total",
        None,
    );
    assert!(refused >= 5.0, "{refused} refusals counted");
}

fn northd(args: &[&str]) -> std::process::Child {
    Command::new(bin_dir().join("switchyard-northd"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchyard-northd (cargo build --release --bins first)")
}

#[test]
fn a_token_opens_the_nb_to_scripts_and_plaintext_stays_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    // Plaintext on a non-loopback address: refused at start, with the way out.
    let out = northd(&[
        "--db",
        dir.path().join("db0").to_str().unwrap(),
        "--nb-listen",
        "0.0.0.0:17986",
        "--sb-listen",
        "127.0.0.1:17987",
    ])
    .wait_with_output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("not a loopback address") && err.contains("--allow-plaintext"),
        "{err}"
    );
    // A short token is refused too.
    std::fs::write(dir.path().join("short"), "abc\n").unwrap();
    let out = northd(&[
        "--nb-token-file",
        dir.path().join("short").to_str().unwrap(),
    ])
    .wait_with_output()
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("shorter than 16"));

    let token = "s3cret-token-for-scripts-0123456789";
    std::fs::write(dir.path().join("tokens"), format!("# scripts\n{token}\n")).unwrap();
    let mut child = northd(&[
        "--db",
        dir.path().join("db").to_str().unwrap(),
        "--nb-listen",
        "127.0.0.1:17988",
        "--sb-listen",
        "127.0.0.1:17989",
        "--nb-token-file",
        dir.path().join("tokens").to_str().unwrap(),
    ]);
    let syctl = |token: Option<&str>, args: &[&str]| {
        let mut c = Command::new(bin_dir().join("syctl"));
        c.args(args).env("SYCTL_NB", "http://127.0.0.1:17988");
        if let Some(t) = token {
            c.env("SYCTL_TOKEN", t);
        }
        let out = c.stdin(Stdio::null()).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(
        wait_until(Duration::from_secs(10), || syctl(Some(token), &["ls-list"])
            .0),
        "northd with a token never answered"
    );
    assert!(syctl(Some(token), &["ls-add", "by-script"]).0);
    let (ok, err) = syctl(None, &["ls-add", "anonymous"]);
    assert!(
        !ok && err.contains("needs an operator certificate or a token"),
        "{err}"
    );
    let (ok, err) = syctl(Some("s3cret-token-for-scripts-0123456788"), &["ls-list"]);
    assert!(!ok && err.contains("or a token"), "{err}");
    let (_, out, _) = run(
        bin_dir().join("syctl").to_str().unwrap(),
        &[
            "--nb",
            "http://127.0.0.1:17988",
            "--token",
            token,
            "ls-list",
        ],
    );
    assert!(
        out.contains("by-script") && !out.contains("anonymous"),
        "{out}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
