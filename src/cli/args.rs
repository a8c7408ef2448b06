//! The command line as clap parses it: every subcommand's arguments, their defaults, help and
//! value checks. Nothing here acts: `config` turns these into the library's configurations.

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};
use flowkeep::export::ipfix::IpfixConfig;
use flowkeep::export::parquet::ROW_GROUP_ROWS;
use flowkeep::query::{self, stats};
use flowkeep::retention::parse_size;
use flowkeep::time::{self, Nanos};
use std::net::IpAddr;
use std::path::PathBuf;

/// A library enum as a clap value: its names and help come from the library, so the command
/// line cannot drift from what the library accepts.
macro_rules! value_enum {
    ($arg:ident, $lib:ty, help: $help:expr) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $arg(pub $lib);

        impl ValueEnum for $arg {
            fn value_variants<'a>() -> &'a [Self] {
                const ALL: &[$arg] = &{
                    let all = <$lib>::ALL;
                    let mut out = [$arg(all[0]); <$lib>::ALL.len()];
                    let mut i = 0;
                    while i < all.len() {
                        out[i] = $arg(all[i]);
                        i += 1;
                    }
                    out
                };
                ALL
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                let help: Option<fn($lib) -> &'static str> = $help;
                let v = PossibleValue::new(self.0.as_str());
                Some(match help {
                    Some(h) => v.help(h(self.0)),
                    None => v,
                })
            }
        }

        impl From<$arg> for $lib {
            fn from(a: $arg) -> Self {
                a.0
            }
        }
    };
}

value_enum!(FormatArg, query::Format, help: Some(query::Format::help));
value_enum!(Order, stats::Order, help: None);
value_enum!(KindArg, flowkeep::store::audit::Action, help: None);

#[derive(Parser, Debug)]
#[command(
    name = "flowkeep",
    version,
    about = "Packets to bidirectional flow records, kept in a compact store with exact retention",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Settings file (default: /etc/flowkeep/flowkeep.toml, when it exists): each key is the
    /// long option of the same name, for every subcommand that has it; flags override it.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Read no settings file.
    #[arg(long, global = true)]
    pub no_config: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read pcap/pcapng files into a store (as one continuous capture, in the order given).
    #[command(
        after_help = "Example:\n  flowkeep replay monday.pcap tuesday.pcapng --store /var/lib/flowkeep\n  tcpdump -i eth1 -w - | flowkeep replay - --store /var/lib/flowkeep"
    )]
    Replay(ReplayArgs),
    /// Capture live from an interface into a store until SIGINT/SIGTERM.
    #[command(
        after_help = "Example:\n  flowkeep capture --interface eth1 --store /var/lib/flowkeep --retention 30d --filter 'not port 22'"
    )]
    Capture(CaptureArgs),
    /// Print the stored flow records whose time span overlaps a range and that match a
    /// filter expression.
    #[command(
        after_help = "Example:\n  flowkeep query --store /var/lib/flowkeep --since -2h 'tcp port 443 and host 198.51.100.23'\n  flowkeep query --store /var/lib/flowkeep --since -1h --format csv --fields first,src,dst,dport,bytes -c 100"
    )]
    Query(QueryArgs),
    /// Top-N statistics (flows, packets, bytes) by address, port, protocol, pair or MAC, like
    /// `nfdump -s`.
    #[command(
        after_help = "Example:\n  flowkeep stats --store /var/lib/flowkeep --since -1d --by dst --order bytes --top 10\n  flowkeep stats --store /var/lib/flowkeep --since -1d --by time --interval 5m 'udp port 53'"
    )]
    Stats(StatsArgs),
    /// Write one self-contained HTML page of the matching records: traffic over time and the
    /// top sources, destinations, conversations and services.
    #[command(
        after_help = "Example:\n  flowkeep report --store /var/lib/flowkeep --since -1d --out report.html 'not port 53'"
    )]
    Report(ReportArgs),
    /// Delete whole segments by age and store size, keeping what legal holds cover.
    #[command(
        after_help = "Example:\n  flowkeep expire --store /var/lib/flowkeep --retention 30d --max-size 500G --dry-run"
    )]
    Expire(ExpireArgs),
    /// Legal holds: add, list, release.
    #[command(
        after_help = "Example:\n  flowkeep hold add --store /var/lib/flowkeep --name CASE-123 --from 2026-11-01T00:00:00Z --until open --filter 'host 203.0.113.7'\n  flowkeep hold list --store /var/lib/flowkeep"
    )]
    Hold(HoldArgs),
    /// Check every segment's checksums and the store against its audit log.
    #[command(
        after_help = "Example:\n  flowkeep verify --store /var/lib/flowkeep\n  flowkeep verify --bundle /srv/cases/order-17 --public-key disclose.key.pub"
    )]
    Verify(VerifyArgs),
    /// Seal what a writer that stopped without sealing left behind (every complete block kept,
    /// the torn tail dropped and said so); writers do it themselves when they start.
    #[command(after_help = "Example:\n  flowkeep recover --store /var/lib/flowkeep")]
    Recover(RecoverArgs),
    /// Summarise a store: partitions, segments, records, bytes, time span, holds.
    #[command(after_help = "Example:\n  flowkeep info --store /var/lib/flowkeep --segments")]
    Info(InfoArgs),
    /// Send stored records elsewhere: an IPFIX collector (back-filling a central one), or
    /// Parquet files (one per partition) for columnar engines.
    #[command(
        after_help = "Example:\n  flowkeep export --store /var/lib/flowkeep --since 2026-11-14T00:00:00Z --to parquet:/srv/flows/site-a"
    )]
    Export(ExportArgs),
    /// Which MAC (and hostname) held an address at a time: from DHCP leases, else from the
    /// MACs on flows around that time. Exit status 1 when nothing is known, 4 when only the
    /// flows answer (unconfirmed), 5 when only an imported Tor exit list does (the address
    /// was a relay's exit), 3 when part of the store could not be read.
    #[command(
        after_help = "Example:\n  flowkeep who-had --store /var/lib/flowkeep 10.1.2.3 --at 2026-11-14T14:02:07Z"
    )]
    WhoHad(WhoHadArgs),
    /// Signing keys for checkpoints: `key generate`.
    #[command(
        after_help = "Example:\n  flowkeep key generate --out /etc/flowkeep/signing.key --name site-a"
    )]
    Key(KeyArgs),
    /// Print the store's current checkpoint (audit log size and Merkle root), signed.
    #[command(
        after_help = "Example:\n  flowkeep checkpoint --store /var/lib/flowkeep --key /etc/flowkeep/signing.key"
    )]
    Checkpoint(CheckpointArgs),
    /// Write a disclosure bundle: a query's answer with the leases, coverage, settings and
    /// audit entries behind it, hashed, proven against a checkpoint and optionally signed, as
    /// a directory anyone can check without flowkeep (`verify --bundle` does it with flowkeep).
    #[command(
        after_help = "Example:\n  flowkeep disclose --store /var/lib/flowkeep --case 'Order 17/2026' --since 2026-01-10T00:00:00Z --until 2026-01-12T00:00:00Z --signing-key /etc/flowkeep/disclose.key --out /srv/cases/order-17 host 198.51.100.23"
    )]
    Disclose(DiscloseArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(
        after_help = "Example:\n  flowkeep completions bash > /usr/share/bash-completion/completions/flowkeep"
    )]
    Completions(CompletionsArgs),
    /// Write man pages: flowkeep.1 and one per subcommand (flowkeep-query.1, ...).
    #[command(after_help = "Example:\n  flowkeep man --out /usr/share/man/man1")]
    Man(ManArgs),
    /// List the audit log's entries (seals, expiries, holds, accesses, policy changes), or
    /// `--report` what an auditor asks: deletions per day, the oldest record, holds, who
    /// looked, the policy history.
    #[command(
        after_help = "Example:\n  flowkeep audit --store /var/lib/flowkeep --kind access --since 2026-11-01T00:00:00Z\n  flowkeep audit --store /var/lib/flowkeep --report"
    )]
    Audit(AuditArgs),
    /// The settings file: `config check` validates it and prints the effective settings.
    #[command(
        after_help = "Example:\n  flowkeep config check --config /etc/flowkeep/flowkeep.toml"
    )]
    Config(super::config_file::ConfigArgs),
    /// Tor exit lists: `tor import FILE` keeps one in the store, for `query --tor` and
    /// `who-had` to mark the addresses that were Tor exits.
    #[command(
        after_help = "Example:\n  flowkeep tor import exit-addresses --store /var/lib/flowkeep"
    )]
    Tor(super::tor::TorArgs),
}

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Store directory (created when missing).
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// Width of a time partition: one directory of segment files per window.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration)]
    pub partition: Nanos,
    /// zstd compression level of segment blocks.
    #[arg(long, value_name = "LEVEL", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,
    /// Records per block (testing: small blocks make many blocks).
    #[arg(long, value_name = "N", default_value_t = 8192, hide = true, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub block_records: u32,
    /// Do not store MAC addresses or DHCP hostnames (flow records and lease observations);
    /// every segment written records that they were not kept.
    #[arg(long)]
    pub no_mac: bool,
}

#[derive(Args, Debug, Clone)]
pub struct FlowArgs {
    /// A flow with no packet for this long ends.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub idle_timeout: Nanos,
    /// A flow open this long is written out and continues in a new record.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_positive_duration)]
    pub active_timeout: Nanos,
    /// How long a TCP flow lingers after both FINs or an RST.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub tcp_end_timeout: Nanos,
    /// Open flows kept in memory, for the whole process (split evenly across the workers);
    /// when full, the longest-idle flow is written out early with end reason `evicted`.
    /// The default bounds flow state to about 600 MB. 0 = no limit.
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    pub max_flows: usize,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng, any byte order and timestamp resolution).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub flow: FlowArgs,
    /// No progress bar, even on a terminal.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Report on stderr each block once it is complete in its segment file
    /// (`flushed <file> block <n> records <k>`): it survives the process being killed.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    #[command(flatten)]
    pub export: LiveExportArgs,
    #[command(flatten)]
    pub signing: SigningArgs,
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// Interface to capture on (promiscuous). Repeat to capture several ports into one store:
    /// each record names the interface it was seen on, and the same conversation seen on two
    /// ports is two records.
    #[arg(long, short = 'i', value_name = "IF", required = true)]
    pub interface: Vec<String>,
    /// No status line (on a terminal one a second: frames/s, drops, active flows, records,
    /// bytes written; otherwise one a minute).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub flow: FlowArgs,
    /// BPF filter expression, as for tcpdump.
    #[arg(long, short = 'f', value_name = "BPF")]
    pub filter: Option<String>,
    /// Bytes captured per frame: headers only, payload is never stored.
    #[arg(long, value_name = "BYTES", default_value_t = 128, value_parser = clap::value_parser!(u32).range(64..=262_144))]
    pub snaplen: u32,
    /// Kernel capture ring (K/M/G = powers of 1024): what absorbs bursts while the reader
    /// is busy. At most 2G (libpcap's limit).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_buffer)]
    pub buffer: u32,
    /// Below a snap length of 1500, DHCP is read whole through a second capture handle per
    /// interface (DHCP ports only, within --filter; 2 MiB ring), for the lease observations;
    /// this goes without it: no leases are recorded from messages the snap length cuts.
    #[arg(long)]
    pub no_dhcp_handle: bool,
    /// How workers get their frames. `on`: each worker reads its own kernel ring of every
    /// interface, the kernel spreading frames over the rings by their IP address pair
    /// (PACKET_FANOUT), so both directions and every fragment of a flow meet in one worker and
    /// no thread hands packets to another; --buffer is split over the rings. `off`: one reader
    /// thread drains one ring per interface and hands packets to the workers. `auto` (the
    /// default): `on` with more than one worker, unless an interface is a netfilter log group
    /// (nflog:N, one listener only).
    #[arg(long, value_enum, default_value_t = FanoutArg::Auto)]
    pub fanout: FanoutArg,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// When started as root: open the capture, then run as this user (groups, gid and uid, as
    /// `tcpdump -Z`); the store must be writable by it. `root` keeps root (not advised).
    #[arg(long, short = 'Z', value_name = "NAME", default_value = "nobody")]
    pub user: String,
    /// Report on stderr each block once it is complete in its segment file
    /// (`flushed <file> block <n> records <k>`).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Serve Prometheus metrics (packets, bytes, drops, flows, records, segments) over HTTP at
    /// this address, e.g. 127.0.0.1:9187. Off unless given; binds only there.
    #[arg(long, value_name = "IP:PORT")]
    pub metrics: Option<String>,
    #[command(flatten)]
    pub export: LiveExportArgs,
    #[command(flatten)]
    pub signing: SigningArgs,
    /// With --signing-key: sign at most this often while capturing (and once at exit).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub checkpoint_interval: Nanos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FanoutArg {
    Auto,
    On,
    Off,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// With jsonl: add `src_lease`/`dst_lease`, who held each address at the record's first
    /// time by the DHCP leases in the store (null when unknown).
    #[arg(long)]
    pub leases: bool,
    /// With jsonl: add `src_tor_exit`/`dst_tor_exit`, the fingerprint of the relay each address
    /// was a Tor exit of during the record, by the exit lists `tor import` kept (null: none).
    #[arg(long, conflicts_with = "fields")]
    pub tor: bool,
    /// Print at most N records, the first in time order (as nfdump -c); stderr says when more
    /// matched.
    #[arg(long, short = 'c', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Only these columns, in this order, for any format: e.g. first,src,dst,dport,bytes (the
    /// names of the CSV header; nfdump's -o fmt:).
    #[arg(long, value_name = "LIST", value_delimiter = ',', conflicts_with = "leases", value_parser = parse_field)]
    pub fields: Option<Vec<String>>,
}

/// Which records a query or statistics command looks at.
#[derive(Args, Debug)]
pub struct SelectArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// Records that end at or after this time: RFC 3339 (2026-11-26T10:00:00Z), a date
    /// (2026-11-26, midnight UTC), @SECONDS, now, or relative to now (-2h, -30d, -15m, -90s).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = check_query_time)]
    pub since: Option<String>,
    /// Records that start before this time (same forms as --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = check_query_time)]
    pub until: Option<String>,
    /// Print to stderr how many segments and blocks were read and skipped, and why.
    #[arg(long)]
    pub explain: bool,
    /// Read only the copies that this filtered hold keeps (default: the live store and every
    /// standing hold's copies, each record once).
    #[arg(long, value_name = "NAME")]
    pub hold: Option<String>,
    /// Filter expression, tcpdump-like, e.g. `host 198.51.100.23 and not port 53` (the words
    /// are joined with spaces). Primitives: [src|dst] host A, [src|dst] net A/LEN,
    /// [src|dst] port N, [src|dst] portrange A-B, proto NAME|N, vlan N, [src|dst] mac M,
    /// packets|bytes >|<|>=|<=|= N, flags LETTERS, end REASON; and, or, not, parentheses.
    #[arg(value_name = "EXPR")]
    pub expr: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// The directory to write the pages into (made if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The HTML file to write (replaced if it exists).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// The chart's bin (default: about 100 bins over the records' span, at least 1 minute).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub interval: Option<Nanos>,
    /// Rows per table.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// What to count by (--help lists the keys).
    #[arg(long, value_name = "KEY[/LEN[,LEN6]]", value_parser = parse_by, long_help = by_help())]
    pub by: stats::Grouping,
    /// Rank by this (packets and bytes are both directions summed).
    #[arg(long, value_enum, default_value = "flows")]
    pub order: Order,
    /// How many rows (0: all); with --interval, per bin.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Bins of time (e.g. 5m, 1h): `--by time` gives flows, packets, bytes, bps and pps per
    /// bin (default 5m); any other --by gives its top rows within each bin. A record counts in
    /// the bin of its first packet; bins start at multiples of the interval since the epoch.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub interval: Option<Nanos>,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

/// `--by`'s long help, from the library's own descriptions of its keys.
fn by_help() -> String {
    let mut out = String::from("What to count by:");
    for b in stats::By::ALL {
        out.push_str(&format!("\n  {:<6} {}", b.as_str(), b.help()));
    }
    out.push_str(
        "\nsrc, dst, host and pair take prefix lengths, as nfdump's -A: `src/24` (IPv4 /24, \
         IPv6 /64) or `src/24,48`.",
    );
    out
}

/// One name of `--fields`.
fn parse_field(s: &str) -> Result<String, String> {
    if query::FIELDS.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a field; the fields are {}",
            query::FIELDS.join(",")
        ))
    }
}

/// `--by KEY[/LEN[,LEN6]]`.
pub(super) fn parse_by(s: &str) -> Result<stats::Grouping, String> {
    let (key, prefix) = match s.split_once('/') {
        Some((k, p)) => (k, Some(p)),
        None => (s, None),
    };
    let names: Vec<&str> = stats::By::ALL.iter().map(|b| b.as_str()).collect();
    let by = stats::By::ALL
        .into_iter()
        .find(|b| b.as_str() == key)
        .ok_or_else(|| format!("'{key}' is not one of {}", names.join(", ")))?;
    let Some(p) = prefix else {
        return Ok(by.into());
    };
    if !stats::Grouping::takes_prefix(by) {
        return Err(format!(
            "'{key}' takes no prefix length (src, dst, host and pair do)"
        ));
    }
    let (v4, v6) = match p.split_once(',') {
        Some((a, b)) => (a, b),
        None => (p, "64"),
    };
    let len = |t: &str, max: u8| -> Result<u8, String> {
        t.parse::<u8>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("'{t}' is not a prefix length (0-{max})"))
    };
    Ok(stats::Grouping {
        by,
        prefix: Some((len(v4, 32)?, len(v6, 128)?)),
    })
}

/// A time option: RFC 3339, a date, `@SECONDS`, `now` or relative to now (`-2h`), as for query.
pub(super) fn parse_time(s: &str) -> Result<Nanos, String> {
    time::parse_time_at(s, super::wall_clock()).map_err(|e| e.reason)
}

/// A query time's form is checked while parsing arguments (a bad one is a usage error, status
/// 2); its value waits for the one wall-clock reading in [`SelectArgs::resolve`].
pub(super) fn check_query_time(s: &str) -> Result<String, String> {
    time::parse_time_at(s, 0)
        .map(|_| s.to_string())
        .map_err(|e| e.reason)
}

/// How long a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    After(Nanos),
    Never,
}

pub(super) fn parse_expiry(s: &str) -> Result<Expiry, String> {
    if s == "never" {
        return Ok(Expiry::Never);
    }
    match parse_duration(s)? {
        d if d > 0 => Ok(Expiry::After(d)),
        _ => Err("a hold's expiry must be a positive duration (e.g. 90d) or `never`".into()),
    }
}

pub(super) fn parse_until(s: &str) -> Result<Nanos, String> {
    if s == "open" {
        Ok(flowkeep::store::holds::OPEN_UNTIL)
    } else {
        parse_time(s)
    }
}

pub(super) fn parse_duration(s: &str) -> Result<Nanos, String> {
    time::parse_duration(s).map_err(|e| e.reason)
}

pub(super) fn parse_buffer(s: &str) -> Result<u32, String> {
    let n = parse_size(s)?;
    if n < 1 << 20 {
        return Err("must be at least 1M".into());
    }
    // libpcap takes an int.
    u32::try_from(n)
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
        .ok_or_else(|| "must be less than 2G".into())
}

pub(super) fn parse_positive_duration(s: &str) -> Result<Nanos, String> {
    match parse_duration(s)? {
        0 => Err("must be greater than zero".into()),
        ns => Ok(ns),
    }
}

/// `--retention` / `--max-size` for replay and capture.
#[derive(Args, Debug, Clone, Default)]
pub struct RetentionArgs {
    /// Delete segments whose newest record is older than this (e.g. 30d) after the run
    /// (replay: "now" is the newest packet time) or every minute (capture: the wall clock).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub retention: Option<Nanos>,
    /// Then delete the oldest segments while the store is larger than this (K/M/G/T = powers
    /// of 1024, e.g. 500G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    #[command(flatten)]
    pub anonymize: super::anonymize::AnonymizeArgs,
}

#[derive(Args, Debug)]
pub struct ExpireArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    #[command(flatten)]
    pub policy: RetentionArgs,
    /// Print what would be deleted and kept, and why; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The time to measure ages from (RFC 3339 or @seconds; default: the wall clock).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub now: Option<Nanos>,
    #[command(flatten)]
    pub signing: SigningArgs,
}

#[derive(Args, Debug)]
pub struct HoldArgs {
    #[command(subcommand)]
    pub command: HoldCommand,
}

#[derive(Args, Debug)]
pub struct HoldAddArgs {
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// Unique name, e.g. the case number (letters, digits, . _ : + @ -).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Nanos,
    /// Exclusive end; `open` keeps catching matching records until the hold is released
    /// or lapses.
    #[arg(long, value_name = "TIME|open", value_parser = parse_until)]
    pub until: Nanos,
    /// Keep only the records this expression matches (as for `query`).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// How long the hold stands from now (e.g. 90d), or `never`.
    #[arg(long, value_name = "DURATION|never", default_value = "90d", value_parser = parse_expiry)]
    pub expires: Expiry,
    /// Print how many segments and blocks the copy read and skipped.
    #[arg(long)]
    pub explain: bool,
    /// Time recorded as "added" (default: the wall clock).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub now: Option<Nanos>,
    #[command(flatten)]
    pub signing: SigningArgs,
}

#[derive(Subcommand, Debug)]
pub enum HoldCommand {
    /// Place a legal hold. Without --filter it keeps every segment overlapping [FROM, UNTIL)
    /// whole; with --filter it copies only the matching records (and the DHCP leases of their
    /// addresses) into its own segments, and keeps catching them as capture and replay write
    /// them while UNTIL is ahead.
    #[command(
        after_help = "Example:\n  flowkeep hold add --store /var/lib/flowkeep --name CASE-123 --from 2026-11-01T00:00:00Z --until open --filter 'host 203.0.113.7' --note 'Order 17/2026'"
    )]
    Add(HoldAddArgs),
    /// List the holds: range, filter, what they keep, expiry.
    #[command(after_help = "Example:\n  flowkeep hold list --store /var/lib/flowkeep")]
    List {
        #[arg(long, short = 's', value_name = "DIR")]
        store: PathBuf,
        /// Time against which expiry is shown (default: the wall clock).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        now: Option<Nanos>,
    },
    /// Move a hold's expiry later (a preservation request renewed).
    #[command(
        after_help = "Example:\n  flowkeep hold renew --store /var/lib/flowkeep CASE-123 --by 90d"
    )]
    Renew {
        #[arg(long, short = 's', value_name = "DIR")]
        store: PathBuf,
        name: String,
        /// How much later than its current expiry (e.g. 90d).
        #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
        by: Nanos,
        /// Time recorded in the audit log (default: the wall clock).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        now: Option<Nanos>,
        #[command(flatten)]
        signing: SigningArgs,
    },
    /// Release a hold by name (its copies go at the next expire).
    #[command(after_help = "Example:\n  flowkeep hold release --store /var/lib/flowkeep CASE-123")]
    Release {
        #[arg(long, short = 's', value_name = "DIR")]
        store: PathBuf,
        name: String,
        /// Time recorded in the audit log (default: the wall clock).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        now: Option<Nanos>,
        #[command(flatten)]
        signing: SigningArgs,
    },
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("key_for").args(["checkpoint", "bundle"]).multiple(true)))]
pub struct VerifyArgs {
    /// Store directory (not with --bundle).
    #[arg(
        long,
        short = 's',
        value_name = "DIR",
        required_unless_present = "bundle",
        conflicts_with = "bundle"
    )]
    pub store: Option<PathBuf>,
    /// Signed checkpoints kept outside the store (the --checkpoint-to file, or a copy): each
    /// must be signed by --public-key, name this store, and still be contained in its audit log.
    #[arg(
        long,
        value_name = "FILE",
        requires = "public_key",
        conflicts_with = "bundle"
    )]
    pub checkpoint: Option<PathBuf>,
    /// The verifier key the checkpoints (or the bundle) are signed with: its file (KEY.pub) or
    /// its text.
    #[arg(long, value_name = "PUB", requires = "key_for")]
    pub public_key: Option<String>,
    /// Check a disclosure bundle instead of a store: every hash, the manifest's signature
    /// (with --public-key, else the bundle's own key), every inclusion proof against its
    /// checkpoint, and that its segments were sealed.
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DiscloseArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// The case (court order, ticket) the bundle answers; goes into the manifest and report.
    #[arg(long, value_name = "NAME")]
    pub case: String,
    /// Disclose only what this filtered hold kept (its copies).
    #[arg(long, value_name = "NAME")]
    pub hold: Option<String>,
    /// Start of the range (same forms as query's --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = check_query_time)]
    pub since: String,
    /// End of the range.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = check_query_time)]
    pub until: String,
    /// The bundle directory to write; must not exist.
    #[arg(long, value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Sign the checkpoint and the manifest with this key (`key generate`).
    #[arg(long, value_name = "PATH")]
    pub signing_key: Option<PathBuf>,
    /// Filter expression, as for query.
    #[arg(value_name = "EXPR")]
    pub expr: Vec<String>,
}

/// `--signing-key` and where its checkpoints go (replay, capture, expire, hold).
#[derive(Args, Debug, Clone, Default)]
pub struct SigningArgs {
    /// Sign a checkpoint of the audit log after the command changed it (capture: at most once
    /// per --checkpoint-interval, and at exit), kept in DIR/checkpoints.
    #[arg(long, value_name = "PATH")]
    pub signing_key: Option<PathBuf>,
    /// Also append each signed checkpoint to this file outside the store (ship it off the box).
    #[arg(long, value_name = "FILE", requires = "signing_key")]
    pub checkpoint_to: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Write a new Ed25519 signing key (mode 0600; never over an existing file) and its
    /// verifier key (PATH.pub); print the verifier key.
    #[command(
        after_help = "Example:\n  flowkeep key generate --out /etc/flowkeep/signing.key --name site-a\n  flowkeep key generate --anonymize --out /etc/flowkeep/anonymize.key"
    )]
    Generate {
        /// Where the signing key goes.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// The key's name, as checkpoints' signature lines show it.
        #[arg(long, value_name = "NAME", default_value = "flowkeep")]
        name: String,
        /// Write a Crypto-PAn key for --anonymize-key instead (32 random bytes in hex).
        #[arg(long)]
        anonymize: bool,
    },
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// The signing key (from `flowkeep key generate`).
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// Only entries at or after this time (the entry's own time).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = parse_time)]
    pub since: Option<Nanos>,
    /// Only entries before this time.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = parse_time)]
    pub until: Option<Nanos>,
    /// Only entries of this action.
    #[arg(long, value_enum, conflicts_with = "report")]
    pub kind: Option<KindArg>,
    /// Output format of the listing (default: table on a terminal, jsonl otherwise); the
    /// report is table text, or one JSON object with `--format jsonl`.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Print the report rather than the entries.
    #[arg(long)]
    pub report: bool,
    /// The report's "now", for ages (default: the wall clock).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "report")]
    pub now: Option<Nanos>,
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// Ages are relative to this time (default: the wall clock).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub now: Option<Nanos>,
    /// Also list every segment.
    #[arg(long)]
    pub segments: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The records to send: store, time range and filter expression, as for `query`.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Where to: ipfix+udp://HOST:PORT or ipfix+tcp://HOST:PORT (an IPFIX collector such as
    /// nfcapd, goflow2 or Akvorado), or parquet:OUTDIR (one Parquet file per store partition,
    /// named flows-<partition start>.parquet, in OUTDIR, created when missing).
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// Parquet: replace existing files of the same names (otherwise they are an error).
    #[arg(long)]
    pub overwrite: bool,
    /// Parquet: rows per row group.
    #[arg(long, value_name = "N", default_value_t = ROW_GROUP_ROWS as u32, hide = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub row_group_rows: u32,
    #[command(flatten)]
    pub ipfix: IpfixArgs,
}

/// How records are encoded for an IPFIX collector (export, and capture/replay `--export`).
#[derive(Args, Debug, Clone)]
pub struct IpfixArgs {
    /// Send two one-way records per flow (initiator, then responder if it sent anything)
    /// instead of one RFC 5103 biflow record, for collectors without biflow support.
    #[arg(long)]
    pub unidirectional: bool,
    /// IPFIX observation domain id in every message header.
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub observation_domain: u32,
    /// Largest IPFIX message in bytes (UDP: keep the datagram under the path MTU).
    #[arg(long, value_name = "BYTES", default_value_t = IpfixConfig::DEFAULT_MAX_MESSAGE)]
    pub ipfix_message_size: usize,
    /// UDP: send the templates again after this much time...
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub template_refresh: Nanos,
    /// ...or this many messages, whichever comes first (TCP: once per connection).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub template_refresh_messages: u32,
}

/// The option capture and replay take to export records as they are written.
#[derive(Args, Debug, Clone)]
pub struct LiveExportArgs {
    /// Also send every record, as it is written, to this IPFIX collector
    /// (ipfix+udp://HOST:PORT or ipfix+tcp://HOST:PORT). Never slows the capture: what cannot
    /// be sent is counted, and stays in the store.
    #[arg(long, value_name = "TARGET")]
    pub export: Option<String>,
    #[command(flatten)]
    pub ipfix: IpfixArgs,
}

#[derive(Args, Debug)]
pub struct WhoHadArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    pub store: PathBuf,
    /// The IPv4 or IPv6 address.
    #[arg(value_name = "ADDRESS")]
    pub address: IpAddr,
    /// The moment asked about: RFC 3339 (2026-11-14T14:02:07Z), a date, @SECONDS, now, or
    /// relative to now (-2h, -30d).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = parse_time)]
    pub at: Nanos,
    /// When no lease answers: look for flows with the address this long before and after.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration)]
    pub window: Nanos,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}
