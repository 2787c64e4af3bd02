//! Every logical pipeline stage, declared once with its stable name. Tests,
//! `syctl lflow-list` and traces speak these names; table numbers are only the
//! position of a stage in this table and may shift when stages are added.

/// Ingress or egress half of a datapath's logical pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pipeline {
    Ingress,
    Egress,
}

impl Pipeline {
    pub fn as_str(self) -> &'static str {
        match self {
            Pipeline::Ingress => "ingress",
            Pipeline::Egress => "egress",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ingress" => Some(Pipeline::Ingress),
            "egress" => Some(Pipeline::Egress),
            _ => None,
        }
    }
}

macro_rules! stages {
    ($($variant:ident => ($pipeline:ident, $name:literal),)*) => {
        /// A logical pipeline stage.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Stage { $($variant,)* }

        impl Stage {
            /// All stages, in pipeline order.
            pub const ALL: &'static [Stage] = &[$(Stage::$variant,)*];
            /// The stable name.
            pub fn name(self) -> &'static str {
                match self { $(Stage::$variant => $name,)* }
            }
            /// Which half of the pipeline it belongs to.
            pub fn pipeline(self) -> Pipeline {
                match self { $(Stage::$variant => Pipeline::$pipeline,)* }
            }
        }
    };
}

stages! {
    LsInCheckPortSec => (Ingress, "ls_in_check_port_sec"),
    LsInAcl => (Ingress, "ls_in_acl"),
    LsInArpRsp => (Ingress, "ls_in_arp_rsp"),
    LsInDhcp => (Ingress, "ls_in_dhcp"),
    LsInDnsLookup => (Ingress, "ls_in_dns_lookup"),
    LsInL2Lkup => (Ingress, "ls_in_l2_lkup"),
    LsOutAcl => (Egress, "ls_out_acl"),
    LsOutApplyPortSec => (Egress, "ls_out_apply_port_sec"),
    LrInAdmission => (Ingress, "lr_in_admission"),
    LrInIpInput => (Ingress, "lr_in_ip_input"),
    LrInIpRouting => (Ingress, "lr_in_ip_routing"),
    LrInArpResolve => (Ingress, "lr_in_arp_resolve"),
    LrInArpRequest => (Ingress, "lr_in_arp_request"),
    LrOutDelivery => (Egress, "lr_out_delivery"),
}

impl Stage {
    /// Looks a stage up by its stable name.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The stages of one pipeline of a logical switch, in order.
    pub fn switch_pipeline(p: Pipeline) -> impl Iterator<Item = Stage> {
        Stage::pipeline_of("ls_", p)
    }

    /// The stages of one pipeline of a logical router, in order.
    pub fn router_pipeline(p: Pipeline) -> impl Iterator<Item = Stage> {
        Stage::pipeline_of("lr_", p)
    }

    fn pipeline_of(prefix: &'static str, p: Pipeline) -> impl Iterator<Item = Stage> {
        Stage::ALL
            .iter()
            .copied()
            .filter(move |s| s.pipeline() == p && s.name().starts_with(prefix))
    }

    /// The table number: the stage's position within its pipeline (display only).
    pub fn table(self) -> u32 {
        Stage::ALL
            .iter()
            .filter(|s| s.pipeline() == self.pipeline() && s.name()[..2] == self.name()[..2])
            .position(|s| *s == self)
            .unwrap_or(0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for s in Stage::ALL {
            assert_eq!(Stage::from_name(s.name()), Some(*s));
        }
        let mut names: Vec<_> = Stage::ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Stage::ALL.len());
    }

    #[test]
    fn tables_count_within_a_pipeline() {
        assert_eq!(Stage::LsInCheckPortSec.table(), 0);
        assert_eq!(Stage::LsInL2Lkup.table(), 5);
        assert_eq!(Stage::LsOutApplyPortSec.table(), 1);
        assert_eq!(Stage::LrInAdmission.table(), 0);
        assert_eq!(Stage::LrInIpRouting.table(), 2);
        assert_eq!(Stage::LrOutDelivery.table(), 0);
        assert_eq!(Stage::router_pipeline(Pipeline::Ingress).count(), 5);
    }
}
