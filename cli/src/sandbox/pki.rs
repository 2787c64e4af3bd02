//! `syctl sandbox up --tls`: a CA of the sandbox's own and a certificate for
//! everything it starts, in `DIR/pki`: northd (its addresses in the SAN), each
//! chassis (CN = chassis name, OU = chassis) and the operator (OU = operator,
//! what syctl and the CNI plugin use). Keys are written mode 0600.

use super::{Opts, State};
use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use switchyard_southbound::tls::{TlsFiles, ROLE_CHASSIS, ROLE_NORTHD, ROLE_OPERATOR};

pub fn dir(st: &State) -> PathBuf {
    st.dir.join("pki")
}

/// The files of `who` ("northd", "operator", or a chassis name).
pub fn files(pki: &Path, who: &str) -> TlsFiles {
    TlsFiles {
        ca: pki.join("ca.pem"),
        cert: Some(pki.join(format!("{who}.pem"))),
        key: Some(pki.join(format!("{who}.key"))),
    }
}

fn write(path: &Path, body: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(body.as_bytes())?;
    Ok(())
}

/// Makes the CA and every certificate. `northd_addrs`: what clients dial.
pub fn make(pki: &Path, northd_addrs: &[String], chassis: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(pki)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "Switchyard sandbox CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    write(&pki.join("ca.pem"), &ca_cert.pem(), 0o644)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |who: &str, name: &str, role: &str, sans: Vec<String>| -> anyhow::Result<()> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(sans)?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, role);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &issuer)?;
        write(pki.join(format!("{who}.pem")).as_path(), &cert.pem(), 0o644)?;
        write(
            pki.join(format!("{who}.key")).as_path(),
            &key.serialize_pem(),
            0o600,
        )
    };
    let mut sans: Vec<String> = northd_addrs.to_vec();
    sans.push("localhost".into());
    leaf("northd", "northd", ROLE_NORTHD, sans)?;
    leaf("operator", "admin", ROLE_OPERATOR, Vec::new())?;
    for c in chassis {
        leaf(c, c, ROLE_CHASSIS, Vec::new())?;
    }
    Ok(())
}

/// northd's flags for the sandbox: TLS with `--tls`; otherwise plaintext,
/// which off loopback (the chassis' underlay) northd must be told to allow.
pub fn northd_args(o: &Opts, st: &State) -> anyhow::Result<Vec<String>> {
    let sb_host = st.sb.rsplit_once("://").map_or(st.sb.as_str(), |(_, h)| h);
    if !o.tls {
        let off_loopback = !sb_host.starts_with("127.");
        return Ok(if off_loopback {
            vec!["--allow-plaintext".into()]
        } else {
            Vec::new()
        });
    }
    let host = sb_host
        .rsplit_once(':')
        .map_or(sb_host, |(h, _)| h)
        .to_string();
    let mut addrs = vec!["127.0.0.1".to_string()];
    if host != "127.0.0.1" {
        addrs.push(host);
    }
    let chassis: Vec<String> = st.nodes.iter().map(|n| n.name.clone()).collect();
    make(&dir(st), &addrs, &chassis)?;
    Ok(flags(&files(&dir(st), "northd")))
}

/// `--tls-ca CA --tls-cert CERT --tls-key KEY` for a daemon.
fn flags(f: &TlsFiles) -> Vec<String> {
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    vec![
        "--tls-ca".into(),
        f.ca.display().to_string(),
        "--tls-cert".into(),
        path(&f.cert),
        "--tls-key".into(),
        path(&f.key),
    ]
}

/// A chassis's vswitchd flags under `--tls`.
pub fn vswitchd_args(st: &State, chassis: &str) -> Vec<String> {
    if !st.tls {
        return Vec::new();
    }
    flags(&files(&dir(st), chassis))
}

/// What the sandbox's own NB calls (and syctl against it) present.
pub fn operator_creds(st: &State) -> switchyard_cli::nb_client::Creds {
    switchyard_cli::nb_client::Creds {
        tls: st.tls.then(|| files(&dir(st), "operator")),
        token: Default::default(),
    }
}
