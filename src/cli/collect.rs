//! The commands that write a store: `replay` (capture files) and `capture` (live interfaces).

use super::admin::after_replay;
use super::anonymize::{run_tiers, Tiers};
use super::args::{CaptureArgs, FanoutArg, LiveExportArgs, ReplayArgs};
use super::config::{live_configs, pipeline_config};
use super::evidence::Signer;
use super::export::print_live_summary;
use super::{error_text, print_recovery, wall_clock};
use anyhow::{bail, Context, Result};
use flowkeep::capture::{is_nflog_device, LiveSet, PacketSource, DHCP_SNAPLEN};
use flowkeep::export::IpfixTarget;
use flowkeep::pipeline::housekeeping::Finished;
use flowkeep::pipeline::metrics::{self, Endpoint, Snapshot};
use flowkeep::pipeline::{
    self, Housekeeping, HousekeepingConfig, Periodic, PipelineConfig, Summary,
};
use flowkeep::privs;
use flowkeep::store::{FlushHook, StoreWriter, MARKER_NAME};
use flowkeep::time::{format_rfc3339, Nanos, NANOS_PER_SEC};
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// Before writing: seal what a writer that died left behind, and say so now rather than at the
/// end of the run. (The writers would do it too; this is only about when it is reported.)
/// An unusable store path is left for the writer to refuse, with its own clearer message.
fn recover_before_writing(dir: &Path) {
    if let Ok(r) = flowkeep::store::recover(dir) {
        print_recovery(&r);
    }
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

/// `--export`: the exporter for the housekeeping threads, and its target for the summary.
fn live_export(a: &LiveExportArgs, hk: &mut HousekeepingConfig) -> Result<Option<IpfixTarget>> {
    Ok(a.exporter()?.map(|(exporter, target)| {
        hk.export = Some(exporter);
        eprintln!("flowkeep: exporting records to {target}");
        target
    }))
}

/// Prints what the exporter did; false when records could not be sent.
fn report_export(finished: &Finished, target: Option<&IpfixTarget>) -> io::Result<bool> {
    match (&finished.export, target) {
        (Some(st), Some(target)) => {
            print_live_summary(st, target)?;
            Ok(st.records_failed == 0)
        }
        _ => Ok(true),
    }
}

/// Refuses a capture path that cannot be read before anything is written. A pipe or FIFO is
/// not opened here: opening a FIFO waits for its writer, and what is read from a pipe is gone.
fn check_capture_path(f: &Path) -> Result<()> {
    if f == Path::new("-") {
        return Ok(());
    }
    let meta = std::fs::metadata(f)
        .with_context(|| format!("cannot read {}; nothing was written", f.display()))?;
    if meta.is_dir() {
        bail!(
            "{} is a directory, not a capture file; nothing was written",
            f.display()
        );
    }
    if meta.is_file() {
        std::fs::File::open(f)
            .with_context(|| format!("cannot read {}; nothing was written", f.display()))?;
    }
    Ok(())
}

pub(super) fn replay(a: ReplayArgs) -> Result<i32> {
    // A mistyped name is refused before anything is written: a store made of the files that
    // did open would look like an answer. Damage inside a file is another matter (read up to
    // it, counted, reported).
    for f in &a.files {
        check_capture_path(f)?;
    }
    let signer = Signer::new(&a.signing, &a.store.store)?;
    let tiers = Tiers::from_args(&a.retention)?;
    let mut cfg = pipeline_config(&a.store, &a.flow);
    if a.verbose {
        report_flushes(&mut cfg);
    }
    recover_before_writing(&a.store.store);
    let mut hk = HousekeepingConfig::default();
    let target = live_export(&a.export, &mut hk)?;
    let housekeeping = Housekeeping::start(hk, &mut cfg, wall_clock)?;
    let stop = AtomicBool::new(false);
    let (bar, sizes) = replay_bar(&a.files, a.quiet);
    let started_bar = Instant::now();
    let mut progress = |frames: u64, files_done: usize, position: u64| {
        if let Some(bar) = &bar {
            let done: u64 = sizes.iter().take(files_done).sum();
            bar.set_position(
                done + if files_done < sizes.len() {
                    position
                } else {
                    0
                },
            );
            let secs = started_bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{frames} packets, {:.2} M/s, file {}/{}",
                frames as f64 / secs / 1e6,
                (files_done + 1).min(sizes.len().max(1)),
                sizes.len().max(a.files.len())
            ));
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
    .with_context(|| format!("replay into {}", a.store.store.display()));
    let finished = housekeeping.finish(&mut cfg);
    let summary = summary?;
    print_recovery(&summary.recovery);
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for e in &summary.source_errors {
        eprintln!("flowkeep: error: {e}");
    }
    warn_future(&summary);
    // A closed stdout (`replay ... | head`) hides the summary, not what happened: retention
    // still runs, the store is still signed, and the exit status still says what was lost.
    let shown = print_summary(&summary, elapsed, &a.store.store)
        .and_then(|()| report_export(&finished, target.as_ref()));
    let exported = finished
        .export
        .as_ref()
        .is_none_or(|st| st.records_failed == 0);
    let shown = match shown {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => false,
        r => r.map(|_| true)?,
    };
    let (mut stdout, mut sink) = (io::stdout().lock(), io::sink());
    let out: &mut dyn Write = if shown { &mut stdout } else { &mut sink };
    let times = (summary.trusted_last_ts, summary.future_packets);
    let expired = after_replay(&a.store.store, tiers.as_ref(), times, wall_clock(), out);
    if let Some(s) = signer {
        s.sign_if_changed()?;
    }
    match expired {
        Err(e) if !super::is_broken_pipe(&e) => Err(e),
        _ => Ok(exit_status(&summary, exported)),
    }
}

/// `capture`'s status: on a terminal one line a second, rewritten in place; to a log (journald)
/// one line a minute.
fn status_line(on_terminal: bool) -> pipeline::Status {
    let mut last: Option<(u64, Nanos)> = None;
    pipeline::Status {
        every: if on_terminal { 1 } else { 60 } * NANOS_PER_SEC,
        report: Box::new(move |s, now| {
            let line = status_text(s, last, now);
            last = Some((s.frames, now));
            if on_terminal {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
        }),
    }
}

/// The status line of `s` at `now`; the frame rate is over the time since `last` (frames and
/// time of the line before; none for the first line, whose rate is 0).
fn status_text(s: &Snapshot, last: Option<(u64, Nanos)>, now: Nanos) -> String {
    let rate = last.map_or(0.0, |(frames, then)| {
        let secs = (now - then).max(1) as f64 / NANOS_PER_SEC as f64;
        s.frames.saturating_sub(frames) as f64 / secs
    });
    format!(
        "flowkeep: {rate:.0} frames/s, {} frames, {} dropped, {} active flows, {} records, {} written",
        s.frames,
        s.kernel_drops + s.interface_drops,
        s.workers.active_flows,
        s.workers.records_written,
        human_bytes(s.workers.store_bytes)
    )
}

/// Bytes in binary units, one decimal: `5.2 MiB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let (mut v, mut i) = (n as f64 / 1024.0, 0);
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}

/// `replay`'s progress on a terminal (none with `--quiet` or when stderr is not one): a bar of
/// bytes read over the files' total, with percent, packets, packets/s and ETA; a spinner when a
/// file's size is unknown (a pipe, stdin). The sizes, when known, per file.
fn replay_bar(
    files: &[std::path::PathBuf],
    quiet: bool,
) -> (Option<indicatif::ProgressBar>, Vec<u64>) {
    if quiet || !io::stderr().is_terminal() {
        return (None, Vec::new());
    }
    let sizes: Option<Vec<u64>> = files
        .iter()
        .map(|f| {
            flowkeep::fs::metadata(f)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len())
        })
        .collect();
    let Some(sizes) = sizes else {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        return (Some(bar), Vec::new());
    };
    let bar = indicatif::ProgressBar::new(sizes.iter().sum());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed} [{wide_bar}] {bytes}/{total_bytes} {percent}% ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    (Some(bar), sizes)
}

/// Packets stamped after the wall clock: a capture box's clock or a file is wrong. Their flows
/// are stored as stamped; the time is never taken from them.
fn warn_future(s: &Summary) {
    if s.future_packets > 0 {
        eprintln!(
            "flowkeep: warning: {} packets stamped more than {} s after the wall clock (newest {}): \
             stored as stamped, but never taken as the time (retention's now)",
            s.future_packets,
            pipeline::CLOCK_TOLERANCE / NANOS_PER_SEC,
            s.last_ts.map_or_else(String::new, format_rfc3339)
        );
    }
}

/// 1 when a source was damaged, records could not be exported, or anything read was not
/// stored (a flow record or a DHCP lease observation: data lost is never a success).
fn exit_status(s: &Summary, exported: bool) -> i32 {
    let lost = s.store.records_lost + s.store.records_refused + s.store.leases_lost;
    if s.source_errors.is_empty() && exported && lost == 0 {
        0
    } else {
        1
    }
}

fn print_summary(s: &Summary, elapsed: f64, store: &Path) -> io::Result<()> {
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
    let lost = s.store.records_lost + s.store.records_refused;
    if lost > 0 {
        // The same number as the store's `records not stored` (flowkeep info), unless the
        // disk stayed full until no segment could be written to count the last of them in.
        let uncounted = match s.store.not_stored_uncounted {
            0 => String::new(),
            n => format!(
                "; {n} of them are missing from the store's 'records not stored' too: no segment \
                 could be written after they were lost to count them in"
            ),
        };
        writeln!(
            out,
            "flows lost     {lost} (could not be stored; see the errors above{uncounted})"
        )?;
    }
    if s.future_packets > 0 {
        writeln!(
            out,
            "future packets {} (stamped after the wall clock; see the warning above)",
            s.future_packets
        )?;
    }
    if s.reordered > 0 {
        writeln!(
            out,
            "out of order   {} (stamped before a packet read earlier; each joined its flow as \
             stamped, so a record may span the jump)",
            s.reordered
        )?;
    }
    if s.store.leases_lost > 0 {
        writeln!(
            out,
            "leases lost    {} DHCP lease observations (could not be stored; see the errors above)",
            s.store.leases_lost
        )?;
    }
    if s.store.leases + s.dhcp_malformed > 0 {
        writeln!(
            out,
            "dhcp leases    {} observations stored, {} DHCP packets not parsed",
            s.store.leases - s.store.leases_lost,
            s.dhcp_malformed
        )?;
    }
    writeln!(out, "segments       {}", s.store.segments)?;
    writeln!(out, "store          {}", store.display())?;
    writeln!(out, "elapsed        {elapsed:.3} s")?;
    writeln!(out, "packets/s      {pps:.0}")?;
    out.flush()
}

/// libpcap re-filters in user space the first ring block filled after a filter is set, and
/// its user-space BPF cannot read the packet type these words compile to: it rejects every
/// frame of that block, which the kernel has already counted received.
fn warn_inbound_outbound(filter: Option<&str>) {
    if filter.is_some_and(|f| {
        f.split_whitespace()
            .any(|w| w == "inbound" || w == "outbound")
    }) {
        eprintln!(
            "flowkeep: warning: --filter with inbound/outbound: libpcap discards the frames of \
             the first ring block after start (up to a few thousand) without counting them as \
             dropped; prefer a filter on addresses or MACs (see README, flowkeep capture)"
        );
    }
}

/// Gives up root (before any packet is read, any thread started or any store file touched);
/// the account it became, when it did.
fn drop_root(user: &str) -> Result<Option<privs::Account>> {
    Ok(match privs::drop_to(user)? {
        privs::Outcome::NotRoot => None,
        privs::Outcome::KeptRoot => {
            eprintln!(
                "flowkeep: warning: running as root (--user {user}): packets from the wire are decoded with every privilege"
            );
            None
        }
        privs::Outcome::Dropped(acct) => Some(acct),
    })
}

/// SIGINT and SIGTERM stop the capture; SIGHUP asks for rotation.
fn signals(cfg: &mut PipelineConfig) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    let rotate = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&rotate))
        .context("installing the signal handler")?;
    cfg.rotate = Some(rotate);
    Ok(stop)
}

/// Capture's retention: once at startup, then every minute of wall time while the capture
/// runs (expire only touches sealed segments, which writers never change), and once more at
/// exit.
fn capture_retention(dir: &Path, tiers: Option<Tiers>) -> Result<Option<Periodic>> {
    let Some(tiers) = tiers else {
        return Ok(None);
    };
    if dir.join(MARKER_NAME).exists() {
        run_tiers(dir, &tiers, wall_clock(), false, &mut io::stderr().lock())?;
    }
    let dir = dir.to_path_buf();
    Ok(Some(Periodic {
        name: "retention",
        every: 60 * NANOS_PER_SEC,
        job: Box::new(move |now| {
            if let Err(e) = run_tiers(&dir, &tiers, now, false, &mut io::stderr().lock()) {
                eprintln!("flowkeep: retention: {}", error_text(&e));
            }
        }),
    }))
}

pub(super) fn capture(a: CaptureArgs) -> Result<i32> {
    let mut cfg = pipeline_config(&a.store, &a.flow);
    if a.verbose {
        report_flushes(&mut cfg);
    }
    warn_inbound_outbound(a.filter.as_deref());
    // Read as root, before privileges go: the key file is its owner's alone.
    let signer = Signer::new(&a.signing, &a.store.store)?.map(Arc::new);
    let tiers = Tiers::from_args(&a.retention)?;
    let lanes = fanout_lanes(&a, cfg.workers)?;
    let mut sources = LiveSet::open_lanes(&live_configs(&a), lanes, wall_clock)?;
    cfg.store.interfaces = a.interface.clone();
    let interfaces = a.interface.join(",");
    let on_terminal = io::stderr().is_terminal();
    let mut hk = HousekeepingConfig {
        metrics: metrics_endpoint(&a, &interfaces)?,
        status: (!a.quiet).then(|| status_line(on_terminal)),
        ..HousekeepingConfig::default()
    };
    let user = drop_root(&a.user)?;
    check_store_writable(&cfg, user.as_ref())?;
    let target = live_export(&a.export, &mut hk)?;
    let stop = signals(&mut cfg)?;
    hk.periodic
        .extend(capture_retention(&a.store.store, tiers.clone())?);
    hk.periodic.extend(
        signer
            .clone()
            .map(|s| checkpoint_job(s, a.checkpoint_interval)),
    );
    let housekeeping = Housekeeping::start(hk, &mut cfg, wall_clock)?;
    if let Some(addr) = housekeeping.metrics_addr() {
        eprintln!("flowkeep: metrics on http://{addr}/metrics");
    }
    // After every check that can fail, so a refusal stays one line.
    announce(&sources, &interfaces, &a.store.store);
    let started = Instant::now();
    // Borrowed, not moved in: their per-interface counters are printed at the end.
    let summary = if lanes > 1 {
        pipeline::run_lanes(&cfg, &mut sources, &stop, wall_clock)
    } else {
        let one = sources
            .iter_mut()
            .map(|s| Ok(Box::new(s) as Box<dyn PacketSource + '_>));
        pipeline::run(&cfg, one, &stop, Some(wall_clock), &mut |_, _, _| {})
    }
    .with_context(|| format!("capture into {}", a.store.store.display()));
    let finished = housekeeping.finish(&mut cfg);
    if on_terminal && !a.quiet {
        // The status line is rewritten in place: clear it before the summary.
        eprint!("\r\x1b[2K");
    }
    let summary = summary?;
    print_recovery(&summary.recovery);
    for e in &summary.source_errors {
        eprintln!("flowkeep: error: {e}");
    }
    warn_future(&summary);
    // As for replay: a closed stdout hides the summary, never the exit status.
    let shown = match print_summary(&summary, started.elapsed().as_secs_f64(), &a.store.store) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => false,
        r => r.map(|()| true)?,
    };
    if shown {
        print_capture_counters(&summary, &sources, a.interface.len() > 1);
    }
    if let Some(tiers) = &tiers {
        run_tiers(
            &a.store.store,
            tiers,
            wall_clock(),
            false,
            &mut io::stderr().lock(),
        )?;
    }
    if let Some(s) = signer {
        s.sign_if_changed()?;
    }
    let exported = match report_export(&finished, target.as_ref()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            finished.export.is_none_or(|st| st.records_failed == 0)
        }
        r => r?,
    };
    Ok(exit_status(&summary, exported))
}

/// Bound while still root, so any port works; served only once root is gone.
fn metrics_endpoint(a: &CaptureArgs, interfaces: &str) -> Result<Option<Endpoint>> {
    a.metrics
        .as_deref()
        .map(|addr| -> Result<Endpoint> {
            Ok(Endpoint {
                listener: metrics::bind(addr)?,
                interface: interfaces.to_string(),
                store: a.store.store.clone(),
            })
        })
        .transpose()
}

/// Signs a checkpoint every `every` when the store changed; a failure is said and retried.
fn checkpoint_job(s: Arc<Signer>, every: Nanos) -> Periodic {
    Periodic {
        name: "checkpoint",
        every,
        job: Box::new(move |_| {
            if let Err(e) = s.sign_if_changed() {
                eprintln!("flowkeep: checkpoint: {}", error_text(&e));
            }
        }),
    }
}

/// What `capture` says on stderr once it is about to read: the handles it opened and how.
fn announce(sources: &[LiveSet], interfaces: &str, store: &Path) {
    if sources.first().is_some_and(|s| s.dhcp_stats().is_some()) {
        eprintln!(
            "flowkeep: DHCP read whole (snap length {DHCP_SNAPLEN}) by a second handle per interface, for the leases"
        );
    }
    if sources.len() > 1 {
        eprintln!(
            "flowkeep: {} workers, each reading its own ring of every interface (fanout)",
            sources.len()
        );
    }
    eprintln!(
        "flowkeep: capturing on {interfaces} into {} (SIGINT or SIGTERM to stop, SIGHUP to seal segments)",
        store.display()
    );
}

/// How many fanout lanes `capture` runs: 1 is the single reader.
fn fanout_lanes(a: &CaptureArgs, workers: usize) -> Result<usize> {
    let nflog = a.interface.iter().find(|i| is_nflog_device(i));
    Ok(match (a.fanout, nflog) {
        (FanoutArg::Off, _) => 1,
        (FanoutArg::On, Some(i)) => bail!(
            "--fanout on: {i} is a netfilter log group, which has a single listener and cannot be spread over workers; use --fanout off or auto"
        ),
        (FanoutArg::Auto, Some(_)) => 1,
        (_, None) => workers.max(1),
    })
}

/// The kernel's counters for the run: the main handles', the DHCP handles', and with several
/// interfaces each one's own (summed over a fanout's rings).
fn print_capture_counters(summary: &Summary, sources: &[LiveSet], each: bool) {
    let st = summary.source_stats;
    println!(
        "kernel         received {}, dropped {}, interface dropped {}",
        st.received, st.dropped_kernel, st.dropped_interface
    );
    if sources.len() > 1 {
        let discarded: u64 = sources.iter().map(LiveSet::discarded).sum();
        // How evenly the kernel spread the frames: an operator tuning workers looks here.
        let per_ring: Vec<String> = sources
            .iter()
            .map(|s| {
                let received: u64 = s.interface_stats().iter().map(|st| st.received).sum();
                received.to_string()
            })
            .collect();
        println!(
            "fanout         {} rings per interface, received {}; {discarded} frames from before the last ring joined discarded",
            sources.len(),
            per_ring.join(" / ")
        );
    }
    let Some(source) = sources.first() else {
        return;
    };
    if let Some(st) = source.dhcp_stats() {
        println!(
            "dhcp handle    received {}, dropped {}, interface dropped {}",
            st.received, st.dropped_kernel, st.dropped_interface
        );
    }
    if each {
        let mut per_interface = source.interface_stats();
        for other in sources.iter().skip(1) {
            for (sum, st) in per_interface.iter_mut().zip(other.interface_stats()) {
                sum.received += st.received;
                sum.dropped_kernel += st.dropped_kernel;
                sum.dropped_interface += st.dropped_interface;
            }
        }
        for (name, st) in source.interfaces().zip(per_interface) {
            println!(
                "  {name:<12} received {}, dropped {}, interface dropped {}",
                st.received, st.dropped_kernel, st.dropped_interface
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use flowkeep::pipeline::metrics::{Snapshot, WorkerTotals};

    #[test]
    fn the_status_line_gives_the_rate_since_the_last_line() {
        let s = Snapshot {
            frames: 3_000_500,
            kernel_drops: 7,
            interface_drops: 3,
            workers: WorkerTotals {
                active_flows: 4512,
                records_written: 10_203,
                store_bytes: 5 * 1024 * 1024 + 200 * 1024,
                ..WorkerTotals::default()
            },
            ..Snapshot::default()
        };
        let t = 1_767_225_600 * NANOS_PER_SEC;
        assert_eq!(
            status_text(&s, Some((500, t - 2 * NANOS_PER_SEC)), t),
            "flowkeep: 1500000 frames/s, 3000500 frames, 10 dropped, 4512 active flows, \
             10203 records, 5.2 MiB written"
        );
        assert!(status_text(&s, None, t).starts_with("flowkeep: 0 frames/s,"));
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
    }
}
