#!/usr/bin/env bash
# Installs the system packages flowkeep builds and tests against, when they are missing:
# libpcap-dev (the `pcap` crate links libpcap); iproute2 and tcpreplay (the live-capture test
# on a veth pair builds a namespace with `ip` and sends captures through it with tcpreplay);
# nfdump (the IPFIX export test sends records to a real nfcapd and reads them back with nfdump);
# chromium (tests/disclose.rs renders a disclosure bundle's REPORT.html headless and checks the
# screenshot); tcpdump and netbase (tests/filter_tcpdump.rs holds the filter's tcpdump idioms to
# what tcpdump selects; netbase is /etc/services, where `port https` is looked up); man-db
# (tests/docs.rs renders every generated man page); openssl (tests/timestamp.rs stamps a checkpoint with a local RFC 3161 TSA, and
# tests/disclose.rs checks a bundle's Ed25519 signature with it); systemd and adduser
# (tests/package.rs installs the Debian package, whose postinst adds the flowkeep user, and
# scores its units with systemd-analyze security); cargo-deb, pinned, from crates.io
# (scripts/package.sh builds the package with it); prometheus (tests/grafana.rs checks the alert
# rules with its promtool). Packages are installed without starting their services (a
# policy-rc.d that denies it, for the length of the install): a test tool never runs as a
# daemon here.
# Uses sudo when not root.
set -euo pipefail
missing=()
dpkg-query -W -f='${Status}' libpcap-dev 2>/dev/null | grep -q "ok installed" || missing+=(libpcap-dev)
dpkg-query -W -f='${Status}' pkg-config 2>/dev/null | grep -q "ok installed" || missing+=(pkg-config)
for pkg in iproute2 tcpreplay nfdump chromium openssl tcpdump netbase man-db systemd adduser prometheus; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
# tests/export_parquet.rs reads the exported files with a real engine: DuckDB from PyPI,
# pinned, in its own venv (the test finds it there, or at $FLOWKEEP_PYTHON).
# tests/proof_signatures.rs checks signed checkpoints with an Ed25519 that is not ours:
# pyca/cryptography (OpenSSL's), pinned, in the same venv.
# tests/anonymize.rs holds the anonymised addresses to yacryptopan's Crypto-PAn (it pulls
# pycryptodomex), pinned, in the same venv.
# tests/export_clickhouse.rs loads an export into a real ClickHouse: chDB (the embedded engine,
# with pandas and pyarrow), pinned, in the same venv.
venv=${FLOWKEEP_VENV:-/opt/flowkeep-venv}
duckdb_version=2.0.1
cryptography_version=50.0.2
yacryptopan_version=1.0.2
chdb_version=4.4.0
chdb_core_version=26.9.0
if ! "$venv/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$duckdb_version')" 2>/dev/null \
  || ! "$venv/bin/python" -c "import cryptography, sys; sys.exit(cryptography.__version__ != '$cryptography_version')" 2>/dev/null \
  || ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('yacryptopan') != '$yacryptopan_version')" 2>/dev/null \
  || ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('chdb') != '$chdb_version')" 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
  if ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "ok installed"; then
    echo "installing python3-venv" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "installing duckdb $duckdb_version, cryptography $cryptography_version, yacryptopan $yacryptopan_version and chdb $chdb_version into $venv" >&2
  $sudo /usr/bin/python3 -m venv "$venv"
  $sudo "$venv/bin/pip" install -q --disable-pip-version-check "duckdb==$duckdb_version" \
    "cryptography==$cryptography_version" "yacryptopan==$yacryptopan_version" \
    "chdb==$chdb_version" "chdb-core==$chdb_core_version"
fi
cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
  echo "installing cargo-deb $cargo_deb_version" >&2
  cargo install -q --locked cargo-deb --version "$cargo_deb_version"
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
