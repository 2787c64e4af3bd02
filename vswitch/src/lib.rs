//! switchyard-vswitchd as a library: the poll-mode threads ([`pmd`]), the
//! AF_XDP sockets, XDP programs and other system calls ([`sys`], all the
//! `unsafe`), and the chassis agent ([`agent`]). The datapath they run is
//! `switchyard-datapath`, re-exported here under its own module names
//! (`dp`, `ct`, `tables`, `answer`, `inspect`, `port`, `stats`); the control
//! protocol is `switchyard-control` ([`control`]).
#![deny(unsafe_code)]

pub use switchyard_control as control;
pub use switchyard_datapath::{answer, ct, dp, inspect, port, stats, tables};

pub mod agent;
pub mod pmd;
#[allow(unsafe_code)]
pub mod sys;
