//! Running commands and daemons for the sandbox: a command's output or its
//! stderr as the error, the same inside a namespace, and a daemon's record.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A daemon the sandbox started: its pid, log and command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Daemon {
    pub pid: u32,
    pub log: PathBuf,
    pub args: Vec<String>,
}

/// Runs a command; fails with its stderr.
pub fn sh(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!("cannot run {cmd} (is it installed? scripts/setup installs it)")
        })?;
    if !out.status.success() {
        bail!(
            "{} {} failed: {}",
            cmd,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command inside a pod's namespace.
pub fn in_ns(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut v = vec!["netns", "exec", ns];
    v.extend_from_slice(args);
    sh("ip", &v)
}
