//! Parse errors that point at the offending word with a caret under it.

use std::fmt;

/// A filter expression that could not be parsed: what is wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// The whole expression.
    pub expression: String,
    /// The offending word (empty at the end of the expression).
    pub word: String,
    /// Character position of `word` in `expression`, from 0.
    pub position: usize,
    /// Character length of `word` (at least 1 for the caret).
    pub width: usize,
    pub reason: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.word.is_empty() {
            "at the end".to_string()
        } else {
            format!("at '{}' (position {})", self.word, self.position + 1)
        };
        write!(
            f,
            "bad filter expression {at}: {}\n  {}\n  {}{}",
            self.reason,
            self.expression,
            " ".repeat(self.position),
            "^".repeat(self.width.max(1))
        )
    }
}

impl std::error::Error for FilterError {}

impl FilterError {
    /// The same error with `note` after its reason, in parentheses.
    pub(super) fn with_note(mut self, note: String) -> FilterError {
        self.reason = format!("{} ({note})", self.reason);
        self
    }
}

/// The error for the byte range `start..end` of `text`; positions are counted in characters
/// so that the caret lines up under non-ASCII text.
pub(super) fn error(text: &str, start: usize, end: usize, reason: String) -> FilterError {
    let (start, end) = (start.min(text.len()), end.min(text.len()));
    let word = text.get(start..end).unwrap_or("").to_string();
    let position = text.get(..start).map_or(0, |s| s.chars().count());
    FilterError {
        expression: text.to_string(),
        width: word.chars().count(),
        word,
        position,
        reason,
    }
}
