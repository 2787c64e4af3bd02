//! switchyard-vswitchd as a library. One concern per folder:
//! [`dp`] the stateless datapath (flow key, classifier, caches, pipeline),
//! [`ct`] its stateful edge (conntrack, NAT, fragments), [`tables`] the
//! immutable table set the PMDs run (built from the southbound database),
//! [`answer`] the DNS and DHCP answers given in the datapath, [`pmd`] the
//! poll-mode threads, [`port`] and [`sys`] the ports (in-memory; AF_XDP and
//! XDP), [`inspect`] traces, [`agent`] the chassis agent, [`control`] the
//! control socket's protocol. All `unsafe` code lives in [`sys`].
#![deny(unsafe_code)]

pub mod agent;
pub mod answer;
pub mod control;
pub mod ct;
pub mod dp;
pub mod inspect;
pub mod pmd;
pub mod port;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;
pub mod tables;
