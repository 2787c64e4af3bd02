//! `syctl sandbox cni-install`: makes the running sandbox a network that a
//! container runtime can use, by writing a conflist for switchyard-cni where
//! containerd and kubelet look (`/etc/cni/net.d`) and copying the plugin to
//! where they exec plugins from (`/opt/cni/bin`). `sandbox down` removes what
//! it wrote, and every container interface the plugin left behind.

use super::State;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// The conflist's file name; early in the order so it is the default network.
pub const CONFLIST: &str = "10-switchyard.conflist";

/// Where the sandbox's plugin keeps its attachment records.
pub fn state_dir(st: &State) -> PathBuf {
    st.dir.join("cni-state")
}

/// The conflist for the sandbox's daemons and first switch. `chain` names
/// plugins (Debian's `tuning`, ...) run after ours, with no configuration.
pub fn conflist(
    st: &State,
    cni_version: &str,
    chain: &[String],
) -> anyhow::Result<serde_json::Value> {
    if st.nodes.len() > 1 {
        bail!(
            "cni-install needs a one-chassis sandbox: containers join chassis 1's vswitchd \
             from the host's network namespace"
        );
    }
    let mut ours = serde_json::json!({
        "type": "switchyard-cni",
        "nb": st.nb,
        "vswitchd": st.control_sock,
        "switch": st.switch,
        "mtu": 1500,
        "stateDir": state_dir(st),
    });
    // A TLS sandbox: the plugin writes the NB as the operator.
    if let Some(t) = super::pki::operator_creds(st).tls {
        ours["tlsCa"] = serde_json::json!(t.ca);
        ours["tlsCert"] = serde_json::json!(t.cert);
        ours["tlsKey"] = serde_json::json!(t.key);
    }
    let mut plugins = vec![ours];
    plugins.extend(chain.iter().map(|t| serde_json::json!({ "type": t })));
    Ok(serde_json::json!({
        "cniVersion": cni_version,
        "name": "switchyard",
        "plugins": plugins,
    }))
}

fn write_atomically(path: &Path, body: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the conflist and the plugin; records both in the state for `down`.
pub fn install(
    st: &mut State,
    conf_dir: &Path,
    bin_dir: &Path,
    cni_version: &str,
    chain: &[String],
) -> anyhow::Result<Vec<PathBuf>> {
    let list = conflist(st, cni_version, chain)?;
    let plugin = super::binary("switchyard-cni");
    let body = std::fs::read(&plugin).with_context(|| {
        format!(
            "cannot read {} (cargo build --release --bins)",
            plugin.display()
        )
    })?;
    let conf = conf_dir.join(CONFLIST);
    let bin = bin_dir.join("switchyard-cni");
    write_atomically(&bin, &body, 0o755)?;
    st.cni_files.push(bin.clone());
    write_atomically(
        &conf,
        serde_json::to_string_pretty(&list)?.as_bytes(),
        0o644,
    )?;
    st.cni_files.push(conf.clone());
    st.cni_files.dedup();
    st.save()?;
    Ok(vec![conf, bin])
}

/// Removes what `install` wrote and the host ends of every attachment the
/// plugin recorded (their containers' namespaces are the runtime's).
pub fn uninstall(st: &State) {
    for f in &st.cni_files {
        let _ = std::fs::remove_file(f);
    }
    let records = std::fs::read_dir(state_dir(st).join("switchyard"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<switchyard_cli::cni::Record>(&b).ok());
    for r in records {
        let _ = switchyard_cli::cni::wire::remove_link(&r.host_iface);
    }
}
