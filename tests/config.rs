//! The settings file end to end: a store written and read with the file alone, the command
//! line overriding it, `config check`, and a broken file failing with its line.

mod common;

use common::{fixtures, out, run, text};

fn write(dir: &std::path::Path, body: &str) -> String {
    let f = dir.join("flowkeep.toml");
    std::fs::write(&f, body).unwrap();
    f.to_str().unwrap().to_string()
}

#[test]
fn a_store_written_and_read_with_the_file_alone() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let cfg = write(
        d.path(),
        &format!(
            "[store]\npath = {:?}\npartition = \"10m\"\nno-mac = true\n",
            store.to_str().unwrap()
        ),
    );
    let pcap = fixtures().join("gopacket__le_test008.pcapng");
    let o = run(&["--config", &cfg, "replay", pcap.to_str().unwrap(), "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        store.join("audit.log").exists(),
        "the store is where the file says"
    );

    let by_file = run(&["query", "--config", &cfg, "--format", "jsonl"]);
    let by_flag = run(&[
        "query",
        "--no-config",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert_eq!(by_file.status.code(), Some(0), "{}", out(&by_file));
    assert_eq!(by_file.stdout, by_flag.stdout);
    let lines = text(&by_file.stdout);
    assert!(lines.lines().count() > 0);
    for l in lines.lines() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(
            r["src_mac"].is_null() && r["dst_mac"].is_null(),
            "no-mac = true: {l}"
        );
    }
    // The command line wins over the file: another store, which does not exist.
    let elsewhere = d.path().join("nowhere");
    let o = run(&[
        "--config",
        &cfg,
        "info",
        "--store",
        elsewhere.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(out(&o).contains("nowhere"), "{}", out(&o));
}

#[test]
fn config_check_prints_the_effective_settings_and_whether_capture_would_start() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write(
        d.path(),
        "[store]\npath = \"/var/lib/flowkeep\"\n\n[capture]\ninterface = [\"eth1\"]\n\n[retention]\nage = \"30d\"\n",
    );
    let o = run(&["config", "check", "--config", &cfg]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for want in [
        "path = \"/var/lib/flowkeep\"  # line 2",
        "interface = [\"eth1\"]  # line 5",
        "age = \"30d\"  # line 8",
        "snaplen = 128  # default",
        "# listen = (not set)",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }

    let cfg = write(d.path(), "[store]\npath = \"/var/lib/flowkeep\"\n");
    let o = run(&["config", "check", "--config", &cfg]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(text(&o.stderr).contains("would not start"), "{}", out(&o));
    assert!(text(&o.stderr).contains("--interface"), "{}", out(&o));
}

#[test]
fn a_broken_file_fails_every_command_with_its_line() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write(
        d.path(),
        "[store]\npath = \"/s\"\n\n[retention]\nage = \"30\"\n",
    );
    for args in [vec!["info"], vec!["config", "check"], vec!["query"]] {
        let mut argv = vec!["--config", cfg.as_str()];
        argv.extend(args);
        let o = run(&argv);
        assert_eq!(o.status.code(), Some(2), "{argv:?}: {}", out(&o));
        let want = format!("{cfg}:5: retention.age: '30': a unit is required");
        assert!(text(&o.stderr).contains(&want), "{argv:?}: {}", out(&o));
    }
    let o = run(&[
        "--config",
        d.path().join("missing.toml").to_str().unwrap(),
        "info",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("missing.toml: No such file"),
        "{}",
        out(&o)
    );
}
