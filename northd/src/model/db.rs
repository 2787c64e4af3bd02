//! ovn-nbctl's generic column writes (`set`, `add`, `remove`, `clear`) on any
//! NB table. A [`pb::DbMutate`] edits one record's columns as JSON, in the
//! order given, and the result replaces the record only if it passes the
//! same validation as the record's add: a column write can never store what
//! the table's own command would refuse. The columns that name a record and
//! those northd assigns stay as they are ([`NbTable::fixed`]).

use crate::model::{Nb, NbError};
use serde_json::{Map, Value};
use switchyard_southbound::nb_tables::{nb_table, NbTable};
use switchyard_southbound::pb::{self, Mutator};

fn err(t: &NbTable, record: &str, why: impl Into<String>) -> NbError {
    NbError::Db {
        table: t.name,
        record: record.to_string(),
        why: why.into(),
    }
}

/// A value written in ovn-nbctl's syntax or as JSON, for a column whose
/// current value is `like`.
fn parse_value(like: &Value, text: &str) -> Result<Value, String> {
    let t = text.trim();
    match like {
        Value::String(_) => Ok(Value::String(unquote(t)?)),
        Value::Bool(_) => match t {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("{text:?}: write true or false")),
        },
        Value::Number(_) => t
            .parse::<u32>()
            .map(Value::from)
            .map_err(|_| format!("{text:?}: write a whole number 0-4294967295")),
        Value::Array(_) => Ok(Value::Array(
            parse_set(t)?.into_iter().map(Value::String).collect(),
        )),
        Value::Object(_) => Ok(Value::Object(parse_map(t)?)),
        Value::Null => Err("the column has no type to read a value by".into()),
    }
}

/// `"text"` (JSON string) or `text` as it is.
fn unquote(t: &str) -> Result<String, String> {
    if t.starts_with('"') {
        serde_json::from_str(t).map_err(|e| format!("{t}: not a quoted string ({e})"))
    } else {
        Ok(t.to_string())
    }
}

/// Splits at the commas outside quotes.
fn split_top(t: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in t.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&t[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A set: `[a, "b c"]`, a JSON list, or one element (`""` or `[]`: empty).
fn parse_set(t: &str) -> Result<Vec<String>, String> {
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return split_top(inner).into_iter().map(unquote).collect();
    }
    if t.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![unquote(t)?])
}

/// One `key=value` (either side may be quoted).
fn parse_pair(t: &str) -> Result<(String, String), String> {
    let (k, v) = split_eq(t).ok_or_else(|| format!("{t:?} is not KEY=VALUE"))?;
    let k = unquote(k.trim())?;
    if k.is_empty() {
        return Err(format!("{t:?}: empty key"));
    }
    Ok((k, unquote(v.trim())?))
}

/// Splits at the first `=` outside quotes.
fn split_eq(t: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in t.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '=' if !quoted => return Some((&t[..i], &t[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A map: `{k=v, k2="v 2"}`, a JSON object, or `{}`.
fn parse_map(t: &str) -> Result<Map<String, Value>, String> {
    if t.starts_with('{') && t.contains(':') && !t.contains('=') {
        let m: std::collections::BTreeMap<String, String> = serde_json::from_str(t)
            .map_err(|e| format!("{t}: not a JSON object of strings ({e})"))?;
        return Ok(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    }
    let inner = t
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("{t:?}: write a map as {{key=value, ...}}"))?;
    let mut m = Map::new();
    for p in split_top(inner) {
        let (k, v) = parse_pair(p)?;
        m.insert(k, Value::String(v));
    }
    Ok(m)
}

/// Applies one mutation to `row`.
fn mutate(row: &mut Map<String, Value>, m: &pb::Mutation) -> Result<(), String> {
    let (name, key) = match m.column.split_once(':') {
        Some((c, k)) => (c, Some(k)),
        None => (m.column.as_str(), None),
    };
    let cols = || row.keys().cloned().collect::<Vec<_>>().join(", ");
    let Some(cur) = row.get(name).cloned() else {
        return Err(format!("no column {name:?}; the columns are {}", cols()));
    };
    let mutator = Mutator::try_from(m.mutator).map_err(|_| "unknown mutator".to_string())?;
    let one = || match m.values.as_slice() {
        [v] => Ok(v.as_str()),
        _ => Err(format!("set {}: give exactly one value", m.column)),
    };
    let new = match (mutator, key, &cur) {
        (Mutator::Set, None, _) => parse_value(&cur, one()?)?,
        (Mutator::Set, Some(""), Value::Object(_)) => {
            return Err(format!("write {name}:KEY=VALUE with a KEY"))
        }
        (Mutator::Set, Some(k), Value::Object(map)) => {
            let mut map = map.clone();
            map.insert(k.to_string(), Value::String(unquote(one()?.trim())?));
            Value::Object(map)
        }
        (_, Some(k), Value::Object(_)) => {
            return Err(format!(
                "{name}:{k}: only set takes a map key (`remove ... {name} {k}` removes it)"
            ))
        }
        (_, Some(k), _) => return Err(format!("{name} is not a map: write it without :{k}")),
        (Mutator::Clear, None, Value::Array(_)) => Value::Array(Vec::new()),
        (Mutator::Clear, None, Value::Object(_)) => Value::Object(Map::new()),
        (Mutator::Add, None, Value::Array(items)) => {
            let mut items = items.clone();
            for v in &m.values {
                for e in parse_set(v.trim())? {
                    let e = Value::String(e);
                    if !items.contains(&e) {
                        items.push(e);
                    }
                }
            }
            Value::Array(items)
        }
        (Mutator::Remove, None, Value::Array(items)) => {
            let mut gone = Vec::new();
            for v in &m.values {
                gone.extend(parse_set(v.trim())?.into_iter().map(Value::String));
            }
            Value::Array(
                items
                    .iter()
                    .filter(|i| !gone.contains(i))
                    .cloned()
                    .collect(),
            )
        }
        (Mutator::Add, None, Value::Object(map)) => {
            // As ovn-nbctl: a key already present keeps its value.
            let mut map = map.clone();
            for v in &m.values {
                let (k, v) = parse_pair(v)?;
                map.entry(k).or_insert(Value::String(v));
            }
            Value::Object(map)
        }
        (Mutator::Remove, None, Value::Object(map)) => {
            let mut map = map.clone();
            for v in &m.values {
                match split_eq(v) {
                    Some(_) => {
                        let (k, want) = parse_pair(v)?;
                        if map.get(&k) == Some(&Value::String(want)) {
                            map.remove(&k);
                        }
                    }
                    None => {
                        map.remove(&unquote(v.trim())?);
                    }
                }
            }
            Value::Object(map)
        }
        (Mutator::Clear | Mutator::Add | Mutator::Remove, None, _) => {
            return Err(format!(
                "{} works on set and map columns; {name} holds one value (use set)",
                mutator
                    .as_str_name()
                    .trim_start_matches("MUTATOR_")
                    .to_lowercase()
            ))
        }
    };
    row.insert(name.to_string(), new);
    Ok(())
}

fn to_json<T: serde::Serialize>(row: &T) -> Map<String, Value> {
    match serde_json::to_value(row) {
        Ok(Value::Object(m)) => m,
        _ => unreachable!("NB rows are messages: they serialize to objects"),
    }
}

/// A record found: its key in the model's map, and its columns as JSON.
type Found = (String, Map<String, Value>);

impl Nb {
    /// The map key of `record` in table `t`, if the record exists.
    fn find(&self, t: &NbTable, record: &str) -> Result<Option<Found>, NbError> {
        let parts = t.split_record(record).map_err(|e| err(t, record, e))?;
        let got = |k: &str, row: Option<Map<String, Value>>| row.map(|r| (k.to_string(), r));
        Ok(match t.name {
            "Logical_Switch" => got(record, self.switches.get(record).map(to_json)),
            "Logical_Switch_Port" => got(record, self.ports.get(record).map(to_json)),
            "Logical_Router" => got(record, self.routers.get(record).map(to_json)),
            "Logical_Router_Port" => got(record, self.router_ports.get(record).map(to_json)),
            "Load_Balancer" => got(record, self.load_balancers.get(record).map(to_json)),
            "DHCP_Options" => got(record, self.dhcp_options.get(record).map(to_json)),
            "Logical_Router_Static_Route" => {
                let k = crate::nb::router::route_key(&pb::StaticRoute {
                    router_name: parts[0].into(),
                    prefix: parts[1].into(),
                    nexthop: parts[2].into(),
                    output_port: String::new(),
                });
                got(&k, self.routes.get(&k).map(to_json))
            }
            "NAT" => self
                .nats
                .iter()
                .find(|(_, n)| {
                    n.router_name == parts[0] && n.r#type == parts[1] && n.external_ip == parts[2]
                })
                .map(|(k, n)| (k.clone(), to_json(n))),
            "ACL" => {
                let priority = parts[2].parse().map_err(|_| {
                    err(
                        t,
                        record,
                        format!("priority {:?} is not a number", parts[2]),
                    )
                })?;
                let k = crate::nb::acl::acl_key(&pb::Acl {
                    switch_name: parts[0].into(),
                    direction: parts[1].into(),
                    priority,
                    r#match: parts[3].into(),
                    ..Default::default()
                });
                got(&k, self.acls.get(&k).map(to_json))
            }
            "DNS" => {
                let name = crate::nb::dns::normalize_name("name", parts[1])?;
                let k = crate::nb::dns::dns_key(parts[0], &name);
                got(&k, self.dns.get(&k).map(to_json))
            }
            other => unreachable!("table {other} is in NB_TABLES but not here"),
        })
    }

    /// `set`/`add`/`remove`/`clear` on one record (see the module's doc).
    pub(crate) fn db_mutate(&mut self, m: &pb::DbMutate, if_exists: bool) -> Result<(), NbError> {
        let t = nb_table(&m.table).map_err(|why| NbError::BadValue {
            field: "table",
            value: m.table.clone(),
            why,
        })?;
        let Some((key, old)) = self.find(t, &m.record)? else {
            if if_exists {
                return Ok(());
            }
            return Err(err(
                t,
                &m.record,
                format!(
                    "does not exist (`syctl list {} --columns _id` lists the records)",
                    t.name
                ),
            ));
        };
        let mut row = old.clone();
        for mu in &m.mutations {
            mutate(&mut row, mu).map_err(|e| err(t, &m.record, e))?;
        }
        for c in t.key.iter().chain(t.fixed) {
            if row.get(*c) != old.get(*c) {
                let why = if t.key.contains(c) {
                    format!("{c} names the record: create a new one and destroy this one instead")
                } else {
                    format!("{c} cannot be changed by a column write (northd assigns it, or it places the record)")
                };
                return Err(err(t, &m.record, why));
            }
        }
        if let Some(Value::Object(ids)) = row.get("external_ids") {
            if ids.iter().any(|(k, v)| {
                k.is_empty() || k.len() > 255 || v.as_str().is_none_or(|v| v.len() > 4096)
            }) {
                return Err(err(
                    t,
                    &m.record,
                    "external_ids: keys of 1-255 bytes, values up to 4096",
                ));
            }
        }
        if row == old {
            return Ok(());
        }
        let row = Value::Object(row);
        let bad_row = |e: serde_json::Error| {
            err(
                t,
                &m.record,
                format!("the changed record does not read back: {e}"),
            )
        };
        match t.name {
            "Logical_Switch" => {
                let new: pb::LogicalSwitch = serde_json::from_value(row).map_err(bad_row)?;
                let old = self.switches.remove(&key).expect("found");
                self.ls_add(&new, false)?;
                self.switches.get_mut(&key).expect("added").tunnel_key = old.tunnel_key;
                // A new subnet must still hold the addresses of its ports.
                let ports: Vec<pb::LogicalSwitchPort> = self.ports_of(&key).cloned().collect();
                for p in &ports {
                    self.check_port(p)?;
                }
            }
            "Logical_Switch_Port" => {
                let new: pb::LogicalSwitchPort = serde_json::from_value(row).map_err(bad_row)?;
                let old = self.ports.remove(&key).expect("found");
                self.lsp_add(&new, false)?;
                let p = self.ports.get_mut(&key).expect("added");
                p.tunnel_key = old.tunnel_key;
                // ipam keeps it if the request still holds, else assigns anew.
                p.dynamic_addresses = old.dynamic_addresses;
            }
            "Logical_Router" => {
                let new: pb::LogicalRouter = serde_json::from_value(row).map_err(bad_row)?;
                let old = self.routers.remove(&key).expect("found");
                self.lr_add(&new, false)?;
                self.routers.get_mut(&key).expect("added").tunnel_key = old.tunnel_key;
            }
            "Logical_Router_Port" => {
                let new: pb::LogicalRouterPort = serde_json::from_value(row).map_err(bad_row)?;
                let old = self.router_ports.remove(&key).expect("found");
                self.lrp_add(&new, false)?;
                self.router_ports.get_mut(&key).expect("added").tunnel_key = old.tunnel_key;
            }
            "Logical_Router_Static_Route" => {
                let new: pb::StaticRoute = serde_json::from_value(row).map_err(bad_row)?;
                self.routes.remove(&key);
                self.route_add(&new, false)?;
            }
            "Load_Balancer" => {
                let new: pb::LoadBalancer = serde_json::from_value(row).map_err(bad_row)?;
                for s in &new.switches {
                    if !self.switches.contains_key(s) {
                        return Err(NbError::NoSuchSwitch(s.clone()));
                    }
                }
                for r in &new.routers {
                    if !self.routers.contains_key(r) {
                        return Err(NbError::Missing("logical router", r.clone()));
                    }
                }
                self.load_balancers.remove(&key);
                self.lb_add(&new, false)?;
                let lb = self.load_balancers.get_mut(&key).expect("added");
                let dedup = |v: &[String]| {
                    let mut v = v.to_vec();
                    v.sort();
                    v.dedup();
                    v
                };
                lb.switches = dedup(&new.switches);
                lb.routers = dedup(&new.routers);
            }
            "NAT" => {
                let new: pb::NatRule = serde_json::from_value(row).map_err(bad_row)?;
                self.nats.remove(&key);
                self.nat_add(&new, false)?;
            }
            "ACL" => {
                let new: pb::Acl = serde_json::from_value(row).map_err(bad_row)?;
                self.acls.remove(&key);
                self.acl_add(&new, false)?;
            }
            "DNS" => {
                let new: pb::DnsRecord = serde_json::from_value(row).map_err(bad_row)?;
                self.dns.remove(&key);
                self.dns_add(&new, false)?;
            }
            "DHCP_Options" => {
                let new: pb::DhcpOptions = serde_json::from_value(row).map_err(bad_row)?;
                self.dhcp_options.remove(&key);
                self.dhcp_options_add(&new, false)?;
            }
            other => unreachable!("table {other} is in NB_TABLES but not here"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
