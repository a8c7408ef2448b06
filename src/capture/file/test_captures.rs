//! Small capture files built in memory, and what reading them back gives, for the format tests.

use super::pcapng::{PCAPNG_BOM, PCAPNG_EPB, PCAPNG_IDB, PCAPNG_SHB, PCAPNG_SPB};
use super::FileSource;
use crate::capture::{CaptureError, Next, PacketSource};
use std::path::Path;

pub(super) fn w32(v: &mut Vec<u8>, x: u32, be: bool) {
    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
}

pub(super) fn w16(v: &mut Vec<u8>, x: u16, be: bool) {
    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
}

/// Classic pcap file header; `magic` as the writer's native value (a1b2c3d4, a1b23c4d, ...).
pub(super) fn pcap_header(magic: u32, be: bool, link: u32) -> Vec<u8> {
    let mut v = Vec::new();
    w32(&mut v, magic, be);
    w16(&mut v, 2, be);
    w16(&mut v, 4, be);
    w32(&mut v, 0, be);
    w32(&mut v, 0, be);
    w32(&mut v, 65535, be);
    w32(&mut v, link, be);
    v
}

pub(super) fn pcap_record(v: &mut Vec<u8>, be: bool, sec: u32, frac: u32, orig: u32, data: &[u8]) {
    w32(v, sec, be);
    w32(v, frac, be);
    w32(v, data.len() as u32, be);
    w32(v, orig, be);
    v.extend_from_slice(data);
}

/// A pcapng block: body padded to 32 bits, framed by the two lengths.
pub(super) fn block(v: &mut Vec<u8>, be: bool, block_type: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    w32(v, block_type, be);
    w32(v, len, be);
    v.extend_from_slice(body);
    v.resize(v.len() + padded - body.len(), 0);
    w32(v, len, be);
}

pub(super) fn shb(v: &mut Vec<u8>, be: bool) {
    let mut b = Vec::new();
    w32(&mut b, PCAPNG_BOM, be);
    w16(&mut b, 1, be);
    w16(&mut b, 0, be);
    b.extend_from_slice(&[0xff; 8]);
    block(v, be, PCAPNG_SHB, &b);
}

pub(super) fn option(b: &mut Vec<u8>, be: bool, code: u16, value: &[u8]) {
    w16(b, code, be);
    w16(b, value.len() as u16, be);
    b.extend_from_slice(value);
    b.resize(b.len().div_ceil(4) * 4, 0);
}

pub(super) fn idb(
    v: &mut Vec<u8>,
    be: bool,
    link: u16,
    snaplen: u32,
    tsresol: Option<u8>,
    tsoffset: i64,
) {
    let mut b = Vec::new();
    w16(&mut b, link, be);
    w16(&mut b, 0, be);
    w32(&mut b, snaplen, be);
    if let Some(r) = tsresol {
        option(&mut b, be, 9, &[r]);
    }
    if tsoffset != 0 {
        let off = if be {
            tsoffset.to_be_bytes()
        } else {
            tsoffset.to_le_bytes()
        };
        option(&mut b, be, 14, &off);
    }
    if tsresol.is_some() || tsoffset != 0 {
        option(&mut b, be, 0, &[]);
    }
    block(v, be, PCAPNG_IDB, &b);
}

pub(super) fn epb(v: &mut Vec<u8>, be: bool, if_id: u32, ticks: u64, orig: u32, data: &[u8]) {
    let mut b = Vec::new();
    w32(&mut b, if_id, be);
    w32(&mut b, (ticks >> 32) as u32, be);
    w32(&mut b, ticks as u32, be);
    w32(&mut b, data.len() as u32, be);
    w32(&mut b, orig, be);
    b.extend_from_slice(data);
    block(v, be, PCAPNG_EPB, &b);
}

pub(super) fn spb(v: &mut Vec<u8>, be: bool, orig: u32, data: &[u8]) {
    let mut b = Vec::new();
    w32(&mut b, orig, be);
    b.extend_from_slice(data);
    block(v, be, PCAPNG_SPB, &b);
}

pub(super) fn open(bytes: Vec<u8>) -> Result<FileSource, CaptureError> {
    FileSource::from_bytes("test.cap", bytes)
}

/// (ts, wire_len, data, link) of every packet, and the error that ended the file, if any.
pub(super) type Read = (Vec<(i64, u32, Vec<u8>, u16)>, Option<CaptureError>);

pub(super) fn read_all(src: &mut FileSource) -> Read {
    let mut pkts = Vec::new();
    loop {
        match src.next_packet() {
            Ok(Next::Packet(p)) => pkts.push((p.ts, p.wire_len, p.data.to_vec(), p.link.0)),
            Ok(Next::Idle) => panic!("files never idle"),
            Ok(Next::End) => return (pkts, None),
            Err(e) => {
                assert!(
                    matches!(src.next_packet(), Ok(Next::End)),
                    "End after an error"
                );
                return (pkts, Some(e));
            }
        }
    }
}

pub(super) fn read_bytes(bytes: Vec<u8>) -> Read {
    read_all(&mut open(bytes).expect("header must parse"))
}

pub(super) fn corrupt_at(e: &Option<CaptureError>) -> (u64, String) {
    match e {
        Some(CaptureError::Corrupt { offset, reason, .. }) => (*offset, reason.clone()),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

pub(super) fn format_reason(r: Result<FileSource, CaptureError>) -> String {
    match r {
        Err(CaptureError::Format { path, reason }) => {
            assert_eq!(path, Path::new("test.cap"));
            reason
        }
        Err(e) => panic!("expected Format, got {e}"),
        Ok(_) => panic!("expected Format, got a source"),
    }
}
