//! Switchyard's datapath, everything of it that does no I/O, one concern per
//! folder: [`dp`] the stateless datapath (flow key, classifier, caches,
//! pipeline), [`ct`] its stateful edge (conntrack, NAT, fragments),
//! [`tables`] the immutable table set the PMDs run (built from the
//! southbound database), [`answer`] the DNS and DHCP answers given in the
//! datapath, [`inspect`] traces, [`port`] the port abstraction and the
//! in-memory port, [`stats`] the counters. The PMD threads, AF_XDP and the
//! chassis agent are `switchyard-vswitch`; `syctl` links this crate (for the
//! logical trace) without them.
#![forbid(unsafe_code)]

pub mod answer;
pub mod ct;
pub mod dp;
pub mod inspect;
pub mod port;
pub mod stats;
pub mod tables;
