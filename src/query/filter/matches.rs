//! Evaluation on one whole record: the definition that the column-at-a-time evaluation in
//! `select` must agree with.

use super::expr::{has_ports, side_matches, Counter, Expr, Prim};
use crate::record::FlowFields;

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
}

impl Expr {
    pub(super) fn matches<R: FlowFields>(&self, r: &R) -> bool {
        match self {
            Expr::Not(e) => !e.matches(r),
            Expr::And(a, b) => a.matches(r) && b.matches(r),
            Expr::Or(a, b) => a.matches(r) || b.matches(r),
            Expr::Prim(p) => p.matches(r),
        }
    }
}
