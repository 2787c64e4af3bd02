//! switchyard-cni: the CNI plugin (see `switchyard_cli::cni`). The runtime
//! execs it with CNI_COMMAND and friends in the environment and the network
//! configuration on stdin.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(switchyard_cli::cni::main());
}
