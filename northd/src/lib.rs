//! switchyard-northd as a library, one concern per folder: [`nb`] the
//! northbound contents and each feature's validation, [`model`] the
//! transaction engine (the model in memory, changes, generic column
//! writes), [`compile`] the NB -> SB compiler with the flow vocabulary,
//! [`store`] NB storage (memory, file, etcd), [`server`] the gRPC services,
//! the SB state, authentication, `--wait` and high availability.
#![forbid(unsafe_code)]

pub mod compile;
pub mod model;
pub mod nb;
pub mod server;
pub mod store;
