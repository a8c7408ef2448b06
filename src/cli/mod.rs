//! The `flowkeep` command: arguments in, configurations out, results printed. The only place
//! besides `capture` that reads the wall clock (for live capture's housekeeping).

mod admin;
mod attribution;
mod export;
mod metrics;
mod privs;

use crate::capture::{LiveConfig, LiveSet, PacketSource};
use crate::flow::FlowConfig;
use crate::pipeline::{self, PipelineConfig, Summary};
use crate::query::{self, Format, Printer};
use crate::store::{FlushHook, Recovery, Store, StoreWriter, WriterConfig};
use crate::time::{self, Nanos};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "flowkeep",
    version,
    about = "Packets to bidirectional flow records, kept in a compact store with exact retention",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read pcap/pcapng files into a store (as one continuous capture, in the order given).
    Replay(ReplayArgs),
    /// Capture live from an interface into a store until SIGINT/SIGTERM.
    Capture(CaptureArgs),
    /// Print the stored flow records whose time span overlaps a range and that match a
    /// filter expression.
    Query(QueryArgs),
    /// Top-N statistics (flows, packets, bytes) by address, port, protocol, pair or MAC, like
    /// `nfdump -s`.
    Stats(StatsArgs),
    /// Delete whole segments by age and store size, keeping what legal holds cover.
    Expire(admin::ExpireArgs),
    /// Legal holds: add, list, release.
    Hold(admin::HoldArgs),
    /// Check every segment's checksums and the store against its audit log.
    Verify(admin::VerifyArgs),
    /// Summarise a store: partitions, segments, records, bytes, time span, holds.
    Info(admin::InfoArgs),
    /// Send stored records elsewhere: an IPFIX collector (back-filling a central one), or
    /// Parquet files (one per partition) for columnar engines.
    Export(export::ExportArgs),
    /// Which MAC (and hostname) held an address at a time: from DHCP leases, else from the
    /// MACs on flows around that time. Exit status 1 when nothing is known.
    WhoHad(attribution::WhoHadArgs),
}

#[derive(Args, Debug, Clone)]
struct StoreArgs {
    /// Store directory (created when missing).
    #[arg(long, short = 's', value_name = "DIR")]
    store: PathBuf,
    /// Width of a time partition: one directory of segment files per window.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_positive_duration)]
    partition: Nanos,
    /// zstd compression level of segment blocks.
    #[arg(long, value_name = "LEVEL", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
    /// Records per block (testing: small blocks make many blocks).
    #[arg(long, value_name = "N", default_value_t = 8192, hide = true, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    block_records: u32,
    /// Do not store MAC addresses or DHCP hostnames (flow records and lease observations);
    /// every segment written records that they were not kept.
    #[arg(long)]
    no_mac: bool,
}

#[derive(Args, Debug, Clone)]
struct FlowArgs {
    /// A flow with no packet for this long ends.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    idle_timeout: Nanos,
    /// A flow open this long is written out and continues in a new record.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_positive_duration)]
    active_timeout: Nanos,
    /// How long a TCP flow lingers after both FINs or an RST.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    tcp_end_timeout: Nanos,
    /// Open flows kept in memory, for the whole process (split evenly across the workers);
    /// when full, the longest-idle flow is written out early with end reason `evicted`.
    /// The default bounds flow state to about 600 MB. 0 = no limit.
    #[arg(long, value_name = "N", default_value_t = 4_000_000)]
    max_flows: usize,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// Capture files (pcap or pcapng, any byte order and timestamp resolution).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    flow: FlowArgs,
    /// No progress bar, even on a terminal.
    #[arg(long, short = 'q')]
    quiet: bool,
    #[command(flatten)]
    retention: admin::RetentionArgs,
    /// Report on stderr each block once it is complete in its segment file
    /// (`flushed <file> block <n> records <k>`): it survives the process being killed.
    #[arg(long, short = 'v')]
    verbose: bool,
    #[command(flatten)]
    export: export::LiveExportArgs,
}

#[derive(Args, Debug)]
struct CaptureArgs {
    /// Interface to capture on (promiscuous). Repeat to capture several ports into one store:
    /// each record names the interface it was seen on, and the same conversation seen on two
    /// ports is two records.
    #[arg(long, short = 'i', value_name = "IF", required = true)]
    interface: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    flow: FlowArgs,
    /// BPF filter expression, as for tcpdump.
    #[arg(long, short = 'f', value_name = "BPF")]
    filter: Option<String>,
    /// Bytes captured per frame: headers only, payload is never stored.
    #[arg(long, value_name = "BYTES", default_value_t = 128, value_parser = clap::value_parser!(u32).range(64..=262_144))]
    snaplen: u32,
    /// Kernel capture ring (K/M/G = powers of 1024): what absorbs bursts while the reader
    /// is busy. At most 2G (libpcap's limit).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_buffer)]
    buffer: u32,
    /// Below a snap length of 1500, DHCP is read whole through a second capture handle per
    /// interface (DHCP ports only, within --filter; 2 MiB ring), for the lease observations;
    /// this goes without it: no leases are recorded from messages the snap length cuts.
    #[arg(long)]
    no_dhcp_handle: bool,
    #[command(flatten)]
    retention: admin::RetentionArgs,
    /// When started as root: open the capture, then run as this user (groups, gid and uid, as
    /// `tcpdump -Z`); the store must be writable by it. `root` keeps root (not advised).
    #[arg(long, short = 'Z', value_name = "NAME", default_value = "nobody")]
    user: String,
    /// Report on stderr each block once it is complete in its segment file
    /// (`flushed <file> block <n> records <k>`).
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Serve Prometheus metrics (packets, bytes, drops, flows, records, segments) over HTTP at
    /// this address, e.g. 127.0.0.1:9187. Off unless given; binds only there.
    #[arg(long, value_name = "IP:PORT")]
    metrics: Option<String>,
    #[command(flatten)]
    export: export::LiveExportArgs,
}

#[derive(Args, Debug)]
struct QueryArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// With jsonl: add `src_lease`/`dst_lease`, who held each address at the record's first
    /// time by the DHCP leases in the store (null when unknown).
    #[arg(long)]
    leases: bool,
}

/// Which records a query or statistics command looks at.
#[derive(Args, Debug)]
struct SelectArgs {
    /// Store directory.
    #[arg(long, short = 's', value_name = "DIR")]
    store: PathBuf,
    /// Records that end at or after this time: RFC 3339 (2026-11-26T10:00:00Z), a date
    /// (2026-11-26, midnight UTC), @SECONDS, now, or relative to now (-2h, -30d, -15m, -90s).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = check_query_time)]
    since: Option<String>,
    /// Records that start before this time (same forms as --since).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = check_query_time)]
    until: Option<String>,
    /// Print to stderr how many segments and blocks were read and skipped, and why.
    #[arg(long)]
    explain: bool,
    /// Filter expression, tcpdump-like, e.g. `host 198.51.100.23 and not port 53` (the words
    /// are joined with spaces). Primitives: [src|dst] host A, [src|dst] net A/LEN,
    /// [src|dst] port N, [src|dst] portrange A-B, proto NAME|N, vlan N, [src|dst] mac M,
    /// packets|bytes >|<|>=|<=|= N, flags LETTERS, end REASON; and, or, not, parentheses.
    #[arg(value_name = "EXPR")]
    expr: Vec<String>,
}

struct Selection {
    store: Store,
    since: Option<Nanos>,
    until: Option<Nanos>,
    filter: query::Filter,
}

impl SelectArgs {
    /// Reads the wall clock once, for relative times; parses the filter before opening the
    /// store, so a typo costs nothing.
    fn resolve(&self) -> Result<Selection> {
        let now = wall_clock();
        let at = |flag: &str, t: &Option<String>| -> Result<Option<Nanos>> {
            t.as_deref()
                .map(|t| time::parse_time_at(t, now).with_context(|| format!("--{flag}")))
                .transpose()
        };
        let (since, until) = (at("since", &self.since)?, at("until", &self.until)?);
        if let (Some(s), Some(u)) = (since, until) {
            if u <= s {
                bail!("--until must be later than --since");
            }
        }
        let filter = query::Filter::parse(&self.expr.join(" "))?;
        let store = Store::open(&self.store)?;
        print_recovery(store.recovery());
        Ok(Selection {
            store,
            since,
            until,
            filter,
        })
    }
}

#[derive(Args, Debug)]
struct StatsArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// What to count by. `host` and `mac` count each record for both of its addresses; `port`
    /// is the responder's port with its protocol; `pair` the two addresses, unordered.
    #[arg(long, value_enum)]
    by: query::stats::By,
    /// Rank by this (packets and bytes are both directions summed).
    #[arg(long, value_enum, default_value = "flows")]
    order: query::stats::Order,
    /// How many rows (0: all).
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// A time option: RFC 3339, a date, `@SECONDS`, `now` or relative to now (`-2h`), as for query.
fn parse_time(s: &str) -> Result<Nanos, String> {
    time::parse_time_at(s, wall_clock()).map_err(|e| e.reason)
}

/// A query time's form is checked while parsing arguments (a bad one is a usage error, status
/// 2); its value waits for the one wall-clock reading in [`SelectArgs::resolve`].
fn check_query_time(s: &str) -> Result<String, String> {
    time::parse_time_at(s, 0)
        .map(|_| s.to_string())
        .map_err(|e| e.reason)
}

fn parse_duration(s: &str) -> Result<Nanos, String> {
    time::parse_duration(s).map_err(|e| e.reason)
}

fn parse_buffer(s: &str) -> Result<u32, String> {
    let n = crate::retention::parse_size(s)?;
    if n < 1 << 20 {
        return Err("must be at least 1M".into());
    }
    // libpcap takes an int.
    u32::try_from(n)
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
        .ok_or_else(|| "must be less than 2G".into())
}

fn parse_positive_duration(s: &str) -> Result<Nanos, String> {
    match parse_duration(s)? {
        0 => Err("must be greater than zero".into()),
        ns => Ok(ns),
    }
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Replay(a) => replay(a),
        Command::Capture(a) => capture(a),
        Command::Query(a) => query(a),
        Command::Stats(a) => stats(a),
        Command::Expire(a) => admin::expire(a),
        Command::Hold(a) => admin::hold(a),
        Command::Verify(a) => admin::verify(a),
        Command::Info(a) => admin::info(a),
        Command::Export(a) => export::export(a),
        Command::WhoHad(a) => attribution::who_had(a),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("flowkeep: error: {}", error_text(&e));
            1
        }
    }
}

/// The error and its causes, `: `-separated, each said once: our errors name the path and
/// include their cause's text (`/x: No such file or directory`), so a cause whose text the
/// message already ends with is not repeated.
pub(super) fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// `flowkeep query | head` closes our stdout early: that is success, not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn pipeline_config(store: &StoreArgs, flow: &FlowArgs) -> PipelineConfig {
    let mut wcfg = WriterConfig::new(store.store.clone());
    wcfg.partition = store.partition;
    wcfg.zstd_level = store.zstd_level;
    wcfg.block_records = store.block_records as usize;
    wcfg.no_mac = store.no_mac;
    let mut cfg = PipelineConfig::new(wcfg);
    cfg.flow = FlowConfig {
        idle_timeout: flow.idle_timeout,
        active_timeout: flow.active_timeout,
        tcp_end_timeout: flow.tcp_end_timeout,
        max_flows: (flow.max_flows > 0).then_some(flow.max_flows),
    };
    if let Some(n) = flow.workers {
        cfg.workers = n.into();
    }
    cfg
}

/// One line per temporary segment of a dead writer that was sealed (or removed), and per one
/// that could not be.
fn print_recovery(r: &Recovery) {
    for s in &r.segments {
        eprintln!("flowkeep: {s}");
    }
    for p in &r.problems {
        eprintln!("flowkeep: warning: {p}");
    }
}

/// Before writing: seal what a writer that died left behind, and say so now rather than at the
/// end of the run. (The writers would do it too; this is only about when it is reported.)
/// An unusable store path is left for the writer to refuse, with its own clearer message.
fn recover_before_writing(dir: &std::path::Path) -> Result<()> {
    if let Ok(r) = crate::store::recover(dir) {
        print_recovery(&r);
    }
    Ok(())
}

fn report_flushes(cfg: &mut PipelineConfig) {
    cfg.store.on_flush = Some(FlushHook(Arc::new(|r| {
        eprintln!(
            "flushed {} block {} records {}",
            r.path.display(),
            r.block,
            r.records
        )
    })));
}

fn replay(a: ReplayArgs) -> Result<i32> {
    // A mistyped name is refused before anything is written: a store made of the files that
    // did open would look like an answer. Damage inside a file is another matter (read up to
    // it, counted, reported).
    for f in &a.files {
        std::fs::File::open(f)
            .with_context(|| format!("cannot read {}; nothing was written", f.display()))?;
    }
    let mut cfg = pipeline_config(&a.store, &a.flow);
    if a.verbose {
        report_flushes(&mut cfg);
    }
    recover_before_writing(&a.store.store)?;
    let live_export = export::LiveExport::start(&a.export, &mut cfg)?;
    let stop = AtomicBool::new(false);
    let bar = (!a.quiet && io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(a.files.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed} files {pos}/{len}, {msg} packets",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let mut progress = |frames: u64, files_done: usize| {
        if let Some(bar) = &bar {
            bar.set_position(files_done as u64);
            bar.set_message(frames.to_string());
        }
    };
    let started = Instant::now();
    let summary = pipeline::run(
        &cfg,
        pipeline::file_sources(&a.files),
        &stop,
        None,
        &mut progress,
    )
    .with_context(|| format!("replay into {}", a.store.store.display()))?;
    print_recovery(&summary.recovery);
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for e in &summary.source_errors {
        eprintln!("flowkeep: error: {e}");
    }
    print_summary(&summary, elapsed, &a.store.store)?;
    let exported = match live_export {
        Some(e) => e.finish(&mut cfg)?,
        None => true,
    };
    admin::after_replay(&a.store.store, &a.retention, summary.last_ts)?;
    Ok(if summary.source_errors.is_empty() && exported {
        0
    } else {
        1
    })
}

fn print_summary(s: &Summary, elapsed: f64, store: &std::path::Path) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let pps = if elapsed > 0.0 {
        s.frames as f64 / elapsed
    } else {
        0.0
    };
    writeln!(out, "packets        {}", s.frames)?;
    writeln!(out, "ip packets     {}", s.packets)?;
    writeln!(out, "ip bytes       {}", s.bytes)?;
    writeln!(out, "non-ip frames  {}", s.non_ip)?;
    writeln!(out, "malformed      {}", s.malformed)?;
    writeln!(
        out,
        "flows written  {}",
        s.store.records - s.store.records_lost
    )?;
    if s.flow.evictions > 0 {
        writeln!(
            out,
            "flows evicted  {} (written early: --max-flows was reached)",
            s.flow.evictions
        )?;
    }
    if s.store.records_lost + s.store.records_refused > 0 {
        writeln!(
            out,
            "flows lost     {} (could not be stored; see the errors above)",
            s.store.records_lost + s.store.records_refused
        )?;
    }
    if s.store.leases + s.dhcp_malformed > 0 {
        writeln!(
            out,
            "dhcp leases    {} observations stored, {} DHCP packets not parsed",
            s.store.leases, s.dhcp_malformed
        )?;
    }
    writeln!(out, "segments       {}", s.store.segments)?;
    writeln!(out, "store          {}", store.display())?;
    writeln!(out, "elapsed        {elapsed:.3} s")?;
    writeln!(out, "packets/s      {pps:.0}")?;
    out.flush()
}

fn wall_clock() -> Nanos {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}

fn capture(a: CaptureArgs) -> Result<i32> {
    let mut cfg = pipeline_config(&a.store, &a.flow);
    if a.verbose {
        report_flushes(&mut cfg);
    }
    if a.filter.as_deref().is_some_and(|f| {
        f.split_whitespace()
            .any(|w| w == "inbound" || w == "outbound")
    }) {
        // libpcap re-filters in user space the first ring block filled after a filter is set,
        // and its user-space BPF cannot read the packet type these words compile to: it
        // rejects every frame of that block, which the kernel has already counted received.
        eprintln!(
            "flowkeep: warning: --filter with inbound/outbound: libpcap discards the frames of \
             the first ring block after start (up to a few thousand) without counting them as \
             dropped; prefer a filter on addresses or MACs (see README, flowkeep capture)"
        );
    }
    let live: Vec<LiveConfig> = a
        .interface
        .iter()
        .map(|name| LiveConfig {
            interface: name.clone(),
            snaplen: a.snaplen,
            buffer_bytes: a.buffer,
            filter: a.filter.clone(),
            dhcp_handle: !a.no_dhcp_handle,
            ..LiveConfig::default()
        })
        .collect();
    let source = LiveSet::open(&live)?;
    cfg.store.interfaces = a.interface.clone();
    let interfaces = a.interface.join(",");
    // Bound while still root, so any port works; served only once root is gone.
    let metrics_listener = a.metrics.as_deref().map(metrics::bind).transpose()?;
    // Before any packet is read, any thread started or any store file touched.
    let user = match privs::drop_to(&a.user)? {
        privs::Outcome::NotRoot => None,
        privs::Outcome::KeptRoot => {
            eprintln!(
                "flowkeep: warning: running as root (--user {}): packets from the wire are decoded with every privilege",
                a.user
            );
            None
        }
        privs::Outcome::Dropped(acct) => Some(acct),
    };
    check_store_writable(&cfg, user.as_ref())?;
    let live_export = export::LiveExport::start(&a.export, &mut cfg)?;
    if let Some(listener) = metrics_listener {
        let mut m = crate::pipeline::metrics::Metrics::new(cfg.workers.max(1));
        if let Some(e) = &live_export {
            m = m.with_export(e.counters());
        }
        let m = Arc::new(m);
        let addr = listener
            .local_addr()
            .context("--metrics: the bound address")?;
        metrics::serve(
            listener,
            Arc::clone(&m),
            interfaces.clone(),
            a.store.store.clone(),
        )?;
        cfg.metrics = Some(m);
        eprintln!("flowkeep: metrics on http://{addr}/metrics");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    let rotate = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&rotate))
        .context("installing the signal handler")?;
    cfg.rotate = Some(rotate);
    // After every check that can fail, so a refusal stays one line.
    if source.dhcp_stats().is_some() {
        eprintln!(
            "flowkeep: DHCP read whole (snap length {}) by a second handle per interface, for the leases",
            crate::capture::DHCP_SNAPLEN
        );
    }
    eprintln!(
        "flowkeep: capturing on {} into {} (SIGINT or SIGTERM to stop, SIGHUP to seal segments)",
        interfaces,
        a.store.store.display()
    );
    let retention = admin::start_capture_retention(&a.store.store, &a.retention)?;
    let started = Instant::now();
    // Borrowed, not moved in: its per-interface counters are printed at the end.
    let mut source = source;
    let sources = std::iter::once(Ok(Box::new(&mut source) as Box<dyn PacketSource + '_>));
    let summary = pipeline::run(&cfg, sources, &stop, Some(wall_clock), &mut |_, _| {})
        .with_context(|| format!("capture into {}", a.store.store.display()))?;
    print_recovery(&summary.recovery);
    for e in &summary.source_errors {
        eprintln!("flowkeep: error: {e}");
    }
    print_summary(&summary, started.elapsed().as_secs_f64(), &a.store.store)?;
    let st = summary.source_stats;
    println!(
        "kernel         received {}, dropped {}, interface dropped {}",
        st.received, st.dropped_kernel, st.dropped_interface
    );
    if let Some(st) = source.dhcp_stats() {
        println!(
            "dhcp handle    received {}, dropped {}, interface dropped {}",
            st.received, st.dropped_kernel, st.dropped_interface
        );
    }
    if a.interface.len() > 1 {
        for (name, st) in source.interfaces().zip(source.interface_stats()) {
            println!(
                "  {name:<12} received {}, dropped {}, interface dropped {}",
                st.received, st.dropped_kernel, st.dropped_interface
            );
        }
    }
    if let Some(r) = retention {
        r.finish()?;
    }
    let exported = match live_export {
        Some(e) => e.finish(&mut cfg)?,
        None => true,
    };
    Ok(if summary.source_errors.is_empty() && exported {
        0
    } else {
        1
    })
}

/// Opens the store as the writers will (as the user capture now runs as), so an unwritable
/// directory is one clear line now rather than a failure deep in the pipeline. Also seals what
/// a writer that died left behind, and says so.
fn check_store_writable(cfg: &PipelineConfig, user: Option<&privs::Account>) -> Result<()> {
    let dir = &cfg.store.dir;
    match StoreWriter::create(cfg.store.clone()) {
        Ok(mut w) => {
            print_recovery(&w.take_recovery());
            Ok(())
        }
        Err(e) => match user {
            Some(u) => bail!(
                "store directory {} is not usable by user '{}' (uid {}), which capture runs as after dropping root: {e}; make it writable by that user or choose another with --user",
                dir.display(),
                u.name,
                u.uid
            ),
            None => Err(e).with_context(|| format!("opening the store {}", dir.display())),
        },
    }
}

fn default_format(format: Option<Format>, stdout: &io::Stdout) -> Format {
    format.unwrap_or(if stdout.is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    })
}

/// Exit status of a question (query, stats, export, who-had) answered from what could be read
/// while some stored data could not be: the answer may be missing records, and a script that
/// hands it on must be able to tell, not only a person reading the warnings.
pub(super) const INCOMPLETE: i32 = 3;

fn warn_incomplete(problems: usize) {
    eprintln!(
        "flowkeep: warning: the answer is incomplete: {problems} unreadable part(s) of the store \
         were skipped (see `flowkeep verify`)"
    );
}

/// Explains and reports the scan on stderr; returns the exit status it calls for: 0, or
/// [`INCOMPLETE`] when blocks or segments were skipped as unreadable.
fn after_scan(sel: &Selection, stats: &query::QueryStats, explain: bool) -> i32 {
    if explain {
        eprint!("{}", stats.explain(&sel.filter));
    }
    for p in &stats.scan.problems {
        eprintln!("flowkeep: warning: {p}");
    }
    let incomplete = !stats.scan.problems.is_empty();
    if incomplete {
        warn_incomplete(stats.scan.problems.len());
    }
    if !stats.scan.unsealed.is_empty() {
        eprintln!(
            "flowkeep: note: {} segment(s) still being written were read up to their last complete block",
            stats.scan.unsealed.len()
        );
    }
    if incomplete {
        INCOMPLETE
    } else {
        0
    }
}

fn query(a: QueryArgs) -> Result<i32> {
    let sel = a.select.resolve()?;
    let stdout = io::stdout();
    let format = default_format(a.format, &stdout);
    let out: Box<dyn Write> = if a.leases {
        attribution::lease_annotator(
            &sel.store,
            format,
            sel.until,
            io::BufWriter::new(stdout.lock()),
        )?
    } else {
        Box::new(io::BufWriter::new(stdout.lock()))
    };
    let mut printer = Printer::new(format, out);
    let stats = query::print_matching(&sel.store, sel.since, sel.until, &sel.filter, &mut printer)?;
    printer.finish()?;
    Ok(after_scan(&sel, &stats, a.select.explain))
}

fn stats(a: StatsArgs) -> Result<i32> {
    let sel = a.select.resolve()?;
    let (stats, q) = query::stats::gather(&sel.store, sel.since, sel.until, &sel.filter, a.by)?;
    let stdout = io::stdout();
    let format = default_format(a.format, &stdout);
    let mut out = io::BufWriter::new(stdout.lock());
    query::stats::print(&mut out, format, &stats, a.order, a.top)?;
    Ok(after_scan(&sel, &q, a.select.explain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_says_each_cause_once() {
        let io = io::Error::new(io::ErrorKind::NotFound, "No such file or directory");
        let e: anyhow::Error = crate::store::StoreError::io("/x", io).into();
        assert_eq!(error_text(&e), "/x: No such file or directory");
        let e = e.context("export to /y");
        assert_eq!(
            error_text(&e),
            "export to /y: /x: No such file or directory"
        );
        let e = anyhow::anyhow!("plain");
        assert_eq!(error_text(&e), "plain");
    }

    #[test]
    fn capture_buffer_sizes() {
        assert_eq!(parse_buffer("256M"), Ok(256 << 20));
        assert_eq!(parse_buffer("1M"), Ok(1 << 20));
        assert_eq!(parse_buffer("2047M"), Ok(2047 << 20));
        assert!(parse_buffer("2G").unwrap_err().contains("less than 2G"));
        assert!(parse_buffer("100K").unwrap_err().contains("at least 1M"));
        assert!(parse_buffer("lots").is_err());
    }

    #[test]
    fn capture_defaults() {
        let cli = Cli::try_parse_from(["flowkeep", "capture", "-i", "eth1", "-s", "/x"]).unwrap();
        let Command::Capture(a) = cli.command else {
            panic!("not capture")
        };
        assert_eq!(a.buffer, 256 << 20);
        assert_eq!(a.snaplen, 128);
        assert_eq!(a.user, "nobody");
        assert_eq!(a.metrics, None);
        assert_eq!(a.interface, ["eth1"]);
        assert!(!a.no_dhcp_handle);
        let cli =
            Cli::try_parse_from(["flowkeep", "capture", "-i", "a", "-i", "b", "-s", "/x"]).unwrap();
        let Command::Capture(a) = cli.command else {
            panic!("not capture")
        };
        assert_eq!(a.interface, ["a", "b"]);
        assert!(Cli::try_parse_from(["flowkeep", "capture", "-s", "/x"]).is_err());
    }
}
