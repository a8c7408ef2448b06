//! The settings file, `/etc/flowkeep/flowkeep.toml` or `--config FILE`: each key stands for
//! one long option and is given to every subcommand that has that option, unless the command
//! line gives it. The file is merged into the argument list before the real parse, so a
//! setting goes through the same value parser, defaults and conflicts as its flag, and cannot
//! mean anything the flag does not; an error in the file names its line.

use super::args::Cli;
use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Read when it exists and neither `--config` nor `--no-config` is given.
pub const DEFAULT_PATH: &str = "/etc/flowkeep/flowkeep.toml";

/// One key of the file: `[section] key` sets the option whose clap id is `arg`; `only` limits
/// it to one subcommand (capture's BPF `filter` is not `hold add --filter`).
struct Setting {
    section: &'static str,
    key: &'static str,
    arg: &'static str,
    only: Option<&'static str>,
}

const fn s(section: &'static str, key: &'static str, arg: &'static str) -> Setting {
    Setting {
        section,
        key,
        arg,
        only: None,
    }
}

const fn capture(key: &'static str, arg: &'static str) -> Setting {
    Setting {
        section: "capture",
        key,
        arg,
        only: Some("capture"),
    }
}

/// Every key, in the order `config check` prints them. Keys are the long options' names
/// where the section does not already say it (`[retention] age` is `--retention`).
const SETTINGS: &[Setting] = &[
    s("store", "path", "store"),
    s("store", "partition", "partition"),
    s("store", "zstd-level", "zstd_level"),
    s("store", "no-mac", "no_mac"),
    capture("interface", "interface"),
    capture("filter", "filter"),
    capture("snaplen", "snaplen"),
    capture("buffer", "buffer"),
    capture("fanout", "fanout"),
    capture("user", "user"),
    capture("no-dhcp-handle", "no_dhcp_handle"),
    s("flow", "idle-timeout", "idle_timeout"),
    s("flow", "active-timeout", "active_timeout"),
    s("flow", "tcp-end-timeout", "tcp_end_timeout"),
    s("flow", "max-flows", "max_flows"),
    s("flow", "workers", "workers"),
    s("retention", "age", "retention"),
    s("retention", "max-size", "max_size"),
    s("retention", "anonymize-after", "anonymize_after"),
    s("retention", "anonymize-key", "anonymize_key"),
    s("export", "ipfix", "export"),
    s("export", "unidirectional", "unidirectional"),
    s("export", "observation-domain", "observation_domain"),
    s("export", "ipfix-message-size", "ipfix_message_size"),
    s("export", "template-refresh", "template_refresh"),
    s(
        "export",
        "template-refresh-messages",
        "template_refresh_messages",
    ),
    s("metrics", "listen", "metrics"),
    s("signing", "key", "signing_key"),
    s("signing", "checkpoint-to", "checkpoint_to"),
    s("signing", "checkpoint-interval", "checkpoint_interval"),
];

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check the settings file (--config, else /etc/flowkeep/flowkeep.toml) and print the
    /// settings `flowkeep capture` would run with, each with its line in the file or
    /// `default`; exit status 1 if capture would not start with them.
    #[command(
        after_help = "Example:\n  flowkeep config check\n  flowkeep config check --config /etc/flowkeep/flowkeep.toml"
    )]
    Check,
}

/// One key as the file gives it.
struct Given {
    setting: &'static Setting,
    line: usize,
    /// The option's values as text, one per occurrence; a flag set to `false` has none.
    values: Vec<String>,
    /// A flag (no value on the command line): given as `--long` alone.
    flag: bool,
}

/// The file, read and checked.
pub struct Loaded {
    path: PathBuf,
    given: Vec<Given>,
}

/// The argument list with the file's settings merged in, or the file's error (status 2). An
/// argument list clap cannot parse even leniently is returned as it is, for clap to explain.
pub fn merge(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let Some(matches) = lenient(&argv) else {
        return Ok(argv);
    };
    let leaf = leaf_of(&matches).1;
    let explicit = leaf.try_get_one::<PathBuf>("config").ok().flatten();
    let no_config = matches!(leaf.try_get_one::<bool>("no_config"), Ok(Some(true)));
    match load(explicit.map(PathBuf::as_path), no_config)? {
        Some(loaded) => Ok(apply(argv, &loaded, &matches)),
        None => Ok(argv),
    }
}

/// What clap makes of the arguments without requiring anything: which subcommand, and
/// which options the command line gives.
fn lenient(argv: &[OsString]) -> Option<ArgMatches> {
    Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(argv)
        .ok()
}

/// The subcommand names down to the one that runs, and its matches.
fn leaf_of(matches: &ArgMatches) -> (Vec<String>, &ArgMatches) {
    let mut names = Vec::new();
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        names.push(name.to_string());
        leaf = sub;
    }
    (names, leaf)
}

fn apply(argv: Vec<OsString>, loaded: &Loaded, matches: &ArgMatches) -> Vec<OsString> {
    let (names, leaf) = leaf_of(matches);
    let root = Cli::command();
    let mut cmd = &root;
    for n in &names {
        match cmd.find_subcommand(n) {
            Some(c) => cmd = c,
            None => return argv,
        }
    }
    let Some(name) = names.last() else {
        return argv;
    };
    let extra = loaded.arguments(cmd, leaf, name);
    insert_after_subcommand(argv, &names, extra)
}

/// The file to read: `--config` (which must exist), else the default path if it exists.
/// `Ok(None)`: no file.
fn load(explicit: Option<&Path>, no_config: bool) -> Result<Option<Loaded>, String> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if no_config => return Ok(None),
        None if flowkeep::fs::exists(Path::new(DEFAULT_PATH)) => PathBuf::from(DEFAULT_PATH),
        None => return Ok(None),
    };
    let text = flowkeep::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (--no-config runs without it)", path.display()))?;
    parse(&path, &text).map(Some)
}

/// Checks every section, key and value, whichever subcommand runs: a broken file fails
/// every command alike, as `nginx -t` would, rather than only the service at its restart.
fn parse(path: &Path, text: &str) -> Result<Loaded, String> {
    let at = |span: Option<std::ops::Range<usize>>| -> usize {
        span.map_or(1, |r| {
            text[..r.start.min(text.len())].matches('\n').count() + 1
        })
    };
    let err = |line: usize, msg: String| format!("{}:{line}: {msg}", path.display());
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        let line = at(e.span());
        err(line, e.message().trim_end().to_string())
    })?;
    let sections = section_names();
    let capture = Cli::command();
    let capture = capture
        .find_subcommand("capture")
        .expect("capture is a subcommand");
    let mut given = Vec::new();
    for (name, item) in doc.iter() {
        let line = at(doc.key(name).and_then(|k| k.span()));
        let toml_edit::Item::Table(table) = item else {
            return Err(err(
                line,
                format!(
                    "'{name}' is not a section; settings go in sections: {}",
                    sections.join(", ")
                ),
            ));
        };
        if !sections.contains(&name) {
            return Err(err(
                line,
                format!(
                    "unknown section [{name}]; the sections are {}",
                    sections.join(", ")
                ),
            ));
        }
        for (key, item) in table.iter() {
            let line = at(table.key(key).and_then(|k| k.span()));
            let Some(setting) = SETTINGS
                .iter()
                .find(|st| st.section == name && st.key == key)
            else {
                let keys: Vec<&str> = SETTINGS
                    .iter()
                    .filter(|st| st.section == name)
                    .map(|st| st.key)
                    .collect();
                return Err(err(
                    line,
                    format!(
                        "unknown key '{key}' in [{name}]; its keys are {}",
                        keys.join(", ")
                    ),
                ));
            };
            let g = given_value(setting, item, line, capture)
                .map_err(|m| err(line, format!("{name}.{key}: {m}")))?;
            given.push(g);
        }
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        given,
    })
}

fn section_names() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for st in SETTINGS {
        if !out.contains(&st.section) {
            out.push(st.section);
        }
    }
    out
}

/// A key's value, checked by the option's own value parser (capture has every option).
fn given_value(
    setting: &'static Setting,
    item: &toml_edit::Item,
    line: usize,
    capture: &clap::Command,
) -> Result<Given, String> {
    let arg = capture
        .get_arguments()
        .find(|a| a.get_id() == setting.arg)
        .unwrap_or_else(|| panic!("capture has no option {}", setting.arg));
    let flag = matches!(arg.get_action(), ArgAction::SetTrue);
    let repeats = matches!(arg.get_action(), ArgAction::Append);
    let value = item
        .as_value()
        .ok_or("expected a value, not a table".to_string())?;
    let texts: Vec<String> = match value {
        toml_edit::Value::Boolean(b) if flag => {
            return Ok(Given {
                setting,
                line,
                values: if *b.value() {
                    vec![String::new()]
                } else {
                    Vec::new()
                },
                flag,
            })
        }
        _ if flag => return Err("expected true or false".into()),
        toml_edit::Value::Array(a) if repeats => a.iter().map(scalar).collect::<Result<_, _>>()?,
        toml_edit::Value::Array(_) => return Err("takes one value, not a list".into()),
        v => vec![scalar(v)?],
    };
    if texts.is_empty() {
        return Err("the list is empty".into());
    }
    // The option alone in a command of its own: its value parser, without the subcommand's
    // required options and conflicts.
    let alone = clap::Command::new("setting").no_binary_name(true).arg(
        clap::Arg::new("v")
            .long("v")
            .value_parser(arg.get_value_parser().clone())
            .action(ArgAction::Set),
    );
    for t in &texts {
        alone
            .clone()
            .try_get_matches_from(["--v", t.as_str()])
            .map_err(|e| clap_reason(&e, t, arg))?;
    }
    Ok(Given {
        setting,
        line,
        values: texts,
        flag,
    })
}

/// What the option would take on the command line: a string or an integer, as text.
fn scalar(v: &toml_edit::Value) -> Result<String, String> {
    match v {
        toml_edit::Value::String(s) => Ok(s.value().clone()),
        toml_edit::Value::Integer(i) => Ok(i.value().to_string()),
        toml_edit::Value::Boolean(_) => Err("expected a value, not true or false".into()),
        toml_edit::Value::Float(_) => {
            Err("write durations and sizes as strings with a unit, e.g. \"30d\", \"2G\"".into())
        }
        _ => Err("expected a string or an integer".into()),
    }
}

/// The reason alone, without clap's `error:` and usage lines: the value parser's own message,
/// or the values the option takes.
fn clap_reason(e: &clap::Error, value: &str, arg: &clap::Arg) -> String {
    use std::error::Error as _;
    if let Some(src) = e.source() {
        let src = src.to_string();
        return if src.starts_with(value) {
            src
        } else {
            format!("'{value}': {src}")
        };
    }
    let names: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|p| p.get_name().to_string())
        .collect();
    if names.is_empty() {
        format!("'{value}' is not valid")
    } else {
        format!("'{value}' is not one of {}", names.join(", "))
    }
}

impl Loaded {
    /// The `--long=value` arguments the file adds for subcommand `cmd` parsed as `matches`:
    /// for each of its options the command line does not give, nor any that conflicts with it.
    fn arguments(&self, cmd: &clap::Command, matches: &ArgMatches, leaf: &str) -> Vec<OsString> {
        let mut out = Vec::new();
        for g in &self.given {
            if g.setting.only.is_some_and(|o| o != leaf) {
                continue;
            }
            let Some(arg) = cmd.get_arguments().find(|a| a.get_id() == g.setting.arg) else {
                continue;
            };
            if on_command_line(matches, g.setting.arg)
                || cmd
                    .get_arg_conflicts_with(arg)
                    .iter()
                    .any(|c| on_command_line(matches, c.get_id().as_str()))
            {
                continue;
            }
            let long = arg.get_long().expect("every setting is a long option");
            for v in &g.values {
                out.push(if g.flag {
                    format!("--{long}").into()
                } else {
                    format!("--{long}={v}").into()
                });
            }
        }
        out
    }
}

fn on_command_line(m: &ArgMatches, id: &str) -> bool {
    matches!(m.value_source(id), Some(ValueSource::CommandLine))
}

/// `extra` goes right after the (last) subcommand's name, before anything that could end the
/// options (`--`) or be read as a positional argument.
fn insert_after_subcommand(
    argv: Vec<OsString>,
    names: &[String],
    extra: Vec<OsString>,
) -> Vec<OsString> {
    let mut at = 1;
    for n in names {
        match argv[at.min(argv.len())..]
            .iter()
            .position(|a| a == n.as_str())
        {
            Some(i) => at += i + 1,
            None => return argv,
        }
    }
    let mut out = argv;
    out.splice(at..at, extra);
    out
}

/// `flowkeep config check`.
pub(super) fn check(_a: &ConfigArgs, explicit: Option<&Path>) -> Result<i32> {
    let loaded = match load(explicit, false) {
        Ok(Some(l)) => l,
        Ok(None) => {
            eprintln!("flowkeep: error: no settings file: {DEFAULT_PATH} does not exist and no --config was given");
            return Ok(1);
        }
        Err(msg) => {
            eprintln!("flowkeep: error: {msg}");
            return Ok(1);
        }
    };
    let root = Cli::command();
    let capture = root
        .find_subcommand("capture")
        .expect("capture is a subcommand");
    let empty = capture
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(["capture"])
        .unwrap_or_default();
    let mut argv: Vec<OsString> = vec!["flowkeep".into(), "capture".into()];
    argv.extend(loaded.arguments(capture, &empty, "capture"));
    let starts = Cli::try_parse_from(&argv);
    print!("{}", loaded.effective(capture));
    match starts {
        Ok(_) => {
            println!(
                "# {}: flowkeep capture would start with these settings",
                loaded.path.display()
            );
            Ok(0)
        }
        Err(e) => {
            // clap's message without its usage and help lines.
            let text = e.to_string();
            let reason: Vec<&str> = text
                .lines()
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            eprintln!(
                "flowkeep: error: {}: flowkeep capture would not start with these settings: {}",
                loaded.path.display(),
                reason.join(" ").trim_start_matches("error: ")
            );
            Ok(1)
        }
    }
}

impl Loaded {
    /// The settings as TOML, each from the file (`# line N`), a default (`# default`), or not
    /// set (commented out).
    fn effective(&self, capture: &clap::Command) -> String {
        let mut out = String::new();
        let mut section = "";
        for st in SETTINGS {
            if st.section != section {
                section = st.section;
                let _ = writeln!(out, "{}[{section}]", if out.is_empty() { "" } else { "\n" });
            }
            let arg = capture
                .get_arguments()
                .find(|a| a.get_id() == st.arg)
                .expect("capture has every option");
            let flag = matches!(arg.get_action(), ArgAction::SetTrue);
            let repeats = matches!(arg.get_action(), ArgAction::Append);
            if let Some(g) = self.given.iter().find(|g| std::ptr::eq(g.setting, st)) {
                let v = if flag {
                    (!g.values.is_empty()).to_string()
                } else {
                    toml_text(&g.values, repeats)
                };
                let _ = writeln!(out, "{} = {v}  # line {}", st.key, g.line);
                continue;
            }
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect();
            if flag {
                let _ = writeln!(out, "{} = false  # default", st.key);
            } else if defaults.is_empty() {
                let _ = writeln!(out, "# {} = (not set)", st.key);
            } else {
                let _ = writeln!(
                    out,
                    "{} = {}  # default",
                    st.key,
                    toml_text(&defaults, repeats)
                );
            }
        }
        out
    }
}

/// Integers bare, everything else a TOML string; a list when the option repeats.
fn toml_text(values: &[String], list: bool) -> String {
    let one = |v: &String| -> String {
        if v.parse::<i64>().is_ok() {
            v.clone()
        } else {
            toml_edit::Value::from(v.as_str())
                .to_string()
                .trim()
                .to_string()
        }
    };
    let items: Vec<String> = values.iter().map(one).collect();
    if list {
        format!("[{}]", items.join(", "))
    } else {
        items.join(", ")
    }
}

/// The file's values, applied as `flowkeep` itself would: for tests.
#[cfg(test)]
pub(super) fn parse_with(text: &str, argv: &[&str]) -> Result<Cli, String> {
    let loaded = parse(Path::new("test.toml"), text)?;
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let matches = lenient(&argv).ok_or("not parsed")?;
    Cli::try_parse_from(apply(argv, &loaded, &matches)).map_err(|e| e.to_string())
}
