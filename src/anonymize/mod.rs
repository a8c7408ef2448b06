//! The anonymised tier: segments older than a threshold are rewritten with their addresses
//! replaced by prefix-preserving Crypto-PAn ([`cryptopan`]), their MACs removed and their
//! lease observations reduced to address, time and lease time. Counters and times stay. Each
//! rewrite is a new segment beside its source (`seg-W-S.anon.fks`, flag
//! [`CAPTURE_ANONYMIZED`]), sealed and audited, after which the source is deleted through
//! [`Store::delete_segments`] with an `expire` entry naming its replacement.
//!
//! [`plan`] is pure (segments, holds, threshold, now); [`apply`] carries a plan out. The caller
//! holds the holds lock (`store::holds::lock_holds`) around both, so no hold appears between
//! them and no other rewriter runs meanwhile.

pub mod cryptopan;

pub use cryptopan::CryptoPan;

use crate::fs;
use crate::record::{FlowRecord, LeaseObservation};
use crate::store::audit::relative;
use crate::store::holds::Hold;
use crate::store::segment::{
    SegmentFile, CAPTURE_ANONYMIZED, CAPTURE_MACS_NOT_STORED, SEGMENT_EXT,
};
use crate::store::writer::{BUILD_PREFIX, BUILD_SUFFIX};
use crate::store::{parse_partition_dir_name, SegmentBuilder, SegmentInfo, SegmentSpec};
use crate::store::{AllRecords, Store, StoreError};
use crate::time::Nanos;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// How an anonymised segment's name ends: its source's stem, then this.
pub const ANON_SUFFIX: &str = ".anon.fks";

/// Records per block of a rewrite (the writer's default).
const BLOCK_RECORDS: usize = 8192;

/// A Crypto-PAn key: 32 bytes.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    /// A key file's contents: exactly 32 bytes, or 64 hex digits, either optionally followed
    /// by one newline.
    pub fn parse(data: &[u8]) -> Result<Key, String> {
        let body = data.strip_suffix(b"\n").unwrap_or(data);
        if body.len() == 64 && body.iter().all(u8::is_ascii_hexdigit) {
            let mut k = [0u8; 32];
            for (i, pair) in body.chunks(2).enumerate() {
                let hex = std::str::from_utf8(pair).unwrap_or("");
                k[i] = u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
            }
            return Ok(Key(k));
        }
        // 32 raw bytes whose last one is a newline stay 32 bytes.
        let raw = if data.len() == 32 { data } else { body };
        match <[u8; 32]>::try_from(raw) {
            Ok(k) => Ok(Key(k)),
            Err(_) if raw.len() < 32 => Err(format!(
                "{} bytes; a key is 32 bytes (or 64 hex digits)",
                raw.len()
            )),
            Err(_) => Err(format!(
                "{} bytes, neither 32 bytes nor 64 hex digits",
                raw.len()
            )),
        }
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// The first 16 hex digits of the key's SHA-256: names the key in audit entries without
    /// revealing it, so that segments anonymised under one key can be told from another's.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0);
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn cryptopan(&self) -> CryptoPan {
        CryptoPan::new(&self.0)
    }
}

/// The path of the anonymised rewrite of the segment at `source`.
pub fn anon_path(source: &Path) -> PathBuf {
    let name = source.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    let stem = name.strip_suffix(SEGMENT_EXT).unwrap_or(&name);
    source.with_file_name(format!("{stem}{ANON_SUFFIX}"))
}

/// The source path an anonymised segment's name says it replaced; `None` for other names.
pub fn source_path(anon: &Path) -> Option<PathBuf> {
    let name = anon.file_name()?.to_str()?;
    let stem = name.strip_suffix(ANON_SUFFIX)?;
    Some(anon.with_file_name(format!("{stem}{SEGMENT_EXT}")))
}

/// Whether a segment is anonymised (its flag, or its name when unreadable).
pub fn is_anonymized(s: &SegmentInfo) -> bool {
    s.capture.flags & CAPTURE_ANONYMIZED != 0 || source_path(&s.path).is_some()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Live segments to rewrite, oldest (by `last`) first.
    pub rewrite: Vec<SegmentInfo>,
    /// Sources whose rewrite was sealed but which were not deleted (a crash in between), with
    /// the rewrite's path: deleted now.
    pub repair: Vec<(SegmentInfo, PathBuf)>,
    /// Segments old enough that a hold keeping whole segments overlaps, with the holds' names:
    /// not anonymised (they are evidence as they were captured).
    pub kept_for_hold: Vec<(SegmentInfo, Vec<String>)>,
}

/// Which segments the tier rewrites at `now`: every readable segment not anonymised already
/// whose newest record (`last`) is older than `now - after` (retention's age rule), unless a
/// hold that keeps whole segments ([`Hold::keeps_whole_segments`]) overlaps it; `skip` names segments to leave out (those a dry run's
/// retention would delete first). An anonymised segment whose source is still listed is a
/// rewrite interrupted before the source went: the source is in `repair`.
pub fn plan(
    segments: &[SegmentInfo],
    holds: &[Hold],
    after: Nanos,
    now: Nanos,
    skip: &[PathBuf],
) -> Plan {
    let cutoff = now.saturating_sub(after);
    let mut out = Plan::default();
    let listed = |p: &Path| segments.iter().find(|s| s.path == p);
    for s in segments.iter().filter(|s| !skip.contains(&s.path)) {
        if let Some(src) = source_path(&s.path) {
            if let Some(src) = listed(&src).filter(|src| !skip.contains(&src.path)) {
                out.repair.push((src.clone(), s.path.clone()));
            }
            continue;
        }
        if s.error.is_some() || is_anonymized(s) || s.last >= cutoff {
            continue;
        }
        if listed(&anon_path(&s.path)).is_some() {
            continue; // in `repair` through its rewrite
        }
        let held: Vec<String> = holds
            .iter()
            .filter(|h| h.keeps_whole_segments(now) && h.overlaps(s.first, s.last))
            .map(|h| h.name.clone())
            .collect();
        if held.is_empty() {
            out.rewrite.push(s.clone());
        } else {
            out.kept_for_hold.push((s.clone(), held));
        }
    }
    out.rewrite
        .sort_by(|a, b| (a.last, &a.path).cmp(&(b.last, &b.path)));
    out
}

/// One segment rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub source: PathBuf,
    pub anon: PathBuf,
    pub records: u64,
    pub leases: u64,
    /// Distinct addresses anonymised (each costs 32 or 128 AES blocks once).
    pub addresses: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub rewritten: Vec<Rewritten>,
    /// Sources deleted whose rewrite an earlier run had sealed.
    pub repaired: Vec<PathBuf>,
    /// Leftover `.build-*.tmp` files of interrupted rewrites, removed.
    pub stale_removed: Vec<PathBuf>,
    /// Segments not rewritten, and why (damaged blocks: rewriting would lose records).
    pub failed: Vec<(PathBuf, String)>,
}

/// The audit reason of a rewrite's `seal` entry.
pub fn seal_reason(dir: &Path, source: &Path, key: &Key) -> String {
    format!(
        "tier=anonymized source={} key={}",
        relative(dir, source),
        key.fingerprint()
    )
}

/// The audit reason of the `expire` entry deleting a rewritten segment's source.
pub fn delete_reason(dir: &Path, anon: &Path) -> String {
    format!("tier=anonymized replaced-by={}", relative(dir, anon))
}

/// Carries the plan out at `now`: removes stale `.build-*.tmp` files from the partition
/// directories, deletes the sources in `repair`, then rewrites each segment in `rewrite` and
/// deletes its source. A segment that cannot be read whole is left as it is, in `failed`.
pub fn apply(store: &Store, plan: &Plan, key: &Key, now: Nanos) -> Result<Applied, StoreError> {
    let dir = store.dir();
    let mut out = Applied {
        stale_removed: remove_stale_builds(dir)?,
        ..Applied::default()
    };
    for (src, anon) in &plan.repair {
        let done = store.delete_segments([(src, delete_reason(dir, anon))], now)?;
        if !done.deleted.is_empty() {
            out.repaired.push(src.path.clone());
        }
    }
    let pan = key.cryptopan();
    for s in &plan.rewrite {
        match rewrite(store, s, &pan, key, now)? {
            Ok(Some(r)) => {
                let src = [(s, delete_reason(dir, &r.anon))];
                store.delete_segments(src, now)?;
                out.rewritten.push(r);
            }
            Ok(None) => {}
            Err(why) => out.failed.push((s.path.clone(), why)),
        }
    }
    Ok(out)
}

/// Removes every `.build-*.tmp` in the store's partition directories.
fn remove_stale_builds(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut removed = Vec::new();
    for part in fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let part = part.map_err(|e| StoreError::io(dir, e))?.path();
        let is_partition = part
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_partition_dir_name)
            .is_some();
        if !is_partition || !fs::is_dir(&part) {
            continue;
        }
        for e in fs::read_dir(&part).map_err(|e| StoreError::io(&part, e))? {
            let p = e.map_err(|e| StoreError::io(&part, e))?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(BUILD_PREFIX) && name.ends_with(BUILD_SUFFIX) {
                fs::remove_synced(&p)?;
                removed.push(p);
            }
        }
    }
    Ok(removed)
}

/// Anonymises addresses, each distinct one once.
struct Mapper<'a> {
    pan: &'a CryptoPan,
    /// foldhash rather than SipHash: the flow table's hasher, cheaper per lookup.
    cache: HashMap<IpAddr, IpAddr, foldhash::fast::RandomState>,
}

impl Mapper<'_> {
    fn map(&mut self, a: IpAddr) -> IpAddr {
        let pan = self.pan;
        *self.cache.entry(a).or_insert_with(|| pan.anonymize(a))
    }

    fn record(&mut self, r: &FlowRecord) -> FlowRecord {
        FlowRecord {
            src: self.map(r.src),
            dst: self.map(r.dst),
            src_mac: None,
            dst_mac: None,
            ..r.clone()
        }
    }

    fn lease(&mut self, l: &LeaseObservation) -> LeaseObservation {
        LeaseObservation {
            time: l.time,
            v6: l.v6,
            message: l.message,
            address: self.map(l.address),
            client_mac: None,
            lease_secs: l.lease_secs,
            hostname: None,
            server: None,
            xid: 0,
        }
    }
}

/// Writes the anonymised rewrite of `s` and seals it. The outer error is the store's; the
/// inner one says why the segment was left alone; `None`: it held nothing, or its rewrite
/// exists or is being built.
fn rewrite(
    store: &Store,
    s: &SegmentInfo,
    pan: &CryptoPan,
    key: &Key,
    now: Nanos,
) -> Result<Result<Option<Rewritten>, String>, StoreError> {
    let header = SegmentFile::open(&s.path)?.header;
    let mut capture = s.capture;
    capture.flags |= CAPTURE_ANONYMIZED | CAPTURE_MACS_NOT_STORED;
    let spec = SegmentSpec {
        path: anon_path(&s.path),
        partition: (s.partition_start, s.partition_end),
        writer_id: header.writer_id,
        sequence: header.sequence,
        zstd_level: header.zstd_level,
        block_records: BLOCK_RECORDS,
        interfaces: s.interfaces.clone(),
        capture,
    };
    let Some(mut b) = SegmentBuilder::create(store.dir(), spec)? else {
        return Ok(Ok(None));
    };
    let mut m = Mapper {
        pan,
        cache: HashMap::default(),
    };
    // Streamed from the source into the builder: a segment is never held in memory whole.
    // Dropping the builder (any return below before the seal) removes its temporary file.
    let mut failed = None;
    let stats = Store::scan_segment(&s.path, None, None, None, &AllRecords, |_, r| {
        match b.append(&m.record(r)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(p) = stats.problems.first() {
        return Ok(Err(format!("not read whole: {p}")));
    }
    let leases = match Store::segment_leases(&s.path) {
        Ok(l) => l,
        Err(e) => return Ok(Err(format!("leases not read whole: {e}"))),
    };
    for l in &leases {
        b.append_lease(&m.lease(l))?;
    }
    let reason = seal_reason(store.dir(), &s.path, key);
    Ok(Ok(b.seal(now, &reason)?.map(|built| Rewritten {
        source: s.path.clone(),
        anon: built.path,
        records: built.records,
        leases: built.leases,
        addresses: m.cache.len(),
        bytes_before: s.bytes,
        bytes_after: built.bytes,
    })))
}

#[cfg(test)]
mod tests;
