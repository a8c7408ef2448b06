//! The grammar: `not` binds tightest, `and` and `or` share one precedence and group left to
//! right (tcpdump's rule), and a primitive is a keyword with its value words.

use super::error::{error, FilterError};
use super::expr::{Cmp, Counter, Expr, Prim, Side};
use super::tokens::{tokenize, Tok, Token};
use super::values::proto_number;
use std::net::IpAddr;

/// The expression of `text`; `None` for an empty one, which matches every record. The flag
/// says whether a port was named by its service name.
pub(super) fn parse(text: &str) -> Result<(Option<Expr>, bool), FilterError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Ok((None, false));
    }
    let mut p = Parser {
        text,
        tokens: &tokens,
        at: 0,
        nesting: 0,
        last: None,
        named_ports: false,
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
    Ok((Some(e), p.named_ports))
}

pub(super) struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    at: usize,
    /// `(` and `not` the parser is inside of.
    nesting: usize,
    /// The qualifiers of the last host, net, port or portrange primitive, which a bare value
    /// takes over as tcpdump's do: `port 80 or 443`, `src host a or b`.
    last: Option<Implied>,
    /// Whether a port was given by its name (see [`super::Filter::names_services`]).
    pub(super) named_ports: bool,
}

/// A protocol before `port`/`portrange` (`tcp port 443`) or an address family before
/// `host`/`net` (`ip6 net 2001:db8::/32`), tcpdump's qualifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Qual {
    Proto(u8),
    Family { v6: bool },
}

impl Qual {
    fn prim(self) -> Prim {
        match self {
            Qual::Proto(p) => Prim::Proto(p),
            Qual::Family { v6 } => Prim::Family { v6 },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Host,
    Net,
    Port,
    Portrange,
}

#[derive(Clone, Copy, Debug)]
struct Implied {
    qual: Option<Qual>,
    side: Side,
    kind: Kind,
}

/// `q and e`, for a qualifier and its primitive.
fn both(q: Prim, e: Expr) -> Expr {
    Expr::And(Box::new(Expr::Prim(q)), Box::new(e))
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
            Tok::Word => {
                let e = self.primitive(t)?;
                let depth = if matches!(e, Expr::Prim(_)) { 1 } else { 2 };
                Ok((e, depth))
            }
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

    fn primitive(&mut self, t: Token) -> Result<Expr, FilterError> {
        let word = self.word(t).to_ascii_lowercase();
        if let Some(qual) = self.qualifier(&word) {
            if let Some(k) = self.next() {
                return self.unqualified(k, Some((qual, t)));
            }
        }
        self.unqualified(t, None)
    }

    /// `tcp`, `udp`, `sctp` before `port`/`portrange`, `ip`, `ip6` before `host`/`net`, each
    /// also before `src`/`dst`: a qualifier of the primitive that follows (tcpdump's `tcp port
    /// 443`, `udp dst port 53`), rather than a primitive of its own.
    fn qualifier(&self, word: &str) -> Option<Qual> {
        let next = self.peek().filter(|n| n.tok == Tok::Word)?;
        let next = self.word(next).to_ascii_lowercase();
        match word {
            "tcp" | "udp" | "sctp"
                if matches!(next.as_str(), "port" | "portrange" | "src" | "dst") =>
            {
                proto_number(word).map(Qual::Proto)
            }
            "ip" | "ip4" | "ip6" if matches!(next.as_str(), "host" | "net" | "src" | "dst") => {
                Some(Qual::Family { v6: word == "ip6" })
            }
            _ => None,
        }
    }

    /// A primitive; `qual` is the qualifier before it and its token, if there was one.
    fn unqualified(&mut self, t: Token, qual: Option<(Qual, Token)>) -> Result<Expr, FilterError> {
        match self.word(t).to_ascii_lowercase().as_str() {
            "src" => self.sided(t, Side::Src, qual),
            "dst" => self.sided(t, Side::Dst, qual),
            "ether" if qual.is_none() => self.ether(t).map(Expr::Prim),
            _ => self.keyword(Side::Either, t, qual),
        }
    }

    /// After `src` or `dst` (the token `t`): a keyword that takes a side, or an address alone.
    fn sided(
        &mut self,
        t: Token,
        side: Side,
        qual: Option<(Qual, Token)>,
    ) -> Result<Expr, FilterError> {
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
            self.keyword(side, k, qual)
        } else if let Ok(a) = self.word(k).parse::<IpAddr>() {
            // `src 10.0.0.1`, as tcpdump allows.
            self.at += 1;
            self.qualified_kind(Kind::Host, qual, k)?;
            self.last = Some(Implied {
                qual: qual.map(|q| q.0),
                side,
                kind: Kind::Host,
            });
            Ok(Expr::Prim(Prim::Host(side, a)))
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
    /// came before it, `qual` the qualifier before both.
    fn keyword(
        &mut self,
        side: Side,
        kw: Token,
        qual: Option<(Qual, Token)>,
    ) -> Result<Expr, FilterError> {
        let kw_text = self.word(kw).to_ascii_lowercase();
        let kind = match kw_text.as_str() {
            "host" => Some(Kind::Host),
            "net" => Some(Kind::Net),
            "port" => Some(Kind::Port),
            "portrange" => Some(Kind::Portrange),
            _ => None,
        };
        if let Some(kind) = kind {
            self.qualified_kind(kind, qual, kw)?;
            let (v, s) = self.value(kw, kind.what())?;
            let qual = qual.map(|q| q.0);
            self.last = Some(Implied { qual, side, kind });
            return self.kind_value(kind, side, qual, v, s);
        }
        if let Some((_, q)) = qual {
            return Err(self.error_at(
                q,
                format!(
                    "'{}' qualifies host and net (ip, ip6) or port and portrange (tcp, udp, \
                     sctp), not '{}'; join them with 'and'",
                    self.word(q),
                    self.word(kw)
                ),
            ));
        }
        let prim = match kw_text.as_str() {
            "mac" => {
                let (v, s) = self.value(kw, "a MAC address")?;
                Prim::Mac(side, self.mac(v, s)?)
            }
            _ if side != Side::Either => return unreachable_side(self, kw).map(Expr::Prim),
            "proto" => {
                let (v, s) = self.value(kw, "a protocol name or number")?;
                Prim::Proto(self.protocol(v, s)?)
            }
            "ip" | "ip4" => Prim::Family { v6: false },
            "ip6" => Prim::Family { v6: true },
            "vlan" => {
                let (v, s) = self.value(kw, "a VLAN id")?;
                Prim::Vlan(self.vlan(v, s)?)
            }
            "packets" => self.count(kw, Counter::Packets)?,
            "bytes" => self.count(kw, Counter::Bytes)?,
            "flags" => {
                let (v, s) = self.value(kw, "TCP flag letters such as S or SA")?;
                Prim::Flags(self.tcp_flags(v, s)?)
            }
            "end" => {
                let (v, s) = self.value(kw, "an end reason")?;
                Prim::End(self.end_reason(v, s)?)
            }
            _ => return self.bare_word(kw, &kw_text),
        };
        Ok(Expr::Prim(prim))
    }

    /// Refuses a qualifier that does not apply to `kind` (`tcp src host a`).
    fn qualified_kind(
        &self,
        kind: Kind,
        qual: Option<(Qual, Token)>,
        at: Token,
    ) -> Result<(), FilterError> {
        let ok = match qual {
            None => true,
            Some((Qual::Proto(_), _)) => matches!(kind, Kind::Port | Kind::Portrange),
            Some((Qual::Family { .. }, _)) => matches!(kind, Kind::Host | Kind::Net),
        };
        match qual {
            Some((_, q)) if !ok => Err(self.error_at(
                q,
                format!(
                    "'{}' cannot qualify '{}': ip and ip6 qualify host and net, tcp, udp and \
                     sctp qualify port and portrange; join them with 'and'",
                    self.word(q),
                    self.word(at)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The value `s` (token `v`) of a host, net, port or portrange primitive, with its
    /// qualifier joined by `and`.
    fn kind_value(
        &mut self,
        kind: Kind,
        side: Side,
        qual: Option<Qual>,
        v: Token,
        s: &str,
    ) -> Result<Expr, FilterError> {
        let proto_q = match qual {
            Some(Qual::Proto(p)) => Some(p),
            _ => None,
        };
        let (prim, named_proto) = match kind {
            Kind::Host => (Prim::Host(side, self.address(v, s)?), None),
            Kind::Net => {
                let mut p = self.prefix(v, s)?;
                if self
                    .peek()
                    .is_some_and(|m| self.word(m).eq_ignore_ascii_case("mask"))
                {
                    let m = self.next().expect("peeked");
                    let (mv, ms) = self.value(m, "a netmask such as 255.255.0.0")?;
                    p = self.masked(v, s, mv, ms)?;
                }
                (Prim::Net(side, p), None)
            }
            Kind::Port => {
                let (port, named) = self.named_port(v, s, proto_q)?;
                (Prim::Port(side, port, port), named)
            }
            Kind::Portrange => {
                let (lo, hi) = self.port_range(v, s)?;
                (Prim::Port(side, lo, hi), None)
            }
        };
        let e = Expr::Prim(prim);
        Ok(match (qual, named_proto) {
            (Some(q), _) => both(q.prim(), e),
            (None, Some(p)) => both(Prim::Proto(p), e),
            (None, None) => e,
        })
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

    /// A word that is no keyword: a protocol name, a value that takes over the last
    /// primitive's qualifiers (`port 80 or 443`, as tcpdump), or an address alone.
    fn bare_word(&mut self, kw: Token, lower: &str) -> Result<Expr, FilterError> {
        if let Some(p) = proto_number(lower) {
            return Ok(Expr::Prim(Prim::Proto(p)));
        }
        let word = self.word(kw);
        if let Some(last) = self.last {
            return self
                .kind_value(last.kind, last.side, last.qual, kw, word)
                .map_err(|e| {
                    e.with_note(format!(
                        "a value alone takes '{}' from before it, as in tcpdump",
                        last.kind.word()
                    ))
                });
        }
        if let Ok(a) = word.parse::<IpAddr>() {
            return Ok(Expr::Prim(Prim::Host(Side::Either, a)));
        }
        Err(self.error_at(
            kw,
            format!("'{word}' is not a filter word; expected one of {PRIMITIVES}"),
        ))
    }
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Net => "net",
            Kind::Port => "port",
            Kind::Portrange => "portrange",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Host => "an IP address",
            Kind::Net => "a prefix such as 10.0.0.0/8 or 10/8",
            Kind::Port => "a port number or service name",
            Kind::Portrange => "a port range such as 1024-65535",
        }
    }
}

/// `src`/`dst` was followed by a keyword the parser accepted only for them (host, net, port,
/// portrange, mac); any other keyword was refused before getting here.
fn unreachable_side(p: &Parser<'_>, kw: Token) -> Result<Prim, FilterError> {
    Err(p.error_at(kw, format!("'{}' cannot follow src or dst", p.word(kw))))
}
