//! Every subcommand's `--help` ends with an example, and every example parses: a help text
//! that teaches a wrong flag is worse than none.

use super::args::Cli;
use clap::{CommandFactory, Parser};

/// Words as a POSIX shell splits them, for the quoting the examples use (single quotes).
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn every_subcommand_shows_an_example_that_parses() {
    let mut checked = 0;
    check_examples(&mut Cli::command(), &[], &mut checked);
    // 20 commands, 7 of them nested (hold add, list, renew, release; key generate; config
    // check; tor import).
    assert_eq!(checked, 27, "subcommands checked");
    assert_eq!(words("a 'b c' d"), ["a", "b c", "d"]);
}

/// `cmd`'s subcommands (below `path`) and theirs: each `--help` ends with an example of it
/// that parses (`flowkeep hold add ...` for `hold add`).
fn check_examples(cmd: &mut clap::Command, path: &[String], checked: &mut usize) {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    for name in names {
        let sub = cmd.find_subcommand_mut(&name).unwrap();
        let mut full = path.to_vec();
        full.push(name.clone());
        let shown = full.join(" ");
        let help = sub.render_long_help().to_string();
        let example = help
            .split("Example:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("`flowkeep {shown} --help` shows no example"));
        let lines: Vec<&str> = example
            .lines()
            .filter(|l| l.starts_with("  flowkeep "))
            .collect();
        assert!(!lines.is_empty(), "{shown}: {example}");
        for line in lines {
            // The part after a pipe is flowkeep's (`tcpdump ... | flowkeep replay -`).
            let line = line.rsplit("| ").next().unwrap();
            // And before a redirection or the next command.
            let line = line.split(['>', '&']).next().unwrap().trim();
            let w = words(line);
            assert_eq!(w[1..=full.len()], full[..], "{line}");
            if let Err(e) = Cli::try_parse_from(&w) {
                panic!("`{line}` does not parse: {e}");
            }
        }
        *checked += 1;
        check_examples(sub, &full, checked);
    }
}
