//! Shell completions and man pages come from the argument definitions: the bash script is valid
//! bash and completes the subcommands; there is a man page for every subcommand `--help` lists,
//! and man renders each.

mod common;

use common::{run, text};
use std::process::Command;

/// The subcommands `flowkeep --help` lists.
fn subcommands() -> Vec<String> {
    let help = text(&run(&["--help"]).stdout);
    help.split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_are_valid_bash_and_name_every_subcommand() {
    let o = run(&["completions", "bash"]);
    assert!(o.status.success());
    let script = text(&o.stdout);
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("flowkeep.bash");
    std::fs::write(&f, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    let subs = subcommands();
    assert!(subs.len() > 15, "{subs:?}");
    for s in &subs {
        assert!(script.contains(s.as_str()), "completion lacks {s}");
    }
    for shell in ["zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert!(
            o.status.success() && text(&o.stdout).contains("query"),
            "{shell}"
        );
    }
    let o = run(&["completions", "tcsh"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn a_man_page_for_every_subcommand_and_man_renders_them() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("man1");
    let o = run(&["man", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::out(&o));
    let man = Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    for s in std::iter::once("flowkeep".to_string())
        .chain(subcommands().iter().map(|s| format!("flowkeep-{s}")))
    {
        let page = out.join(format!("{s}.1"));
        assert!(page.exists(), "no {}", page.display());
        if man {
            let r = Command::new("man")
                .env("MANWIDTH", "100")
                .arg("-l")
                .arg(&page)
                .output()
                .unwrap();
            let t = text(&r.stdout);
            assert!(
                r.status.success() && t.contains("NAME") && t.contains(&s),
                "{s}: {t}"
            );
        }
    }
    assert!(
        out.join("flowkeep-hold-add.1").exists(),
        "nested subcommands too"
    );
    if !man {
        common::can_run(Some(
            "man (man-db) is not installed: pages written, not rendered".into(),
        ));
    }
}
