//! Compiles the XDP program with clang into OUT_DIR; vswitchd embeds the object.
use std::process::Command;

fn main() {
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let obj = format!("{out}/xsk_redirect.o");
    println!("cargo:rerun-if-changed=bpf/xsk_redirect.c");
    let arch_inc = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let status = Command::new("clang")
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-I",
            &arch_inc,
            "-c",
            "bpf/xsk_redirect.c",
            "-o",
            &obj,
        ])
        .status()
        .expect("clang is needed to build the XDP program (scripts/setup installs it)");
    assert!(
        status.success(),
        "clang failed to compile bpf/xsk_redirect.c"
    );
}
