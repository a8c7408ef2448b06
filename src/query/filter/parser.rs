//! The grammar: `not` binds tightest, `and` and `or` share one precedence and group left to
//! right (tcpdump's rule), and a primitive is a keyword with its value words.

use super::error::{error, FilterError};
use super::expr::{Cmp, Counter, Expr, Prim, Side};
use super::tokens::{tokenize, Tok, Token};
use super::values::proto_number;
use std::net::IpAddr;

/// The expression of `text`; `None` for an empty one, which matches every record.
pub(super) fn parse(text: &str) -> Result<Option<Expr>, FilterError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        text,
        tokens: &tokens,
        at: 0,
        nesting: 0,
    };
    let (e, _) = p.expr()?;
    if let Some(t) = p.peek() {
        return Err(p.error_at(
            t,
            match t.tok {
                Tok::RParen => "this ')' has no '(' before it".to_string(),
                _ => format!("expected 'and' or 'or' before '{}'", &text[t.start..t.end]),
            },
        ));
    }
    Ok(Some(e))
}

pub(super) struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    at: usize,
    /// `(` and `not` the parser is inside of.
    nesting: usize,
}

/// How deep an expression may nest: parentheses, `not`s and `and`/`or` chains each add a
/// level. Parsing, testing and dropping an expression recurse once per level, so without a
/// bound a long enough expression overflows the stack (a worker thread has 2 MiB); 256 `or`ed
/// hosts still fit, and a longer list of addresses is better written as nets.
pub const MAX_DEPTH: usize = 256;

const PRIMITIVES: &str =
    "host, net, port, portrange, proto, vlan, mac, packets, bytes, flags, end, src, dst, or a protocol name";

/// What may follow `src` or `dst`, for the error when something else does.
const AFTER_SIDE: &str = "host, net, port, portrange, mac or an address";

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.at).copied()
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.peek()?;
        self.at += 1;
        Some(t)
    }

    pub(super) fn word(&self, t: Token) -> &'a str {
        self.text.get(t.start..t.end).unwrap_or("")
    }

    pub(super) fn error_at(&self, t: Token, reason: String) -> FilterError {
        error(self.text, t.start, t.end, reason)
    }

    fn error_at_end(&self, reason: String) -> FilterError {
        error(self.text, self.text.len(), self.text.len(), reason)
    }

    /// expr := unary (('and' | 'or') unary)*, left to right, equal precedence (tcpdump's).
    /// Returns the expression and its depth (see [`MAX_DEPTH`]).
    fn expr(&mut self) -> Result<(Expr, usize), FilterError> {
        let (mut left, mut depth) = self.unary()?;
        while let Some(t) = self.peek() {
            let join: fn(Box<Expr>, Box<Expr>) -> Expr = match t.tok {
                Tok::And => Expr::And,
                Tok::Or => Expr::Or,
                _ => break,
            };
            self.at += 1;
            let (right, d) = self.unary()?;
            depth = self.deeper(t, depth.max(d))?;
            left = join(Box::new(left), Box::new(right));
        }
        Ok((left, depth))
    }

    /// `depth + 1`, or the error at `t` when that is too deep.
    fn deeper(&self, t: Token, depth: usize) -> Result<usize, FilterError> {
        if depth >= MAX_DEPTH {
            return Err(self.error_at(
                t,
                format!(
                    "the expression nests more than {MAX_DEPTH} levels deep (parentheses, 'not's \
                     and 'and'/'or' chains each add one): split it, or use a net"
                ),
            ));
        }
        Ok(depth + 1)
    }

    fn unary(&mut self) -> Result<(Expr, usize), FilterError> {
        let Some(t) = self.next() else {
            return Err(self.error_at_end(format!("expected one of {PRIMITIVES}")));
        };
        if matches!(t.tok, Tok::Not | Tok::LParen) {
            // Checked on the way in, so that the parser's own recursion stays bounded too.
            self.deeper(t, self.nesting)?;
        }
        match t.tok {
            Tok::Not => {
                self.nesting += 1;
                let inner = self.unary();
                self.nesting -= 1;
                let (e, d) = inner?;
                Ok((Expr::Not(Box::new(e)), self.deeper(t, d)?))
            }
            Tok::LParen => {
                self.nesting += 1;
                let inner = self.expr();
                self.nesting -= 1;
                let (e, d) = inner?;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Ok((e, d)),
                    Some(u) => Err(self.error_at(
                        u,
                        format!("expected 'and', 'or' or ')' before '{}'", self.word(u)),
                    )),
                    None => Err(self.error_at(t, "this '(' is never closed".into())),
                }
            }
            Tok::Word => Ok((Expr::Prim(self.primitive(t)?), 1)),
            _ => Err(self.error_at(
                t,
                format!("expected one of {PRIMITIVES}, found '{}'", self.word(t)),
            )),
        }
    }

    /// The value word after a keyword.
    fn value(&mut self, keyword: Token, what: &str) -> Result<(Token, &'a str), FilterError> {
        match self.next() {
            Some(t) if t.tok == Tok::Word => Ok((t, self.word(t))),
            Some(t) => Err(self.error_at(
                t,
                format!(
                    "expected {what} after '{}', found '{}'",
                    self.word(keyword),
                    self.word(t)
                ),
            )),
            None => {
                Err(self.error_at_end(format!("expected {what} after '{}'", self.word(keyword))))
            }
        }
    }

    fn primitive(&mut self, t: Token) -> Result<Prim, FilterError> {
        match self.word(t).to_ascii_lowercase().as_str() {
            "src" => self.sided(t, Side::Src),
            "dst" => self.sided(t, Side::Dst),
            "ether" => self.ether(t),
            _ => self.keyword(Side::Either, t),
        }
    }

    /// After `src` or `dst` (the token `t`): a keyword that takes a side, or an address alone.
    fn sided(&mut self, t: Token, side: Side) -> Result<Prim, FilterError> {
        let Some(k) = self.peek() else {
            return Err(
                self.error_at_end(format!("expected {AFTER_SIDE} after '{}'", self.word(t)))
            );
        };
        if k.tok != Tok::Word {
            return Err(self.error_at(
                k,
                format!(
                    "expected {AFTER_SIDE} after '{}', found '{}'",
                    self.word(t),
                    self.word(k)
                ),
            ));
        }
        let kw = self.word(k).to_ascii_lowercase();
        if matches!(kw.as_str(), "host" | "net" | "port" | "portrange" | "mac") {
            self.at += 1;
            self.keyword(side, k)
        } else if let Ok(a) = self.word(k).parse::<IpAddr>() {
            // `src 10.0.0.1`, as tcpdump allows.
            self.at += 1;
            Ok(Prim::Host(side, a))
        } else {
            Err(self.error_at(k, format!("expected {AFTER_SIDE} after '{}'", self.word(t))))
        }
    }

    /// `ether host|src|dst MAC`, tcpdump's spelling of `[src|dst] mac MAC`.
    fn ether(&mut self, t: Token) -> Result<Prim, FilterError> {
        let (k, kw) = self.value(t, "host, src or dst")?;
        let side = match kw.to_ascii_lowercase().as_str() {
            "host" => Side::Either,
            "src" => Side::Src,
            "dst" => Side::Dst,
            _ => {
                return Err(self.error_at(
                    k,
                    format!("expected host, src or dst after 'ether', found '{kw}'"),
                ))
            }
        };
        let (v, mac) = self.value(k, "a MAC address")?;
        Ok(Prim::Mac(side, self.mac(v, mac)?))
    }

    /// The primitive that the keyword `kw` starts; `side` is `Either` unless `src` or `dst`
    /// came before it.
    fn keyword(&mut self, side: Side, kw: Token) -> Result<Prim, FilterError> {
        let kw_text = self.word(kw).to_ascii_lowercase();
        match kw_text.as_str() {
            "host" => {
                let (v, s) = self.value(kw, "an IP address")?;
                Ok(Prim::Host(side, self.address(v, s)?))
            }
            "net" => {
                let (v, s) = self.value(kw, "a prefix such as 10.0.0.0/8")?;
                Ok(Prim::Net(side, self.prefix(v, s)?))
            }
            "port" => {
                let (v, s) = self.value(kw, "a port number")?;
                let p = self.port(v, s)?;
                Ok(Prim::Port(side, p, p))
            }
            "portrange" => {
                let (v, s) = self.value(kw, "a port range such as 1024-65535")?;
                let (lo, hi) = self.port_range(v, s)?;
                Ok(Prim::Port(side, lo, hi))
            }
            "mac" => {
                let (v, s) = self.value(kw, "a MAC address")?;
                Ok(Prim::Mac(side, self.mac(v, s)?))
            }
            _ if side != Side::Either => unreachable_side(self, kw),
            "proto" => {
                let (v, s) = self.value(kw, "a protocol name or number")?;
                Ok(Prim::Proto(self.protocol(v, s)?))
            }
            "ip" | "ip4" => Ok(Prim::Family { v6: false }),
            "ip6" => Ok(Prim::Family { v6: true }),
            "vlan" => {
                let (v, s) = self.value(kw, "a VLAN id")?;
                Ok(Prim::Vlan(self.vlan(v, s)?))
            }
            "packets" => self.count(kw, Counter::Packets),
            "bytes" => self.count(kw, Counter::Bytes),
            "flags" => {
                let (v, s) = self.value(kw, "TCP flag letters such as S or SA")?;
                Ok(Prim::Flags(self.tcp_flags(v, s)?))
            }
            "end" => {
                let (v, s) = self.value(kw, "an end reason")?;
                Ok(Prim::End(self.end_reason(v, s)?))
            }
            _ => self.bare_word(kw, &kw_text),
        }
    }

    /// `packets|bytes [OP] N`; without an operator, equal (as nfdump).
    fn count(&mut self, kw: Token, what: Counter) -> Result<Prim, FilterError> {
        let cmp = match self.peek() {
            Some(Token {
                tok: Tok::Cmp(c), ..
            }) => {
                self.at += 1;
                c
            }
            _ => Cmp::Eq,
        };
        let (v, s) = self.value(kw, "a number")?;
        let n = s
            .parse::<u64>()
            .map_err(|_| self.error_at(v, format!("'{s}' is not a whole number")))?;
        Ok(Prim::Count(what, cmp, n))
    }

    /// A word that is no keyword: a protocol name or an address alone (`tcp`, `10.0.0.1`).
    fn bare_word(&self, kw: Token, lower: &str) -> Result<Prim, FilterError> {
        if let Some(p) = proto_number(lower) {
            return Ok(Prim::Proto(p));
        }
        if let Ok(a) = self.word(kw).parse::<IpAddr>() {
            return Ok(Prim::Host(Side::Either, a));
        }
        Err(self.error_at(
            kw,
            format!(
                "'{}' is not a filter word; expected one of {PRIMITIVES}",
                self.word(kw)
            ),
        ))
    }
}

/// `src`/`dst` was followed by a keyword the parser accepted only for them (host, net, port,
/// portrange, mac); any other keyword was refused before getting here.
fn unreachable_side(p: &Parser<'_>, kw: Token) -> Result<Prim, FilterError> {
    Err(p.error_at(kw, format!("'{}' cannot follow src or dst", p.word(kw))))
}
