//! switchyard-cli as a library: what syctl and the switchyard-cni plugin share.
#![forbid(unsafe_code)]

pub mod cni;
pub mod nb_client;
