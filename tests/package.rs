//! The Debian package, installed for real: `dpkg -i` puts every file where Debian expects it
//! with its owner and mode, adds the `flowkeep` system user and a private store directory,
//! enables and starts nothing; the installed binary reads the installed settings file; the
//! capture unit scores at most 2.0 on `systemd-analyze security`; `dpkg -r` removes the
//! program and keeps the store, `dpkg --purge` also the settings file.
//!
//! Root only (it installs a package on this machine), and in a test binary of its own: while
//! it runs, /etc/flowkeep/flowkeep.toml exists, which every `flowkeep` command reads.

mod common;

use common::{can_run, fixtures, is_root};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let o = sh(cmd, args);
    let text = common::out(&o);
    assert!(o.status.success(), "{cmd} {args:?}: {text}");
    common::text(&o.stdout)
}

fn why_not() -> Option<String> {
    if !is_root() {
        return Some("installing a package needs root".into());
    }
    for tool in ["dpkg", "systemd-analyze", "adduser"] {
        if sh("sh", &["-c", &format!("command -v {tool}")])
            .status
            .code()
            != Some(0)
        {
            return Some(format!("{tool} is missing (scripts/deps.sh installs it)"));
        }
    }
    if sh("cargo", &["deb", "--version"]).status.code() != Some(0) {
        return Some("cargo-deb is missing (scripts/deps.sh installs it)".into());
    }
    None
}

/// Purges the package and removes what it left for the next run, unless the machine had
/// them before the test.
struct Cleanup {
    user_was_there: bool,
    store_was_there: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = sh("dpkg", &["--purge", "flowkeep"]);
        if !self.store_was_there {
            let _ = std::fs::remove_dir_all("/var/lib/flowkeep");
        }
        if !self.user_was_there {
            let _ = sh("userdel", &["flowkeep"]);
            let _ = sh("groupdel", &["flowkeep"]);
        }
    }
}

fn mode(path: &str) -> (u32, String) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let owner = ok("stat", &["-c", "%U:%G", path]).trim().to_string();
    (m.permissions().mode() & 0o7777, owner)
}

#[test]
fn the_package_installs_where_debian_expects_and_removes_cleanly() {
    if !can_run(why_not()) {
        return;
    }
    assert!(
        sh("dpkg", &["-s", "flowkeep"]).status.code() != Some(0),
        "a flowkeep package is installed on this machine; this test would remove it"
    );
    let root = env!("CARGO_MANIFEST_DIR");
    let built = ok(&format!("{root}/scripts/package.sh"), &[]);
    let deb = built.lines().last().unwrap().trim().to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{built}");

    let _cleanup = Cleanup {
        user_was_there: sh("getent", &["passwd", "flowkeep"]).status.success(),
        store_was_there: Path::new("/var/lib/flowkeep").exists(),
    };
    ok("dpkg", &["-i", &deb]);

    for (path, want) in [
        ("/usr/bin/flowkeep", 0o755),
        ("/etc/flowkeep/flowkeep.toml", 0o644),
        ("/usr/lib/systemd/system/flowkeep.service", 0o644),
        ("/usr/lib/systemd/system/flowkeep-verify.service", 0o644),
        ("/usr/lib/systemd/system/flowkeep-verify.timer", 0o644),
        ("/usr/lib/systemd/system/flowkeep-expire.service", 0o644),
        ("/usr/lib/systemd/system/flowkeep-expire.timer", 0o644),
        ("/usr/share/man/man1/flowkeep.1.gz", 0o644),
        ("/usr/share/man/man1/flowkeep-capture.1.gz", 0o644),
        ("/usr/share/man/man1/flowkeep-hold-add.1.gz", 0o644),
        ("/usr/share/bash-completion/completions/flowkeep", 0o644),
        ("/usr/share/zsh/vendor-completions/_flowkeep", 0o644),
        ("/usr/share/fish/vendor_completions.d/flowkeep.fish", 0o644),
        ("/usr/share/doc/flowkeep/README.md", 0o644),
        ("/usr/share/doc/flowkeep/copyright", 0o644),
    ] {
        assert_eq!(mode(path), (want, "root:root".into()), "{path}");
    }
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "flowkeep"]);
    assert!(
        conffiles.contains("/etc/flowkeep/flowkeep.toml"),
        "{conffiles}"
    );
    let version = ok("/usr/bin/flowkeep", &["--version"]);
    assert!(version.starts_with("flowkeep "), "{version}");
    let page = ok("man", &["-P", "cat", "flowkeep-capture"]);
    assert!(page.contains("--interface"), "{page}");

    // The user: a system account without a login; the store: its own, private.
    let passwd = ok("getent", &["passwd", "flowkeep"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid < 1000, "a system uid: {passwd}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{passwd}");
    assert_eq!(
        mode("/var/lib/flowkeep"),
        (0o750, "flowkeep:flowkeep".into())
    );

    // Nothing enabled, nothing started.
    let wants = ok(
        "sh",
        &["-c", "ls /etc/systemd/system/*.wants/ 2>/dev/null || true"],
    );
    assert!(!wants.contains("flowkeep"), "enabled at install: {wants}");
    let running = sh("pgrep", &["-x", "flowkeep"]);
    assert!(
        !running.status.success(),
        "a flowkeep process runs after install"
    );

    // The installed binary reads the installed settings: no interface named yet, so capture
    // would not start, and config check says so.
    let check = sh("/usr/bin/flowkeep", &["config", "check"]);
    assert_eq!(check.status.code(), Some(1), "{}", common::out(&check));
    assert!(common::text(&check.stdout).contains("path = \"/var/lib/flowkeep\"  # line"));
    assert!(common::text(&check.stderr).contains("--interface"));

    // The unit's exposure score, as systemd rates it.
    let score = ok(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            "/usr/lib/systemd/system/flowkeep.service",
        ],
    );
    let level: f64 = score
        .lines()
        .find_map(|l| l.split("flowkeep.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in: {score}"));
    assert!(level <= 2.0, "flowkeep.service scores {level}");

    // A store written as the service's user, with the settings file alone: private files.
    let readable = tempfile::tempdir().unwrap();
    std::fs::set_permissions(readable.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = readable.path().join("test008.pcapng");
    std::fs::copy(fixtures().join("gopacket__le_test008.pcapng"), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let copy = copy.to_str().unwrap();
    let replay = sh(
        "runuser",
        &[
            "-u",
            "flowkeep",
            "--",
            "/usr/bin/flowkeep",
            "replay",
            copy,
            "-q",
        ],
    );
    assert!(replay.status.success(), "{}", common::out(&replay));
    let mut files = 0;
    for entry in common::store::walk(Path::new("/var/lib/flowkeep")) {
        let m = std::fs::symlink_metadata(&entry).unwrap();
        let limit = if m.is_dir() { 0o750 } else { 0o640 };
        assert_eq!(
            m.mode() & 0o7777 & !limit,
            0,
            "{}: {:o}",
            entry.display(),
            m.mode()
        );
        assert_eq!(m.uid(), uid, "{}", entry.display());
        files += 1;
    }
    assert!(files >= 4, "the store has its files: {files}");

    // Remove: the program goes, the settings file and the store stay; purge: the settings too.
    ok("dpkg", &["-r", "flowkeep"]);
    assert!(!Path::new("/usr/bin/flowkeep").exists());
    assert!(!Path::new("/usr/lib/systemd/system/flowkeep.service").exists());
    assert!(Path::new("/etc/flowkeep/flowkeep.toml").exists());
    assert!(Path::new("/var/lib/flowkeep/flowkeep-store").exists());
    ok("dpkg", &["--purge", "flowkeep"]);
    assert!(!Path::new("/etc/flowkeep/flowkeep.toml").exists());
    assert!(
        Path::new("/var/lib/flowkeep/flowkeep-store").exists(),
        "purge keeps the store"
    );
    assert!(sh("dpkg", &["-s", "flowkeep"]).status.code() != Some(0));
}
