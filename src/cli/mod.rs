//! The `flowkeep` command: arguments in ([`args`]), configurations out ([`config`]), the
//! library called, results printed. The one place that reads the wall clock ([`wall_clock`]):
//! everything below is handed the time.

mod admin;
mod anonymize;
mod args;
mod attribution;
mod audit;
mod collect;
mod config;
mod config_file;
#[cfg(test)]
mod config_file_test;
mod disclose;
mod docs;
mod evidence;
#[cfg(test)]
mod examples_test;
mod export;
mod holds;
mod query;
mod tor;

use args::{Cli, Command};
use clap::Parser;
use flowkeep::store::Recovery;
use flowkeep::time::Nanos;
use std::io;

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let argv = match config_file::merge(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(msg) => {
            eprintln!("flowkeep: error: {msg}");
            return 2;
        }
    };
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if let Err(e) = flowkeep::fs::arm_faults_from_env() {
        eprintln!("flowkeep: error: {e}");
        return 2;
    }
    let code = run(cli);
    flowkeep::fs::report_faults();
    code
}

fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Replay(a) => collect::replay(a),
        Command::Capture(a) => collect::capture(a),
        Command::Query(a) => query::query(a),
        Command::Stats(a) => query::stats(a),
        Command::Report(a) => query::report(a),
        Command::Expire(a) => admin::expire(a),
        Command::Hold(a) => holds::hold(a),
        Command::Verify(a) => admin::verify(a),
        Command::Recover(a) => admin::recover(a),
        Command::Info(a) => admin::info(a),
        Command::Export(a) => export::export(a),
        Command::WhoHad(a) => attribution::who_had(a),
        Command::Key(a) => evidence::key(a),
        Command::Checkpoint(a) => evidence::checkpoint(a),
        Command::Disclose(a) => disclose::disclose(a),
        Command::Audit(a) => audit::audit(a),
        Command::Completions(a) => docs::completions(&a),
        Command::Man(a) => docs::man(&a),
        Command::Config(a) => config_file::check(&a, cli.config.as_deref()),
        Command::Tor(a) => tor::tor(a),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("flowkeep: error: {}", error_text(&e));
            1
        }
    }
}

/// The error and its causes, `: `-separated, each said once: our errors name the path and
/// include their cause's text (`/x: No such file or directory`), so a cause whose text the
/// message already ends with is not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// `flowkeep query | head` closes our stdout early: that is success, not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Now, by the system's clock.
pub(crate) fn wall_clock() -> Nanos {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}

/// One line per temporary segment of a dead writer that was sealed (or removed), and per one
/// that could not be.
fn print_recovery(r: &Recovery) {
    for s in &r.segments {
        eprintln!("flowkeep: {s}");
    }
    for i in &r.imports {
        eprintln!("flowkeep: {i}");
    }
    for p in &r.problems {
        eprintln!("flowkeep: warning: {p}");
    }
}

/// Exit status of a question (query, stats, export, who-had) answered from what could be read
/// while some stored data could not be: the answer may be missing records, and a script that
/// hands it on must be able to tell, not only a person reading the warnings.
const INCOMPLETE: i32 = 3;

fn warn_incomplete(problems: usize) {
    eprintln!(
        "flowkeep: warning: the answer is incomplete: {problems} unreadable part(s) of the store \
         were skipped (see `flowkeep verify`)"
    );
}

#[cfg(test)]
mod tests {
    use super::args::parse_buffer;
    use super::*;

    #[test]
    fn error_text_says_each_cause_once() {
        let io = io::Error::new(io::ErrorKind::NotFound, "No such file or directory");
        let e: anyhow::Error = flowkeep::store::StoreError::Io {
            path: "/x".into(),
            source: io,
        }
        .into();
        assert_eq!(error_text(&e), "/x: No such file or directory");
        let e = e.context("export to /y");
        assert_eq!(
            error_text(&e),
            "export to /y: /x: No such file or directory"
        );
        let e = anyhow::anyhow!("plain");
        assert_eq!(error_text(&e), "plain");
    }

    #[test]
    fn capture_buffer_sizes() {
        assert_eq!(parse_buffer("256M"), Ok(256 << 20));
        assert_eq!(parse_buffer("1M"), Ok(1 << 20));
        assert_eq!(parse_buffer("2047M"), Ok(2047 << 20));
        assert!(parse_buffer("2G").unwrap_err().contains("less than 2G"));
        assert!(parse_buffer("100K").unwrap_err().contains("at least 1M"));
        assert!(parse_buffer("lots").is_err());
    }

    #[test]
    fn capture_defaults() {
        let cli = Cli::try_parse_from(["flowkeep", "capture", "-i", "eth1", "-s", "/x"]).unwrap();
        let Command::Capture(a) = cli.command else {
            panic!("not capture")
        };
        assert_eq!(a.buffer, 256 << 20);
        assert_eq!(a.snaplen, 128);
        assert_eq!(a.user, "nobody");
        assert_eq!(a.metrics, None);
        assert_eq!(a.interface, ["eth1"]);
        assert!(!a.no_dhcp_handle);
        let cli =
            Cli::try_parse_from(["flowkeep", "capture", "-i", "a", "-i", "b", "-s", "/x"]).unwrap();
        let Command::Capture(a) = cli.command else {
            panic!("not capture")
        };
        assert_eq!(a.interface, ["a", "b"]);
        assert!(Cli::try_parse_from(["flowkeep", "capture", "-s", "/x"]).is_err());
    }
}
