//! The stateless datapath: the flow key and its extraction from a frame
//! ([`packet`]), verdicts, the classifier, the two caches in front of it (the
//! exact-match [`emc`] and the wildcard [`megaflow`]), the logical
//! [`pipeline`] that decides a packet's fate, and the packets it generates
//! itself (ICMP errors, echo replies, ARP, TCP resets: [`generate`]; NA, NS and ICMPv6: [`generate6`]).

pub mod classifier;
pub mod clock;
pub mod csum;
pub mod emc;
pub mod flow;
pub mod generate;
pub mod generate6;
pub mod mask;
pub mod megaflow;
pub mod packet;
pub mod pipeline;
pub mod verdict;
