//! The reader: the calling thread of [`super::run`]. It reads every source in turn, decodes
//! each frame, picks its worker by a symmetric hash (so both directions of a flow meet in one
//! worker), packs batches, and tells the workers the time: by packets, and on a quiet live
//! link by the clock.

use super::worker::WorkerLink;
use super::{PipelineConfig, Summary};
use crate::capture::{Next, Packet, PacketSource, PacketUse};
use crate::decode::{self, dhcp, DecodeError, Dispatcher};
use crate::time::{Clock, Nanos, NANOS_PER_SEC};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the reader goes on after a source's packet or idle spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Next packet of this source.
    Go,
    /// This source is done (its end, or its error); on to the next.
    NextSource,
    /// Stop reading altogether: asked to stop, or a worker is gone.
    Stop,
}

pub(super) struct Reader<'c> {
    cfg: &'c PipelineConfig,
    pub links: Vec<WorkerLink>,
    dispatcher: Dispatcher,
    /// Frames per batch before it is sent.
    batch_packets: u64,
    clock: Option<Clock>,
    /// The newest time known: packet time, or the clock's while a live source is idle.
    pub now: Nanos,
    /// The newest packet time not past `future_after`.
    pub trusted_now: Nanos,
    /// The newest packet time read (not the clock's): a frame stamped before it is reordered.
    newest_packet: Nanos,
    /// A packet stamped after this is counted in `future_packets`.
    future_after: Nanos,
    next_tick: Nanos,
    /// Stopping a live capture: read what the kernel already holds until this time.
    drain_until: Option<Nanos>,
    pub send_failed: bool,
    pub summary: Summary,
    pub sources_done: usize,
    /// Which reader this is, for the metrics: 0, or a fanout lane's index.
    pub lane: usize,
}

impl<'c> Reader<'c> {
    pub fn new(
        cfg: &'c PipelineConfig,
        links: Vec<WorkerLink>,
        clock: Option<Clock>,
        summary: Summary,
    ) -> Self {
        Reader {
            cfg,
            links,
            dispatcher: Dispatcher::new(),
            batch_packets: cfg.batch_packets.max(1) as u64,
            clock,
            now: Nanos::MIN,
            trusted_now: Nanos::MIN,
            newest_packet: Nanos::MIN,
            future_after: future_after(cfg),
            next_tick: Nanos::MIN,
            drain_until: None,
            send_failed: false,
            summary,
            sources_done: 0,
            lane: 0,
        }
    }

    /// Reads one source until it ends, fails, or the reader must stop.
    pub fn read(
        &mut self,
        source: &mut dyn PacketSource,
        stop: &AtomicBool,
        progress: super::Progress<'_>,
    ) -> Step {
        loop {
            let step = self.check_stop(source, stop);
            if step != Step::Go {
                return step;
            }
            let mut usage = PacketUse::FlowsAndLeases;
            let step = match source.next_packet_for(&mut usage) {
                Ok(Next::Packet(pkt)) if usage == PacketUse::Leases => {
                    self.lease_copy(&pkt);
                    Step::Go
                }
                Ok(Next::Packet(pkt)) => {
                    let (w, pushed) = self.take(&pkt, usage);
                    if pushed {
                        // After the last use of the frame, which borrows the source.
                        let interface = source.interface();
                        if let Some(meta) = self.links[w].filling.metas.last_mut() {
                            meta.interface = interface;
                        }
                    }
                    self.after_frame(w, source, progress)
                }
                Ok(Next::Idle) if self.drain_until.is_some() => {
                    self.note_drops(source);
                    Step::Stop
                }
                Ok(Next::Idle) => self.idle(source),
                Ok(Next::End) => Step::NextSource,
                Err(e) => {
                    self.summary.source_errors.push(e);
                    Step::NextSource
                }
            };
            if step != Step::Go {
                return step;
            }
        }
    }

    /// Stopping: what the kernel already holds was seen on the wire, so a live source is read
    /// until the link goes quiet (or for a second at most, on a busy link); a file stops now.
    fn check_stop(&mut self, source: &dyn PacketSource, stop: &AtomicBool) -> Step {
        if self.drain_until.is_none() && stop.load(Ordering::Relaxed) {
            let Some(clock) = self.clock else {
                self.note_drops(source);
                return Step::Stop;
            };
            self.drain_until = Some(clock().saturating_add(NANOS_PER_SEC));
        }
        if let (Some(deadline), Some(clock)) = (self.drain_until, self.clock) {
            if self.summary.frames % 4096 == 0 && clock() >= deadline {
                self.note_drops(source);
                return Step::Stop;
            }
        }
        Step::Go
    }

    /// A whole copy of a DHCP frame the main handle delivers (cut) for the flows: not a frame
    /// of its own, and leases need no particular worker.
    fn lease_copy(&mut self, pkt: &Packet<'_>) {
        self.now = self.now.max(pkt.ts);
        if let Ok(meta) = decode::decode(pkt) {
            let b = &mut self.links[0].filling;
            if dhcp::collect_leases(&meta, pkt, &mut b.leases) {
                b.dhcp_malformed += 1;
            }
        }
    }

    /// Decodes a frame into its worker's batch (or counts it there, when it holds no packet);
    /// DHCP messages are read here, while the frame's bytes are at hand. Returns the worker and
    /// whether a packet was added (decoded in place: a `PacketMeta` is too big to move around
    /// per packet).
    #[inline]
    fn take(&mut self, pkt: &Packet<'_>, usage: PacketUse) -> (usize, bool) {
        self.summary.frames += 1;
        if pkt.ts < self.newest_packet {
            self.summary.reordered += 1;
        }
        self.newest_packet = self.newest_packet.max(pkt.ts);
        self.now = self.now.max(pkt.ts);
        if pkt.ts > self.future_after {
            self.summary.future_packets += 1;
        } else {
            self.trusted_now = self.trusted_now.max(pkt.ts);
        }
        self.summary.first_ts = Some(self.summary.first_ts.map_or(pkt.ts, |t| t.min(pkt.ts)));
        let decoded = decode::decode(pkt);
        let workers = self.links.len();
        // One worker takes everything: no need for a hash. Frames without a packet are only
        // counted, by worker 0.
        let w = match &decoded {
            Ok(meta) if workers > 1 => (self.dispatcher.hash_meta(meta) % workers as u64) as usize,
            _ => 0,
        };
        let b = &mut self.links[w].filling;
        match decoded {
            Ok(meta) => {
                if usage == PacketUse::FlowsAndLeases
                    && dhcp::collect_leases(&meta, pkt, &mut b.leases)
                {
                    b.dhcp_malformed += 1;
                }
                b.metas.push(meta);
                (w, true)
            }
            Err(DecodeError::NotIp) => {
                b.non_ip += 1;
                (w, false)
            }
            Err(DecodeError::Malformed(_)) => {
                b.malformed += 1;
                (w, false)
            }
        }
    }

    /// After a frame: sends its worker's batch when full, and on a live source ticks once a
    /// second of packet time.
    #[inline]
    fn after_frame(
        &mut self,
        w: usize,
        source: &dyn PacketSource,
        progress: super::Progress<'_>,
    ) -> Step {
        let link = &mut self.links[w];
        if link.filling.frames() >= self.batch_packets && !link.send(self.now) {
            self.send_failed = true;
            return Step::Stop;
        }
        // Live: every worker hears of each new second even on a slow link that never fills a
        // batch, so it can expire flows and flush its open segments.
        if self.clock.is_some() && self.now >= self.next_tick {
            self.next_tick = self.now.saturating_add(NANOS_PER_SEC);
            self.note_drops(source);
            if self.tick() == Step::Stop {
                return Step::Stop;
            }
        }
        if self.summary.frames % 65_536 == 0 {
            progress(
                self.summary.frames,
                self.sources_done,
                source.position().unwrap_or(0),
            );
        }
        Step::Go
    }

    /// A quiet live link: hand over what is waiting and let time move on.
    fn idle(&mut self, source: &dyn PacketSource) -> Step {
        if let Some(clock) = self.clock {
            self.now = self.now.max(clock());
        }
        self.note_drops(source);
        self.tick()
    }

    /// Once a second or when idle: publish the reader's counters, pass a rotation request to
    /// every worker, and send every worker its batch (even an empty one: it carries the time).
    fn tick(&mut self) -> Step {
        self.future_after = future_after(self.cfg);
        if let Some(m) = &self.cfg.metrics {
            let st = &self.summary.source_stats;
            m.publish_reader(
                self.lane,
                &super::metrics::ReaderTotals {
                    frames: self.summary.frames,
                    kernel_drops: st.dropped_kernel,
                    interface_drops: st.dropped_interface,
                    future_packets: self.summary.future_packets,
                },
            );
        }
        if self
            .cfg
            .rotate
            .as_ref()
            .is_some_and(|r| r.swap(false, Ordering::Relaxed))
        {
            for link in &mut self.links {
                link.filling.seal = true;
            }
        }
        self.send_all()
    }

    /// Sends every worker its batch. Stops at the first worker that is gone.
    pub fn send_all(&mut self) -> Step {
        for link in &mut self.links {
            if !link.send(self.now) {
                self.send_failed = true;
                return Step::Stop;
            }
        }
        Step::Go
    }

    /// Adds the source's new drops since the last look to worker 0's batch. Counters only
    /// grow; a source whose counters restart (a new source) starts from zero.
    pub fn note_drops(&mut self, source: &dyn PacketSource) {
        let now = source.stats();
        let last = &mut self.summary.source_stats;
        let drops = &mut self.links[0].filling.drops;
        let delta = |n: u64, l: u64| if n >= l { n - l } else { n };
        drops.received += delta(now.received, last.received);
        drops.dropped_kernel += delta(now.dropped_kernel, last.dropped_kernel);
        drops.dropped_interface += delta(now.dropped_interface, last.dropped_interface);
        *last = now;
    }
}

/// The latest packet time trusted now: the wall clock plus the tolerance.
fn future_after(cfg: &PipelineConfig) -> Nanos {
    cfg.wall_clock
        .map_or(Nanos::MAX, |c| c().saturating_add(super::CLOCK_TOLERANCE))
}
