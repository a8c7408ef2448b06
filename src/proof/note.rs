//! Checkpoints (C2SP `tlog-checkpoint`) as signed notes (C2SP `signed-note`).
//!
//! A signed checkpoint looks like this:
//!
//! ```text
//! flowkeep.example/store-a
//! 1234
//! <base64 of the 32-byte root hash>
//!
//! — flowkeep.example/store-a <base64 of the key ID and the signature, 92 characters>
//! ```
//!
//! The body is the note text: every line ends in a newline, the separating blank line is not
//! part of it, and the Ed25519 signature is over those bytes exactly. Each signature line is an
//! em dash (U+2014), a space, the key name, a space and base64(key ID, 4 bytes big-endian ||
//! 64-byte signature).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::keys::{check_name, SigningKey, VerifierKey};

/// What begins every signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// More than any real note needs (the spec asks verifiers to accept at least 16); the bound
/// keeps a hostile note from costing unbounded work. golang.org/x/mod/sumdb/note uses 100 too.
const MAX_SIGNATURES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
    #[error("the note has no signature by key {name}+{hash:08x}")]
    NoSignature { name: String, hash: u32 },
    #[error("invalid signature by key {name}+{hash:08x}")]
    BadSignature { name: String, hash: u32 },
}

/// A log's tree head as C2SP tlog-checkpoint states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity; non-empty, one line.
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The RFC 6962 Merkle tree hash at `size`.
    pub root: [u8; 32],
    /// Opaque lines after the root, each non-empty (the spec discourages them: monitors cannot
    /// audit them).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, then any extension lines, each ending in
    /// a newline. Well-formed when [`Checkpoint::check`] passes; then
    /// `Checkpoint::parse(&c.to_note_body()) == Ok(c)`.
    pub fn to_note_body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Whether the fields make a checkpoint body that [`Checkpoint::parse`] reads back:
    /// the origin and each extension non-empty and one line without control characters.
    pub fn check(&self) -> Result<(), NoteError> {
        check_line("origin", &self.origin)?;
        for e in &self.extensions {
            check_line("extension line", e)?;
        }
        Ok(())
    }

    /// Reads a checkpoint body strictly: at least three lines, each ending in a newline and
    /// non-empty; a decimal size without sign or leading zeros (`0` alone for an empty tree)
    /// that fits in 64 bits; a root that is canonical base64 of exactly 32 bytes.
    pub fn parse(body: &str) -> Result<Checkpoint, NoteError> {
        let bad = |why: &str| NoteError::Checkpoint(why.to_string());
        let text = body
            .strip_suffix('\n')
            .ok_or_else(|| bad("the last line does not end in a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        let (Some(size), Some(root)) = (lines.next(), lines.next()) else {
            return Err(bad("fewer than three lines"));
        };
        check_line("origin", origin)?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        let extensions = lines
            .map(|l| check_line("extension line", l).map(|()| l.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// This checkpoint as a note signed by `key`.
    pub fn sign(&self, key: &SigningKey) -> String {
        sign(&self.to_note_body(), key)
    }
}

fn check_line(what: &str, line: &str) -> Result<(), NoteError> {
    if line.is_empty() {
        return Err(NoteError::Checkpoint(format!("empty {what}")));
    }
    if line.chars().any(|c| c < ' ') {
        return Err(NoteError::Checkpoint(format!(
            "{what} holds a control character or newline"
        )));
    }
    Ok(())
}

fn parse_size(line: &str) -> Result<u64, NoteError> {
    let bad = |why: &str| NoteError::Checkpoint(format!("tree size {line:?}: {why}"));
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a decimal number"));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(bad("leading zero"));
    }
    line.parse().map_err(|_| bad("larger than 64 bits"))
}

fn parse_root(line: &str) -> Result<[u8; 32], NoteError> {
    let bad = |why: &str| NoteError::Checkpoint(format!("root hash: {why}"));
    // The engine refuses missing padding and non-zero trailing bits: one encoding per hash.
    let raw = BASE64.decode(line).map_err(|_| bad("not base64"))?;
    raw.try_into()
        .map_err(|raw: Vec<u8>| bad(&format!("{} bytes, not 32", raw.len())))
}

/// The signed note of `body` by `key`: the body, a blank line and the signature line. `body`
/// must be note text (ending in a newline, no control characters but newlines), as
/// [`Checkpoint::to_note_body`] gives for a checkpoint that passes [`Checkpoint::check`];
/// other text is signed all the same but gives a note that [`open`] refuses as malformed.
pub fn sign(body: &str, key: &SigningKey) -> String {
    let mut raw = [0u8; 68];
    raw[..4].copy_from_slice(&key.key_hash().to_be_bytes());
    raw[4..].copy_from_slice(&key.sign(body.as_bytes()));
    format!(
        "{body}\n{SIG_PREFIX}{} {}\n",
        key.name(),
        BASE64.encode(raw)
    )
}

/// Checks the signed note `note` against `key` and returns its text (the body, with its final
/// newline). Signatures by other keys, those that differ from `key` in name or key ID, are
/// skipped as the spec requires (witness cosignatures, a rotated key); every signature by
/// `key` must verify, and there must be one.
pub fn verify<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, NoteError> {
    let malformed = NoteError::Malformed;
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("a control character other than newline"));
    }
    // The text may hold blank lines of its own; the last one separates the signatures.
    let split = note
        .rfind("\n\n")
        .ok_or(malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(malformed(
            "the last signature line does not end in a newline",
        ));
    }
    let mut count = 0;
    let mut verified = false;
    for line in sigs.split_terminator('\n') {
        count += 1;
        if count > MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let line = line.strip_prefix(SIG_PREFIX).ok_or(malformed(
            "a signature line does not start with an em dash and a space",
        ))?;
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        if check_name(name).is_err() {
            return Err(malformed("a signature line's key name is not valid"));
        }
        let raw = BASE64
            .decode(b64)
            .map_err(|_| malformed("a signature is not base64"))?;
        if raw.len() < 5 {
            return Err(malformed(
                "a signature is shorter than its key ID and one byte",
            ));
        }
        let hash = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if name != key.name() || hash != key.key_hash() {
            continue;
        }
        if !key.verify(text.as_bytes(), &raw[4..]) {
            return Err(NoteError::BadSignature {
                name: name.to_string(),
                hash,
            });
        }
        verified = true;
    }
    if !verified {
        return Err(NoteError::NoSignature {
            name: key.name().to_string(),
            hash: key.key_hash(),
        });
    }
    Ok(text)
}

/// The checkpoint in the signed note `note`, once [`verify`] has found `key`'s signature on
/// it. Which log it is the caller decides: compare `origin` with the one expected.
pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint, NoteError> {
    Checkpoint::parse(verify(note, key)?)
}

/// The notes of a file that holds several, one after the other (the checkpoint log an
/// operator ships): each piece runs from its first text line to the last of the signature
/// lines that follow its blank line. Blank lines between notes are skipped. Nothing is
/// dropped: a note cut short at the end comes back as a piece of its own, and stray lines
/// become part of the piece they precede, so that [`open`] reports them rather than they
/// go unnoticed.
///
/// Meant for checkpoint notes, whose text has no blank line: a note whose text holds a blank
/// line followed by a line starting with an em dash and a space would be cut there.
pub fn split_notes(text: &str) -> Vec<&str> {
    #[derive(PartialEq)]
    enum State {
        Between,
        Text,
        Blank,
        Signatures,
    }
    let mut notes = Vec::new();
    let mut state = State::Between;
    let mut start = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let is_sig = line.starts_with(SIG_PREFIX);
        if state == State::Signatures && !is_sig {
            notes.push(&text[start..at]);
            state = State::Between;
        }
        state = match state {
            State::Between if line == "\n" => State::Between,
            State::Between => {
                start = at;
                State::Text
            }
            State::Text | State::Blank if line == "\n" => State::Blank,
            State::Blank if is_sig => State::Signatures,
            State::Text | State::Blank => State::Text,
            State::Signatures => State::Signatures,
        };
        at += line.len();
    }
    if state != State::Between {
        notes.push(&text[start..]);
    }
    notes
}

#[cfg(test)]
mod tests;
