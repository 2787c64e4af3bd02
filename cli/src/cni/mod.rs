//! switchyard-cni, a CNI 1.1 plugin: a container's interface becomes a port of
//! a Switchyard logical switch. ADD creates the logical switch port with
//! `addresses: dynamic` (northd assigns MAC and IP), pins its port security to
//! that assignment, wires a veth into the container, binds the host end in
//! the local vswitchd and returns once the datapath runs the port. DEL undoes
//! all of it and is idempotent; CHECK compares what is with what should be;
//! STATUS says whether northd and vswitchd answer; GC removes attachments the
//! runtime no longer knows; VERSION lists the versions spoken.
//!
//! Every attachment (container ID + interface name) has a record in
//! `stateDir`, written before anything else is made, so a DEL or GC after a
//! crash half-way through ADD still finds what to remove.

pub mod spec;
pub mod wire;

use spec::{code, Attachment, CniError, Env, NetConf, Wired};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchyard_control::{call, Request, Response};
use switchyard_southbound::pb::{self, nb_op::Op};

/// external_ids keys of the ports the plugin makes.
pub const OWNER: &str = "switchyard-cni/network";
const CONTAINER: &str = "switchyard-cni/container-id";
const IFNAME: &str = "switchyard-cni/ifname";
const CHASSIS: &str = "switchyard-cni/chassis";

/// One attachment's record (stateDir/NETWORK/ID).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub lport: String,
    pub host_iface: String,
    pub switch: String,
    #[serde(default)]
    pub wired: Option<Wired>,
}

/// The plugin's entry point: reads the environment and stdin, prints the
/// result or the error object, returns the exit status.
pub fn main() -> i32 {
    use std::io::Read;
    let env = Env::from(|k| std::env::var(k).ok());
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let version = serde_json::from_slice::<serde_json::Value>(&stdin)
        .ok()
        .and_then(|v| v["cniVersion"].as_str().map(str::to_string))
        .unwrap_or_else(|| "1.1.0".into());
    let out = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(dispatch(&env, &stdin, &version)),
        Err(e) => Err(CniError::new(code::IO_FAILURE, "no runtime", e.to_string())),
    };
    match out {
        Ok(Some(v)) => {
            println!("{v}");
            0
        }
        Ok(None) => 0,
        Err(e) => {
            println!("{}", e.to_json(&version));
            1
        }
    }
}

async fn dispatch(
    env: &Env,
    stdin: &[u8],
    version: &str,
) -> Result<Option<serde_json::Value>, CniError> {
    if env.command == "VERSION" {
        return Ok(Some(spec::versions(version)));
    }
    let conf = NetConf::parse(stdin)?;
    match env.command.as_str() {
        "ADD" => {
            env.require(true)?;
            if !std::path::Path::new(&env.netns).exists() {
                return Err(CniError::new(
                    code::UNKNOWN_CONTAINER,
                    format!("network namespace {} does not exist", env.netns),
                    "the container is gone, or CNI_NETNS is wrong",
                ));
            }
            match add(&conf, env).await {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    // A failed ADD leaves nothing behind (the runtime's DEL
                    // would remove it too; a node should not wait for that).
                    if e.code != code::TRY_AGAIN_LATER
                        && !e.msg.contains("is not this attachment's")
                    {
                        let _ = del(&conf, &env.container_id, &env.ifname).await;
                    }
                    Err(e)
                }
            }
        }
        "DEL" => {
            env.require(false)?;
            del(&conf, &env.container_id, &env.ifname)
                .await
                .map(|_| None)
        }
        "CHECK" => {
            env.require(true)?;
            check(&conf, env).await.map(|_| None)
        }
        "STATUS" => status(&conf).await.map(|_| None),
        "GC" => gc(&conf).await.map(|_| None),
        other => Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, STATUS, GC, VERSION"),
            "",
        )),
    }
}

fn later(what: &str, e: impl std::fmt::Display) -> CniError {
    CniError::new(code::TRY_AGAIN_LATER, what, e.to_string())
}

/// The plugin's NB credentials from its configuration.
fn creds(conf: &NetConf) -> Result<crate::nb_client::Creds, CniError> {
    let bad = |e: String| CniError::new(code::INVALID_CONFIG, "invalid network configuration", e);
    let tls = switchyard_southbound::tls::TlsFiles::from_flags(
        conf.tls_ca.as_deref(),
        conf.tls_cert.as_deref(),
        conf.tls_key.as_deref(),
    )
    .map_err(|e| {
        bad(e.replace(
            "--tls-ca, --tls-cert and --tls-key",
            "tlsCa, tlsCert and tlsKey",
        ))
    })?;
    let token = match &conf.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| bad(format!("tokenFile {}: {e}", p.display())))?,
        ),
        None => None,
    };
    Ok(crate::nb_client::Creds {
        tls,
        token: switchyard_southbound::tls::Token::new(token.as_deref()).map_err(bad)?,
    })
}

async fn nb(conf: &NetConf) -> Result<crate::nb_client::Nb, CniError> {
    crate::nb_client::connect(&conf.nb, Duration::from_secs(5), &creds(conf)?)
        .await
        .map_err(|e| later("switchyard-northd does not answer", format!("{e:#}")))
}

async fn transact(c: &mut crate::nb_client::Nb, ops: Vec<Op>) -> Result<(), CniError> {
    c.transact(crate::nb_client::request(ops, false, false))
        .await
        .map(|_| ())
        .map_err(|s| {
            CniError::new(
                code::INVALID_CONFIG,
                "the NB refused the change",
                s.message().to_string(),
            )
        })
}

async fn nb_get(c: &mut crate::nb_client::Nb) -> Result<pb::NbDatabase, CniError> {
    c.get(pb::GetRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|s| later("cannot read the NB", s.message()))
}

fn vswitchd(conf: &NetConf, req: &Request) -> Result<Response, CniError> {
    call(&conf.vswitchd, req).map_err(|e| later("switchyard-vswitchd does not answer", e))
}

fn chassis(conf: &NetConf) -> Result<String, CniError> {
    match vswitchd(conf, &Request::Status)? {
        Response::Status(s) => Ok(s.chassis),
        other => Err(later("unexpected vswitchd answer", format!("{other:?}"))),
    }
}

/// Names of an attachment: the logical port (unique in the cluster: the
/// chassis is part of the hash) and the host interface (15 bytes at most).
pub fn names(chassis: &str, container_id: &str, ifname: &str) -> (String, String, String) {
    // FNV-1a, 64 bits: stable across releases, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in chassis
        .bytes()
        .chain([0])
        .chain(container_id.bytes())
        .chain([0])
        .chain(ifname.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let tag = format!("{:012x}", h & 0xffff_ffff_ffff);
    (format!("cni-{tag}"), format!("sy{tag}"), format!("sz{tag}"))
}

fn record_path(conf: &NetConf, container_id: &str, ifname: &str) -> PathBuf {
    let safe: String = container_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    conf.state_dir
        .join(&conf.name)
        .join(format!("{safe}-{ifname}"))
}

fn save(conf: &NetConf, r: &Record) -> Result<(), CniError> {
    let io = |e: std::io::Error| {
        CniError::new(
            code::IO_FAILURE,
            "cannot write the attachment record",
            e.to_string(),
        )
    };
    let path = record_path(conf, &r.container_id, &r.ifname);
    std::fs::create_dir_all(path.parent().expect("in a directory")).map_err(io)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(r).expect("serialisable")).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

fn load(conf: &NetConf, container_id: &str, ifname: &str) -> Option<Record> {
    let body = std::fs::read(record_path(conf, container_id, ifname)).ok()?;
    serde_json::from_slice(&body).ok()
}

/// The router port address on `switch`'s subnet holding `ip`: the pod's gateway.
fn gateway(db: &pb::NbDatabase, switch: &str, ip: std::net::Ipv4Addr) -> Option<String> {
    db.ports
        .iter()
        .filter(|p| p.switch_name == switch && p.r#type == "router")
        .filter_map(|p| p.options.get("router-port"))
        .filter_map(|lrp| db.router_ports.iter().find(|r| &r.name == lrp))
        .flat_map(|r| r.networks.iter())
        .filter_map(|n| n.parse::<ipnet::Ipv4Net>().ok())
        .find(|n| n.contains(&ip))
        .map(|n| n.addr().to_string())
}

async fn add(conf: &NetConf, env: &Env) -> Result<serde_json::Value, CniError> {
    let chassis = chassis(conf)?;
    let (lport, host, peer) = names(&chassis, &env.container_id, &env.ifname);
    let mut rec = Record {
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone(),
        netns: env.netns.clone(),
        lport: lport.clone(),
        host_iface: host.clone(),
        switch: conf.switch.clone(),
        wired: None,
    };
    let mut c = nb(conf).await?;
    let db = nb_get(&mut c).await?;
    let Some(ls) = db.switches.iter().find(|s| s.name == conf.switch) else {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            format!("logical switch {:?} does not exist", conf.switch),
            "create it (syctl ls-add NAME --subnet CIDR) or fix \"switch\"",
        ));
    };
    let prefix = ls
        .subnet
        .parse::<ipnet::Ipv4Net>()
        .map_err(|_| {
            CniError::new(
                code::INVALID_CONFIG,
                format!(
                    "logical switch {:?} has no IPv4 subnet to assign from",
                    ls.name
                ),
                "syctl ls-add NAME --subnet CIDR",
            )
        })?
        .prefix_len();
    // A port left by an earlier, interrupted ADD of the same attachment is
    // taken over; anything else of that name is not ours to touch.
    if let Some(old) = db.ports.iter().find(|p| p.name == lport) {
        if old.external_ids.get(CONTAINER) != Some(&env.container_id) {
            return Err(CniError::new(
                code::IO_FAILURE,
                format!("logical port {lport:?} exists and is not this attachment's"),
                "",
            ));
        }
        save(conf, &rec)?;
    } else {
        // The record first: a crash from here on leaves DEL and GC a trail.
        save(conf, &rec)?;
        let mut ids = std::collections::HashMap::from([
            (OWNER.to_string(), conf.name.clone()),
            (CONTAINER.to_string(), env.container_id.clone()),
            (IFNAME.to_string(), env.ifname.clone()),
            (CHASSIS.to_string(), chassis.clone()),
        ]);
        for (k, key) in [
            ("K8S_POD_NAMESPACE", "k8s/namespace"),
            ("K8S_POD_NAME", "k8s/pod"),
        ] {
            if let Some(v) = env.arg(k) {
                ids.insert(key.into(), v.into());
            }
        }
        transact(
            &mut c,
            vec![Op::LspAdd(pb::LogicalSwitchPort {
                name: lport.clone(),
                switch_name: conf.switch.clone(),
                addresses: vec!["dynamic".into()],
                external_ids: ids,
                enabled: true,
                ..Default::default()
            })],
        )
        .await?;
    }
    let db = nb_get(&mut c).await?;
    let port = db
        .ports
        .iter()
        .find(|p| p.name == lport)
        .ok_or_else(|| later("the new port is gone from the NB", &lport))?;
    let mut words = port.dynamic_addresses.split_whitespace();
    let (Some(mac), Some(ip)) = (words.next(), words.next()) else {
        return Err(CniError::new(
            code::IO_FAILURE,
            "northd assigned no IP address",
            format!("dynamic_addresses {:?}", port.dynamic_addresses),
        ));
    };
    let ip4: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| CniError::new(code::IO_FAILURE, "bad assigned address", ip.to_string()))?;
    // Port security pinned to the assignment: the pod sends as itself only.
    transact(
        &mut c,
        vec![Op::LspSetPortSecurity(pb::SetAddresses {
            port: lport.clone(),
            addresses: vec![port.dynamic_addresses.clone()],
        })],
    )
    .await?;
    let gw = gateway(&db, &conf.switch, ip4);
    // Anything an interrupted ADD left on this node goes first.
    let _ = vswitchd(
        conf,
        &Request::PortDel {
            iface: host.clone(),
        },
    );
    wire::remove_link(&host)?;
    wire::remove_link(&peer)?;
    let address = format!("{ip}/{prefix}");
    let mtu = conf.mtu.unwrap_or(default_mtu());
    wire::make(
        &host,
        &peer,
        &wire::PodEnd {
            netns: &env.netns,
            ifname: &env.ifname,
            mac,
            address: &address,
            gateway: gw.as_deref(),
            mtu,
        },
    )?;
    bind(conf, &host, &lport)?;
    let wired = Wired {
        host_mac: wire::host_mac(&host),
        host_iface: host,
        ifname: env.ifname.clone(),
        mac: mac.to_string(),
        netns: env.netns.clone(),
        address,
        gateway: gw,
    };
    rec.wired = Some(wired.clone());
    save(conf, &rec)?;
    Ok(spec::result(&conf.cni_version, &wired, conf.dns.as_ref()))
}

/// Room for the Geneve encapsulation on a 1,500-byte underlay.
fn default_mtu() -> u32 {
    1500 - switchyard_geneve::tunnel::MTU_OVERHEAD as u32
}

/// Binds the host end in vswitchd and waits until the datapath runs it.
fn bind(conf: &NetConf, host: &str, lport: &str) -> Result<(), CniError> {
    let deadline = Instant::now() + Duration::from_secs(conf.ready_timeout);
    let req = Request::PortAdd {
        iface: host.to_string(),
        lport: lport.to_string(),
    };
    loop {
        match vswitchd(conf, &req)? {
            Response::Ok => break,
            // The SB has not reached this chassis yet.
            Response::Error(e)
                if e.contains("does not exist in the southbound database")
                    && Instant::now() < deadline => {}
            Response::Error(e) => {
                return Err(CniError::new(
                    code::IO_FAILURE,
                    "vswitchd refused the port",
                    e,
                ))
            }
            other => return Err(later("unexpected vswitchd answer", format!("{other:?}"))),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    loop {
        if let Response::Ports(ps) = vswitchd(conf, &Request::PortList)? {
            if ps.iter().any(|p| p.iface == host && p.bound) {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(later(
                "the datapath does not run the port yet",
                format!("{lport} on {host} after {} s", conf.ready_timeout),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Removes one attachment: host interface, vswitchd binding, logical port,
/// record. Anything already gone is skipped, so DEL can run any number of times.
async fn del(conf: &NetConf, container_id: &str, ifname: &str) -> Result<(), CniError> {
    let Some(rec) = load(conf, container_id, ifname) else {
        return Ok(());
    };
    match vswitchd(
        conf,
        &Request::PortDel {
            iface: rec.host_iface.clone(),
        },
    )? {
        Response::Ok => {}
        Response::Error(e) if e.contains("is not bound") => {}
        Response::Error(e) => {
            return Err(CniError::new(
                code::IO_FAILURE,
                "vswitchd refused to unbind",
                e,
            ))
        }
        _ => {}
    }
    wire::remove_link(&rec.host_iface)?;
    // The peer, if a crash left it in the host before it was moved.
    wire::remove_link(&format!(
        "sz{}",
        &rec.host_iface[2.min(rec.host_iface.len())..]
    ))?;
    let mut c = nb(conf).await?;
    c.transact(crate::nb_client::request(
        vec![Op::LspDel(rec.lport.clone())],
        false,
        true,
    ))
    .await
    .map_err(|s| later("the NB refused to delete the port", s.message()))?;
    let _ = std::fs::remove_file(record_path(conf, container_id, ifname));
    Ok(())
}

async fn check(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let not = |what: String| CniError::new(code::NOT_AS_CONFIGURED, what, "");
    let Some(rec) = load(conf, &env.container_id, &env.ifname) else {
        return Err(CniError::new(
            code::UNKNOWN_CONTAINER,
            format!("no attachment {} {}", env.container_id, env.ifname),
            "",
        ));
    };
    let w = rec
        .wired
        .as_ref()
        .ok_or_else(|| not("ADD did not finish".into()))?;
    let mut c = nb(conf).await?;
    let db = nb_get(&mut c).await?;
    let p = db
        .ports
        .iter()
        .find(|p| p.name == rec.lport)
        .ok_or_else(|| not(format!("logical port {} is gone", rec.lport)))?;
    let want = format!("{} {}", w.mac, w.address.split('/').next().unwrap_or(""));
    if p.dynamic_addresses != want {
        return Err(not(format!(
            "logical port {} has {:?}, the container {want:?}",
            rec.lport, p.dynamic_addresses
        )));
    }
    if !wire::link_exists(&rec.host_iface) {
        return Err(not(format!("host interface {} is gone", rec.host_iface)));
    }
    let (mac, addrs) = wire::inspect(&env.netns, &env.ifname)?;
    if mac != w.mac || !addrs.contains(&w.address) {
        return Err(not(format!(
            "{} in the container has {mac} {addrs:?}, not {} {}",
            env.ifname, w.mac, w.address
        )));
    }
    match vswitchd(conf, &Request::PortList)? {
        Response::Ports(ps)
            if ps
                .iter()
                .any(|b| b.iface == rec.host_iface && b.lport == rec.lport && b.bound) =>
        {
            Ok(())
        }
        _ => Err(not(format!(
            "{} is not bound to {} in vswitchd",
            rec.host_iface, rec.lport
        ))),
    }
}

async fn status(conf: &NetConf) -> Result<(), CniError> {
    let down = |what: &str, e: String| CniError::new(code::NOT_AVAILABLE, what, e);
    let st = match call(&conf.vswitchd, &Request::Status) {
        Ok(Response::Status(s)) => s,
        Ok(other) => return Err(down("vswitchd answers oddly", format!("{other:?}"))),
        Err(e) => return Err(down("switchyard-vswitchd does not answer", e.to_string())),
    };
    if !st.sb_connected {
        return Err(down(
            "switchyard-vswitchd is not connected to northd",
            st.chassis,
        ));
    }
    let mut c = crate::nb_client::connect(&conf.nb, Duration::from_secs(2), &creds(conf)?)
        .await
        .map_err(|e| down("switchyard-northd does not answer", format!("{e:#}")))?;
    let db = c
        .get(pb::GetRequest {})
        .await
        .map_err(|s| down("switchyard-northd does not answer", s.message().into()))?
        .into_inner();
    if !db.switches.iter().any(|s| s.name == conf.switch) {
        return Err(down(
            "the network's logical switch does not exist",
            conf.switch.clone(),
        ));
    }
    Ok(())
}

/// The (container ID, interface) a port the plugin made belongs to.
fn attachment_of(p: &pb::LogicalSwitchPort) -> (&str, &str) {
    let get = |k: &str| p.external_ids.get(k).map(String::as_str).unwrap_or("");
    (get(CONTAINER), get(IFNAME))
}

/// Removes every attachment of this network on this chassis that is not in
/// `cni.dev/valid-attachments`: those with a record, and logical ports the
/// plugin made here whose record is gone.
async fn gc(conf: &NetConf) -> Result<(), CniError> {
    let valid: std::collections::HashSet<Attachment> = conf
        .valid_attachments
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let keep = |id: &str, ifname: &str| {
        valid.contains(&Attachment {
            container_id: id.to_string(),
            ifname: ifname.to_string(),
        })
    };
    let dir = conf.state_dir.join(&conf.name);
    let records: Vec<Record> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Record>(&b).ok())
        .collect();
    for r in &records {
        if !keep(&r.container_id, &r.ifname) {
            del(conf, &r.container_id, &r.ifname).await?;
        }
    }
    let chassis = chassis(conf)?;
    let mut c = nb(conf).await?;
    let db = nb_get(&mut c).await?;
    let stale: Vec<Op> = db
        .ports
        .iter()
        .filter(|p| {
            p.external_ids.get(OWNER) == Some(&conf.name)
                && p.external_ids.get(CHASSIS) == Some(&chassis)
        })
        .filter(|p| {
            let (id, ifn) = attachment_of(p);
            !keep(id, ifn) && load(conf, id, ifn).is_none()
        })
        .map(|p| {
            // Its host end and binding, by the names ADD gave them.
            let (id, ifn) = attachment_of(p);
            let (_, host, peer) = names(&chassis, id, ifn);
            let _ = vswitchd(
                conf,
                &Request::PortDel {
                    iface: host.clone(),
                },
            );
            let _ = wire::remove_link(&host);
            let _ = wire::remove_link(&peer);
            Op::LspDel(p.name.clone())
        })
        .collect();
    if !stale.is_empty() {
        transact(&mut c, stale).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_stable_and_per_chassis() {
        let (l, h, p) = names("node1", "c1", "eth0");
        assert!(h.len() <= 15 && p.len() <= 15, "{h} {p}");
        assert_eq!(names("node1", "c1", "eth0"), (l.clone(), h.clone(), p));
        assert_ne!(names("node2", "c1", "eth0").0, l);
        assert_ne!(names("node1", "c1", "net1").1, h);
    }
}
