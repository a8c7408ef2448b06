//! Shell completions and man pages, generated from the argument definitions themselves (clap's
//! companion crates), so that they say what `--help` says.

use super::args::{Cli, CompletionsArgs, ManArgs};
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io;

pub(super) fn completions(a: &CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "flowkeep", &mut io::stdout());
    Ok(0)
}

/// `flowkeep.1`, then `flowkeep-SUB.1` for every subcommand (and `flowkeep-hold-add.1` for
/// nested ones), as git and cargo name theirs.
pub(super) fn man(a: &ManArgs) -> Result<i32> {
    flowkeep::fs::create_dir_all(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let cmd = Cli::command();
    let mut written = 0;
    write_page(&a.out, cmd.clone(), "flowkeep", &mut written)?;
    println!("{written} man pages written to {}", a.out.display());
    Ok(0)
}

fn write_page(
    dir: &std::path::Path,
    cmd: clap::Command,
    name: &str,
    written: &mut usize,
) -> Result<()> {
    let cmd = cmd.name(name.to_string());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let file = format!("{name}.1");
    flowkeep::fs::write_atomically(dir, &format!(".{file}.tmp"), &file, &page)
        .with_context(|| format!("writing {}", dir.join(&file).display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_page(
            dir,
            sub.clone(),
            &format!("{name}-{}", sub.get_name()),
            written,
        )?;
    }
    Ok(())
}
