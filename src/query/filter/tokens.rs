//! Splitting an expression into words, parentheses and operators, each with its byte range so
//! that an error can point at it.

use super::error::{error, FilterError};
use super::expr::Cmp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Word,
    LParen,
    RParen,
    And,
    Or,
    Not,
    Cmp(Cmp),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// Byte range in the expression.
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    const SPECIAL: &str = "()!<>=&|";
    let mut out = Vec::new();
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c.is_whitespace() {
            continue;
        }
        let next_is = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>, want: char| {
            it.next_if(|&(_, n)| n == want).is_some()
        };
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '!' => Tok::Not,
            '&' | '|' => {
                if !next_is(&mut it, c) {
                    return Err(error(
                        text,
                        i,
                        i + 1,
                        format!("a single '{c}' is not an operator; use '{c}{c}'"),
                    ));
                }
                if c == '&' {
                    Tok::And
                } else {
                    Tok::Or
                }
            }
            '<' => Tok::Cmp(if next_is(&mut it, '=') {
                Cmp::Le
            } else {
                Cmp::Lt
            }),
            '>' => Tok::Cmp(if next_is(&mut it, '=') {
                Cmp::Ge
            } else {
                Cmp::Gt
            }),
            '=' => {
                next_is(&mut it, '=');
                Tok::Cmp(Cmp::Eq)
            }
            _ => {
                while it
                    .next_if(|&(_, n)| !n.is_whitespace() && !SPECIAL.contains(n))
                    .is_some()
                {}
                Tok::Word
            }
        };
        let end = it.peek().map_or(text.len(), |&(j, _)| j);
        let tok = match tok {
            Tok::Word => match text[i..end].to_ascii_lowercase().as_str() {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                _ => Tok::Word,
            },
            t => t,
        };
        out.push(Token { tok, start: i, end });
    }
    Ok(out)
}
