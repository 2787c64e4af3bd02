//! The CNI contract as switchyard-cni speaks it (CNI spec 1.1): the network
//! configuration it reads, the environment, the result and error objects it
//! prints. Kept apart from what the plugin does, so the wire format can be
//! tested on the spec's own JSON.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Versions whose configuration and result this plugin reads and writes.
pub const SUPPORTED: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A CNI error object (spec: "Error"): printed on stdout, exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

/// The spec's well-known error codes this plugin returns.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    /// Plugin-specific (100+): CHECK found the attachment not as configured.
    pub const NOT_AS_CONFIGURED: u32 = 100;
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn to_json(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "code": self.code,
            "msg": self.msg,
            "details": self.details,
        })
    }
}

/// One entry of GC's `cni.dev/valid-attachments`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The network configuration (one plugin's object of a conflist, with
/// `name` and `cniVersion` copied in by the runtime).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConf {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub name: String,
    #[serde(rename = "type")]
    pub plugin: String,
    /// NB API of switchyard-northd; several, comma-separated, for HA.
    #[serde(default = "default_nb")]
    pub nb: String,
    /// The local switchyard-vswitchd's control socket.
    #[serde(default = "default_vswitchd")]
    pub vswitchd: PathBuf,
    /// The logical switch pods of this network join.
    pub switch: String,
    /// The pod interface's MTU (default: room for Geneve on a 1,500-byte underlay).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Where each attachment's record is kept for DEL, CHECK and GC.
    #[serde(rename = "stateDir", default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// How long ADD waits for the datapath to run the new port.
    #[serde(rename = "readyTimeoutSeconds", default = "default_ready")]
    pub ready_timeout: u64,
    /// With a TLS control plane: the CA, and the certificate and key the
    /// plugin writes the NB with (an operator certificate).
    #[serde(rename = "tlsCa", default)]
    pub tls_ca: Option<PathBuf>,
    #[serde(rename = "tlsCert", default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(rename = "tlsKey", default)]
    pub tls_key: Option<PathBuf>,
    /// Or a file holding an NB token (northd --nb-token-file).
    #[serde(rename = "tokenFile", default)]
    pub token_file: Option<PathBuf>,
    /// Handed through into the result.
    #[serde(default)]
    pub dns: Option<Value>,
    #[serde(default)]
    pub capabilities: Option<Value>,
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: Option<Value>,
    #[serde(default)]
    pub args: Option<Value>,
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<Attachment>>,
    #[serde(rename = "disableCheck", default)]
    pub disable_check: Option<bool>,
    #[serde(rename = "disableGC", default)]
    pub disable_gc: Option<bool>,
}

fn default_nb() -> String {
    "http://127.0.0.1:6641".into()
}
fn default_vswitchd() -> PathBuf {
    "/run/switchyard/vswitchd.sock".into()
}
fn default_state_dir() -> PathBuf {
    "/var/lib/cni/switchyard".into()
}
fn default_ready() -> u64 {
    10
}

impl NetConf {
    /// Parses and checks a configuration read from stdin.
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        let v: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                code::DECODE,
                "cannot decode the network configuration",
                e.to_string(),
            )
        })?;
        let conf: NetConf = serde_json::from_value(v).map_err(|e| {
            let s = e.to_string();
            let c = if s.contains("unknown field") {
                code::UNSUPPORTED_FIELD
            } else {
                code::INVALID_CONFIG
            };
            CniError::new(c, "invalid network configuration", s)
        })?;
        if !SUPPORTED.contains(&conf.cni_version.as_str()) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("cniVersion {:?} is not supported", conf.cni_version),
                format!("supported: {}", SUPPORTED.join(", ")),
            ));
        }
        if conf.switch.is_empty() {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                "invalid network configuration",
                "\"switch\" names the logical switch pods join",
            ));
        }
        if let Some(m) = conf.mtu {
            if !(576..=65_535).contains(&m) {
                return Err(CniError::new(
                    code::INVALID_CONFIG,
                    "invalid network configuration",
                    format!("mtu {m}: give 576 to 65535"),
                ));
            }
        }
        Ok(conf)
    }
}

/// The runtime's environment for one call.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// CNI_ARGS as key/value pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, ...).
    pub args: Vec<(String, String)>,
}

impl Env {
    pub fn from(get: impl Fn(&str) -> Option<String>) -> Env {
        let args = get("CNI_ARGS")
            .unwrap_or_default()
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env {
            command: get("CNI_COMMAND").unwrap_or_default(),
            container_id: get("CNI_CONTAINERID").unwrap_or_default(),
            netns: get("CNI_NETNS").unwrap_or_default(),
            ifname: get("CNI_IFNAME").unwrap_or_default(),
            args,
        }
    }

    pub fn arg(&self, k: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// Checks the variables a command needs (spec: error 4 when missing).
    pub fn require(&self, netns: bool) -> Result<(), CniError> {
        let mut missing = Vec::new();
        if self.container_id.is_empty() {
            missing.push("CNI_CONTAINERID");
        }
        if self.ifname.is_empty() {
            missing.push("CNI_IFNAME");
        }
        if netns && self.netns.is_empty() {
            missing.push("CNI_NETNS");
        }
        if !missing.is_empty() {
            return Err(CniError::new(
                code::INVALID_ENV,
                "missing environment variables",
                missing.join(", "),
            ));
        }
        if self.ifname.len() > 15 || self.ifname.contains('/') || self.ifname.contains(' ') {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!("CNI_IFNAME {:?} is not an interface name", self.ifname),
                "at most 15 characters, no '/' or spaces",
            ));
        }
        Ok(())
    }
}

/// What ADD made, as the result reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Wired {
    pub host_iface: String,
    pub host_mac: String,
    pub ifname: String,
    pub mac: String,
    pub netns: String,
    /// "10.0.0.5/24".
    pub address: String,
    pub gateway: Option<String>,
}

/// The ADD (and CHECK's prevResult) result in `version`'s format.
pub fn result(version: &str, w: &Wired, dns: Option<&Value>) -> Value {
    let old = version.starts_with("0.");
    let mut ip = json!({ "address": w.address, "interface": 1 });
    if old {
        ip["version"] = json!("4");
    }
    if let Some(gw) = &w.gateway {
        ip["gateway"] = json!(gw);
    }
    let routes: Vec<Value> = w
        .gateway
        .iter()
        .map(|gw| json!({ "dst": "0.0.0.0/0", "gw": gw }))
        .collect();
    json!({
        "cniVersion": version,
        "interfaces": [
            { "name": w.host_iface, "mac": w.host_mac },
            { "name": w.ifname, "mac": w.mac, "sandbox": w.netns },
        ],
        "ips": [ip],
        "routes": routes,
        "dns": dns.cloned().unwrap_or_else(|| json!({})),
    })
}

/// VERSION's answer.
pub fn versions(version: &str) -> Value {
    json!({ "cniVersion": version, "supportedVersions": SUPPORTED })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str =
        r#"{"cniVersion":"1.1.0","name":"sy","type":"switchyard-cni","switch":"ls0"}"#;

    #[test]
    fn the_spec_s_json_in_and_out() {
        let c = NetConf::parse(CONF.as_bytes()).unwrap();
        assert_eq!(c.nb, "http://127.0.0.1:6641");
        assert_eq!(c.switch, "ls0");
        let w = Wired {
            host_iface: "syabc".into(),
            host_mac: "02:00:00:00:00:01".into(),
            ifname: "eth0".into(),
            mac: "0a:58:0a:00:00:05".into(),
            netns: "/var/run/netns/x".into(),
            address: "10.0.0.5/24".into(),
            gateway: Some("10.0.0.1".into()),
        };
        let r = result("1.1.0", &w, None);
        assert_eq!(r["ips"][0]["interface"], 1);
        assert_eq!(r["interfaces"][1]["sandbox"], "/var/run/netns/x");
        assert_eq!(r["routes"][0]["gw"], "10.0.0.1");
        assert!(r["ips"][0].get("version").is_none());
        assert_eq!(result("0.4.0", &w, None)["ips"][0]["version"], "4");
        assert_eq!(versions("1.0.0")["supportedVersions"][4], "1.1.0");
    }

    #[test]
    fn bad_configurations_get_the_spec_s_codes() {
        let code_of = |s: &str| NetConf::parse(s.as_bytes()).unwrap_err().code;
        assert_eq!(code_of("{"), code::DECODE);
        assert_eq!(
            code_of(r#"{"cniVersion":"9.9.9","name":"sy","type":"t","switch":"ls0"}"#),
            code::INCOMPATIBLE_VERSION
        );
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"sy","type":"t"}"#),
            code::INVALID_CONFIG
        );
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"sy","type":"t","switch":"a","bridge":"x"}"#),
            code::UNSUPPORTED_FIELD
        );
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"sy","type":"t","switch":"a","mtu":70000}"#),
            code::INVALID_CONFIG
        );
        let e = Env::from(|k| (k == "CNI_IFNAME").then(|| "eth0".to_string()));
        assert_eq!(e.require(true).unwrap_err().code, code::INVALID_ENV);
        let e = Env::from(|k| match k {
            "CNI_CONTAINERID" => Some("c".into()),
            "CNI_IFNAME" => Some("much-too-long-name0".into()),
            "CNI_ARGS" => Some("IgnoreUnknown=1;K8S_POD_NAME=web".into()),
            _ => None,
        });
        assert_eq!(e.arg("K8S_POD_NAME"), Some("web"));
        assert_eq!(e.require(false).unwrap_err().code, code::INVALID_ENV);
    }
}
