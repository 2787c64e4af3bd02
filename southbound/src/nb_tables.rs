//! The NB tables as ovn-nbctl's database commands name them: OVN's table
//! name, the field of [`crate::pb::NbDatabase`] that holds the rows, the
//! columns that name a record (a record without a name of its own is named
//! by these joined with `,`), and the columns a database command may not
//! change (northd assigns them, or they place the record: move it by
//! deleting and creating it).

/// One NB table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NbTable {
    pub name: &'static str,
    /// The field of `NbDatabase` (and of its JSON form) with the rows.
    pub field: &'static str,
    pub key: &'static [&'static str],
    /// Columns beside the key that `set`, `add`, `remove` and `clear` refuse.
    pub fixed: &'static [&'static str],
}

pub const NB_TABLES: [NbTable; 10] = [
    NbTable {
        name: "Logical_Switch",
        field: "switches",
        key: &["name"],
        fixed: &["tunnel_key"],
    },
    NbTable {
        name: "Logical_Switch_Port",
        field: "ports",
        key: &["name"],
        fixed: &["switch_name", "tunnel_key", "dynamic_addresses"],
    },
    NbTable {
        name: "Logical_Router",
        field: "routers",
        key: &["name"],
        fixed: &["tunnel_key"],
    },
    NbTable {
        name: "Logical_Router_Port",
        field: "router_ports",
        key: &["name"],
        fixed: &["router_name", "tunnel_key"],
    },
    NbTable {
        name: "Logical_Router_Static_Route",
        field: "routes",
        key: &["router_name", "prefix", "nexthop"],
        fixed: &[],
    },
    NbTable {
        name: "Load_Balancer",
        field: "load_balancers",
        key: &["name"],
        fixed: &[],
    },
    NbTable {
        name: "NAT",
        field: "nats",
        key: &["router_name", "type", "external_ip"],
        fixed: &[],
    },
    NbTable {
        name: "ACL",
        field: "acls",
        key: &["switch_name", "direction", "priority", "match"],
        fixed: &[],
    },
    NbTable {
        name: "DNS",
        field: "dns_records",
        key: &["switch_name", "name"],
        fixed: &[],
    },
    NbTable {
        name: "DHCP_Options",
        field: "dhcp_options",
        key: &["id"],
        fixed: &[],
    },
];

/// The table called `name` (any case), or an error listing them all.
pub fn nb_table(name: &str) -> Result<&'static NbTable, String> {
    NB_TABLES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = NB_TABLES.iter().map(|t| t.name).collect();
            format!("no table {name:?}; the NB tables are {}", names.join(", "))
        })
}

impl NbTable {
    /// A record's name split into its key columns' values: the last one takes
    /// the rest (an ACL's match may hold commas).
    pub fn split_record<'a>(&self, record: &'a str) -> Result<Vec<&'a str>, String> {
        let parts: Vec<&str> = record.splitn(self.key.len(), ',').collect();
        if parts.len() == self.key.len() {
            Ok(parts)
        } else {
            Err(format!(
                "{} record {record:?}: name it by {} (`syctl list {} --columns _id` shows them)",
                self.name,
                self.key.join(","),
                self.name
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_a_field_of_the_nb_dump_and_its_key_columns_exist() {
        let dump = serde_json::to_value(crate::pb::NbDatabase::default()).unwrap();
        for t in NB_TABLES {
            assert!(
                dump.get(t.field).is_some_and(|v| v.is_array()),
                "{}",
                t.field
            );
        }
        let acl = nb_table("acl").unwrap();
        assert_eq!(
            acl.split_record("ls0,to-lport,10,ip4.src == {1.1.1.1, 2.2.2.2}")
                .unwrap(),
            ["ls0", "to-lport", "10", "ip4.src == {1.1.1.1, 2.2.2.2}"]
        );
        assert!(nb_table("DNS").unwrap().split_record("ls0").is_err());
        assert!(nb_table("Port_Group").unwrap_err().contains("DHCP_Options"));
    }
}
