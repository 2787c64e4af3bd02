//! ovn-nbctl's `--`: one invocation, several commands, one transaction.

/// Global options that take a value (they come before the command's name).
const VALUED_GLOBALS: [&str; 4] = ["--nb", "--vswitchd", "--wait", "--timeout"];

/// Splits `syctl CMD ARGS -- CMD ARGS ...` into its commands (ovn-nbctl's `--`)
/// and moves the `--may-exist` / `--if-exists` written before a command's name
/// (`-- --may-exist ls-add ls1`, as ovn-nbctl has them) after it, where clap
/// reads them.
pub fn split_chain(args: &[String]) -> Vec<Vec<String>> {
    args.split(|a| a == "--")
        .map(|seg| {
            let mut out = Vec::new();
            let mut early = Vec::new();
            let mut named = false;
            let mut i = 0;
            while i < seg.len() {
                let t = &seg[i];
                if named {
                    out.push(t.clone());
                } else if t == "--may-exist" || t == "--if-exists" {
                    early.push(t.clone());
                } else if VALUED_GLOBALS.contains(&t.as_str()) {
                    out.push(t.clone());
                    if let Some(v) = seg.get(i + 1) {
                        out.push(v.clone());
                    }
                    i += 1;
                } else if t.starts_with('-') {
                    out.push(t.clone());
                } else {
                    out.push(t.clone());
                    out.append(&mut early);
                    named = true;
                }
                i += 1;
            }
            out.append(&mut early);
            out
        })
        .collect()
}

/// The command's name in a chain segment (for messages).
pub fn command_name(seg: &[String]) -> String {
    let mut i = 0;
    while i < seg.len() {
        if VALUED_GLOBALS.contains(&seg[i].as_str()) {
            i += 2;
        } else if seg[i].starts_with('-') {
            i += 1;
        } else {
            return seg[i].clone();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn a_chain_splits_on_double_dashes_and_flags_move_after_the_name() {
        let c = split_chain(&v(
            "--nb http://x lsp-add ls0 x1 -- --may-exist ls-add ls1 -- lsp-set-type x1 router",
        ));
        assert_eq!(
            c,
            vec![
                v("--nb http://x lsp-add ls0 x1"),
                v("ls-add --may-exist ls1"),
                v("lsp-set-type x1 router"),
            ]
        );
        assert_eq!(command_name(&c[0]), "lsp-add");
        assert_eq!(split_chain(&v("ls-list")), vec![v("ls-list")]);
        assert!(split_chain(&v("ls-add a --")).iter().any(Vec::is_empty));
        // Every part of a chain parses as a command of its own.
        for seg in &c {
            crate::Cli::try_parse_from(
                std::iter::once("syctl".to_string()).chain(seg.iter().cloned()),
            )
            .unwrap_or_else(|e| panic!("{seg:?}: {e}"));
        }
    }
}
