//! switchyard-northd as a library: the NB model and its validation, NB storage,
//! the NB -> SB compiler, the SB state and the gRPC services.
#![forbid(unsafe_code)]

pub mod acl;
pub mod auth;
pub mod change;
pub mod compile;
pub mod compile_acl;
pub mod compile_lb;
pub mod compile_router;
pub mod db;
pub mod dhcp;
pub mod dns;
pub mod flows;
pub mod ha;
pub mod ipam;
pub mod lb;
pub mod model;
pub mod nb;
pub mod router;
pub mod sb;
pub mod server;
pub mod store;
pub mod store_etcd;
pub mod switch_config;
pub mod wait;
