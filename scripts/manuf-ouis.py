#!/usr/bin/env python3
"""Writes src/decode/oui24.bin: the 24-bit OUIs Wireshark's `manuf` file names, 3 bytes each, sorted.

Why: tshark 4.0 decides whether an MPLS payload starting with nibble 0 is an Ethernet pseudowire
without control word by asking whether the first 3 bytes of both would-be MAC addresses are vendor
OUIs it knows (packet-pw-eth.c, looks_like_plain_eth via get_manuf_name_if_known). Only lines with
a bare 3-octet prefix count there: /28 and /36 blocks and whole addresses go to other tables and are
not consulted (checked against tshark 4.0.17). The file holds numbers only, no vendor names: which
prefixes the IEEE registry has assigned.

usage: scripts/manuf-ouis.py [MANUF] > src/decode/oui24.bin
MANUF defaults to /usr/share/wireshark/manuf (Debian 12 package wireshark-common 4.0.17, the tshark
that made fixtures/pcaps/reference).
"""
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wireshark/manuf"
prefix = re.compile(r"^([0-9A-Fa-f]{2})[:.-]([0-9A-Fa-f]{2})[:.-]([0-9A-Fa-f]{2})$")
ouis = set()
with open(path, encoding="utf-8", errors="replace") as f:
    for line in f:
        if line.startswith("#"):
            continue
        field = line.split("\t", 1)[0].split(" ", 1)[0].strip()
        m = prefix.match(field)
        if m:
            ouis.add(bytes(int(g, 16) for g in m.groups()))
sys.stdout.buffer.write(b"".join(sorted(ouis)))
print(f"{len(ouis)} OUIs", file=sys.stderr)
