//! Filter expressions over flow records, in the words operators already use with tcpdump and
//! nfdump: `host 198.51.100.23 and not port 53`, `src net 10.0.0.0/8 && bytes > 1000000`.
//!
//! Primitives (`src` is the record's initiator side, `dst` its responder side; without either,
//! a primitive matches either side):
//!
//! - `[src|dst] host ADDR` — IPv4 or IPv6 address; a bare `ADDR` (or `src ADDR`) means the same.
//! - `[src|dst] net ADDR/LEN` — IPv4 or IPv6 prefix; bits beyond the prefix must be zero.
//! - `[src|dst] port N`, `[src|dst] portrange A-B` — only records of port-carrying protocols
//!   (TCP, UDP, UDP-Lite, SCTP, DCCP) match, as in tcpdump; ICMP's type/code never does.
//! - `proto NAME|N`, or the name alone: `tcp`, `udp`, `icmp`, `icmp6`, `sctp`, `gre`, `esp`,
//!   `ah`, `igmp`; `ip` and `ip6` select the address family.
//! - `vlan N` — the outer or the inner VLAN id is N; `vlan 0` means untagged (no outer tag).
//! - `[src|dst] mac AA:BB:CC:DD:EE:FF` (also `ether host|src|dst MAC`).
//! - `packets OP N`, `bytes OP N` with OP one of `>`, `<`, `>=`, `<=`, `=` (`==`): the count is
//!   both directions summed (`packets + rev_packets`).
//! - `flags LETTERS` — letters as in tcpdump/nfdump flag strings (`CEUAPRSF`, dots ignored): the
//!   record matches when ANY of the listed flags was seen in either direction. (nfdump asks for
//!   all of them; `flags S and flags A` does that here.)
//! - `end idle|active|fin|rst|end|evicted` — why the record was closed.
//!
//! Combinators: `not`/`!`, `and`/`&&`, `or`/`||`, parentheses. Precedence is tcpdump's: `not`
//! binds tightest; `and` and `or` have EQUAL precedence and group left to right, so
//! `host a or host b and port 80` is `(host a or host b) and port 80`. Use parentheses.
//! An empty expression matches every record.

use crate::record::{EndReason, FlowFields, Mac};
use crate::store::{ColumnDecoder, F_SRC_V6};
use crate::store::{ColumnSet, RecordFilter};
use std::fmt;
use std::net::IpAddr;

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    text: String,
    expr: Option<Expr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Prim(Prim),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Either,
    Src,
    Dst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prefix {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Prefix {
    fn contains(&self, a: &IpAddr) -> bool {
        match (self, a) {
            (Prefix::V4 { net, mask }, IpAddr::V4(a)) => u32::from(*a) & mask == *net,
            (Prefix::V6 { net, mask }, IpAddr::V6(a)) => u128::from(*a) & mask == *net,
            _ => false,
        }
    }

    /// The one address a full-length prefix holds.
    fn single(&self) -> Option<IpAddr> {
        match *self {
            Prefix::V4 {
                net,
                mask: u32::MAX,
            } => Some(IpAddr::V4(net.into())),
            Prefix::V6 {
                net,
                mask: u128::MAX,
            } => Some(IpAddr::V6(net.into())),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Cmp {
    fn holds(self, a: u64, b: u64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Eq => a == b,
            Cmp::Ge => a >= b,
            Cmp::Gt => a > b,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    Packets,
    Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Prim {
    Host(Side, IpAddr),
    Net(Side, Prefix),
    Port(Side, u16, u16),
    Proto(u8),
    Family { v6: bool },
    Vlan(u16),
    Mac(Side, Mac),
    Count(Counter, Cmp, u64),
    Flags(u8),
    End(EndReason),
}

/// IP protocols whose records carry real ports (see `decode::ip::transport`).
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

fn side_matches<T>(side: Side, src: T, dst: T, f: impl Fn(T) -> bool) -> bool {
    match side {
        Side::Either => f(src) || f(dst),
        Side::Src => f(src),
        Side::Dst => f(dst),
    }
}

impl Prim {
    fn matches<R: FlowFields>(&self, r: &R) -> bool {
        match self {
            Prim::Host(side, a) => side_matches(*side, r.src(), r.dst(), |x| x == *a),
            Prim::Net(side, p) => side_matches(*side, r.src(), r.dst(), |x| p.contains(&x)),
            Prim::Port(side, lo, hi) => {
                has_ports(r.proto())
                    && side_matches(*side, r.sport(), r.dport(), |p| (*lo..=*hi).contains(&p))
            }
            Prim::Proto(p) => r.proto() == *p,
            Prim::Family { v6 } => r.src().is_ipv6() == *v6,
            Prim::Vlan(0) => r.vlan() == 0,
            Prim::Vlan(v) => r.vlan() == *v || r.inner_vlan() == *v,
            Prim::Mac(side, m) => {
                side_matches(*side, r.src_mac(), r.dst_mac(), |x| x.as_ref() == Some(m))
            }
            Prim::Count(what, cmp, n) => {
                let total = match what {
                    Counter::Packets => r.packets().saturating_add(r.rev_packets()),
                    Counter::Bytes => r.bytes().saturating_add(r.rev_bytes()),
                };
                cmp.holds(total, *n)
            }
            Prim::Flags(f) => (r.tcp_flags() | r.rev_tcp_flags()) & f != 0,
            Prim::End(e) => r.end() == *e,
        }
    }

    /// [`Prim::matches`] for every record of a decoded block at once (`out`: one entry per
    /// record): one tight loop per column instead of a walk of the expression per record, and
    /// addresses and MACs tested once per distinct value.
    fn select(&self, c: &ColumnDecoder, out: &mut [bool]) {
        fn each<T: Copy>(out: &mut [bool], col: &[T], f: impl Fn(T) -> bool) {
            for (o, &x) in out.iter_mut().zip(col) {
                *o = f(x);
            }
        }
        fn pairs<T: Copy>(out: &mut [bool], a: &[T], b: &[T], f: impl Fn(T, T) -> bool) {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        // A column not loaded (never, by `columns`) leaves its records unmatched.
        out.fill(false);
        let [tf, rtf, end] = c.flag_bytes();
        match self {
            Prim::Host(side, a) => {
                side_select(*side, out, |src, o| c.addr_hits(src, |x| x == *a, o))
            }
            Prim::Net(side, p) => {
                side_select(*side, out, |src, o| c.addr_hits(src, |x| p.contains(&x), o))
            }
            Prim::Port(side, lo, hi) => {
                let ports = c.sports().iter().zip(c.dports());
                for ((o, &proto), (&s, &d)) in out.iter_mut().zip(c.protos()).zip(ports) {
                    *o =
                        has_ports(proto) && side_matches(*side, s, d, |p| (*lo..=*hi).contains(&p));
                }
            }
            Prim::Proto(p) => each(out, c.protos(), |x| x == *p),
            Prim::Family { v6 } => each(out, c.flags(), |f| (f & F_SRC_V6 != 0) == *v6),
            Prim::Vlan(0) => each(out, c.vlans(), |v| v == 0),
            Prim::Vlan(v) => pairs(out, c.vlans(), c.inner_vlans(), |o, i| o == *v || i == *v),
            Prim::Mac(side, m) => {
                side_select(*side, out, |src, o| c.mac_hits(src, |x| x == Some(*m), o))
            }
            Prim::Count(what, cmp, n) => {
                let [pk, by, rpk, rby] = c.counters();
                let (a, b) = match what {
                    Counter::Packets => (pk, rpk),
                    Counter::Bytes => (by, rby),
                };
                pairs(out, a, b, |x, y| cmp.holds(x.saturating_add(y), *n));
            }
            Prim::Flags(f) => pairs(out, tf, rtf, |a, b| (a | b) & f != 0),
            Prim::End(e) => each(out, end, |x| x == *e as u8),
        }
    }

    /// The columns [`Prim::matches`] reads.
    fn columns(&self) -> ColumnSet {
        match self {
            Prim::Host(..) | Prim::Net(..) => ColumnSet::ADDRS,
            Prim::Port(..) => ColumnSet::PROTO | ColumnSet::SPORT | ColumnSet::DPORT,
            Prim::Proto(_) => ColumnSet::PROTO,
            // Which family an address is comes with the flags, which are always loaded.
            Prim::Family { .. } => ColumnSet::FLAGS,
            Prim::Vlan(_) => ColumnSet::VLAN | ColumnSet::INNER_VLAN,
            Prim::Mac(..) => ColumnSet::MACS,
            Prim::Count(Counter::Packets, ..) => ColumnSet::PACKETS,
            Prim::Count(Counter::Bytes, ..) => ColumnSet::BYTES,
            Prim::Flags(_) => ColumnSet::TCP_FLAGS,
            Prim::End(_) => ColumnSet::END,
        }
    }
}

impl Expr {
    fn matches<R: FlowFields>(&self, r: &R) -> bool {
        match self {
            Expr::Not(e) => !e.matches(r),
            Expr::And(a, b) => a.matches(r) && b.matches(r),
            Expr::Or(a, b) => a.matches(r) || b.matches(r),
            Expr::Prim(p) => p.matches(r),
        }
    }

    /// [`Expr::matches`] for every record of a decoded block (see [`Prim::select`]). `and`
    /// and `or` evaluate both sides for every record: branch-free loops over a block cost less
    /// than skipping half the work record by record.
    fn select(&self, c: &ColumnDecoder, out: &mut [bool]) {
        match self {
            Expr::Prim(p) => p.select(c, out),
            Expr::Not(e) => {
                e.select(c, out);
                out.iter_mut().for_each(|o| *o = !*o);
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.select(c, out);
                let mut other = vec![false; out.len()];
                b.select(c, &mut other);
                if matches!(self, Expr::And(..)) {
                    out.iter_mut().zip(&other).for_each(|(o, &x)| *o &= x);
                } else {
                    or_into(out, &other);
                }
            }
        }
    }

    fn columns(&self) -> ColumnSet {
        match self {
            Expr::Not(e) => e.columns(),
            Expr::And(a, b) | Expr::Or(a, b) => a.columns() | b.columns(),
            Expr::Prim(p) => p.columns(),
        }
    }

    fn required_addresses(&self) -> Option<Vec<IpAddr>> {
        match self {
            Expr::Prim(Prim::Host(_, a)) => Some(vec![*a]),
            Expr::Prim(Prim::Net(_, p)) => p.single().map(|a| vec![a]),
            Expr::Prim(_) | Expr::Not(_) => None,
            // Either side's set is required; the smaller one skips more.
            Expr::And(a, b) => match (a.required_addresses(), b.required_addresses()) {
                (Some(x), Some(y)) => Some(if x.len() <= y.len() { x } else { y }),
                (x, None) | (None, x) => x,
            },
            Expr::Or(a, b) => {
                let mut x = a.required_addresses()?;
                for addr in b.required_addresses()? {
                    if !x.contains(&addr) {
                        x.push(addr);
                    }
                }
                Some(x)
            }
        }
    }
}

impl Filter {
    /// The filter that matches every record (an empty expression).
    pub fn all() -> Filter {
        Filter {
            text: String::new(),
            expr: None,
        }
    }

    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let tokens = tokenize(text)?;
        let mut p = Parser {
            text,
            tokens: &tokens,
            at: 0,
        };
        let expr = if tokens.is_empty() {
            None
        } else {
            let e = p.expr()?;
            if let Some(t) = p.peek() {
                return Err(p.error_at(
                    t,
                    match t.tok {
                        Tok::RParen => "this ')' has no '(' before it".to_string(),
                        _ => format!("expected 'and' or 'or' before '{}'", &text[t.start..t.end]),
                    },
                ));
            }
            Some(e)
        };
        Ok(Filter {
            text: text.to_string(),
            expr,
        })
    }

    pub fn matches<R: FlowFields>(&self, r: &R) -> bool {
        self.expr.as_ref().is_none_or(|e| e.matches(r))
    }

    /// Addresses one of which every matching record has as its `src` or `dst`, for skipping
    /// blocks by their address summary; `None` when the filter does not pin any down (e.g.
    /// `port 53`, `not host a`, `host a or port 53`).
    pub fn required_addresses(&self) -> Option<Vec<IpAddr>> {
        self.expr.as_ref()?.required_addresses()
    }

    /// Whether the filter matches everything (an empty expression).
    pub fn is_all(&self) -> bool {
        self.expr.is_none()
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Word,
    LParen,
    RParen,
    And,
    Or,
    Not,
    Cmp(Cmp),
}

#[derive(Clone, Copy, Debug)]
struct Token {
    tok: Tok,
    /// Byte range in the expression.
    start: usize,
    end: usize,
}

fn error(text: &str, start: usize, end: usize, reason: String) -> FilterError {
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

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
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

struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    at: usize,
}

const PRIMITIVES: &str =
    "host, net, port, portrange, proto, vlan, mac, packets, bytes, flags, end, src, dst, or a protocol name";

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.at).copied()
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.peek()?;
        self.at += 1;
        Some(t)
    }

    fn word(&self, t: Token) -> &'a str {
        self.text.get(t.start..t.end).unwrap_or("")
    }

    fn error_at(&self, t: Token, reason: String) -> FilterError {
        error(self.text, t.start, t.end, reason)
    }

    fn error_at_end(&self, reason: String) -> FilterError {
        error(self.text, self.text.len(), self.text.len(), reason)
    }

    /// expr := unary (('and' | 'or') unary)*, left to right, equal precedence (tcpdump's).
    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        while let Some(t) = self.peek() {
            let join: fn(Box<Expr>, Box<Expr>) -> Expr = match t.tok {
                Tok::And => Expr::And,
                Tok::Or => Expr::Or,
                _ => break,
            };
            self.at += 1;
            let right = self.unary()?;
            left = join(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let Some(t) = self.next() else {
            return Err(self.error_at_end(format!("expected one of {PRIMITIVES}")));
        };
        match t.tok {
            Tok::Not => Ok(Expr::Not(Box::new(self.unary()?))),
            Tok::LParen => {
                let e = self.expr()?;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Ok(e),
                    Some(u) => Err(self.error_at(
                        u,
                        format!("expected 'and', 'or' or ')' before '{}'", self.word(u)),
                    )),
                    None => Err(self.error_at(t, "this '(' is never closed".into())),
                }
            }
            Tok::Word => Ok(Expr::Prim(self.primitive(t)?)),
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
        let w = self.word(t).to_ascii_lowercase();
        let (side, kw) = match w.as_str() {
            "src" | "dst" => {
                let side = if w == "src" { Side::Src } else { Side::Dst };
                match self.peek() {
                    Some(k) if k.tok == Tok::Word => {
                        let kw = self.word(k).to_ascii_lowercase();
                        if matches!(kw.as_str(), "host" | "net" | "port" | "portrange" | "mac") {
                            self.at += 1;
                            (side, k)
                        } else if let Ok(a) = self.word(k).parse::<IpAddr>() {
                            // `src 10.0.0.1`, as tcpdump allows.
                            self.at += 1;
                            return Ok(Prim::Host(side, a));
                        } else {
                            return Err(self.error_at(
                                k,
                                format!(
                                    "expected host, net, port, portrange, mac or an address after '{}'",
                                    self.word(t)
                                ),
                            ));
                        }
                    }
                    Some(k) => {
                        return Err(self.error_at(
                            k,
                            format!(
                                "expected host, net, port, portrange, mac or an address after '{}', found '{}'",
                                self.word(t),
                                self.word(k)
                            ),
                        ))
                    }
                    None => {
                        return Err(self.error_at_end(format!(
                            "expected host, net, port, portrange, mac or an address after '{}'",
                            self.word(t)
                        )))
                    }
                }
            }
            "ether" => {
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
                return Ok(Prim::Mac(side, self.mac(v, mac)?));
            }
            _ => (Side::Either, t),
        };
        let kw_text = self.word(kw).to_ascii_lowercase();
        match kw_text.as_str() {
            "host" => {
                let (v, s) = self.value(kw, "an IP address")?;
                let a = s.parse::<IpAddr>().map_err(|_| {
                    self.error_at(
                        v,
                        format!(
                            "'{s}' is not an IPv4 or IPv6 address (host names are not looked up)"
                        ),
                    )
                })?;
                Ok(Prim::Host(side, a))
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
                let Some((a, b)) = s.split_once('-') else {
                    return Err(self.error_at(
                        v,
                        format!("'{s}' is not a port range; write it as LOW-HIGH, e.g. 1024-65535"),
                    ));
                };
                let (lo, hi) = (self.port(v, a)?, self.port(v, b)?);
                if lo > hi {
                    return Err(
                        self.error_at(v, format!("port range '{s}' runs backwards ({lo} > {hi})"))
                    );
                }
                Ok(Prim::Port(side, lo, hi))
            }
            "mac" => {
                let (v, s) = self.value(kw, "a MAC address")?;
                Ok(Prim::Mac(side, self.mac(v, s)?))
            }
            _ if side != Side::Either => unreachable_side(self, kw),
            "proto" => {
                let (v, s) = self.value(kw, "a protocol name or number")?;
                let p = match s.parse::<u8>() {
                    Ok(n) => n,
                    Err(_) => proto_number(s).ok_or_else(|| {
                        self.error_at(
                            v,
                            format!(
                                "'{s}' is not a protocol: use tcp, udp, icmp, icmp6, sctp, gre, esp, ah, igmp or a number 0-255"
                            ),
                        )
                    })?,
                };
                Ok(Prim::Proto(p))
            }
            "ip" | "ip4" => Ok(Prim::Family { v6: false }),
            "ip6" => Ok(Prim::Family { v6: true }),
            "vlan" => {
                let (v, s) = self.value(kw, "a VLAN id")?;
                let id = s
                    .parse::<u16>()
                    .ok()
                    .filter(|&n| n <= 4095)
                    .ok_or_else(|| self.error_at(v, format!("'{s}' is not a VLAN id (0-4095)")))?;
                Ok(Prim::Vlan(id))
            }
            "packets" | "bytes" => {
                let what = if kw_text == "packets" {
                    Counter::Packets
                } else {
                    Counter::Bytes
                };
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
            "flags" => {
                let (v, s) = self.value(kw, "TCP flag letters such as S or SA")?;
                let mut bits = 0u8;
                for c in s.chars() {
                    bits |= match c.to_ascii_uppercase() {
                        'C' => 0x80,
                        'E' => 0x40,
                        'U' => 0x20,
                        'A' => 0x10,
                        'P' => 0x08,
                        'R' => 0x04,
                        'S' => 0x02,
                        'F' => 0x01,
                        '.' => 0,
                        _ => {
                            return Err(self.error_at(
                                v,
                                format!("'{c}' in '{s}' is not a TCP flag letter (CEUAPRSF)"),
                            ))
                        }
                    };
                }
                if bits == 0 {
                    return Err(self.error_at(v, format!("'{s}' names no TCP flag (CEUAPRSF)")));
                }
                Ok(Prim::Flags(bits))
            }
            "end" => {
                let (v, s) = self.value(kw, "an end reason")?;
                let e = EndReason::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
                    self.error_at(
                        v,
                        format!(
                            "'{s}' is not an end reason: use idle, active, fin, rst, end or evicted"
                        ),
                    )
                })?;
                Ok(Prim::End(e))
            }
            _ => {
                if let Some(p) = proto_number(&kw_text) {
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
    }

    fn port(&self, v: Token, s: &str) -> Result<u16, FilterError> {
        s.parse::<u16>()
            .map_err(|_| self.error_at(v, format!("'{s}' is not a port number (0-65535)")))
    }

    fn prefix(&self, v: Token, s: &str) -> Result<Prefix, FilterError> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let a = addr.parse::<IpAddr>().map_err(|_| {
            self.error_at(
                v,
                format!("'{addr}' is not an IPv4 or IPv6 network address"),
            )
        })?;
        let max = if a.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l.parse::<u32>().ok().filter(|&n| n <= max).ok_or_else(|| {
                self.error_at(v, format!("'/{l}' is not a prefix length (0-{max})"))
            })?,
        };
        let p = match a {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                let bits = u32::from(a);
                (bits & !mask == 0).then_some(Prefix::V4 { net: bits, mask })
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                let bits = u128::from(a);
                (bits & !mask == 0).then_some(Prefix::V6 { net: bits, mask })
            }
        };
        p.ok_or_else(|| {
            self.error_at(
                v,
                format!("'{s}' has address bits set beyond the /{len} prefix"),
            )
        })
    }

    fn mac(&self, v: Token, s: &str) -> Result<Mac, FilterError> {
        let bad = || {
            self.error_at(
                v,
                format!("'{s}' is not a MAC address (six hex bytes, e.g. 00:1b:21:0a:0b:ff)"),
            )
        };
        let mut mac = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut mac {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(mac)
    }
}

/// `src`/`dst` was followed by a keyword the parser accepted only for them (host, net, port,
/// portrange, mac); any other keyword was refused before getting here.
fn unreachable_side(p: &Parser<'_>, kw: Token) -> Result<Prim, FilterError> {
    Err(p.error_at(kw, format!("'{}' cannot follow src or dst", p.word(kw))))
}

fn proto_number(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" | "icmpv6" => 58,
        "sctp" => 132,
        _ => return None,
    })
}

fn or_into(out: &mut [bool], other: &[bool]) {
    out.iter_mut().zip(other).for_each(|(o, &x)| *o |= x);
}

/// A test of one side of every record of a block (`hits(true, out)`: the sources), applied to
/// `side`: `Either` is both sides, ORed.
fn side_select(side: Side, out: &mut [bool], hits: impl Fn(bool, &mut [bool])) {
    match side {
        Side::Src => hits(true, out),
        Side::Dst => hits(false, out),
        Side::Either => {
            hits(true, out);
            let mut dst = vec![false; out.len()];
            hits(false, &mut dst);
            or_into(out, &dst);
        }
    }
}

impl RecordFilter for Filter {
    fn columns(&self) -> ColumnSet {
        self.expr.as_ref().map_or(ColumnSet::NONE, Expr::columns)
    }

    fn accepts_all(&self) -> bool {
        self.expr.is_none()
    }

    fn matches<R: FlowFields>(&self, r: &R) -> bool {
        Filter::matches(self, r)
    }

    fn select(&self, cols: &ColumnDecoder, keep: &mut [bool]) {
        if let Some(e) = &self.expr {
            e.select(cols, keep);
        }
    }
}

#[cfg(test)]
mod tests;
