//! The stateful edge of the datapath: connection tracking ([`conntrack`]),
//! what a PMD does with it before and after the pipeline (load-balancer
//! DNAT, SNAT, affinity, zones: [`edge`]), header rewrites for NAT with
//! their checksum updates ([`nat`]), and first-fragment tracking ([`frag`]).

pub mod conntrack;
pub mod edge;
pub mod frag;
pub mod nat;
