//! `query --leases` and `query --tor`: fields about each JSON line's addresses, added to the
//! line.

use super::leases::{lease_at, LeaseIndex};
use crate::time::Nanos;
use std::io::{self, Write};
use std::net::IpAddr;

/// What an [`Annotator`] reads of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    pub first: Nanos,
    pub last: Nanos,
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// Fields added to a record's JSON line: each written as `,"name":value`.
pub trait Annotation {
    fn write_fields(&self, sides: &Sides, out: &mut dyn Write) -> io::Result<()>;
}

/// `src_lease` and `dst_lease`: who held `src` and `dst` at the record's `first` (see
/// [`lease_at`]).
impl Annotation for LeaseIndex {
    fn write_fields(&self, sides: &Sides, out: &mut dyn Write) -> io::Result<()> {
        for (field, addr) in [("src_lease", sides.src), ("dst_lease", sides.dst)] {
            write!(out, ",\"{field}\":")?;
            serde_json::to_writer(&mut *out, &lease_at(self, addr, sides.first))?;
        }
        Ok(())
    }
}

/// Wraps the JSON-lines output of `query`: adds each annotation's fields to every line,
/// before its closing brace, so the record's own fields keep their order.
pub struct Annotator<W: Write> {
    annotations: Vec<Box<dyn Annotation>>,
    out: W,
    line: Vec<u8>,
}

impl<W: Write> Annotator<W> {
    pub fn new(annotations: Vec<Box<dyn Annotation>>, out: W) -> Annotator<W> {
        Annotator {
            annotations,
            out,
            line: Vec::new(),
        }
    }

    fn annotate(&mut self) -> io::Result<()> {
        #[derive(serde::Deserialize)]
        struct Line {
            first: String,
            last: String,
            src: IpAddr,
            dst: IpAddr,
        }
        let l: Line = serde_json::from_slice(&self.line).map_err(io::Error::other)?;
        let body = self
            .line
            .strip_suffix(b"}")
            .ok_or_else(|| io::Error::other("a JSON line that is not an object"))?;
        let time = |s: &str| crate::time::parse_time(s).map_err(io::Error::other);
        let sides = Sides {
            first: time(&l.first)?,
            last: time(&l.last)?,
            src: l.src,
            dst: l.dst,
        };
        self.out.write_all(body)?;
        for a in &self.annotations {
            a.write_fields(&sides, &mut self.out)?;
        }
        self.out.write_all(b"}\n")
    }
}

impl<W: Write> Write for Annotator<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            if b == b'\n' {
                self.annotate()?;
                self.line.clear();
            } else {
                self.line.push(b);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::attribution::fixtures::{obs, M1, S};
    use crate::record::dhcp::v4;
    use crate::time::format_rfc3339;
    use serde_json::Value;

    #[test]
    fn annotator_adds_both_sides() {
        let idx = LeaseIndex::new([obs(100 * S, v4::ACK, M1, Some(60))]);
        let mut a = Annotator::new(vec![Box::new(idx)], Vec::new());
        let line = format!(
            "{{\"first\":\"{}\",\"last\":\"{}\",\"src\":\"10.0.0.5\",\"dst\":\"192.0.2.1\"}}\n",
            format_rfc3339(110 * S),
            format_rfc3339(111 * S)
        );
        a.write_all(line.as_bytes()).unwrap();
        let out: Value = serde_json::from_slice(&a.out).unwrap();
        assert_eq!(out["src_lease"]["mac"], "02:00:00:00:00:01");
        assert_eq!(out["dst_lease"], Value::Null);
    }
}
