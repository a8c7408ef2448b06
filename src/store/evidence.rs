//! The store's history as a sceptic checks it: its identity (`DIR/store-id`, the origin of its
//! checkpoints), the Merkle tree over its audit log, signed checkpoints of that tree
//! (`DIR/checkpoints`, and a copy the operator ships off the box), and checking a checkpoint
//! kept elsewhere against the log as it is now.

use super::audit::{self, AUDIT_LOG_NAME};
use super::{Store, StoreError};
use crate::fs;
use crate::proof::keys::{SigningKey, VerifierKey};
use crate::proof::merkle::{self, Tree};
use crate::proof::note::{self, Checkpoint};
use std::io;
use std::path::Path;

/// `DIR/store-id`: one line, `flowkeep/<UUID>`, made once.
pub const STORE_ID_NAME: &str = "store-id";
/// `DIR/checkpoints`: every checkpoint signed for this store, one signed note after another.
pub const CHECKPOINTS_NAME: &str = "checkpoints";

/// A random (version 4) UUID as the origin of a store's checkpoints.
fn new_origin() -> Result<String, String> {
    let mut b = [0u8; 16];
    crate::proof::random(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "flowkeep/{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Whether `text` is an origin [`new_origin`] makes.
fn valid_origin(text: &str) -> bool {
    text.strip_prefix("flowkeep/").is_some_and(|u| {
        u.len() == 36
            && u.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
            })
    })
}

/// Reads `DIR/store-id`; `None` when there is none (a store made before identities).
pub(crate) fn read_origin(dir: &Path) -> Result<Option<String>, StoreError> {
    let path = dir.join(STORE_ID_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => match text.strip_suffix('\n') {
            Some(id) if valid_origin(id) => Ok(Some(id.to_string())),
            _ => Err(StoreError::corrupt(
                path,
                0,
                "not one line 'flowkeep/<uuid>'",
            )),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Makes `DIR/store-id` unless it exists (two writers creating a store at once: the first
/// one's stays); returns the store's origin either way.
pub(crate) fn create_origin(dir: &Path) -> Result<String, StoreError> {
    if let Some(id) = read_origin(dir)? {
        return Ok(id);
    }
    let id = new_origin().map_err(|e| StoreError::Refused {
        path: dir.join(STORE_ID_NAME),
        reason: format!("no random bytes for the store's identity: {e}"),
    })?;
    // Unique per process and call, as the marker's temporaries are.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = format!(".{STORE_ID_NAME}.{}.{n}.tmp", std::process::id());
    if fs::write_new_atomically(
        dir,
        &tmp,
        STORE_ID_NAME,
        format!("{id}\n").as_bytes(),
        0o640,
    )? {
        return Ok(id);
    }
    // Another writer made it first: its identity stands.
    read_origin(dir)?
        .ok_or_else(|| StoreError::corrupt(dir.join(STORE_ID_NAME), 0, "empty store identity"))
}

/// What checking one kept checkpoint against the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Checkpoints that verified: signed by the key, for this store, and contained in the log.
    pub verified: Vec<Checkpoint>,
    /// One line each: what is wrong.
    pub problems: Vec<String>,
}

impl Store {
    /// The origin of this store's checkpoints; `None` for a store made before identities
    /// (it gets one at its first signed checkpoint).
    pub fn origin(&self) -> Result<Option<String>, StoreError> {
        read_origin(self.dir())
    }

    /// The Merkle tree over the audit log's lines as they are now.
    pub fn audit_tree(&self) -> Result<Tree, StoreError> {
        Ok(Tree::from_leaves(&audit::leaf_hashes(self.dir())?))
    }

    /// The checkpoint of the log as it is now, giving the store an identity if it has none.
    pub fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let origin = create_origin(self.dir())?;
        let tree = self.audit_tree()?;
        Ok(Checkpoint {
            origin,
            size: tree.len(),
            root: tree.root(),
            extensions: Vec::new(),
        })
    }

    /// Signs the current checkpoint and appends it to `DIR/checkpoints` and, when given, to
    /// `copy_to` (a file outside the store the operator ships off the box). Returns the note.
    pub fn sign_checkpoint(
        &self,
        key: &SigningKey,
        copy_to: Option<&Path>,
    ) -> Result<String, StoreError> {
        let cp = self.checkpoint()?;
        cp.check().map_err(|e| StoreError::Refused {
            path: self.dir().to_path_buf(),
            reason: format!("checkpoint: {e}"),
        })?;
        let signed = cp.sign(key);
        for path in std::iter::once(self.dir().join(CHECKPOINTS_NAME).as_path())
            .chain(copy_to)
            .collect::<Vec<_>>()
        {
            append_note(path, &signed)?;
        }
        Ok(signed)
    }

    /// The checkpoint `DIR/checkpoints` ends with, as its text, if any.
    pub fn last_checkpoint(&self) -> Result<Option<String>, StoreError> {
        let path = self.dir().join(CHECKPOINTS_NAME);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(note::split_notes(&text).last().map(|n| n.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Checks every checkpoint in `text` (a kept copy of signed notes): signed by `key`, for
    /// this store, and still contained in the audit log (a consistency proof from its size
    /// to the log's, verified against both roots).
    pub fn check_checkpoints(
        &self,
        text: &str,
        key: &VerifierKey,
    ) -> Result<CheckpointReport, StoreError> {
        let mut report = CheckpointReport::default();
        let origin = self.origin()?;
        let tree = self.audit_tree()?;
        let notes = note::split_notes(text);
        if notes.is_empty() {
            report
                .problems
                .push("checkpoint: the file holds no checkpoint".into());
        }
        for (i, n) in notes.iter().enumerate() {
            let which = format!("checkpoint {} of {}", i + 1, notes.len());
            match check_one(n, key, origin.as_deref(), &tree) {
                Ok(cp) => report.verified.push(cp),
                Err(why) => report.problems.push(format!("{which}: {why}")),
            }
        }
        Ok(report)
    }
}

fn check_one(
    text: &str,
    key: &VerifierKey,
    origin: Option<&str>,
    tree: &Tree,
) -> Result<Checkpoint, String> {
    let cp = note::open(text, key).map_err(|e| e.to_string())?;
    match origin {
        None => {
            return Err(format!(
                "for store {}, but this store has no identity ({STORE_ID_NAME} is gone)",
                cp.origin
            ))
        }
        Some(o) if o != cp.origin => {
            return Err(format!("for store {}, but this store is {o}", cp.origin))
        }
        Some(_) => {}
    }
    let now = tree.len();
    if cp.size > now {
        return Err(format!(
            "{AUDIT_LOG_NAME} has {now} entries, but the checkpoint signed {}: entries were removed",
            cp.size
        ));
    }
    let proof = tree
        .consistency_proof(cp.size, now)
        .ok_or_else(|| format!("no consistency proof from {} to {now}", cp.size))?;
    if !merkle::verify_consistency(cp.size, now, &cp.root, &tree.root(), &proof) {
        return Err(format!(
            "{AUDIT_LOG_NAME} no longer holds the {} entries the checkpoint signed: entries \
             were changed, removed or rewritten",
            cp.size
        ));
    }
    Ok(cp)
}

/// Appends a signed note and a blank line, in one write, then fsyncs.
fn append_note(path: &Path, signed: &str) -> Result<(), StoreError> {
    let f = fs::open_append(path).map_err(|e| StoreError::io(path, e))?;
    fs::write_all(&f, format!("{signed}\n").as_bytes())
        .and_then(|()| fs::sync(&f))
        .map_err(|e| StoreError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::keys::generate;
    use crate::store::{StoreWriter, WriterConfig};
    use crate::testing::sample;

    fn store_with(records: u64) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let mut cfg = WriterConfig::new(d.path());
        cfg.block_records = 2;
        let mut w = StoreWriter::create(cfg).unwrap();
        for i in 0..records {
            w.append(&sample(i * 10_000)).unwrap();
        }
        w.finish().unwrap();
        d
    }

    #[test]
    fn origins_are_version_4_uuids_and_made_once() {
        let o = new_origin().unwrap();
        assert!(valid_origin(&o), "{o}");
        assert_eq!(&o[23..24], "4");
        assert_ne!(new_origin().unwrap(), o);
        let d = store_with(1);
        let first = Store::open(d.path()).unwrap().origin().unwrap().unwrap();
        assert_eq!(create_origin(d.path()).unwrap(), first);
        assert!(!valid_origin("flowkeep/not-a-uuid"));
    }

    #[test]
    fn writers_racing_to_make_the_identity_all_get_the_first_ones() {
        for _ in 0..20 {
            let d = tempfile::tempdir().unwrap();
            let ids: Vec<String> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| create_origin(d.path())))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
            });
            assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
            assert_eq!(read_origin(d.path()).unwrap().as_ref(), Some(&ids[0]));
            let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "only store-id is left");
        }
    }

    #[test]
    fn a_signed_checkpoint_checks_until_the_log_is_cut() {
        let d = store_with(5);
        let store = Store::open(d.path()).unwrap();
        let (key, verifier) = generate("test-key").unwrap();
        let shipped = store.sign_checkpoint(&key, None).unwrap();
        let r = store.check_checkpoints(&shipped, &verifier).unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.verified[0].size, store.audit_tree().unwrap().len());
        assert_eq!(
            store.last_checkpoint().unwrap().as_deref(),
            Some(shipped.as_str())
        );
        // The log grows: the old checkpoint is still contained.
        let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
        w.append(&sample(99_000_000)).unwrap();
        w.finish().unwrap();
        assert!(store
            .check_checkpoints(&shipped, &verifier)
            .unwrap()
            .problems
            .is_empty());
        // The log loses its last line: the checkpoint names the loss.
        let log = d.path().join(AUDIT_LOG_NAME);
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let cut = lines[..lines.len() - 2].join("\n") + "\n";
        std::fs::write(&log, cut).unwrap();
        let r = store.check_checkpoints(&shipped, &verifier).unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            r.problems[0].contains("entries were removed"),
            "{:?}",
            r.problems
        );
        // Another key's checkpoint is not accepted.
        let (_, other) = generate("test-key").unwrap();
        let r = store.check_checkpoints(&shipped, &other).unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    }
}
