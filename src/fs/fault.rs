//! Fault injection for tests (cargo feature `fault-injection`, off in every release build), in
//! the style of SQLite's I/O-error tests: the N-th file operation that changes the disk fails
//! with a chosen errno, for every N a command reaches, so that each failure path is taken once.
//!
//! Armed from `FLOWKEEP_FAULT=OP:N:ERRNO`, read once when the command starts: OP is `create`
//! (an open that may create the file), `write` (also `set_len`), `fsync` (files, directories,
//! mappings), `rename` (also hard links), `unlink` (files and empty directories), `mkdir` or
//! `any`; ERRNO is `ENOSPC`, `EIO` or a number. Only the N-th operation fails (the disk comes
//! back, as after a transient error), the others are done. N = 0 fails nothing and prints, at
//! the end, how many operations of each kind the command reached and at which call sites: what
//! a test iterates N over. The counters are process-global atomics, so a command with several
//! writer threads numbers its operations in whatever order they run; tests use one worker.

use super::Op;
use std::collections::BTreeMap;
use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The kinds of [`Op`] in order, as `FLOWKEEP_FAULT` names them, then all of them.
const NAMES: [&str; 7] = [
    "create", "write", "fsync", "rename", "unlink", "mkdir", "any",
];
const ANY: usize = 6;

static ARMED: AtomicBool = AtomicBool::new(false);
static TARGET_OP: AtomicUsize = AtomicUsize::new(ANY);
static TARGET_N: AtomicU64 = AtomicU64::new(0);
static ERRNO: AtomicI32 = AtomicI32::new(0);
static COUNTS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];
/// In counting mode: how often each (kind, call site) was reached.
static SITES: Mutex<BTreeMap<(Op, &'static str, u32), u64>> = Mutex::new(BTreeMap::new());

/// Reads `FLOWKEEP_FAULT`; an error says what is wrong with its value.
pub fn arm_from_env() -> Result<(), String> {
    let Some(spec) = std::env::var_os("FLOWKEEP_FAULT") else {
        return Ok(());
    };
    let spec = spec.to_string_lossy();
    let bad = || format!("FLOWKEEP_FAULT={spec}: expected OP:N:ERRNO, OP one of {NAMES:?}");
    let mut parts = spec.split(':');
    let (Some(op), Some(n), Some(errno), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let op = NAMES.iter().position(|&x| x == op).ok_or_else(bad)?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    let errno = match errno {
        "ENOSPC" => rustix::io::Errno::NOSPC.raw_os_error(),
        "EIO" => rustix::io::Errno::IO.raw_os_error(),
        e => e.parse().map_err(|_| bad())?,
    };
    TARGET_OP.store(op, Ordering::SeqCst);
    TARGET_N.store(n, Ordering::SeqCst);
    ERRNO.store(errno, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Counts one operation of kind `op` made at `site`; the error when it is the one to fail.
pub fn check(op: Op, site: &'static Location<'static>) -> io::Result<()> {
    if !ARMED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let n_op = COUNTS[op as usize].fetch_add(1, Ordering::SeqCst) + 1;
    let n_any = COUNTS[ANY].fetch_add(1, Ordering::SeqCst) + 1;
    let target = TARGET_N.load(Ordering::SeqCst);
    if target == 0 {
        let mut sites = SITES.lock().unwrap_or_else(|p| p.into_inner());
        *sites.entry((op, site.file(), site.line())).or_default() += 1;
        return Ok(());
    }
    let which = TARGET_OP.load(Ordering::SeqCst);
    let n = if which == ANY { n_any } else { n_op };
    if (which == ANY || which == op as usize) && n == target {
        let e = io::Error::from_raw_os_error(ERRNO.load(Ordering::SeqCst));
        eprintln!(
            "flowkeep: fault injected: {} {n} ({}) at {}:{}: {e}",
            NAMES[which],
            NAMES[op as usize],
            site.file(),
            site.line()
        );
        return Err(e);
    }
    Ok(())
}

/// In counting mode (N = 0), prints the counts and the call sites reached: one line
/// `flowkeep: fault counts: create=.. write=.. ... any=..`, then one per site.
pub fn report() {
    if !ARMED.load(Ordering::SeqCst) || TARGET_N.load(Ordering::SeqCst) != 0 {
        return;
    }
    let counts: Vec<String> = NAMES
        .iter()
        .zip(&COUNTS)
        .map(|(name, c)| format!("{name}={}", c.load(Ordering::SeqCst)))
        .collect();
    eprintln!("flowkeep: fault counts: {}", counts.join(" "));
    let sites = SITES.lock().unwrap_or_else(|p| p.into_inner());
    for ((op, file, line), n) in sites.iter() {
        eprintln!(
            "flowkeep: fault site: {} {file}:{line} {n}",
            NAMES[*op as usize]
        );
    }
}
