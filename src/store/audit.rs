//! The audit log `DIR/audit.log`: one text line per event that changed what the store holds
//! (a segment sealed, recovered or expired, a legal hold added or released), chained by SHA-256
//! so that an edited, inserted or deleted line shows. The exact format is in `docs/FORMAT.md`,
//! section "Audit log".
//!
//! Nothing here reads a clock: every entry carries the time its caller passes in (packet time
//! for seals, the operator's "now" for expiry and holds).

use super::StoreError;
use crate::fs::{self, File};
use crate::time::{format_rfc3339, parse_time, Nanos};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// File name of the audit log inside a store directory.
pub const AUDIT_LOG_NAME: &str = "audit.log";
/// `prev` of the first entry.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Number of tab-separated fields in a line.
const FIELDS: usize = 14;
/// How much of the end of the log is read to find the last line. An entry is a few hundred
/// bytes; a reason or note longer than this makes the log refuse to append (see `append`).
const TAIL_BYTES: u64 = 64 << 10;
/// The longest entry appended: far below [`TAIL_BYTES`], so that no entry, whatever text an
/// operator gave, can leave a last line too long for the next append to find.
pub const MAX_ENTRY_BYTES: usize = 16 << 10;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: line {line}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

impl From<AuditError> for StoreError {
    fn from(e: AuditError) -> StoreError {
        match e {
            AuditError::Io { path, source } => StoreError::Io { path, source },
            AuditError::Corrupt { path, line, reason } => StoreError::Refused {
                path,
                reason: format!("audit log line {line}: {reason}"),
            },
        }
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A segment was sealed by a writer.
    Seal,
    /// A segment left behind by a crash was sealed by recovery.
    Recover,
    /// A segment was deleted by retention.
    Expire,
    HoldAdd,
    HoldRelease,
    /// A hold's expiry was moved (`hold renew`).
    HoldRenew,
    /// A reading command answered (query, stats, who-had, export): who, what, and the
    /// SHA-256 of the answer. See [`super::access`].
    Access,
    /// The retention policy in force changed (old and new in `reason`).
    Policy,
    /// A file from elsewhere was taken into the store (a Tor exit list: `crate::tor`).
    Import,
}

impl Action {
    /// Every action, in the order `docs/FORMAT.md` lists them.
    pub const ALL: [Action; 9] = [
        Action::Seal,
        Action::Recover,
        Action::Expire,
        Action::HoldAdd,
        Action::HoldRelease,
        Action::HoldRenew,
        Action::Access,
        Action::Policy,
        Action::Import,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Seal => "seal",
            Action::Recover => "recover",
            Action::Expire => "expire",
            Action::HoldAdd => "hold-add",
            Action::HoldRelease => "hold-release",
            Action::HoldRenew => "hold-renew",
            Action::Access => "access",
            Action::Policy => "policy",
            Action::Import => "import",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "seal" => Action::Seal,
            "recover" => Action::Recover,
            "expire" => Action::Expire,
            "hold-add" => Action::HoldAdd,
            "hold-release" => Action::HoldRelease,
            "hold-renew" => Action::HoldRenew,
            "access" => Action::Access,
            "policy" => Action::Policy,
            "import" => Action::Import,
            _ => return None,
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an entry says about one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFacts {
    /// Relative to the store directory, `/`-separated: `2026-01-01T00-00Z/seg-00000000-00000000.fks`.
    pub path: String,
    pub partition_start: Nanos,
    pub partition_end: Nanos,
    /// Smallest `first` and largest `last` of its records.
    pub first: Nanos,
    pub last: Nanos,
    pub records: u64,
    /// File size.
    pub bytes: u64,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
}

/// An entry as a caller asks for it to be appended: sequence number and hashes are filled in by
/// [`AuditLog::append`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub time: Nanos,
    pub action: Action,
    pub segment: Option<SegmentFacts>,
    /// Free text: the policy that expired a segment, a hold's name/range/note, why a seal
    /// happened. Tabs, newlines and backslashes are escaped on disk.
    pub reason: String,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// 1 for the first line, then consecutive.
    pub seq: u64,
    pub record: AuditRecord,
    /// SHA-256 (hex) of the previous line, without its newline; [`GENESIS_PREV`] for line 1.
    pub prev: String,
    /// SHA-256 (hex) of this line up to, not including, the tab before this field.
    pub hash: String,
}

/// A handle to a store's audit log. Clones, and every handle opened on the same directory in
/// this process, share one lock, so worker threads that seal at the same time append whole,
/// correctly chained lines one after the other.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    dir: PathBuf,
    lock: Arc<Mutex<()>>,
}

/// One lock per store directory per process.
fn lock_for(dir: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let key = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Arc::clone(map.entry(key).or_default())
}

impl AuditLog {
    /// A handle for `DIR/audit.log`; the file is created by the first append.
    pub fn open(dir: impl AsRef<Path>) -> AuditLog {
        let dir = dir.as_ref();
        AuditLog {
            path: dir.join(AUDIT_LOG_NAME),
            dir: dir.to_path_buf(),
            lock: lock_for(dir),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry: one `write` of one whole line to a file opened with `O_APPEND`, then
    /// fsync. The previous line is re-read from the file on every append (entries are rare), so
    /// the chain also continues correctly after another process appended. Two processes
    /// appending at the same instant are not serialised by this lock; the store's writer lock
    /// is what keeps a second writer process out.
    pub fn append(&self, rec: &AuditRecord) -> Result<AuditEntry, AuditError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let io = io_err(&self.path);
        let existed = fs::exists(&self.path);
        let mut f = fs::open_append(&self.path).map_err(&io)?;
        // Another process (an `expire` from cron beside a running capture) may append too: the
        // read of the last line and the append must not interleave, or two entries would name
        // the same predecessor and break the chain. Released when `f` closes.
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(io::Error::from(e)))?;
        let (last_line, torn) = read_last_line(&mut f, &self.path)?;
        let (seq, prev) = match &last_line {
            None => (1, GENESIS_PREV.to_string()),
            Some(line) => {
                let seq = line
                    .split('\t')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
                    .and_then(|s| s.checked_add(1))
                    .unwrap_or(0);
                (seq, sha256_hex(line.as_bytes()))
            }
        };
        let (body, hash) = encode_body(seq, rec, &prev);
        if body.len() + hash.len() + 2 > MAX_ENTRY_BYTES {
            return Err(AuditError::Corrupt {
                path: self.path.clone(),
                line: seq,
                reason: format!(
                    "not appended: the {} entry would be {} bytes, at most {MAX_ENTRY_BYTES} are \
                     (shorten the text given for it)",
                    rec.action.as_str(),
                    body.len() + hash.len() + 2
                ),
            });
        }
        let mut line = String::with_capacity(body.len() + 68);
        // A line torn by a crash is ended so that this entry starts on its own line; verify
        // reports the torn one.
        if torn {
            line.push('\n');
        }
        line.push_str(&body);
        line.push('\t');
        line.push_str(&hash);
        line.push('\n');
        fs::write_all(&f, line.as_bytes()).map_err(&io)?;
        fs::sync_data(&f).map_err(&io)?;
        if !existed {
            fs::sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        }
        Ok(AuditEntry {
            seq,
            record: rec.clone(),
            prev,
            hash,
        })
    }
}

/// The last complete line (without newline) and whether the file ends in a partial line.
fn read_last_line(f: &mut File, path: &Path) -> Result<(Option<String>, bool), AuditError> {
    let io = io_err(path);
    let len = fs::file_metadata(f).map_err(&io)?.len();
    if len == 0 {
        return Ok((None, false));
    }
    let start = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(start)).map_err(&io)?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.take(TAIL_BYTES).read_to_end(&mut buf).map_err(&io)?;
    let torn = buf.last() != Some(&b'\n');
    let text = if torn {
        &buf[..]
    } else {
        &buf[..buf.len() - 1]
    };
    let line_start = text.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
    let line = match line_start {
        Some(i) => &text[i..],
        None if start == 0 => text,
        None => {
            return Err(AuditError::Corrupt {
                path: path.to_path_buf(),
                line: 0,
                reason: format!("last line is longer than {TAIL_BYTES} bytes"),
            })
        }
    };
    Ok((Some(String::from_utf8_lossy(line).into_owned()), torn))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of a whole file and its length, read in pieces (a segment can be large).
pub fn hash_file(path: &Path) -> Result<(String, u64), AuditError> {
    let io = io_err(path);
    let mut f = fs::open(path).map_err(&io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(&io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex(&h.finalize()), total))
}

/// Facts about a sealed segment file for an entry: span and counts from the caller (who read
/// or wrote the footer), hash and size from the file itself.
#[allow(clippy::too_many_arguments)]
pub fn segment_facts(
    dir: &Path,
    path: &Path,
    partition_start: Nanos,
    partition_end: Nanos,
    first: Nanos,
    last: Nanos,
    records: u64,
) -> Result<SegmentFacts, AuditError> {
    let (sha256, bytes) = hash_file(path)?;
    Ok(SegmentFacts {
        path: relative(dir, path),
        partition_start,
        partition_end,
        first,
        last,
        records,
        bytes,
        sha256,
    })
}

/// `path` relative to `dir`, `/`-separated.
pub fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The writer's hook: records that the complete, fsynced segment `file` is about to be renamed
/// to `sealed`. Logged before the rename, so that a writer killed in between leaves an entry
/// that explains the file recovery renames, never a sealed file the log does not know. The
/// file was just written, so hashing it reads the page cache.
#[allow(clippy::too_many_arguments)]
pub fn log_seal(
    dir: &Path,
    file: &Path,
    sealed: &Path,
    partition: (Nanos, Nanos),
    span: (Nanos, Nanos),
    records: u64,
    time: Nanos,
    reason: &str,
) -> Result<(), StoreError> {
    let mut facts = segment_facts(dir, file, partition.0, partition.1, span.0, span.1, records)?;
    facts.path = relative(dir, sealed);
    AuditLog::open(dir).append(&AuditRecord {
        time,
        action: Action::Seal,
        segment: Some(facts),
        reason: reason.to_string(),
    })?;
    Ok(())
}

/// Records an event about one sealed segment file (`seal`, or `recover` for a segment that
/// crash recovery completed, with what it dropped as `reason`).
#[allow(clippy::too_many_arguments)]
pub fn log_segment(
    dir: &Path,
    action: Action,
    path: &Path,
    partition: (Nanos, Nanos),
    span: (Nanos, Nanos),
    records: u64,
    time: Nanos,
    reason: &str,
) -> Result<(), StoreError> {
    let facts = segment_facts(dir, path, partition.0, partition.1, span.0, span.1, records)?;
    AuditLog::open(dir).append(&AuditRecord {
        time,
        action,
        segment: Some(facts),
        reason: reason.to_string(),
    })?;
    Ok(())
}

fn escape(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '-' if s == "-" => out.push_str("\\-"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Result<String, String> {
    if s == "-" {
        return Ok(String::new());
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('-') => out.push('-'),
            _ => return Err(format!("bad escape in '{s}'")),
        }
    }
    Ok(out)
}

/// The line without its final `\t<hash>`, and the hash of exactly those bytes.
fn encode_body(seq: u64, rec: &AuditRecord, prev: &str) -> (String, String) {
    let t = format_rfc3339;
    let seg = rec.segment.as_ref();
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let fields = [
        seq.to_string(),
        t(rec.time),
        rec.action.as_str().to_string(),
        or_dash(seg.map(|s| escape(&s.path))),
        or_dash(seg.map(|s| t(s.partition_start))),
        or_dash(seg.map(|s| t(s.partition_end))),
        or_dash(seg.map(|s| t(s.first))),
        or_dash(seg.map(|s| t(s.last))),
        or_dash(seg.map(|s| s.records.to_string())),
        or_dash(seg.map(|s| s.bytes.to_string())),
        or_dash(seg.map(|s| s.sha256.clone())),
        escape(&rec.reason),
        prev.to_string(),
    ];
    let body = fields.join("\t");
    let hash = sha256_hex(body.as_bytes());
    (body, hash)
}

/// Parses one line (without newline). Checks its form and its own hash, not the chain.
pub fn parse_line(line: &str) -> Result<AuditEntry, String> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != FIELDS {
        return Err(format!("{} fields, expected {FIELDS}", f.len()));
    }
    let time = |s: &str, what: &str| parse_time(s).map_err(|e| format!("{what}: {e}"));
    let num = |s: &str, what: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("{what}: '{s}' is not a number"))
    };
    let seq = num(f[0], "sequence")?;
    let action = Action::parse(f[2]).ok_or_else(|| format!("unknown action '{}'", f[2]))?;
    let segment = if f[3] == "-" {
        if f[4..11].iter().any(|v| *v != "-") {
            return Err("segment fields without a segment path".into());
        }
        None
    } else if matches!(action, Action::Access | Action::Policy) {
        return Err(format!("an {action} entry with segment fields"));
    } else {
        Some(SegmentFacts {
            path: unescape(f[3])?,
            partition_start: time(f[4], "partition start")?,
            partition_end: time(f[5], "partition end")?,
            first: time(f[6], "first")?,
            last: time(f[7], "last")?,
            records: num(f[8], "records")?,
            bytes: num(f[9], "bytes")?,
            sha256: check_hex(f[10], "sha256")?,
        })
    };
    let entry = AuditEntry {
        seq,
        record: AuditRecord {
            time: time(f[1], "time")?,
            action,
            segment,
            reason: unescape(f[11])?,
        },
        prev: check_hex(f[12], "prev")?,
        hash: check_hex(f[13], "hash")?,
    };
    // The hash covers the line up to the tab before it.
    let body = line.get(..line.len() - f[13].len() - 1).unwrap_or("");
    if sha256_hex(body.as_bytes()) != entry.hash {
        return Err("hash does not match the line (the line was changed)".into());
    }
    Ok(entry)
}

fn check_hex(s: &str, what: &str) -> Result<String, String> {
    if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(s.to_string())
    } else {
        Err(format!("{what}: not a lowercase hex SHA-256"))
    }
}

/// One line of the log as found on disk, parsed or not.
#[derive(Debug, Clone)]
pub struct AuditLine {
    /// 1-based line number.
    pub number: u64,
    pub text: String,
    pub entry: Result<AuditEntry, String>,
}

/// The raw lines of `DIR/audit.log`, each without its `\n` (none when the file does not
/// exist), handed to `each` with their 0-based index.
fn raw_lines<T>(dir: &Path, mut each: impl FnMut(usize, &[u8]) -> T) -> Result<Vec<T>, AuditError> {
    let path = dir.join(AUDIT_LOG_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    Ok(body
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| each(i, raw))
        .collect())
}

/// Every line of `DIR/audit.log` (none when the file does not exist), each parsed on its own.
pub fn read_lines(dir: &Path) -> Result<Vec<AuditLine>, AuditError> {
    raw_lines(dir, |i, raw| {
        let text = String::from_utf8_lossy(raw).into_owned();
        let entry = parse_line(&text);
        AuditLine {
            number: i as u64 + 1,
            text,
            entry,
        }
    })
}

/// The Merkle tree leaf of every line of `DIR/audit.log`, in order (RFC 9162: the SHA-256 of
/// 0x00 and the line's bytes, without its `\n`), over the same lines [`read_lines`] gives.
pub fn leaf_hashes(dir: &Path) -> Result<Vec<crate::proof::merkle::Hash>, AuditError> {
    raw_lines(dir, |_, raw| crate::proof::merkle::leaf_hash(raw))
}

/// Every entry, failing on the first line that does not parse or whose hash is wrong. Does not
/// check the chain: see [`verify_chain`].
pub fn read_all(dir: &Path) -> Result<Vec<AuditEntry>, AuditError> {
    let path = dir.join(AUDIT_LOG_NAME);
    read_lines(dir)?
        .into_iter()
        .map(|l| {
            l.entry.map_err(|reason| AuditError::Corrupt {
                path: path.clone(),
                line: l.number,
                reason,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProblem {
    pub line: u64,
    pub message: String,
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{AUDIT_LOG_NAME} line {}: {}", self.line, self.message)
    }
}

/// Checks every line's form and own hash, that each `prev` is the SHA-256 of the line before,
/// and that sequence numbers count 1, 2, 3, …: an edited line fails its hash (or, if its hash
/// was recomputed, the next line's `prev`); an inserted or deleted line breaks `prev` and the
/// count. Deleting lines at the very end is not visible in the chain alone; `verify` catches
/// it for seals and expiries by comparing the log with the segments on disk.
pub fn verify_chain(lines: &[AuditLine]) -> Vec<ChainProblem> {
    let mut problems = Vec::new();
    let mut prev_text: Option<&str> = None;
    for l in lines {
        let problem = |message: String| ChainProblem {
            line: l.number,
            message,
        };
        match &l.entry {
            Err(reason) => problems.push(problem(format!("bad entry: {reason}"))),
            Ok(e) => {
                let want_prev = prev_text
                    .map_or_else(|| GENESIS_PREV.to_string(), |p| sha256_hex(p.as_bytes()));
                if e.prev != want_prev {
                    problems.push(problem(
                        "chain broken: prev is not the SHA-256 of the line before (a line was inserted, deleted or changed)".into(),
                    ));
                }
                if e.seq != l.number {
                    problems.push(problem(format!(
                        "sequence number {} where {} was expected (a line was inserted or deleted)",
                        e.seq, l.number
                    )));
                }
            }
        }
        prev_text = Some(&l.text);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_too_long_is_refused_and_the_log_stays_appendable() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(d.path());
        let rec = |reason: String| AuditRecord {
            time: 1,
            action: Action::HoldAdd,
            segment: None,
            reason,
        };
        log.append(&rec("first".into())).unwrap();
        let e = log
            .append(&rec("n".repeat(70_000)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not appended") && e.contains("at most 16384"),
            "{e}"
        );
        log.append(&rec("after".into())).unwrap();
        let all = read_all(d.path()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].record.reason, "after");
        assert!(verify_chain(&read_lines(d.path()).unwrap()).is_empty());
    }
    use std::io::Write;

    fn hold_rec(time: Nanos, reason: &str) -> AuditRecord {
        AuditRecord {
            time,
            action: Action::HoldAdd,
            segment: None,
            reason: reason.into(),
        }
    }

    fn seg_rec(time: Nanos, path: &str) -> AuditRecord {
        AuditRecord {
            time,
            action: Action::Seal,
            segment: Some(SegmentFacts {
                path: path.into(),
                partition_start: 0,
                partition_end: 3_600_000_000_000,
                first: 5,
                last: 3_599_999_999_999,
                records: 42,
                bytes: 1234,
                sha256: sha256_hex(b"x"),
            }),
            reason: String::new(),
        }
    }

    #[test]
    fn appends_chain_and_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(d.path());
        let a = log
            .append(&seg_rec(10, "2026-01-01T00-00Z/seg-00000000-00000000.fks"))
            .unwrap();
        let b = log
            .append(&hold_rec(20, "name=CASE-1\ttabbed\nnewline \\ back"))
            .unwrap();
        let c = log.append(&hold_rec(30, "-")).unwrap();
        assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
        assert_eq!(a.prev, GENESIS_PREV);
        let lines = read_lines(d.path()).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(b.prev, sha256_hex(lines[0].text.as_bytes()));
        assert!(verify_chain(&lines).is_empty());
        let all = read_all(d.path()).unwrap();
        assert_eq!(all, vec![a, b, c]);
        assert_eq!(all[1].record.reason, "name=CASE-1\ttabbed\nnewline \\ back");
        assert_eq!(all[2].record.reason, "-");
        let text = std::fs::read_to_string(d.path().join(AUDIT_LOG_NAME)).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().all(|l| l.split('\t').count() == FIELDS));
    }

    #[test]
    fn edits_insertions_and_deletions_break_the_chain() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(d.path());
        for i in 0..5 {
            log.append(&hold_rec(i, &format!("n{i}"))).unwrap();
        }
        let path = d.path().join(AUDIT_LOG_NAME);
        let orig = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = orig.lines().collect();
        let check = |text: String| {
            std::fs::write(&path, text).unwrap();
            verify_chain(&read_lines(d.path()).unwrap())
        };
        // Edited reason: the line's own hash fails.
        let p = check(orig.replacen("\tn2\t", "\tn9\t", 1));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].line == 3 && p[0].message.contains("hash does not match"));
        assert!(p[1].line == 4 && p[1].message.contains("chain broken"));
        // Deleted middle line.
        let mut del = lines.clone();
        del.remove(2);
        let p = check(del.join("\n") + "\n");
        assert!(
            p.iter()
                .any(|p| p.line == 3 && p.message.contains("chain broken")),
            "{p:?}"
        );
        // Duplicated line (an insertion of a valid-looking entry).
        let mut ins = lines.clone();
        ins.insert(1, lines[0]);
        let p = check(ins.join("\n") + "\n");
        assert!(p.iter().any(|p| p.line == 2), "{p:?}");
        // A rewritten line with a recomputed own hash still breaks the next line's prev.
        let e = parse_line(lines[1]).unwrap();
        let mut rec = e.record.clone();
        rec.reason = "forged".into();
        let (body, hash) = encode_body(e.seq, &rec, &e.prev);
        let mut forged = lines.clone();
        let f = format!("{body}\t{hash}");
        forged[1] = &f;
        let p = check(forged.join("\n") + "\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, 3);
        std::fs::write(&path, &orig).unwrap();
        assert!(verify_chain(&read_lines(d.path()).unwrap()).is_empty());
    }

    #[test]
    fn a_torn_last_line_is_reported_and_appending_continues() {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(d.path());
        log.append(&hold_rec(1, "a")).unwrap();
        let path = d.path().join(AUDIT_LOG_NAME);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"2\t2026-01-01T00:0").unwrap();
        drop(f);
        let e = log.append(&hold_rec(2, "b")).unwrap();
        assert_eq!(e.seq, 3);
        let lines = read_lines(d.path()).unwrap();
        assert_eq!(lines.len(), 3);
        let p = verify_chain(&lines);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, 2);
    }

    #[test]
    fn concurrent_appends_keep_one_chain() {
        let d = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let dir = d.path();
                s.spawn(move || {
                    let log = AuditLog::open(dir);
                    for i in 0..10 {
                        log.append(&hold_rec(i, &format!("t{t} i{i}"))).unwrap();
                    }
                });
            }
        });
        let lines = read_lines(d.path()).unwrap();
        assert_eq!(lines.len(), 40);
        assert!(verify_chain(&lines).is_empty());
    }

    #[test]
    fn missing_log_is_empty() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_all(d.path()).unwrap().is_empty());
    }
}
