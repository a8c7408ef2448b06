use super::*;
use crate::record::tcp_flags::{ACK, FIN, RST, SYN};
use crate::record::EndReason;
use crate::record::FlowRecord;

fn rec() -> FlowRecord {
    FlowRecord {
        first: 1_000,
        last: 2_000,
        proto: 6,
        src: "10.1.2.3".parse().unwrap(),
        sport: 40000,
        dst: "198.51.100.23".parse().unwrap(),
        dport: 443,
        vlan: 100,
        inner_vlan: 200,
        interface: 0,
        src_mac: Some([0, 0x1b, 0x21, 0x0a, 0x0b, 0xff]),
        dst_mac: Some([2, 0, 0, 0, 0, 1]),
        packets: 10,
        bytes: 1_000,
        rev_packets: 5,
        rev_bytes: 500,
        tcp_flags: SYN | ACK,
        rev_tcp_flags: SYN | ACK | FIN,
        end: EndReason::Fin,
    }
}

fn v6() -> FlowRecord {
    FlowRecord {
        proto: 58,
        src: "2001:db8::1".parse().unwrap(),
        dst: "2001:db8:1::2".parse().unwrap(),
        sport: 0,
        dport: 128 << 8,
        vlan: 0,
        inner_vlan: 0,
        src_mac: None,
        dst_mac: None,
        tcp_flags: 0,
        rev_tcp_flags: 0,
        end: EndReason::Idle,
        ..rec()
    }
}

fn m(expr: &str, r: &FlowRecord) -> bool {
    Filter::parse(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .matches(r)
}

fn err(expr: &str) -> FilterError {
    match Filter::parse(expr) {
        Ok(f) => panic!("{expr} parsed as {f:?}"),
        Err(e) => e,
    }
}

#[test]
fn hosts_by_side() {
    let r = rec();
    assert!(m("host 10.1.2.3", &r));
    assert!(m("host 198.51.100.23", &r));
    assert!(!m("host 10.1.2.4", &r));
    assert!(m("src host 10.1.2.3", &r));
    assert!(!m("dst host 10.1.2.3", &r));
    assert!(m("dst host 198.51.100.23", &r));
    assert!(!m("src host 198.51.100.23", &r));
    assert!(m("src 10.1.2.3", &r), "tcpdump's implied host");
    assert!(m("198.51.100.23", &r), "a bare address is a host");
    assert!(m("host 2001:db8::1", &v6()));
    assert!(!m("host 10.1.2.3", &v6()));
    // An IPv4 address and its IPv4-mapped IPv6 twin are different hosts.
    assert!(!m("host ::ffff:10.1.2.3", &r));
}

#[test]
fn nets_v4_and_v6() {
    let r = rec();
    assert!(m("net 10.0.0.0/8", &r));
    assert!(m("net 10.1.2.0/24", &r));
    assert!(!m("net 10.1.3.0/24", &r));
    assert!(m("src net 10.0.0.0/8", &r));
    assert!(!m("dst net 10.0.0.0/8", &r));
    assert!(m("dst net 198.51.100.0/24", &r));
    assert!(m("net 0.0.0.0/0", &r));
    assert!(
        !m("net ::/0", &r),
        "an IPv6 prefix never holds an IPv4 address"
    );
    assert!(m("net 10.1.2.3", &r), "no length: the whole address");
    assert!(m("net 10.1.2.3/32", &r));
    let r6 = v6();
    assert!(m("net 2001:db8::/32", &r6));
    assert!(m("dst net 2001:db8:1::/48", &r6));
    assert!(!m("src net 2001:db8:1::/48", &r6));
    assert!(m("net ::/0", &r6));
    assert!(!m("net 0.0.0.0/0", &r6));
}

#[test]
fn ports_and_ranges() {
    let r = rec();
    assert!(m("port 443", &r));
    assert!(m("port 40000", &r));
    assert!(!m("port 80", &r));
    assert!(m("dst port 443", &r));
    assert!(!m("src port 443", &r));
    assert!(m("src port 40000", &r));
    assert!(m("portrange 400-500", &r));
    assert!(m("portrange 443-443", &r));
    assert!(!m("portrange 444-39999", &r));
    assert!(m("src portrange 32768-65535", &r));
    assert!(!m("dst portrange 32768-65535", &r));
    // ICMP's type/code is not a port: echo request (8 << 8 = 2048) does not match port 2048.
    let icmp = FlowRecord {
        proto: 1,
        sport: 0,
        dport: 8 << 8,
        ..rec()
    };
    assert!(!m("port 2048", &icmp));
    assert!(!m("port 0", &icmp));
    for proto in [17, 132, 136, 33] {
        assert!(m("port 443", &FlowRecord { proto, ..rec() }), "{proto}");
    }
}

#[test]
fn protocols() {
    let r = rec();
    assert!(m("proto tcp", &r));
    assert!(m("proto 6", &r));
    assert!(m("tcp", &r));
    assert!(m("TCP", &r));
    assert!(!m("udp", &r));
    assert!(!m("proto 17", &r));
    assert!(m("proto icmp6", &v6()));
    assert!(m("icmp6", &v6()));
    assert!(m("proto icmpv6", &v6()));
    assert!(!m("icmp", &v6()));
    assert!(m("proto 58", &v6()));
    for (name, n) in [
        ("icmp", 1),
        ("udp", 17),
        ("sctp", 132),
        ("gre", 47),
        ("esp", 50),
        ("ah", 51),
        ("igmp", 2),
    ] {
        let r = FlowRecord { proto: n, ..rec() };
        assert!(m(&format!("proto {name}"), &r), "{name}");
        assert!(m(name, &r), "{name}");
        assert!(m(&format!("proto {n}"), &r), "{name}");
    }
    assert!(m("ip", &r) && !m("ip6", &r));
    assert!(m("ip6", &v6()) && !m("ip", &v6()));
}

#[test]
fn vlans() {
    let r = rec();
    assert!(m("vlan 100", &r), "outer");
    assert!(m("vlan 200", &r), "inner");
    assert!(!m("vlan 300", &r));
    assert!(!m("vlan 0", &r));
    assert!(m("vlan 0", &v6()), "vlan 0 = untagged");
    let outer_only = FlowRecord {
        inner_vlan: 0,
        ..rec()
    };
    assert!(!m("vlan 0", &outer_only), "no inner tag is not 'untagged'");
}

#[test]
fn macs() {
    let r = rec();
    assert!(m("mac 00:1b:21:0a:0b:ff", &r));
    assert!(m("mac 00:1B:21:0A:0B:FF", &r));
    assert!(m("mac 0:1b:21:a:b:ff", &r));
    assert!(m("mac 00-1b-21-0a-0b-ff", &r));
    assert!(m("src mac 00:1b:21:0a:0b:ff", &r));
    assert!(!m("dst mac 00:1b:21:0a:0b:ff", &r));
    assert!(m("dst mac 02:00:00:00:00:01", &r));
    assert!(m("ether host 02:00:00:00:00:01", &r));
    assert!(m("ether dst 02:00:00:00:00:01", &r));
    assert!(!m("ether src 02:00:00:00:00:01", &r));
    assert!(!m("mac 02:00:00:00:00:02", &r));
    assert!(
        !m("mac 00:00:00:00:00:00", &v6()),
        "no MAC stored matches no MAC"
    );
}

#[test]
fn counters_sum_both_directions() {
    let r = rec(); // 15 packets, 1500 bytes in all
    assert!(m("packets > 14", &r));
    assert!(!m("packets > 15", &r));
    assert!(m("packets >= 15", &r));
    assert!(m("packets = 15", &r));
    assert!(m("packets == 15", &r));
    assert!(m("packets 15", &r), "no operator: equal, as nfdump");
    assert!(m("packets < 16", &r));
    assert!(!m("packets < 15", &r));
    assert!(m("packets <= 15", &r));
    assert!(m("bytes > 1499", &r));
    assert!(!m("bytes > 1500", &r));
    assert!(m("bytes>1000", &r), "operators need no spaces");
    assert!(m("bytes=1500", &r));
    let huge = FlowRecord {
        bytes: u64::MAX,
        rev_bytes: 10,
        ..rec()
    };
    assert!(
        m("bytes >= 18446744073709551615", &huge),
        "saturates, no overflow"
    );
}

#[test]
fn flags_any_listed_in_either_direction() {
    let r = rec(); // S A forward, S A F back
    assert!(m("flags S", &r));
    assert!(m("flags F", &r), "seen only in the reverse direction");
    assert!(!m("flags R", &r));
    assert!(m("flags RF", &r), "any of the letters");
    assert!(m("flags ...A..S.", &r), "dots ignored");
    assert!(m("flags s", &r));
    assert!(!m("flags CEUP", &r));
    let rst = FlowRecord {
        tcp_flags: RST,
        rev_tcp_flags: 0,
        ..rec()
    };
    assert!(m("flags R and not flags SAF", &rst));
    assert!(!m("flags S", &v6()));
}

#[test]
fn end_reasons() {
    assert!(m("end fin", &rec()));
    assert!(!m("end rst", &rec()));
    assert!(m("end idle", &v6()));
    for e in EndReason::ALL {
        let r = FlowRecord { end: e, ..rec() };
        assert!(m(&format!("end {e}"), &r));
        assert!(m(&format!("end {}", e.as_str().to_uppercase()), &r));
    }
}

#[test]
fn combinators() {
    let r = rec();
    assert!(m("host 10.1.2.3 and port 443", &r));
    assert!(m("host 10.1.2.3 && port 443", &r));
    assert!(!m("host 10.1.2.3 and port 80", &r));
    assert!(m("host 1.1.1.1 or port 443", &r));
    assert!(m("host 1.1.1.1 || port 443", &r));
    assert!(!m("host 1.1.1.1 or port 80", &r));
    assert!(m("not port 80", &r));
    assert!(m("! port 80", &r));
    assert!(m("!port 80", &r));
    assert!(!m("not not port 80", &r));
    assert!(m("(port 80)or(port 443)", &r));
    assert!(m("not (port 80 or port 22)", &r));
    assert!(!m("not (port 80 or port 443)", &r));
    assert!(m("", &r), "empty matches all");
    assert!(m("   ", &r));
}

#[test]
fn tcpdump_precedence_and_or_equal_left_to_right() {
    let r = rec();
    // (false or true) and false = false; with and binding tighter it would be true.
    assert!(!m("port 80 or port 443 and port 22", &r));
    // (true or X) and true.
    assert!(m("port 443 or port 80 and tcp", &r));
    // (true and false) or true = true.
    assert!(m("port 443 and port 80 or tcp", &r));
    // not binds tighter than and/or: (not port 80) and port 443.
    assert!(m("not port 80 and port 443", &r));
    // not applies to the primitive only: (not port 443) or port 443 = true.
    assert!(m("not port 443 or port 443", &r));
    // Parentheses override.
    assert!(m("port 80 or (port 443 and tcp)", &r));
    assert!(!m("port 80 or (port 443 and udp)", &r));
}

#[test]
fn required_addresses_for_block_skipping() {
    let req = |e: &str| Filter::parse(e).unwrap().required_addresses();
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let b: IpAddr = "10.0.0.2".parse().unwrap();
    assert_eq!(req(""), None);
    assert_eq!(req("host 10.0.0.1"), Some(vec![a]));
    assert_eq!(req("src host 10.0.0.1"), Some(vec![a]));
    assert_eq!(req("10.0.0.1 and port 53"), Some(vec![a]));
    assert_eq!(req("port 53 and dst 10.0.0.1"), Some(vec![a]));
    assert_eq!(req("host 10.0.0.1 or host 10.0.0.2"), Some(vec![a, b]));
    assert_eq!(req("host 10.0.0.1 or host 10.0.0.1"), Some(vec![a]));
    assert_eq!(req("host 10.0.0.1 or port 53"), None);
    assert_eq!(req("not host 10.0.0.1"), None);
    assert_eq!(req("net 10.0.0.0/8"), None);
    assert_eq!(req("net 10.0.0.1/32"), Some(vec![a]));
    assert_eq!(
        req("(host 10.0.0.1 or host 10.0.0.2) and host 10.0.0.1"),
        Some(vec![a])
    );
    assert_eq!(
        req("port 53 and (host 10.0.0.1 or host 10.0.0.2)"),
        Some(vec![a, b])
    );
    // Every record a filter matches has one of its required addresses.
    let r = rec();
    for e in [
        "host 10.1.2.3",
        "host 1.1.1.1 or 198.51.100.23",
        "tcp and src 10.1.2.3",
    ] {
        let f = Filter::parse(e).unwrap();
        assert!(f.matches(&r));
        let req = f.required_addresses().unwrap();
        assert!(req.contains(&r.src) || req.contains(&r.dst), "{e}");
    }
}

#[test]
fn error_points_at_the_word() {
    let e = err("host 10.0.0.1 and hots 10.0.0.2");
    assert_eq!(e.word, "hots");
    assert_eq!(e.position, 18);
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("'hots'") && lines[0].contains("position 19"),
        "{text}"
    );
    assert_eq!(lines[1], "  host 10.0.0.1 and hots 10.0.0.2");
    assert_eq!(lines[2], format!("  {}^^^^", " ".repeat(18)));
    // Positions count characters, not bytes.
    let e = err("host 10.0.0.1 and é");
    assert_eq!((e.word.as_str(), e.position, e.width), ("é", 18, 1));
}

/// Each `(expression, offending word, words of the reason)` fails to parse at that word, for
/// that reason: one case per error path, so that every message is seen once.
fn assert_errors(cases: &[(&str, &str, &str)]) {
    for &(expr, word, reason) in cases {
        let e = err(expr);
        assert_eq!(e.word, word, "{expr}: {e}");
        assert!(e.reason.contains(reason), "{expr}: {e}");
        assert_eq!(e.expression, expr);
        if word.is_empty() {
            assert_eq!(e.position, expr.chars().count(), "{expr}");
            assert!(e.to_string().contains("at the end"), "{e}");
        } else {
            assert_eq!(
                e.position,
                expr.find(word).map(|b| expr[..b].chars().count()).unwrap(),
                "{expr}"
            );
        }
    }
}

#[test]
fn errors_in_addresses_and_ports() {
    assert_errors(&[
        ("hots 10.0.0.1", "hots", "not a filter word"),
        ("host", "", "expected an IP address after 'host'"),
        (
            "host )",
            ")",
            "expected an IP address after 'host', found ')'",
        ),
        (
            "host example.com",
            "example.com",
            "host names are not looked up",
        ),
        (
            "host 10.0.0.256",
            "10.0.0.256",
            "not an IPv4 or IPv6 address",
        ),
        ("net", "", "expected a prefix"),
        ("net ten/8", "ten/8", "not an IPv4 or IPv6 network address"),
        (
            "net 10.0.0.0/33",
            "10.0.0.0/33",
            "not a prefix length (0-32)",
        ),
        ("net 2001:db8::/129", "2001:db8::/129", "(0-128)"),
        ("net 10.0.0.0/x", "10.0.0.0/x", "not a prefix length"),
        (
            "net 10.0.0.1/8",
            "10.0.0.1/8",
            "bits set beyond the /8 prefix",
        ),
        (
            "net 2001:db8::1/64",
            "2001:db8::1/64",
            "beyond the /64 prefix",
        ),
        ("port", "", "expected a port number"),
        ("port 65536", "65536", "not a port number"),
        (
            "port nosuchservice",
            "nosuchservice",
            "nor a service name in /etc/services",
        ),
        ("udp port http", "http", "nor a udp service name"),
        ("port -1", "-1", "not a port number"),
        ("portrange 10", "10", "LOW-HIGH"),
        ("portrange 10-x", "10-x", "'x' is not a port number"),
        ("portrange 20-10", "20-10", "runs backwards"),
    ]);
}

#[test]
fn errors_in_other_values() {
    assert_errors(&[
        ("proto", "", "expected a protocol name or number"),
        ("proto tcpp", "tcpp", "not a protocol"),
        ("proto 256", "256", "not a protocol"),
        ("vlan", "", "expected a VLAN id"),
        ("vlan 4096", "4096", "not a VLAN id (0-4095)"),
        ("vlan x", "x", "not a VLAN id"),
        ("mac", "", "expected a MAC address"),
        ("mac 00:11:22:33:44", "00:11:22:33:44", "not a MAC address"),
        (
            "mac 00:11:22:33:44:55:66",
            "00:11:22:33:44:55:66",
            "not a MAC address",
        ),
        (
            "mac 00:11:22:33:44:5g",
            "00:11:22:33:44:5g",
            "not a MAC address",
        ),
        (
            "mac 000:11:22:33:44:55",
            "000:11:22:33:44:55",
            "not a MAC address",
        ),
        (
            "mac 00::22:33:44:55",
            "00::22:33:44:55",
            "not a MAC address",
        ),
        ("ether", "", "expected host, src or dst after 'ether'"),
        (
            "ether foo 00:11:22:33:44:55",
            "foo",
            "expected host, src or dst after 'ether'",
        ),
        ("ether src", "", "expected a MAC address after 'src'"),
        ("packets", "", "expected a number after 'packets'"),
        ("packets >", "", "expected a number after 'packets'"),
        ("packets > many", "many", "not a whole number"),
        ("bytes > -5", "-5", "not a whole number"),
        (
            "bytes > ( 5",
            "(",
            "expected a number after 'bytes', found '('",
        ),
        ("flags", "", "expected TCP flag letters"),
        ("flags SX", "SX", "'X' in 'SX' is not a TCP flag letter"),
        ("flags ...", "...", "names no TCP flag"),
        ("end", "", "expected an end reason"),
        ("end timeout", "timeout", "not an end reason"),
    ]);
}

#[test]
fn errors_in_the_grammar() {
    assert_errors(&[
        (
            "src",
            "",
            "expected host, net, port, portrange, mac or an address after 'src'",
        ),
        ("dst proto tcp", "proto", "after 'dst'"),
        ("src (host 1.1.1.1)", "(", "after 'src', found '('"),
        ("host 1.1.1.1 and", "", "expected one of host"),
        (
            "host 1.1.1.1 and or host 1.1.1.2",
            "or",
            "expected one of host",
        ),
        ("not", "", "expected one of host"),
        ("(host 1.1.1.1", "(", "never closed"),
        (
            "(host 1.1.1.1 port 53)",
            "port",
            "expected 'and', 'or' or ')' before 'port'",
        ),
        ("host 1.1.1.1)", ")", "has no '(' before it"),
        (
            "host 1.1.1.1 port 53",
            "port",
            "expected 'and' or 'or' before 'port'",
        ),
        ("()", ")", "expected one of host"),
        ("host 1.1.1.1 & port 53", "&", "use '&&'"),
        ("host 1.1.1.1 | port 53", "|", "use '||'"),
        ("> 5", ">", "expected one of host"),
    ]);
}

#[test]
fn nesting_is_bounded_with_a_clear_error_not_a_stack_overflow() {
    // Deep enough to have overflowed the stack before the bound (issue 15, defect 6).
    // Those sizes are now refused by their length alone; within it, by their depth.
    for huge in [
        format!("{}host 10.1.2.3{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("{}host 10.1.2.3", "not ".repeat(20_000)),
        vec!["host 10.1.2.3"; 5_000].join(" or "),
    ] {
        assert!(Filter::parse(&huge).is_err());
    }
    for deep in [
        format!("{}port 1{}", "(".repeat(1_000), ")".repeat(1_000)),
        format!("{}port 1", "not ".repeat(1_000)),
        vec!["port 1"; 300].join(" or "),
    ] {
        assert!(deep.len() <= MAX_TEXT_BYTES);
        let e = Filter::parse(&deep).unwrap_err().to_string();
        assert!(
            e.contains("nests more than 256 levels"),
            "{}",
            &e[..e.len().min(300)]
        );
    }
    // At the bound it parses, tests and drops.
    let hosts: Vec<String> = (0..256).map(|i| format!("host 10.0.0.{i}")).collect();
    let f = Filter::parse(&hosts.join(" or ")).unwrap();
    assert!(!f.matches(&rec()));
    let f = Filter::parse(&format!(
        "{}host 10.1.2.3{}",
        "(".repeat(255),
        ")".repeat(255)
    ))
    .unwrap();
    assert!(f.matches(&rec()));
    let f = Filter::parse(&format!("{}host 10.1.2.3", "not ".repeat(254))).unwrap();
    assert!(f.matches(&rec()));
}

#[test]
fn an_expression_longer_than_the_audit_log_takes_is_refused() {
    let long = format!("host 10.1.2.3{}", " ".repeat(70_000));
    let e = Filter::parse(&long).unwrap_err().to_string();
    assert!(e.contains("at most 8192"), "{e}");
    assert!(e.len() < 400, "{e}");
    assert!(Filter::parse(&format!("host 10.1.2.3{}", " ".repeat(4000))).is_ok());
}

/// tcpdump's idioms: a protocol before `port`, a family before `host`/`net`, service names,
/// abbreviated nets and masks, and values that take over the last primitive's qualifiers.
/// tests/filter_tcpdump.rs holds each to tcpdump's own selection.
#[test]
fn tcpdump_idioms() {
    let r = rec(); // tcp 10.1.2.3:40000 -> 198.51.100.23:443
    let six = v6(); // icmp6 2001:db8::1 -> 2001:db8:1::2
    assert!(m("tcp port 443", &r));
    assert!(!m("udp port 443", &r));
    assert!(m("tcp dst port 443", &r));
    assert!(!m("tcp src port 443", &r));
    assert!(m("tcp portrange 400-500", &r));
    assert!(m("tcp src portrange 40000-40000", &r));
    assert!(m("ip host 10.1.2.3", &r));
    assert!(!m("ip6 host 10.1.2.3", &r));
    assert!(m("ip6 net 2001:db8::/32", &six));
    assert!(m("ip src 10.1.2.3", &r));
    assert!(m("ip6 dst net 2001:db8:1::/48", &six));
    // Service names (Debian's netbase: https is 443 for tcp and udp, as everywhere).
    assert!(!Filter::parse("tcp port 443").unwrap().names_services());
    if std::path::Path::new("/etc/services").exists() {
        assert!(Filter::parse("port 80 or https").unwrap().names_services());
        assert!(m("port https", &r));
        assert!(m("tcp port https", &r));
        assert!(m("dst port https", &r));
        assert!(!m("src port https", &r));
    }
    // Abbreviated nets: 10 = 10/8, 10.1 = 10.1/16, 10.1.2 = 10.1.2/24.
    assert!(m("net 10", &r));
    assert!(m("net 10/8", &r));
    assert!(m("net 10.1", &r));
    assert!(m("src net 10.1.2", &r));
    assert!(!m("net 10.2", &r));
    assert!(!m("dst net 10/8", &r));
    assert!(m("net 198.51.100.0 mask 255.255.255.0", &r));
    // A mask need not be contiguous: 10.1.2.3 & 255.0.255.0 = 10.0.2.0.
    assert!(m("net 10.0.2.0 mask 255.0.255.0", &r));
    assert!(!m("net 10.0.0.0 mask 255.0.255.0", &r));
    assert!(!m("net 10.2.0.0 mask 255.255.0.0", &r));
    // Lists: a value alone takes the qualifiers of the primitive before it.
    assert!(m("port 80 or 443", &r));
    assert!(!m("port 80 or 8443", &r));
    assert!(m("host 192.0.2.1 or 198.51.100.23", &r));
    assert!(
        !m("src host 192.0.2.1 or 198.51.100.23", &r),
        "the second is a src host too"
    );
    assert!(m("dst host 192.0.2.1 or 198.51.100.23", &r));
    assert!(m("tcp dst port 80 or 443", &r));
    assert!(!m("udp port 80 or 443", &r), "the second is a udp port too");
    assert!(m("net 192.0.2.0/24 or 10/8", &r));
    assert!(m("port 53 or tcp", &r), "a protocol name stays a protocol");
    // Parsed as tcpdump does: the qualifier is an 'and'.
    assert_eq!(
        Filter::parse("udp dst port 53").unwrap().expr,
        Filter::parse("udp and dst port 53").unwrap().expr
    );
    assert_eq!(
        Filter::parse("tcp port 80 or 443").unwrap().expr,
        Filter::parse("tcp port 80 or (tcp port 443)").unwrap().expr
    );
}

#[test]
fn tcpdump_idiom_errors() {
    assert_errors(&[
        ("tcp src host 10.0.0.1", "tcp", "cannot qualify 'host'"),
        ("ip port 80", "port", "expected 'and' or 'or' before 'port'"),
        ("ip src port 80", "ip", "cannot qualify 'port'"),
        ("tcp dst mac 00:00:00:00:00:01", "tcp", "not 'mac'"),
        (
            "port 80 or 10.0.0.1",
            "10.0.0.1",
            "takes 'port' from before it",
        ),
        (
            "net 10.1.2.3.4",
            "10.1.2.3.4",
            "not an IPv4 or IPv6 network address",
        ),
        ("net 10.1/8", "10.1/8", "beyond the /8 prefix"),
        (
            "net 10.0.0.0 mask 255.0.0",
            "255.0.0",
            "not an IPv4 netmask",
        ),
        (
            "net 10.1.0.0 mask 255.0.0.0",
            "10.1.0.0",
            "outside the mask",
        ),
        ("net 2001:db8:: mask 255.0.0.0", "2001:db8::", "IPv4 only"),
    ]);
}
