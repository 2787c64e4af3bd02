//! Shared pieces of Switchyard's integration tests: frame builders, the traffic
//! scenarios (written once, run over the in-memory port and over AF_XDP), and a
//! sandbox wrapper that drives the real `syctl` and daemons.
#![forbid(unsafe_code)]

pub mod afxdp;
pub mod containerd;
pub mod etcd;
pub mod frames;
pub mod fuzz;
pub mod fuzz_dns;
pub mod memory;
pub mod metrics;
pub mod northd;
pub mod sandbox;
pub mod scenario;
