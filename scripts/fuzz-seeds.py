#!/usr/bin/env python3
"""Cuts fuzz seeds out of files flowkeep reads or writes (called by scripts/fuzz-seeds.sh).

  fuzz-seeds.py frames OUT_FRAMES OUT_DHCP CAPTURE...  frames (link-type byte + frame) and
                                                       DHCP payloads (v4/v6 byte + payload)
  fuzz-seeds.py blocks OUT_BLOCKS OUT_COLUMNS SEGMENT...  every block of each segment, and
                                                       its column data uncompressed

The layouts are those of docs/FORMAT.md and src/fuzz_api.rs; any file it cannot read is skipped
(fixtures include deliberately broken captures).
"""
import hashlib
import os
import struct
import subprocess
import sys

# src/fuzz_api.rs LINK_TYPES, in order: the seed's first byte is the index.
LINK_TYPES = [0, 1, 9, 12, 14, 101, 108, 113, 228, 229, 276, 147]
FRAMES_PER_FILE = 12


def save(out_dir, data):
    os.makedirs(out_dir, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)


def pcap_frames(b):
    """(link type, frame) of a classic pcap or pcapng file."""
    magic = b[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        yield from pcapng_frames(b)
        return
    else:
        return
    link = struct.unpack(e + "I", b[20:24])[0] & 0xFFFF
    off = 24
    while off + 16 <= len(b):
        incl = struct.unpack(e + "I", b[off + 8 : off + 12])[0]
        frame = b[off + 16 : off + 16 + incl]
        if len(frame) != incl:
            return
        yield link, frame
        off += 16 + incl


def pcapng_frames(b):
    e, off, links = "<", 0, []
    while off + 12 <= len(b):
        btype = struct.unpack(e + "I", b[off : off + 4])[0]
        if btype == 0x0A0D0D0A:
            e = "<" if b[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack(e + "I", b[off + 4 : off + 8])[0]
        if blen < 12 or off + blen > len(b):
            return
        body = b[off + 8 : off + blen - 4]
        if btype == 1 and len(body) >= 2:
            links.append(struct.unpack(e + "H", body[:2])[0])
        elif btype == 6 and len(body) >= 20:
            iface, _, _, caplen = struct.unpack(e + "IIII", body[:16])
            if iface < len(links):
                yield links[iface], body[20 : 20 + caplen]
        off += blen


def udp_payload(link, f):
    """The UDP payload and ports of an Ethernet/SLL/raw IPv4 or IPv6 frame, else None."""
    if link == 1:
        off, et = 14, f[12:14]
        while et == b"\x81\x00" and len(f) >= off + 4:
            et, off = f[off + 2 : off + 4], off + 4
    elif link == 113:
        off, et = 16, f[14:16]
    elif link in (101, 12, 14, 228, 229):
        off, et = 0, b"\x08\x00" if f[:1] and f[0] >> 4 == 4 else b"\x86\xdd"
    else:
        return None
    if et == b"\x08\x00" and len(f) >= off + 20 and f[off + 9] == 17:
        u = off + (f[off] & 15) * 4
    elif et == b"\x86\xdd" and len(f) >= off + 40 and f[off + 6] == 17:
        u = off + 40
    else:
        return None
    if len(f) < u + 8:
        return None
    sport, dport = struct.unpack(">HH", f[u : u + 4])
    return sport, dport, f[u + 8 :]


def frames(out_frames, out_dhcp, paths):
    for path in paths:
        with open(path, "rb") as fh:
            b = fh.read()
        kept = 0
        for link, f in pcap_frames(b):
            if link in LINK_TYPES and kept < FRAMES_PER_FILE:
                save(out_frames, bytes([LINK_TYPES.index(link)]) + f)
                kept += 1
            u = udp_payload(link, f)
            if u is None:
                continue
            sport, dport, payload = u
            v4 = {67, 68}
            v6 = {546, 547}
            if sport in v4 and dport in v4:
                # fuzz_api::dhcp: bit 0 = DHCPv6, bit 1 = sent by the server.
                save(out_dhcp, bytes([2 if sport == 67 else 0]) + payload)
            elif sport in v6 and dport in v6:
                save(out_dhcp, bytes([3 if sport == 547 else 1]) + payload)


def zstd_decompress(data):
    return subprocess.run(
        ["zstd", "-d", "-c", "-q"], input=data, capture_output=True, check=True
    ).stdout


# docs/FORMAT.md: 19 columns, codec 4's directory is (stored, len) u32 pairs per column.
COLUMNS = 19


def column_data(block):
    """fuzz_api::columns input for a record block: layout byte, u16 count, column data."""
    payload_len, records, raw_len, codec = struct.unpack("<IIIB", block[:13])
    payload = block[20:]
    if codec == 4:
        directory, at, cols = payload[: COLUMNS * 8], COLUMNS * 8, []
        for i in range(COLUMNS):
            stored, length = struct.unpack("<II", directory[i * 8 : i * 8 + 8])
            raw = payload[at : at + stored]
            at += stored
            cols.append(raw if stored == length else zstd_decompress(raw))
        data = b"".join(struct.pack("<I", len(c)) + c for c in cols)
        layout = 2
    elif codec in (1, 2):
        data, layout = zstd_decompress(payload), codec - 1
    else:
        return None
    if records > 0xFFFF:
        return None
    return bytes([layout]) + struct.pack("<H", records) + data


def blocks(out_blocks, out_columns, paths):
    for path in paths:
        with open(path, "rb") as fh:
            b = fh.read()
        footer_offset = struct.unpack("<Q", b[-24:-16])[0]
        off = 64
        while off + 20 <= footer_offset:
            payload_len = struct.unpack("<I", b[off : off + 4])[0]
            block = b[off : off + 20 + payload_len]
            save(out_blocks, block)
            try:
                cols = column_data(block)
            except subprocess.CalledProcessError:
                cols = None  # a lease block: not column data of records
            if cols is not None:
                save(out_columns, cols)
            off += 20 + payload_len


if __name__ == "__main__":
    cmd, a, b_, *rest = sys.argv[1:]
    {"frames": frames, "blocks": blocks}[cmd](a, b_, rest)
