//! Hand-made frames, and decoding them, for the tests of every link type and header path
//! `decode` and `Dispatcher` take.

use super::{decode, DecodeError, PacketMeta};
use crate::capture::{LinkType, Packet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(super) const A4: [u8; 4] = [10, 0, 0, 1];
pub(super) const B4: [u8; 4] = [192, 168, 1, 2];
pub(super) const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub(super) const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
pub(super) const SMAC: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];
pub(super) const DMAC: [u8; 6] = [2, 0, 0, 0, 0, 0xbb];

pub(super) fn ipv4_full(
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    flags_off: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&flags_off.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

pub(super) fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    ipv4_full(proto, src, dst, 0x1234, 0x4000, payload)
}

pub(super) fn ipv6(nh: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[nh, 64]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(payload);
    v
}

pub(super) fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut v = sport.to_be_bytes().to_vec();
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&[0, 8, 0, 0]);
    v
}

pub(super) fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut v = sport.to_be_bytes().to_vec();
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v
}

pub(super) fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = DMAC.to_vec();
    v.extend_from_slice(&SMAC);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub(super) fn pkt(link: LinkType, data: &[u8]) -> Packet<'_> {
    Packet {
        ts: 42,
        wire_len: data.len() as u32,
        link,
        data,
    }
}

pub(super) fn dec(link: LinkType, data: &[u8]) -> Result<PacketMeta, DecodeError> {
    decode(&pkt(link, data))
}

pub(super) fn ok(link: LinkType, data: &[u8]) -> PacketMeta {
    match dec(link, data) {
        Ok(m) => m,
        Err(e) => panic!("decode failed: {e:?}"),
    }
}

pub(super) fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

pub(super) fn v6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

pub(super) fn udp4() -> Vec<u8> {
    ipv4(17, A4, B4, &udp(1000, 53))
}

pub(super) fn udp6() -> Vec<u8> {
    ipv6(17, A6, B6, &udp(1000, 53))
}

pub(super) fn assert_udp4(m: &PacketMeta) {
    assert_eq!((m.src, m.dst), (v4(A4), v4(B4)));
    assert_eq!((m.proto, m.sport, m.dport), (17, 1000, 53));
    assert_eq!(m.ip_bytes, 28);
}

pub(super) fn assert_udp6(m: &PacketMeta) {
    assert_eq!((m.src, m.dst), (v6(A6), v6(B6)));
    assert_eq!((m.proto, m.sport, m.dport), (17, 1000, 53));
    assert_eq!(m.ip_bytes, 48);
}

pub(super) fn frag6(nh: u8, off_units: u16, more: bool, id: u32) -> Vec<u8> {
    let fo = (off_units << 3) | u16::from(more);
    cat(&[&[nh, 0], &fo.to_be_bytes(), &id.to_be_bytes()])
}

pub(super) fn sll(arphrd: u16, halen: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0];
    v.extend_from_slice(&arphrd.to_be_bytes());
    v.extend_from_slice(&halen.to_be_bytes());
    v.extend_from_slice(&SMAC);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&proto.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub(super) fn sll2(arphrd: u16, halen: u8, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = proto.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 2]);
    v.extend_from_slice(&arphrd.to_be_bytes());
    v.extend_from_slice(&[4, halen]);
    v.extend_from_slice(&SMAC);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}
