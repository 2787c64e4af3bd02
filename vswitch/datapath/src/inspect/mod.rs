//! What an operator asks about a packet without sending one: the flow
//! description language ([`microflow`]) and the pipeline trace run on the
//! live tables ([`trace`], OVS's `ofproto/trace`).

pub mod microflow;
pub mod trace;
