//! `syctl k8s apply -f FILE|DIR` and `k8s delete -f`: Kubernetes Services and
//! their EndpointSlices, read from real manifests (YAML or JSON, several
//! documents a file, `kind: List` too), kept in the NB as load balancers and
//! DNS records, the way kube-proxy and CoreDNS would serve them.
//!
//! Per Service (namespace `default` when unset):
//! - ClusterIP: a load balancer per protocol (`k8s-NS-NAME-tcp`, `-udp`) with
//!   one VIP per port, `clusterIP:port`, to the ready endpoints of its
//!   EndpointSlices at the port the slice names for it (a named target port
//!   resolves there; without a slice, a numeric targetPort or the port);
//!   `sessionAffinity: ClientIP` becomes affinity_timeout (timeoutSeconds,
//!   default 10800). Attached to every switch given (default: all).
//! - DNS on those switches, under the cluster domain (set as each switch's
//!   dns_domain, so names under it without a record are NXDOMAIN):
//!   `NAME.NS.svc.DOMAIN` A -> the cluster IP (headless, `clusterIP: None`:
//!   the ready endpoints' addresses), and for every named port
//!   `_PORT._PROTO.NAME.NS.svc.DOMAIN` SRV `0 100 PORT NAME.NS.svc.DOMAIN`.
//!   Each record carries `k8s/service=NS/NAME` in its external_ids.
//!
//! Applying computes the whole desired state of the file's Services against
//! the NB and writes only the difference, in one transaction: re-applying a
//! manifest writes nothing; records and VIPs a Service no longer has go.
//! An ExternalName Service becomes a CNAME record to its external name, as
//! kube-dns answers it. Other kinds in the files are skipped (named on
//! stderr). NodePort, LoadBalancer ingress and traffic policies are not
//! translated yet.

use crate::nb::{get, transact};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use switchyard_southbound::pb::{self, nb_op::Op};

/// The switch other_config key of the cluster domain (northd's).
const DNS_DOMAIN_KEY: &str = "dns_domain";

/// The external_ids key that names a record's Service.
pub const SERVICE_KEY: &str = "k8s/service";

#[derive(clap::Subcommand, Debug)]
pub enum K8sCmd {
    /// Create or update the load balancers and DNS records of the Services
    /// (and their EndpointSlices) in FILE or DIR.
    Apply {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// The switches whose pods reach the Services (default: every switch).
        #[arg(long = "switch", value_name = "SWITCH")]
        switches: Vec<String>,
        /// The cluster's DNS domain.
        #[arg(long, default_value = "cluster.local")]
        cluster_domain: String,
    },
    /// Remove what `apply` made of the Services in FILE or DIR.
    Delete {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
    },
}

/// The objects of some manifests.
#[derive(Debug, Default)]
pub struct Objects {
    pub services: Vec<Service>,
    pub slices: Vec<EndpointSlice>,
    /// Kinds read and skipped.
    pub skipped: BTreeMap<String, usize>,
}

impl Objects {
    fn add(&mut self, doc: serde_json::Value, from: &Path) -> anyhow::Result<()> {
        let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        match kind {
            "" if doc.is_null() => {}
            "List" => {
                for item in doc
                    .get("items")
                    .and_then(|i| i.as_array())
                    .into_iter()
                    .flatten()
                {
                    self.add(item.clone(), from)?;
                }
            }
            "Service" => self.services.push(
                serde_json::from_value(doc)
                    .map_err(|e| anyhow::anyhow!("{}: a Service: {e}", from.display()))?,
            ),
            "EndpointSlice" => self.slices.push(
                serde_json::from_value(doc)
                    .map_err(|e| anyhow::anyhow!("{}: an EndpointSlice: {e}", from.display()))?,
            ),
            "" => anyhow::bail!("{}: a document without a kind", from.display()),
            other => *self.skipped.entry(other.to_string()).or_default() += 1,
        }
        Ok(())
    }
}

/// Reads FILEs and the `.yaml`, `.yml` and `.json` files of DIRs.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Objects> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    matches!(
                        f.extension().and_then(|x| x.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
                })
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(p.clone());
        }
    }
    let mut objs = Objects::default();
    for f in files {
        let text =
            std::fs::read_to_string(&f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_json::Value::deserialize(doc)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            objs.add(v, &f)?;
        }
    }
    Ok(objs)
}

use serde::Deserialize;

/// What one Service becomes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    pub id: String,
    pub lbs: Vec<pb::LoadBalancer>,
    /// Name -> its record's data.
    pub records: BTreeMap<String, RecordData>,
}

/// What a Service's name resolves to: addresses and SRV entries, or an
/// alias (ExternalName: a CNAME, alone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordData {
    pub addresses: Vec<String>,
    pub srv: Vec<String>,
    pub cname: String,
}

fn ns_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_else(|| "default".into())
}

/// The load balancer name of a Service's protocol.
pub fn lb_name(ns: &str, name: &str, proto: &str) -> String {
    format!("k8s-{ns}-{name}-{proto}")
}

/// Translates the Services of `objs` (with the slices that name them).
pub fn translate(objs: &Objects, domain: &str) -> anyhow::Result<Vec<Desired>> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Vec::new();
    for svc in &objs.services {
        let name = svc
            .metadata
            .name
            .clone()
            .ok_or_else(|| anyhow::anyhow!("a Service without metadata.name"))?;
        let ns = ns_of(&svc.metadata);
        let spec = svc.spec.clone().unwrap_or_default();
        let fqdn = format!("{name}.{ns}.svc.{domain}");
        let slices: Vec<&EndpointSlice> = objs
            .slices
            .iter()
            .filter(|s| {
                ns_of(&s.metadata) == ns
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("kubernetes.io/service-name"))
                        == Some(&name)
                    && s.address_type == "IPv4"
            })
            .collect();
        // Ready endpoints (terminating ones take no new connections).
        let ready: Vec<String> = {
            let mut v: Vec<String> = slices
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
                .flat_map(|e| e.addresses.iter().cloned())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let mut d = Desired {
            id: format!("{ns}/{name}"),
            ..Default::default()
        };
        let headless = matches!(spec.cluster_ip.as_deref(), Some("None"));
        let cluster_ip = spec
            .cluster_ip
            .clone()
            .filter(|c| !c.is_empty() && c != "None");
        if spec.type_.as_deref() == Some("ExternalName") {
            // kube-dns's answer for an ExternalName Service: a CNAME to the
            // external name, nothing else (no VIP, no endpoints).
            match spec.external_name.as_deref().map(str::trim) {
                Some(ext) if !ext.is_empty() => {
                    d.records.insert(
                        fqdn.clone(),
                        RecordData {
                            cname: ext.to_string(),
                            ..Default::default()
                        },
                    );
                    out.push(d);
                }
                _ => eprintln!(
                    "syctl: Service {ns}/{name}: type ExternalName without spec.externalName: not translated"
                ),
            }
            continue;
        }
        let mut srv = Vec::new();
        let mut by_proto: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for p in spec.ports.iter().flatten() {
            let proto = p
                .protocol
                .clone()
                .unwrap_or_else(|| "TCP".into())
                .to_ascii_lowercase();
            if proto != "tcp" && proto != "udp" {
                eprintln!(
                    "syctl: Service {ns}/{name}: port {} is {proto}: not translated",
                    p.port
                );
                continue;
            }
            let pname = p.name.clone().unwrap_or_default();
            if !pname.is_empty() {
                srv.push((format!("_{pname}._{proto}.{fqdn}"), p.port));
            }
            let Some(cip) = &cluster_ip else { continue };
            // The slice's port of the same name is the target (named ports resolve there).
            let target = slices
                .iter()
                .flat_map(|s| s.ports.iter().flatten())
                .find(|sp| sp.name.clone().unwrap_or_default() == pname)
                .and_then(|sp| sp.port)
                .or(match &p.target_port {
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                        Some(*n)
                    }
                    None => Some(p.port),
                    _ => None,
                });
            let backends = match target {
                Some(t) => ready
                    .iter()
                    .map(|a| format!("{a}:{t}"))
                    .collect::<Vec<_>>()
                    .join(","),
                None => String::new(),
            };
            by_proto
                .entry(proto)
                .or_default()
                .insert(format!("{cip}:{}", p.port), backends);
        }
        for (proto, vips) in by_proto {
            let mut lb = pb::LoadBalancer {
                name: lb_name(&ns, &name, &proto),
                protocol: proto,
                vips: vips.into_iter().collect(),
                ..Default::default()
            };
            if spec.session_affinity.as_deref() == Some("ClientIP") {
                let t = spec
                    .session_affinity_config
                    .as_ref()
                    .and_then(|c| c.client_ip.as_ref())
                    .and_then(|c| c.timeout_seconds)
                    .unwrap_or(10800);
                lb.options.insert("affinity_timeout".into(), t.to_string());
            }
            d.lbs.push(lb);
        }
        let addrs = match (&cluster_ip, headless) {
            (Some(c), _) => vec![c.clone()],
            (None, true) => ready.clone(),
            (None, false) => vec![],
        };
        if !addrs.is_empty() {
            d.records.insert(
                fqdn.clone(),
                RecordData {
                    addresses: addrs,
                    ..Default::default()
                },
            );
        }
        for (n, port) in srv {
            d.records.insert(
                n,
                RecordData {
                    srv: vec![format!("0 100 {port} {fqdn}")],
                    ..Default::default()
                },
            );
        }
        out.push(d);
    }
    Ok(out)
}

/// The ops that take the NB from `db` to `want` on `switches` (nothing when
/// it is there already); `remove` lists Services to take away entirely.
pub fn plan(db: &pb::NbDatabase, want: &[Desired], switches: &[String], domain: &str) -> Vec<Op> {
    let mut ops = Vec::new();
    let lbs: HashMap<&str, &pb::LoadBalancer> = db
        .load_balancers
        .iter()
        .map(|l| (l.name.as_str(), l))
        .collect();
    for sw in switches {
        let has = db
            .switches
            .iter()
            .find(|s| &s.name == sw)
            .and_then(|s| s.other_config.get(DNS_DOMAIN_KEY));
        if has.map(String::as_str) != Some(domain) {
            ops.push(Op::LsSetOtherConfig(pb::SetConfig {
                record: sw.clone(),
                config: [(DNS_DOMAIN_KEY.to_string(), domain.to_string())].into(),
            }));
        }
    }
    for d in want {
        let (ns, name) = d.id.split_once('/').unwrap_or(("default", &d.id));
        for proto in ["tcp", "udp"] {
            let lname = lb_name(ns, name, proto);
            let target = d.lbs.iter().find(|l| l.name == lname);
            let current = lbs.get(lname.as_str()).copied();
            let same = match (current, target) {
                (Some(c), Some(t)) => c.vips == t.vips && c.options == t.options,
                (None, None) => true,
                _ => false,
            };
            if !same {
                if current.is_some() {
                    ops.push(Op::LbDel(pb::LbDel {
                        name: lname.clone(),
                        vip: String::new(),
                    }));
                }
                if let Some(t) = target {
                    ops.push(Op::LbAdd(t.clone()));
                }
            }
            if let Some(t) = target {
                for sw in switches {
                    let attached = !same || current.is_none_or(|c| !c.switches.contains(sw));
                    if attached {
                        ops.push(Op::LbAttach(pb::LbAttach {
                            lb: t.name.clone(),
                            switch_name: sw.clone(),
                            router_name: String::new(),
                        }));
                    }
                }
            }
        }
        ops.extend(record_ops(db, &d.id, &d.records, switches));
    }
    ops
}

/// Ops that make the records of Service `id` on `switches` exactly `records`.
fn record_ops(
    db: &pb::NbDatabase,
    id: &str,
    records: &BTreeMap<String, RecordData>,
    switches: &[String],
) -> Vec<Op> {
    let mut ops = Vec::new();
    let mine = |r: &&pb::DnsRecord| r.external_ids.get(SERVICE_KEY).map(String::as_str) == Some(id);
    for r in db.dns_records.iter().filter(mine) {
        if !switches.contains(&r.switch_name) || !records.contains_key(&r.name) {
            ops.push(Op::DnsDel(pb::DnsDel {
                switch_name: r.switch_name.clone(),
                name: r.name.clone(),
            }));
        }
    }
    for sw in switches {
        for (name, data) in records {
            let want = pb::DnsRecord {
                switch_name: sw.clone(),
                name: name.clone(),
                addresses: data.addresses.clone(),
                srv: data.srv.clone(),
                ttl: 0,
                external_ids: [(SERVICE_KEY.to_string(), id.to_string())].into(),
                cname: data.cname.clone(),
            };
            let have = db
                .dns_records
                .iter()
                .find(|r| &r.switch_name == sw && &r.name == name);
            if have != Some(&want) {
                ops.push(Op::DnsAdd(want));
            }
        }
    }
    ops
}

pub async fn run(cmd: K8sCmd, c: &mut switchyard_cli::nb_client::Nb) -> anyhow::Result<()> {
    let db = get(c).await?;
    let (ops, what) = match cmd {
        K8sCmd::Apply {
            files,
            switches,
            cluster_domain,
        } => {
            let objs = load(&files)?;
            for (kind, n) in &objs.skipped {
                eprintln!("syctl: skipped {n} {kind} (not translated)");
            }
            let domain = cluster_domain.trim_end_matches('.').to_ascii_lowercase();
            let switches = if switches.is_empty() {
                db.switches.iter().map(|s| s.name.clone()).collect()
            } else {
                switches
            };
            let want = translate(&objs, &domain)?;
            let n = want.len();
            (
                plan(&db, &want, &switches, &domain),
                format!("{n} services"),
            )
        }
        K8sCmd::Delete { files } => {
            let objs = load(&files)?;
            let mut ops = Vec::new();
            let mut ids = BTreeSet::new();
            for s in &objs.services {
                let (ns, name) = (
                    ns_of(&s.metadata),
                    s.metadata.name.clone().unwrap_or_default(),
                );
                for proto in ["tcp", "udp"] {
                    let l = lb_name(&ns, &name, proto);
                    if db.load_balancers.iter().any(|x| x.name == l) {
                        ops.push(Op::LbDel(pb::LbDel {
                            name: l,
                            vip: String::new(),
                        }));
                    }
                }
                ids.insert(format!("{ns}/{name}"));
            }
            for id in &ids {
                ops.extend(record_ops(&db, id, &BTreeMap::new(), &[]));
            }
            let n = ids.len();
            (ops, format!("{n} services removed"))
        }
    };
    if ops.is_empty() {
        println!("unchanged ({what})");
        return Ok(());
    }
    let n = ops.len();
    let v = transact(c, ops, true, true).await?;
    println!("ok: {what}, {n} changes (NB version {v})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: pay, namespace: shop}
spec: {type: ExternalName, externalName: payments.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.50
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 80, targetPort: web-http}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP}
- {name: dns, port: 5353, protocol: UDP}
endpoints:
- addresses: [10.244.0.12]
  conditions: {ready: true}
- addresses: [10.244.0.13]
  conditions: {ready: false, terminating: true}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  ports: [{port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
endpoints:
- addresses: [10.244.0.21]
- addresses: [10.244.0.22]
"#;

    fn objs() -> Objects {
        // A directory per call: the tests run in parallel and each removes its own.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("syctl-k8s-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("shop.yaml"), MANIFEST).unwrap();
        std::fs::write(dir.join("ignored.txt"), "not yaml").unwrap();
        let o = load(std::slice::from_ref(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        o
    }

    #[test]
    fn services_become_load_balancers_and_records() {
        let o = objs();
        assert_eq!(o.skipped.get("Namespace"), Some(&1));
        let d = translate(&o, "cluster.local.").unwrap();
        let web = d.iter().find(|d| d.id == "shop/web").unwrap();
        let tcp = web
            .lbs
            .iter()
            .find(|l| l.name == "k8s-shop-web-tcp")
            .unwrap();
        // The named target port resolved through the slice; the terminating
        // endpoint takes no new connections.
        assert_eq!(tcp.vips["10.96.0.50:80"], "10.244.0.12:8080");
        assert_eq!(tcp.options["affinity_timeout"], "10800");
        let udp = web
            .lbs
            .iter()
            .find(|l| l.name == "k8s-shop-web-udp")
            .unwrap();
        assert_eq!(udp.vips["10.96.0.50:53"], "10.244.0.12:5353");
        assert_eq!(
            web.records["web.shop.svc.cluster.local"].addresses,
            ["10.96.0.50"]
        );
        assert_eq!(
            web.records["_http._tcp.web.shop.svc.cluster.local"].srv,
            ["0 100 80 web.shop.svc.cluster.local"]
        );
        let db = d.iter().find(|d| d.id == "default/db").unwrap();
        assert!(db.lbs.is_empty(), "headless: no load balancer");
        assert_eq!(
            db.records["db.default.svc.cluster.local"].addresses,
            ["10.244.0.21", "10.244.0.22"]
        );
        let pay = d.iter().find(|d| d.id == "shop/pay").unwrap();
        assert!(pay.lbs.is_empty(), "ExternalName: no load balancer");
        let rec = &pay.records["pay.shop.svc.cluster.local"];
        assert_eq!(rec.cname, "payments.example.com");
        assert!(rec.addresses.is_empty() && rec.srv.is_empty());
    }

    #[test]
    fn a_plan_applied_leaves_nothing_to_do_and_a_removed_port_goes() {
        let mut nb = switchyard_northd::model::Nb::default();
        nb.apply_all(vec![Op::LsAdd(pb::LogicalSwitch {
            name: "ls0".into(),
            ..Default::default()
        })])
        .unwrap();
        let sw = vec!["ls0".to_string()];
        let want = translate(&objs(), "cluster.local").unwrap();
        let ops = plan(&nb.to_pb(1), &want, &sw, "cluster.local");
        assert!(!ops.is_empty());
        nb.apply_ops(&switchyard_southbound::transaction(ops, true, true))
            .unwrap();
        assert!(
            plan(&nb.to_pb(2), &want, &sw, "cluster.local").is_empty(),
            "re-apply is a no-op"
        );
        assert_eq!(nb.dns.len(), 5, "web's A and two SRV, db's A, pay's CNAME");
        assert_eq!(
            nb.dns["ls0/pay.shop.svc.cluster.local"].cname,
            "payments.example.com"
        );
        // web loses its named UDP port: its VIP, LB and SRV record go.
        let mut less = want.clone();
        let web = less.iter_mut().find(|d| d.id == "shop/web").unwrap();
        web.lbs.retain(|l| l.protocol == "tcp");
        web.records.remove("_dns._udp.web.shop.svc.cluster.local");
        let ops = plan(&nb.to_pb(3), &less, &sw, "cluster.local");
        nb.apply_ops(&switchyard_southbound::transaction(ops, true, true))
            .unwrap();
        assert!(!nb.load_balancers.contains_key("k8s-shop-web-udp"));
        assert_eq!(nb.dns.len(), 4);
        assert!(nb.load_balancers["k8s-shop-web-tcp"]
            .switches
            .contains(&"ls0".to_string()));
    }
}
