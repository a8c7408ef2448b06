//! The Tor Project's exit list (TorDNSEL's `exit-addresses`, as check.torproject.org serves
//! it and CollecTor archives it): for each exit relay, its fingerprint, when its descriptor
//! was published, when it was last in a consensus, and the addresses its exit traffic was
//! seen to leave from, each with the time of that test.
//!
//! ```text
//! ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E
//! Published 2026-11-29 17:40:28
//! LastStatus 2026-11-30 09:00:00
//! ExitAddress 198.51.100.7 2026-11-30 09:08:01
//! ```

use crate::time::{self, Nanos};
use std::net::IpAddr;

/// One `ExitAddress` line, with its relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The relay's fingerprint: 40 uppercase hex digits.
    pub fingerprint: String,
    pub address: IpAddr,
    /// When the list shows the address as an exit: from the earliest to the latest of the
    /// relay's `Published`, `LastStatus` and this address's test time.
    pub from: Nanos,
    pub until: Nanos,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitList {
    pub exits: Vec<Exit>,
    /// `ExitNode` entries.
    pub relays: u64,
    /// The earliest `from` and the latest `until`.
    pub first: Nanos,
    pub last: Nanos,
}

/// What is wrong with a list, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ListError {
    pub line: usize,
    pub reason: String,
}

/// The most a list may hold: the real one is about a megabyte.
pub const MAX_LIST_BYTES: usize = 64 << 20;

/// Parses a whole list. Every line must be one the format has (CollecTor's `@type` and
/// `Downloaded` lines included): anything else is not an exit list, and is refused rather
/// than half-read.
pub fn parse(text: &[u8]) -> Result<ExitList, ListError> {
    let err = |line: usize, reason: String| ListError { line, reason };
    if text.len() > MAX_LIST_BYTES {
        return Err(err(0, format!("larger than {MAX_LIST_BYTES} bytes")));
    }
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        err(line, "not UTF-8 text".into())
    })?;
    let mut list = ExitList {
        first: Nanos::MAX,
        last: Nanos::MIN,
        ..ExitList::default()
    };
    let mut relay: Option<Relay> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "" if rest.is_empty() => {}
            "@type" | "Downloaded" => {}
            "ExitNode" => {
                let fp = rest.trim();
                if fp.len() != 40 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err(
                        n,
                        format!("'{fp}' is not a relay fingerprint (40 hex digits)"),
                    ));
                }
                list.relays += 1;
                relay = Some(Relay {
                    fingerprint: fp.to_ascii_uppercase(),
                    published: None,
                    last_status: None,
                });
            }
            "Published" | "LastStatus" => {
                let r = relay
                    .as_mut()
                    .ok_or_else(|| err(n, format!("{word} before any ExitNode")))?;
                let t = list_time(rest).map_err(|reason| err(n, reason))?;
                if word == "Published" {
                    r.published = Some(t);
                } else {
                    r.last_status = Some(t);
                }
            }
            "ExitAddress" => {
                let r = relay
                    .as_ref()
                    .ok_or_else(|| err(n, "ExitAddress before any ExitNode".into()))?;
                let (addr, when) = rest.split_once(' ').unwrap_or((rest, ""));
                let address: IpAddr = addr
                    .parse()
                    .map_err(|_| err(n, format!("'{addr}' is not an IP address")))?;
                let tested = list_time(when).map_err(|reason| err(n, reason))?;
                let times = [Some(tested), r.published, r.last_status];
                let from = times.iter().flatten().min().copied().unwrap_or(tested);
                let until = times.iter().flatten().max().copied().unwrap_or(tested);
                list.first = list.first.min(from);
                list.last = list.last.max(until);
                list.exits.push(Exit {
                    fingerprint: r.fingerprint.clone(),
                    address,
                    from,
                    until,
                });
            }
            _ => {
                let shown: String = line.chars().take(40).collect();
                return Err(err(
                    n,
                    format!("'{shown}' is not a line of a Tor exit list"),
                ));
            }
        }
    }
    if list.exits.is_empty() {
        return Err(err(0, "no ExitAddress line: not a Tor exit list".into()));
    }
    Ok(list)
}

struct Relay {
    fingerprint: String,
    published: Option<Nanos>,
    last_status: Option<Nanos>,
}

/// `2026-11-30 09:08:01`, UTC.
fn list_time(s: &str) -> Result<Nanos, String> {
    let s = s.trim();
    time::parse_time(&format!("{}Z", s.replacen(' ', "T", 1)))
        .map_err(|_| format!("'{s}' is not a time such as 2026-11-30 09:08:01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "0011BD2485AD45D984EC4159C88FC066E5E3300E";

    #[test]
    fn an_exit_spans_its_relays_published_last_status_and_test_times() {
        let text = format!(
            "@type tordnsel 1.0\nDownloaded 2026-11-30 10:00:00\nExitNode {FP}\nPublished 2026-11-29 17:40:28\n\
             LastStatus 2026-11-30 09:00:00\nExitAddress 198.51.100.7 2026-11-30 09:08:01\n\
             ExitAddress 2001:db8::7 2026-11-30 08:00:00\n"
        );
        let l = parse(text.as_bytes()).unwrap();
        assert_eq!(l.relays, 1);
        assert_eq!(l.exits.len(), 2);
        let t = |s: &str| time::parse_time(s).unwrap();
        assert_eq!(l.exits[0].from, t("2026-11-29T17:40:28Z"));
        assert_eq!(l.exits[0].until, t("2026-11-30T09:08:01Z"));
        assert_eq!(l.exits[1].until, t("2026-11-30T09:00:00Z"));
        assert_eq!(
            (l.first, l.last),
            (t("2026-11-29T17:40:28Z"), t("2026-11-30T09:08:01Z"))
        );
    }

    #[test]
    fn anything_else_is_refused_with_its_line() {
        let cases = [
            ("<html>\n", 1, "is not a line of a Tor exit list"),
            ("ExitNode 12AB\n", 1, "not a relay fingerprint"),
            ("Published 2026-11-29 17:40:28\n", 1, "before any ExitNode"),
            (
                &format!("ExitNode {FP}\nExitAddress 1.2.3 2026-11-30 09:08:01\n"),
                2,
                "not an IP",
            ),
            (
                &format!("ExitNode {FP}\nExitAddress 1.2.3.4 yesterday\n"),
                2,
                "not a time",
            ),
            (&format!("ExitNode {FP}\n"), 0, "no ExitAddress"),
        ];
        for (text, line, want) in cases {
            let e = parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains(want), "{text:?}: {e}");
        }
    }
}
