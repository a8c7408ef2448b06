//! `query --leases`: the lease holders of each JSON line's addresses, added to the line.

use super::leases::{lease_at, LeaseIndex};
use std::io::{self, Write};
use std::net::IpAddr;

/// Wraps the JSON-lines output of `query`: adds `src_lease` and `dst_lease` (who held `src`
/// and `dst` at the record's `first`, see [`lease_at`]) to every line.
pub struct LeaseAnnotator<W: Write> {
    index: LeaseIndex,
    out: W,
    line: Vec<u8>,
}

impl<W: Write> LeaseAnnotator<W> {
    pub fn new(index: LeaseIndex, out: W) -> LeaseAnnotator<W> {
        LeaseAnnotator {
            index,
            out,
            line: Vec::new(),
        }
    }

    /// Appends the two fields before the line's closing brace, so the record's own fields
    /// keep their order.
    fn annotate(&mut self) -> io::Result<()> {
        #[derive(serde::Deserialize)]
        struct Sides {
            first: String,
            src: IpAddr,
            dst: IpAddr,
        }
        let sides: Sides = serde_json::from_slice(&self.line).map_err(io::Error::other)?;
        let body = self
            .line
            .strip_suffix(b"}")
            .ok_or_else(|| io::Error::other("a JSON line that is not an object"))?;
        let first = crate::time::parse_time(&sides.first).map_err(io::Error::other)?;
        self.out.write_all(body)?;
        for (field, addr) in [("src_lease", sides.src), ("dst_lease", sides.dst)] {
            write!(self.out, ",\"{field}\":")?;
            serde_json::to_writer(&mut self.out, &lease_at(&self.index, addr, first))?;
        }
        self.out.write_all(b"}\n")
    }
}

impl<W: Write> Write for LeaseAnnotator<W> {
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
        let mut a = LeaseAnnotator::new(idx, Vec::new());
        let line = format!(
            "{{\"first\":\"{}\",\"src\":\"10.0.0.5\",\"dst\":\"192.0.2.1\"}}\n",
            format_rfc3339(110 * S)
        );
        a.write_all(line.as_bytes()).unwrap();
        let out: Value = serde_json::from_slice(&a.out).unwrap();
        assert_eq!(out["src_lease"]["mac"], "02:00:00:00:00:01");
        assert_eq!(out["dst_lease"], Value::Null);
    }
}
