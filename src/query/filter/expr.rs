//! The parsed form of a filter expression, and what it says about addresses without looking at
//! any record.

use crate::record::{EndReason, Mac};
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Expr {
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Prim(Prim),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Either,
    Src,
    Dst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Prefix {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Prefix {
    // Inline: called per record and per distinct address from the evaluators, which sit in
    // other modules (and so, possibly, other codegen units).
    #[inline]
    pub(super) fn contains(&self, a: &IpAddr) -> bool {
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
pub(super) enum Cmp {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Cmp {
    #[inline]
    pub(super) fn holds(self, a: u64, b: u64) -> bool {
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
pub(super) enum Counter {
    Packets,
    Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Prim {
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
#[inline]
pub(super) fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

pub(super) fn side_matches<T>(side: Side, src: T, dst: T, f: impl Fn(T) -> bool) -> bool {
    match side {
        Side::Either => f(src) || f(dst),
        Side::Src => f(src),
        Side::Dst => f(dst),
    }
}

impl Expr {
    pub(super) fn required_addresses(&self) -> Option<Vec<IpAddr>> {
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
