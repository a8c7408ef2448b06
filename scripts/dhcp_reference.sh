#!/bin/sh
# Writes fixtures/pcaps/reference/<file>.leases.tsv for every fixture with DHCP or DHCPv6:
# what tshark (Wireshark's dissectors, independent of flowkeep's parser) reads in each DHCP
# message. tests/dhcp.rs derives its expected lease observations and who-had answers from
# these files. Re-run after adding a DHCP fixture; needs tshark.
set -eu
cd "$(dirname "$0")/../fixtures/pcaps"
for f in *.pcap *.pcapng; do
    if ! tshark -r "$f" -Y 'dhcp or dhcpv6' -T fields -e frame.number 2>/dev/null | grep -q .; then
        continue
    fi
    out="reference/$f.leases.tsv"
    {
        printf '# tshark %s: tshark -r %s -Y "dhcp or dhcpv6" -T fields -E occurrence=a (see scripts/dhcp_reference.sh)\n' \
            "$(tshark --version 2>/dev/null | head -1 | awk '{print $3}')" "$f"
        printf 'frame\ttime_epoch\tcap_len\tlen\tmalformed\tdhcp_type\tchaddr\tyiaddr\tciaddr\trequested\tlease\thostname\tserver_id\txid\tv6_type\tiaaddr\tvalid_lifetime\tclient_domain\teth_src\teth_dst\tip_src\tipv6_src\tv6_xid\tsport\tdport\n'
        tshark -r "$f" -Y 'dhcp or dhcpv6' -T fields -E occurrence=a \
            -e frame.number -e frame.time_epoch -e frame.cap_len -e frame.len -e _ws.malformed \
            -e dhcp.option.dhcp -e dhcp.hw.mac_addr -e dhcp.ip.your -e dhcp.ip.client \
            -e dhcp.option.requested_ip_address -e dhcp.option.ip_address_lease_time \
            -e dhcp.option.hostname -e dhcp.option.dhcp_server_id -e dhcp.id \
            -e dhcpv6.msgtype -e dhcpv6.iaaddr.ip -e dhcpv6.iaaddr.valid_lifetime \
            -e dhcpv6.client_domain -e eth.src -e eth.dst -e ip.src -e ipv6.src -e dhcpv6.xid \
            -e udp.srcport -e udp.dstport \
            2>/dev/null
    } >"$out"
    echo "$out: $(($(wc -l <"$out") - 2)) messages"
done
