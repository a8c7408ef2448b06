//! Evaluation on the columns of a decoded block, for the store's scan: which columns a filter
//! needs loaded, and which records of a block it keeps, without building the records.

use super::expr::{has_ports, side_matches, Counter, Expr, Prim, Side};
use super::Filter;
use crate::record::FlowFields;
use crate::store::{ColumnDecoder, F_SRC_V6};
use crate::store::{ColumnSet, RecordFilter};

impl Prim {
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
