//! Port names, from `/etc/services` as tcpdump's libpcap reads them (`getservbyname`), so that
//! `port https` selects what it selects in tcpdump on the same machine.

use super::values::proto_number;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

pub(super) const PATH: &str = "/etc/services";

/// (name or alias, IP protocol) → port; the first line naming a pair wins, as in glibc.
type Table = HashMap<(String, u8), u16>;

/// `/etc/services` read once per process; an error says why it could not be.
fn table() -> Result<&'static Table, &'static str> {
    static TABLE: OnceLock<Result<Table, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            crate::fs::read_to_string(Path::new(PATH))
                .map(|text| parse(&text))
                .map_err(|e| format!("{PATH} cannot be read ({e})"))
        })
        .as_ref()
        .map_err(String::as_str)
}

/// The lines `name port/protocol [alias ...] [# comment]`; others are skipped, as glibc does.
pub(super) fn parse(text: &str) -> Table {
    let mut t = Table::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        let (Ok(port), Some(proto)) = (port.parse::<u16>(), proto_number(proto)) else {
            continue;
        };
        for n in std::iter::once(name).chain(words) {
            t.entry((n.to_string(), proto)).or_insert(port);
        }
    }
    t
}

/// What `port NAME` means. With a protocol qualifier (`tcp port NAME`), that protocol's entry
/// alone. Without one, libpcap's rule (`pcap_nametoport`): the TCP entry, for any protocol when
/// the UDP entry is the same port, for TCP alone when there is no UDP entry or it differs; else
/// the UDP entry, for UDP alone. Returns the port and the protocol it is restricted to.
pub(super) fn port(table: &Table, name: &str, qualifier: Option<u8>) -> Option<(u16, Option<u8>)> {
    let get = |proto: u8| table.get(&(name.to_string(), proto)).copied();
    if let Some(q) = qualifier {
        return get(q).map(|p| (p, None));
    }
    match (get(6), get(17)) {
        (Some(t), Some(u)) if t == u => Some((t, None)),
        (Some(t), _) => Some((t, Some(6))),
        (None, Some(u)) => Some((u, Some(17))),
        (None, None) => None,
    }
}

/// [`port`] over this machine's `/etc/services`.
pub(super) fn lookup(
    name: &str,
    qualifier: Option<u8>,
) -> Result<Option<(u16, Option<u8>)>, &'static str> {
    Ok(port(table()?, name, qualifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment line
http		80/tcp		www		# WorldWideWeb HTTP
https		443/tcp
https		443/udp
domain		53/tcp
domain		53/udp
odd		100/tcp
odd		200/udp
onlyudp		300/udp
dup		1/tcp
dup		2/tcp
sctpish		9/sctp
broken		x/tcp
nonsense
";

    #[test]
    fn libpcap_rule_for_names_without_a_qualifier() {
        let t = parse(SAMPLE);
        assert_eq!(port(&t, "https", None), Some((443, None)));
        assert_eq!(port(&t, "domain", None), Some((53, None)));
        assert_eq!(port(&t, "http", None), Some((80, Some(6))));
        assert_eq!(port(&t, "www", None), Some((80, Some(6))), "aliases count");
        assert_eq!(port(&t, "odd", None), Some((100, Some(6))));
        assert_eq!(port(&t, "onlyudp", None), Some((300, Some(17))));
        assert_eq!(port(&t, "dup", None), Some((1, Some(6))), "first line wins");
        assert_eq!(port(&t, "broken", None), None);
        assert_eq!(
            port(&t, "HTTP", None),
            None,
            "names are case-sensitive, as in glibc"
        );
    }

    #[test]
    fn a_qualifier_takes_its_own_protocol_entry() {
        let t = parse(SAMPLE);
        assert_eq!(port(&t, "odd", Some(17)), Some((200, None)));
        assert_eq!(port(&t, "http", Some(17)), None);
        assert_eq!(port(&t, "sctpish", Some(132)), Some((9, None)));
        assert_eq!(
            port(&t, "sctpish", None),
            None,
            "libpcap looks up tcp and udp only"
        );
    }
}
