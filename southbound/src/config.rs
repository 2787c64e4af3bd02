//! Daemon configuration files (`/etc/switchyard/northd.toml`,
//! `/etc/switchyard/vswitchd.toml`): every command-line flag is also a key of
//! the file, spelled as the flag without its dashes (`nb-listen` or
//! `nb_listen`), so a flag and its key can never drift apart. The command line
//! wins over the file; a missing file at the default path is no error, a
//! missing file named with `--config` is.

use std::ffi::OsString;
use std::path::Path;

/// The arguments to parse: the file's keys turned into flags (`key = "v"` ->
/// `--key v`, `key = true` -> `--key`, `false` -> nothing, arrays -> one value
/// joined by commas), each unless the command line gives the flag itself,
/// then the command line. `default` is used when there is no `--config`.
pub fn args_with_config(
    argv: impl IntoIterator<Item = OsString>,
    default: &Path,
) -> Result<Vec<OsString>, String> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    let text: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (path, explicit) = match text.iter().position(|a| a == "--config") {
        Some(i) => match text.get(i + 1) {
            Some(p) => (p.clone(), true),
            None => return Ok(argv), // clap says what is missing
        },
        None => match text.iter().find_map(|a| a.strip_prefix("--config=")) {
            Some(p) => (p.to_string(), true),
            None => (default.display().to_string(), false),
        },
    };
    let body = match std::fs::read_to_string(&path) {
        Ok(b) => b,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(argv),
        Err(e) => return Err(format!("config {path}: {e}")),
    };
    let table: toml::Table = body.parse().map_err(|e| format!("config {path}: {e}"))?;
    let given = |flag: &str| {
        text.iter()
            .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    };
    let mut out = vec![argv.first().cloned().unwrap_or_default()];
    for (key, value) in &table {
        let flag = format!("--{}", key.replace('_', "-"));
        if flag == "--config" || given(&flag) {
            continue;
        }
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => Err(format!(
                    "config {path}: {key} = {other}: not a flag's value"
                )),
            }
        };
        match value {
            toml::Value::Boolean(true) => out.push(flag.into()),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                let items: Result<Vec<String>, String> = items.iter().map(scalar).collect();
                out.push(flag.into());
                out.push(items?.join(",").into());
            }
            v => {
                out.push(flag.into());
                out.push(scalar(v)?.into());
            }
        }
    }
    out.extend(argv.into_iter().skip(1));
    Ok(out)
}

/// Prints a daemon's manual page (roff, section 8) from its flag definitions
/// (its hidden `--man-page`; the package installs the output).
pub fn print_man_page(cmd: clap::Command) -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).section("8").render(&mut page)?;
    std::io::Write::write_all(&mut std::io::stdout(), &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn keys_become_flags_and_the_command_line_wins() {
        let dir = std::env::temp_dir().join(format!("sy-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("d.toml");
        std::fs::write(
            &f,
            "nb_listen = \"0.0.0.0:6641\"\nsb-listen = \"0.0.0.0:6642\"\nicmp_rate = 500\nverbose = true\nquiet = false\npmd-cores = [2, 3]\n",
        )
        .unwrap();
        let f_s = f.display().to_string();
        let got = strs(
            args_with_config(
                args(&["d", "--config", &f_s, "--sb-listen", "1.2.3.4:1"]),
                Path::new("/nonexistent"),
            )
            .unwrap(),
        );
        for want in [
            ["--nb-listen", "0.0.0.0:6641"],
            ["--icmp-rate", "500"],
            ["--pmd-cores", "2,3"],
        ] {
            assert!(got.windows(2).any(|w| w == want), "{want:?} in {got:?}");
        }
        assert!(got.contains(&"--verbose".to_string()) && !got.contains(&"--quiet".to_string()));
        assert_eq!(
            got.iter().filter(|a| a.starts_with("--sb-listen")).count(),
            1,
            "{got:?}"
        );
        assert!(got.windows(2).any(|w| w == ["--sb-listen", "1.2.3.4:1"]));
        // No file at the default path: nothing added. A named missing file, or a bad one: an error.
        assert_eq!(
            strs(args_with_config(args(&["d", "-x"]), &dir.join("none.toml")).unwrap()),
            ["d", "-x"]
        );
        assert!(args_with_config(
            args(&["d", "--config", "/nonexistent.toml"]),
            Path::new("/x")
        )
        .is_err());
        std::fs::write(&f, "nested = { a = 1 }\n").unwrap();
        let e = args_with_config(args(&["d", "--config", &f_s]), Path::new("/x")).unwrap_err();
        assert!(e.contains("nested") && e.contains(&f_s), "{e}");
        std::fs::write(&f, "= broken").unwrap();
        assert!(args_with_config(args(&["d", "--config", &f_s]), Path::new("/x")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
