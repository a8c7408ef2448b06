#!/usr/bin/env bash
# Regenerates the committed fuzz seed corpus, fuzz/seeds/<target>/, from the fixtures: captures
# and their frames and DHCP payloads from fixtures/pcaps; segments, blocks, column data, an
# audit log, a holds file, signed checkpoints and a disclosure bundle made by running the
# release binary on a few fixtures; Tor exit lists from fixtures/tor; filter expressions from
# this script. Seeds are named by
# their SHA-1, so a rerun adds only what changed. docs/FUZZING.md says how they are used.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=fuzz/seeds
pcaps=fixtures/pcaps
cargo build --release --locked --quiet
fk=target/release/flowkeep
rm -rf "$seeds"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Captures: every fixture under 64 KiB (the fuzzer mutates the small ones far faster; the
# frames of the big ones come in below).
mkdir -p "$seeds/capture_file"
find "$pcaps" -maxdepth 1 -name '*.pcap*' -size -64k | while read -r f; do
  cp "$f" "$seeds/capture_file/$(sha1sum "$f" | cut -c1-40)"
done
python3 scripts/fuzz-seeds.py frames "$seeds/frame" "$seeds/dhcp" "$pcaps"/*.pcap*

# A store with flows and leases in several small segments, holds, accesses and checkpoints.
store=$work/store
"$fk" key generate --name flowkeep.example/fuzz --out "$work/key" >/dev/null
for f in tcpdump__dhcp-rfc3004.pcap tcpdump__dhcpv6-ia-na.pcap nDPI__tcp_scan.pcapng \
  suricata-verify__eve-flow-vlan-02_input.pcap tcpdump__icmpv6.pcap; do
  "$fk" replay -q --store "$store" --partition 1m --signing-key "$work/key" "$pcaps/$f" >/dev/null
done
"$fk" hold add --store "$store" --name case-1 --from 2000-01-01 --until 2030-01-01 \
  --note "whole segments" --now 2026-01-01T00:00:00Z --signing-key "$work/key" >/dev/null
"$fk" hold add --store "$store" --name case-2:dns --from 2000-01-01 --until open \
  --filter 'udp and port 53' --expires never --now 2026-01-02T00:00:00Z >/dev/null
"$fk" query --store "$store" 'tcp and not port 80' >/dev/null
"$fk" hold release --store "$store" case-1 >/dev/null
"$fk" disclose --store "$store" --case fuzz --since 2000-01-01 --until 2030-01-01 \
  --out "$work/bundle" --signing-key "$work/key" 'ip or ip6' >/dev/null
"$fk" checkpoint --store "$store" --key "$work/key" >"$work/checkpoint.txt"

mkdir -p "$seeds/segment" "$seeds/audit_log" "$seeds/holds" "$seeds/note" "$seeds/bundle"
find "$store" -name '*.fks' -size -64k | while read -r f; do
  cp "$f" "$seeds/segment/$(sha1sum "$f" | cut -c1-40)"
done
python3 scripts/fuzz-seeds.py blocks "$seeds/block" "$seeds/columns" "$store"/*/*.fks
seed() { # DIR FILE: FILE as a seed of DIR, named by its SHA-1
  cp "$2" "$1/$(sha1sum "$2" | cut -c1-40)"
}
seed "$seeds/audit_log" "$store/audit.log"
seed "$seeds/holds" "$store/holds.json"
# fuzz_api::note: the verifier key's line, then the notes.
cat "$work/key.pub" "$store/checkpoints" >"$work/notes"
seed "$seeds/note" "$work/notes"
cat "$work/key.pub" "$work/checkpoint.txt" >"$work/note"
seed "$seeds/note" "$work/note"
# fuzz_api::bundle: the files in BUNDLE_FILES order, each ended by the separator byte 0x1c.
for name in manifest.json SHA256SUMS checkpoint.txt audit.jsonl coverage.tsv \
  record-segments.tsv records.csv records.jsonl leases.jsonl policy.txt manifest.sig \
  signing-key.pub REPORT.html; do
  if [ -f "$work/bundle/$name" ]; then cat "$work/bundle/$name"; fi
  printf '\034'
done >"$work/bundle.seed"
seed "$seeds/bundle" "$work/bundle.seed"
# fuzz_api::tor_list: the hand-made exit lists of the tests.
mkdir -p "$seeds/tor_list"
for f in fixtures/tor/*.txt; do seed "$seeds/tor_list" "$f"; done

# Filters: every primitive and combinator the grammar has, and the edges of each.
mkdir -p "$seeds/filter"
while IFS= read -r expr; do
  printf '%s' "$expr" >"$work/expr"
  seed "$seeds/filter" "$work/expr"
done <<'EOF'
host 198.51.100.23 and not port 53
src net 10.0.0.0/8 && bytes > 1000000
dst host 2001:db8::1 or src net 2001:db8::/32
portrange 1000-2000 and proto 17
tcp or udp or icmp or icmp6 or sctp or gre or esp or ah or igmp
ip and not ip6
vlan 0 or vlan 100
src mac 00:1b:21:01:02:03 or ether dst 00:1b:21:04:05:06
packets >= 10 and packets <= 20 or bytes = 15000 or bytes == 1 or packets < 2
flags SA and flags CEUAPRSF and flags .S.
end idle or end active or end fin or end rst or end end or end evicted
!(host 10.0.0.1 || (port 443 && not (proto 6)))
((((((((tcp))))))))
not not not not udp
192.0.2.1
src 10.0.0.1
EOF
du -sh "$seeds"
