//! Answers the datapath gives on a server's behalf, in the PMD, without a
//! hop to a daemon: DNS for the cluster's names ([`dns`]) and DHCPv4 for
//! the ports ([`dhcp`]).

pub mod dhcp;
pub mod dns;
