#!/usr/bin/env bash
# Installs the system packages flowkeep builds and tests against, when they are missing:
# libpcap-dev (the `pcap` crate links libpcap); iproute2 and tcpreplay (the live-capture test
# on a veth pair builds a namespace with `ip` and sends captures through it with tcpreplay);
# nfdump (the IPFIX export test sends records to a real nfcapd and reads them back with nfdump).
# Uses sudo when not root.
set -euo pipefail
missing=()
dpkg-query -W -f='${Status}' libpcap-dev 2>/dev/null | grep -q "ok installed" || missing+=(libpcap-dev)
dpkg-query -W -f='${Status}' pkg-config 2>/dev/null | grep -q "ok installed" || missing+=(pkg-config)
for pkg in iproute2 tcpreplay nfdump; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
