//! The settings file against the parsed command line: what the file gives each subcommand,
//! what the command line overrides, and the errors with their lines.

use super::args::{Command, HoldCommand};
use super::config_file::parse_with;
use std::path::PathBuf;

const FILE: &str = r#"
# a site's settings
[store]
path = "/var/lib/flowkeep"
no-mac = true

[capture]
interface = ["eth1", "eth2"]
filter = "not port 22"

[retention]
age = "30d"
max-size = "500G"

[signing]
key = "/etc/flowkeep/signing.key"
"#;

#[test]
fn every_subcommand_with_the_option_takes_it() {
    let cli = parse_with(FILE, &["flowkeep", "expire"]).unwrap();
    let Command::Expire(a) = cli.command else {
        panic!()
    };
    assert_eq!(a.store, PathBuf::from("/var/lib/flowkeep"));
    assert_eq!(a.policy.retention, Some(30 * 86_400 * 1_000_000_000));
    assert_eq!(a.policy.max_size, Some(500 << 30));
    assert_eq!(
        a.signing.signing_key,
        Some("/etc/flowkeep/signing.key".into())
    );

    let cli = parse_with(FILE, &["flowkeep", "capture"]).unwrap();
    let Command::Capture(a) = cli.command else {
        panic!()
    };
    assert_eq!(a.interface, ["eth1", "eth2"]);
    assert_eq!(a.filter.as_deref(), Some("not port 22"));
    assert!(a.store.no_mac);
    assert_eq!(
        a.snaplen, 128,
        "an option the file leaves out keeps its default"
    );

    let cli = parse_with(
        FILE,
        &["flowkeep", "query", "--since", "-1h", "host", "10.0.0.1"],
    );
    let Command::Query(a) = cli.unwrap().command else {
        panic!()
    };
    assert_eq!(a.select.store, PathBuf::from("/var/lib/flowkeep"));
    assert_eq!(a.select.expr, ["host", "10.0.0.1"]);
}

#[test]
fn the_command_line_wins() {
    for store in [["--store", "/srv/x"], ["-s", "/srv/x"]] {
        let argv = [
            "flowkeep",
            "expire",
            store[0],
            store[1],
            "--retention",
            "7d",
        ];
        let Command::Expire(a) = parse_with(FILE, &argv).unwrap().command else {
            panic!()
        };
        assert_eq!(a.store, PathBuf::from("/srv/x"));
        assert_eq!(a.policy.retention, Some(7 * 86_400 * 1_000_000_000));
        assert_eq!(
            a.policy.max_size,
            Some(500 << 30),
            "what the line leaves out, the file gives"
        );
    }
    let argv = ["flowkeep", "capture", "-i", "eth9", "--store=/srv/y"];
    let Command::Capture(a) = parse_with(FILE, &argv).unwrap().command else {
        panic!()
    };
    assert_eq!(
        a.interface,
        ["eth9"],
        "a repeated option is replaced whole, not extended"
    );
    assert_eq!(a.store.store, PathBuf::from("/srv/y"));
}

#[test]
fn capture_keys_stay_with_capture_and_conflicts_are_respected() {
    let argv = [
        "flowkeep", "hold", "add", "--name", "C-1", "--from", "@0", "--until", "open",
    ];
    let Command::Hold(h) = parse_with(FILE, &argv).unwrap().command else {
        panic!()
    };
    let HoldCommand::Add(a) = h.command else {
        panic!()
    };
    assert_eq!(
        a.filter, None,
        "[capture] filter is a BPF filter, not the hold's"
    );
    assert_eq!(a.store, PathBuf::from("/var/lib/flowkeep"));

    // verify --bundle conflicts with --store: the file's store path is not forced on it.
    let argv = ["flowkeep", "verify", "--bundle", "/srv/case"];
    let Command::Verify(a) = parse_with(FILE, &argv).unwrap().command else {
        panic!()
    };
    assert_eq!(a.store, None);

    let argv = ["flowkeep", "replay", "monday.pcap", "--", "-odd-name.pcap"];
    let Command::Replay(a) = parse_with(FILE, &argv).unwrap().command else {
        panic!()
    };
    assert_eq!(
        a.files,
        [PathBuf::from("monday.pcap"), "-odd-name.pcap".into()]
    );
    assert_eq!(a.store.store, PathBuf::from("/var/lib/flowkeep"));
}

#[test]
fn a_flag_set_false_is_absent() {
    let text = "[store]\npath = \"/s\"\nno-mac = false\n";
    let argv = ["flowkeep", "replay", "a.pcap"];
    let Command::Replay(a) = parse_with(text, &argv).unwrap().command else {
        panic!()
    };
    assert!(!a.store.no_mac);
}

#[test]
fn errors_name_the_line_and_say_what_is_wrong() {
    let cases = [
        (
            "[store]\npath = \"/s\"\n[stor]\n",
            "test.toml:3: unknown section [stor]",
        ),
        (
            "[store]\n\npth = \"/s\"\n",
            "test.toml:3: unknown key 'pth' in [store]; its keys are path,",
        ),
        ("path = \"/s\"\n", "test.toml:1: 'path' is not a section"),
        (
            "[retention]\nage = 30\n",
            "test.toml:2: retention.age: '30': a unit is required",
        ),
        (
            "[retention]\nage = 1.5\n",
            "test.toml:2: retention.age: write durations",
        ),
        (
            "[store]\nzstd-level = 40\n",
            "test.toml:2: store.zstd-level: 40 is not in 1..=22",
        ),
        (
            "[capture]\nfanout = \"maybe\"\n",
            "is not one of auto, on, off",
        ),
        (
            "[store]\nno-mac = \"yes\"\n",
            "test.toml:2: store.no-mac: expected true or false",
        ),
        (
            "[store]\npath = [\"/a\", \"/b\"]\n",
            "store.path: takes one value, not a list",
        ),
        (
            "[capture]\ninterface = []\n",
            "capture.interface: the list is empty",
        ),
        ("[store]\npath = \"/s\"\n[store]\n", "test.toml:3:"),
        ("[store\n", "test.toml:1:"),
    ];
    for (text, want) in cases {
        let e = parse_with(text, &["flowkeep", "info"])
            .err()
            .unwrap_or_default();
        assert!(e.starts_with(want) || e.contains(want), "{text:?}: {e}");
    }
}

/// The example the package installs: as shipped, and with every commented-out setting turned
/// on, it is valid and means what capture's flags would.
#[test]
fn the_example_file_is_valid_with_every_setting_on() {
    let shipped = include_str!("../../contrib/flowkeep.toml");
    let e = parse_with(shipped, &["flowkeep", "capture"]).unwrap_err();
    assert!(
        e.contains("--interface"),
        "no interface is named as shipped: {e}"
    );
    let all: String = shipped
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.contains(' ')) =>
            {
                rest
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let Command::Capture(a) = parse_with(&all, &["flowkeep", "capture"]).unwrap().command else {
        panic!()
    };
    assert_eq!(a.interface, ["eth1"]);
    assert_eq!(a.metrics.as_deref(), Some("127.0.0.1:9187"));
    assert_eq!(
        a.export.export.as_deref(),
        Some("ipfix+udp://192.0.2.10:4739")
    );
    assert_eq!(a.flow.workers, Some(2));
    assert!(a.signing.checkpoint_to.is_some() && a.retention.anonymize.anonymize_key.is_some());
}
