//! Keys and checkpoints: `key generate`, `checkpoint`, the `--signing-key` of the writing
//! commands, and what `verify --checkpoint` adds.

use super::args::{CheckpointArgs, KeyArgs, KeyCommand, SigningArgs, VerifyArgs};
use anyhow::{Context, Result};
use flowkeep::proof::keys::{self, SigningKey, VerifierKey};
use flowkeep::store::Store;
use std::path::{Path, PathBuf};

pub(super) fn key(a: KeyArgs) -> Result<i32> {
    match a.command {
        KeyCommand::Generate {
            out,
            anonymize: true,
            ..
        } => super::anonymize::generate_key(&out)?,
        KeyCommand::Generate { out, name, .. } => {
            let (key, verifier) = keys::generate(&name)?;
            keys::write_new(&out, &key)?;
            eprintln!(
                "flowkeep: signing key written to {} (mode 0600), verifier key to {}",
                out.display(),
                keys::public_path(&out).display()
            );
            println!("{verifier}");
        }
    }
    Ok(0)
}

/// Reads a signing key, saying so when its file is readable by others.
fn read_key(path: &Path) -> Result<SigningKey> {
    let (key, warning) = keys::read_signing_key(path)?;
    if let Some(w) = warning {
        eprintln!("flowkeep: warning: {w}");
    }
    Ok(key)
}

pub(super) fn checkpoint(a: CheckpointArgs) -> Result<i32> {
    let key = read_key(&a.key)?;
    let store = Store::open(&a.store)?;
    let cp = store.checkpoint()?;
    print!("{}", cp.sign(&key));
    Ok(0)
}

/// A writing command's `--signing-key`: read before anything changes, so that a bad key is one
/// line and nothing stored is touched; then asked to sign after each change of the log.
pub(super) struct Signer {
    key: SigningKey,
    copy_to: Option<PathBuf>,
    store: PathBuf,
}

impl Signer {
    pub(super) fn new(a: &SigningArgs, store: &Path) -> Result<Option<Signer>> {
        let Some(path) = &a.signing_key else {
            return Ok(None);
        };
        Ok(Some(Signer {
            key: read_key(path).with_context(|| format!("--signing-key {}", path.display()))?,
            copy_to: a.checkpoint_to.clone(),
            store: store.to_path_buf(),
        }))
    }

    /// Signs a checkpoint unless the last one in the store already covers the whole log.
    pub(super) fn sign_if_changed(&self) -> Result<()> {
        let store = Store::open(&self.store)?;
        let size = store.audit_tree()?.len();
        let last = store
            .last_checkpoint()?
            .and_then(|n| flowkeep::proof::note::open(&n, &self.key.verifier()).ok());
        if last.is_some_and(|cp| cp.size == size) {
            return Ok(());
        }
        store.sign_checkpoint(&self.key, self.copy_to.as_deref())?;
        eprintln!("flowkeep: checkpoint signed: {size} audit entries");
        Ok(())
    }
}

/// `verify --checkpoint FILE --public-key PUB`: the file's text and the key, read before
/// anything is checked, so that a missing file or a bad key is one clear line.
pub(super) fn kept_checkpoints(a: &VerifyArgs) -> Result<Option<(String, VerifierKey)>> {
    let (Some(file), Some(public)) = (&a.checkpoint, &a.public_key) else {
        return Ok(None);
    };
    let key = keys::read_verifier_key(public).with_context(|| format!("--public-key {public}"))?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--checkpoint {}", file.display()))?;
    Ok(Some((text, key)))
}
