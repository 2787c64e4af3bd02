//! switchyard-vswitchd as a library: the datapath (flow keys, classifier, caches,
//! pipeline, PMD), ports (AF_XDP and in-memory), and the chassis agent.
//! All `unsafe` code lives in [`sys`].
#![deny(unsafe_code)]

pub mod agent;
pub mod classifier;
pub mod conntrack;
pub mod control;
pub mod dhcp;
pub mod dns;
pub mod edge;
pub mod emc;
pub mod flow;
pub mod frag;
pub mod generate;
pub mod lb;
pub mod mask;
pub mod megaflow;
pub mod microflow;
pub mod nat;
pub mod packet;
pub mod pipeline;
pub mod pmd;
pub mod port;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;
pub mod tables;
pub mod trace;
pub mod underlay;
pub mod verdict;
