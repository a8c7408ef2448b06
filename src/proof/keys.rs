//! Ed25519 key pairs in the C2SP `signed-note` text forms, and their files.
//!
//! A signing key file holds one line, `PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>`; the
//! verifier key beside it (`PATH.pub`) holds `<name>+<hash>+<base64(0x01 || public key)>`.
//! `<hash>` is the key ID as 8 lower-case hex digits: the first four bytes, big-endian, of
//! SHA-256(name || 0x0A || 0x01 || public key). These are the forms golang.org/x/mod/sumdb/note
//! reads and writes, so a verifier can use Go's tools, or any other implementation, instead of
//! ours.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::fs;

/// The signature type byte C2SP signed-note assigns to Ed25519.
const ALG_ED25519: u8 = 0x01;

const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// Larger than any key file we write by far; a bound so that pointing `--key` at a huge file
/// fails fast instead of reading it all.
const MAX_KEY_FILE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already exists: refusing to overwrite a key file", path.display())]
    Exists { path: PathBuf },
    #[error("invalid key name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    /// The text is not a key of the form asked for. The message never quotes a signing key's
    /// text, which is a secret.
    #[error("malformed {what}: {why}")]
    Malformed { what: &'static str, why: String },
    #[error("unknown key algorithm {0:#04x} (only Ed25519, 0x01, is supported)")]
    UnknownAlgorithm(u8),
    #[error("key hash {stated:08x} does not match key {name} (whose hash is {computed:08x})")]
    WrongKeyHash {
        name: String,
        stated: u32,
        computed: u32,
    },
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<KeyError>,
    },
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
}

/// A named Ed25519 signing key. Its `Debug` leaves the secret out; ed25519-dalek wipes it when
/// the key is dropped.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    hash: u32,
    key: ed25519_dalek::SigningKey,
}

/// A named Ed25519 public key, which checks what the matching [`SigningKey`] signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    hash: u32,
    key: ed25519_dalek::VerifyingKey,
}

/// Checks a key name as C2SP signed-note states it: non-empty, no Unicode space, no `+`. Control
/// characters are refused too: a note that holds one is malformed, so a key with one in its
/// name could sign nothing that verifies.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let why = if name.is_empty() {
        "empty"
    } else if name.contains('+') {
        "contains '+'"
    } else if name.chars().any(char::is_whitespace) {
        "contains a space"
    } else if name.chars().any(|c| c < ' ') {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(KeyError::InvalidName {
        name: name.to_string(),
        why,
    })
}

/// The key ID of C2SP signed-note for an Ed25519 public key under `name`.
pub fn key_hash(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

impl SigningKey {
    /// The key whose RFC 8032 private key is `seed`, under `name`.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<SigningKey, KeyError> {
        check_name(name)?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        Ok(SigningKey {
            name: name.to_string(),
            hash: key_hash(name, key.verifying_key().as_bytes()),
            key,
        })
    }

    /// Reads the `PRIVATE+KEY+…` text form (one trailing newline allowed, as a file has).
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        const WHAT: &str = "signing key";
        let text = text.strip_suffix('\n').unwrap_or(text);
        let rest = text
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(KeyError::Malformed {
                what: WHAT,
                why: format!("does not start with {PRIVATE_PREFIX}"),
            })?;
        let (name, stated, mut raw) = split_key(WHAT, rest)?;
        let key = match <[u8; 32]>::try_from(raw.as_slice()) {
            Ok(mut seed) => {
                let key = SigningKey::from_seed(name, &seed);
                seed.fill(0);
                key
            }
            Err(_) => Err(KeyError::Malformed {
                what: WHAT,
                why: format!("an Ed25519 seed is 32 bytes, not {}", raw.len()),
            }),
        };
        raw.fill(0);
        let key = key?;
        check_stated_hash(&key.name, stated, key.hash)?;
        Ok(key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            hash: self.hash,
            key: self.key.verifying_key(),
        }
    }

    /// The `PRIVATE+KEY+…` text form, without a newline: the secret itself, for the key file
    /// only.
    pub fn to_private_text(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        let text = format!(
            "{PRIVATE_PREFIX}{}+{:08x}+{}",
            self.name,
            self.hash,
            BASE64.encode(raw)
        );
        raw.fill(0);
        text
    }

    /// The Ed25519 signature of `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("hash", &format_args!("{:08x}", self.hash))
            .finish_non_exhaustive()
    }
}

impl VerifierKey {
    /// The verifier key for an Ed25519 public key under `name`; fails for a name the spec
    /// forbids or 32 bytes that are not a point on the curve.
    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<VerifierKey, KeyError> {
        check_name(name)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|_| {
            KeyError::Malformed {
                what: "verifier key",
                why: "the public key is not an Ed25519 point".to_string(),
            }
        })?;
        Ok(VerifierKey {
            name: name.to_string(),
            hash: key_hash(name, public_key),
            key,
        })
    }

    /// Reads the `<name>+<hash>+<base64>` text form (one trailing newline allowed).
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        const WHAT: &str = "verifier key";
        let text = text.strip_suffix('\n').unwrap_or(text);
        let (name, stated, public) = split_key(WHAT, text)?;
        let public: [u8; 32] = public
            .try_into()
            .map_err(|v: Vec<u8>| KeyError::Malformed {
                what: WHAT,
                why: format!("an Ed25519 public key is 32 bytes, not {}", v.len()),
            })?;
        let key = VerifierKey::from_public_key(name, &public)?;
        check_stated_hash(&key.name, stated, key.hash)?;
        Ok(key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`. Strict (RFC 8032
    /// with canonical encodings and no small-order keys or points), so one message has one
    /// valid signature per key: a checkpoint cannot be re-encoded into a second valid form.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &sig).is_ok()
    }
}

/// The `<name>+<hash>+<base64>` text form, without a newline.
impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.hash, BASE64.encode(raw))
    }
}

/// `<name>+<hash hex8>+<base64(0x01 || key bytes)>` into the name, the stated hash and the key
/// bytes, the algorithm byte checked.
/// A key text's stated hash must be the one its name and key give: else it is another key's.
fn check_stated_hash(name: &str, stated: u32, computed: u32) -> Result<(), KeyError> {
    if stated != computed {
        return Err(KeyError::WrongKeyHash {
            name: name.to_string(),
            stated,
            computed,
        });
    }
    Ok(())
}

fn split_key<'a>(what: &'static str, text: &'a str) -> Result<(&'a str, u32, Vec<u8>), KeyError> {
    let malformed = |why: &str| KeyError::Malformed {
        what,
        why: why.to_string(),
    };
    // The name has no '+', and base64 may hold '+': the first two split.
    let (name, rest) = text.split_once('+').ok_or_else(|| malformed("no '+'"))?;
    let (hash, key) = rest
        .split_once('+')
        .ok_or_else(|| malformed("no '+' after the key hash"))?;
    check_name(name)?;
    if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("the key hash is not 8 hex digits"));
    }
    let hash = u32::from_str_radix(hash, 16).map_err(|_| malformed("bad key hash"))?;
    let mut raw = BASE64
        .decode(key)
        .map_err(|e| malformed(&format!("the key is not base64 ({e})")))?;
    match raw.first().copied() {
        None => Err(malformed("the key is empty")),
        Some(ALG_ED25519) => {
            // In place, so that the one buffer the caller wipes is all there was.
            raw.remove(0);
            Ok((name, hash, raw))
        }
        Some(alg) => {
            raw.fill(0);
            Err(KeyError::UnknownAlgorithm(alg))
        }
    }
}

/// A new key pair under `name`, from 32 bytes of the operating system's random source.
pub fn generate(name: &str) -> Result<(SigningKey, VerifierKey), KeyError> {
    check_name(name)?;
    let mut seed = [0u8; 32];
    super::random(&mut seed).map_err(KeyError::Random)?;
    let key = SigningKey::from_seed(name, &seed);
    seed.fill(0);
    let key = key?;
    let verifier = key.verifier();
    Ok((key, verifier))
}

/// Where [`write_new`] puts the verifier key of the signing key file `path`: `PATH.pub`.
pub fn public_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Writes `key` to a new file at `path`, readable by its owner only (0600), and its verifier
/// key to a new `PATH.pub` (0644). Refuses to overwrite either file: replacing a log's key
/// by accident would orphan every checkpoint it signed. If `PATH.pub` cannot be written, the
/// new signing key file is removed again, so that a retry starts clean.
pub fn write_new(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let public = public_path(path);
    // Checked first so that the common mistake leaves nothing behind; create_new below is
    // what makes the refusal race-free.
    for p in [path, public.as_path()] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(KeyError::Exists { path: p.into() });
        }
    }
    write_line(path, 0o600, &key.to_private_text())?;
    if let Err(e) = write_line(&public, 0o644, &key.verifier().to_string()) {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::sync_dir(dir).map_err(|source| KeyError::Io {
            path: dir.into(),
            source,
        })?;
    }
    Ok(())
}

fn write_line(path: &Path, mode: u32, line: &str) -> Result<(), KeyError> {
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::AlreadyExists => KeyError::Exists { path: path.into() },
        _ => KeyError::Io {
            path: path.into(),
            source,
        },
    };
    let f = fs::create_new_with_mode(path, mode).map_err(io)?;
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let written = fs::write_all(&f, text.as_bytes()).and_then(|()| fs::sync(&f));
    // The text may be the secret: wiped rather than left in freed memory.
    let mut bytes = text.into_bytes();
    bytes.fill(0);
    written.map_err(io)
}

/// Reads a signing key file. The second value is a warning for the caller to print when the
/// file's mode gives its group or others any access (the key still works: refusing would take
/// a log's signing away over a chmod, but the operator should know).
pub fn read_signing_key(path: &Path) -> Result<(SigningKey, Option<String>), KeyError> {
    let (text, mode) = read_small(path)?;
    let key = SigningKey::parse(&text).map_err(|e| KeyError::InFile {
        path: path.into(),
        source: Box::new(e),
    });
    let mut bytes = text.into_bytes();
    bytes.fill(0);
    let key = key?;
    let warning = (mode & 0o077 != 0).then(|| {
        format!(
            "warning: signing key {} is open to its group or others (mode {:04o}); chmod 600 it",
            path.display(),
            mode & 0o7777
        )
    });
    Ok((key, warning))
}

/// A verifier key given as its text (`<name>+<hash>+<base64>`) or as the path of a file that
/// holds it: the text when it parses as one, the file otherwise.
pub fn read_verifier_key(path_or_text: &str) -> Result<VerifierKey, KeyError> {
    let as_text = VerifierKey::parse(path_or_text);
    if let Ok(key) = as_text {
        return Ok(key);
    }
    let path = Path::new(path_or_text);
    match read_small(path) {
        Ok((text, _)) => VerifierKey::parse(&text).map_err(|e| KeyError::InFile {
            path: path.into(),
            source: Box::new(e),
        }),
        // Not a file: if it had a key's shape, the parse error says more than "not found".
        Err(KeyError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound
                && path_or_text.matches('+').count() >= 2 =>
        {
            as_text
        }
        Err(e) => Err(e),
    }
}

/// A key file's text and permission bits, read through one open file (so the bits are those
/// of the file read, not of one renamed into its place meanwhile).
fn read_small(path: &Path) -> Result<(String, u32), KeyError> {
    let io = |source: std::io::Error| KeyError::Io {
        path: path.into(),
        source,
    };
    let f = fs::open(path).map_err(io)?;
    let meta = fs::file_metadata(&f).map_err(io)?;
    if !meta.is_file() {
        return Err(KeyError::InFile {
            path: path.into(),
            source: Box::new(KeyError::Malformed {
                what: "key file",
                why: "not a regular file".to_string(),
            }),
        });
    }
    let mut bytes = Vec::new();
    (&f).take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let malformed = |why: &str| KeyError::InFile {
        path: path.into(),
        source: Box::new(KeyError::Malformed {
            what: "key file",
            why: why.to_string(),
        }),
    };
    if bytes.len() as u64 > MAX_KEY_FILE {
        bytes.fill(0);
        return Err(malformed("larger than any key file"));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.fill(0);
        malformed("not UTF-8 text")
    })?;
    Ok((text, meta.permissions().mode()))
}

#[cfg(test)]
mod tests;
