//! Giving up root once the capture is open, as `tcpdump -Z` does: the packet socket and its
//! ring stay usable, everything after (decoding untrusted frames, writing the store) runs as an
//! ordinary user.

use anyhow::{bail, Context, Result};
use rustix::process::{Gid, Uid};

/// A user as the password and group databases describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary group and every group naming the user as a member.
    pub groups: Vec<u32>,
}

/// What `drop_to` did.
#[derive(Debug)]
pub enum Outcome {
    /// Not started as root: there is nothing to give up.
    NotRoot,
    /// Asked to stay root (`--user root`).
    KeptRoot,
    Dropped(Account),
}

/// The user from /etc/passwd, its groups from /etc/group. Only the local files are read (no
/// NSS): a collector's service user is a local system account.
pub fn lookup(name: &str) -> Result<Account> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let Some((uid, gid)) = find_user(&passwd, name) else {
        bail!("no user '{name}' in /etc/passwd (give an existing user to --user)");
    };
    // Without /etc/group the primary group is still right; only supplementary ones are missed.
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    Ok(Account {
        name: name.to_string(),
        uid,
        gid,
        groups: member_groups(&group, name, gid),
    })
}

/// The name /etc/passwd gives `uid` (the first line with it), as `lookup` reads it: for
/// saying who ran a command in the audit log. `None` when the file cannot be read or has no
/// such user.
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    find_uid(&passwd, uid)
}

fn find_uid(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

fn find_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

fn member_groups(group: &str, name: &str, primary: u32) -> Vec<u32> {
    let mut groups = vec![primary];
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        let (Some(gid), Some(members)) = (f.get(2), f.get(3)) else {
            continue;
        };
        let Ok(gid) = gid.parse::<u32>() else {
            continue;
        };
        if members.split(',').any(|m| m.trim() == name) && !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    groups
}

/// When running as root, becomes `user` for good (groups, then gid, then uid: real, effective
/// and saved, so root cannot be regained; the capabilities go with uid 0). Must run before any
/// other thread starts: Linux keeps credentials per thread, and these are the kernel's
/// per-thread calls, so they reach the whole process only while it has one thread. Threads
/// started later inherit them.
pub fn drop_to(user: &str) -> Result<Outcome> {
    if !rustix::process::geteuid().is_root() {
        return Ok(Outcome::NotRoot);
    }
    let account = lookup(user)?;
    if account.uid == 0 {
        return Ok(Outcome::KeptRoot);
    }
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .context("counting threads in /proc/self/task")?;
    if threads != 1 {
        bail!("cannot drop privileges to '{user}': {threads} threads already run (a bug)");
    }
    let fail = |what: &str, e: rustix::io::Errno| {
        anyhow::anyhow!("cannot drop privileges to user '{user}': {what} failed: {e}")
    };
    let groups: Vec<Gid> = account.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    rustix::thread::set_thread_groups(&groups).map_err(|e| fail("setgroups", e))?;
    let gid = Gid::from_raw(account.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    let uid = Uid::from_raw(account.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    // Belt and braces: a process that believes it dropped root but did not is worse than one
    // that refuses to start.
    if rustix::process::getuid() != uid
        || rustix::process::geteuid() != uid
        || rustix::process::getegid() != gid
    {
        bail!("cannot drop privileges to user '{user}': still running with other ids");
    }
    Ok(Outcome::Dropped(account))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        broken:x:notanumber:1::/:/bin/false\n\
        short:x\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\n\
        pcap:x:120:nobody,daemon\n\
        adm:x:4:syslog\n\
        bad:x:zz:nobody\n\
        nogroup:x:65534:\n\
        logs:x:130: nobody \n";

    #[test]
    fn finds_users_by_exact_name() {
        assert_eq!(find_user(PASSWD, "nobody"), Some((65534, 65534)));
        assert_eq!(find_user(PASSWD, "root"), Some((0, 0)));
        assert_eq!(find_user(PASSWD, "nob"), None);
        assert_eq!(find_user(PASSWD, "broken"), None);
        assert_eq!(find_user(PASSWD, "short"), None);
        assert_eq!(find_user("", "nobody"), None);
    }

    #[test]
    fn finds_names_by_uid() {
        assert_eq!(find_uid(PASSWD, 65534).as_deref(), Some("nobody"));
        assert_eq!(find_uid(PASSWD, 0).as_deref(), Some("root"));
        assert_eq!(find_uid(PASSWD, 4242), None);
        assert_eq!(find_uid("", 0), None);
    }

    #[test]
    fn groups_are_the_primary_and_those_listing_the_user() {
        assert_eq!(member_groups(GROUP, "nobody", 65534), vec![65534, 120, 130]);
        assert_eq!(member_groups(GROUP, "daemon", 1), vec![1, 120]);
        assert_eq!(member_groups(GROUP, "root", 0), vec![0]);
        assert_eq!(
            member_groups("pcap:x:120:nobody\n", "nobody", 120),
            vec![120]
        );
    }

    #[test]
    fn an_unknown_user_is_a_clear_error() {
        let err = lookup("flowkeep-no-such-user").unwrap_err().to_string();
        assert!(err.contains("no user 'flowkeep-no-such-user'"), "{err}");
    }
}
