//! Arguments into the library's configurations. Kept apart from the commands (as ripgrep keeps
//! its low-level arguments apart from the high-level settings), so that another source of
//! settings, a config file, can build the same configurations.

use super::args::{
    CaptureArgs, FlowArgs, IpfixArgs, LiveExportArgs, RetentionArgs, SelectArgs, StoreArgs,
};
use anyhow::{anyhow, bail, Context, Result};
use flowkeep::capture::LiveConfig;
use flowkeep::export::ipfix::{IpfixConfig, TemplateRefresh};
use flowkeep::export::{IpfixExporter, IpfixTarget};
use flowkeep::flow::FlowConfig;
use flowkeep::pipeline::PipelineConfig;
use flowkeep::query;
use flowkeep::retention::Policy;
use flowkeep::store::{Store, WriterConfig};
use flowkeep::time::{self, Nanos, NANOS_PER_SEC};
use std::path::PathBuf;

pub(super) fn pipeline_config(store: &StoreArgs, flow: &FlowArgs) -> PipelineConfig {
    let mut wcfg = WriterConfig::new(store.store.clone());
    wcfg.partition = store.partition;
    wcfg.zstd_level = store.zstd_level;
    wcfg.block_records = store.block_records as usize;
    wcfg.no_mac = store.no_mac;
    // Every segment sealed is offered to the standing filtered holds (forward-looking holds).
    wcfg.on_seal = Some(flowkeep::preserve::Catcher::new(&store.store).hook());
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
    cfg.wall_clock = Some(super::wall_clock);
    cfg
}

/// One capture configuration per `--interface`.
pub(super) fn live_configs(a: &CaptureArgs) -> Vec<LiveConfig> {
    a.interface
        .iter()
        .map(|name| LiveConfig {
            interface: name.clone(),
            snaplen: a.snaplen,
            buffer_bytes: a.buffer,
            filter: a.filter.clone(),
            dhcp_handle: !a.no_dhcp_handle,
            ..LiveConfig::default()
        })
        .collect()
}

impl RetentionArgs {
    /// `None` when neither limit was given: nothing to expire.
    pub(super) fn policy(&self) -> Option<Policy> {
        (self.retention.is_some() || self.max_size.is_some()).then_some(Policy {
            retention: self.retention,
            max_size: self.max_size,
        })
    }
}

impl IpfixArgs {
    pub(super) fn config(&self, tcp: bool) -> IpfixConfig {
        let refresh = if tcp {
            TemplateRefresh::Once
        } else {
            TemplateRefresh::Every {
                seconds: u32::try_from(self.template_refresh / NANOS_PER_SEC).unwrap_or(u32::MAX),
                messages: self.template_refresh_messages,
            }
        };
        IpfixConfig {
            observation_domain: self.observation_domain,
            max_message: self.ipfix_message_size,
            biflow: !self.unidirectional,
            refresh,
        }
    }
}

impl LiveExportArgs {
    /// The exporter `--export` asks for (opened: the target resolved, a UDP socket bound), and
    /// its target; `None` without `--export`.
    pub(super) fn exporter(&self) -> Result<Option<(IpfixExporter, IpfixTarget)>> {
        let Some(to) = &self.export else {
            return Ok(None);
        };
        let target = match IpfixTarget::parse(to) {
            Some(t) => t.map_err(|e| anyhow!("--export {e}"))?,
            None => {
                bail!("--export '{to}': expected ipfix+udp://HOST:PORT or ipfix+tcp://HOST:PORT")
            }
        };
        let exporter = IpfixExporter::open(&target, self.ipfix.config(target.tcp))?;
        Ok(Some((exporter, target)))
    }
}

/// Where `export --to` points.
pub(super) enum ExportTarget {
    Ipfix(IpfixTarget),
    Parquet(PathBuf),
}

pub(super) fn parse_target(s: &str) -> Result<ExportTarget> {
    if let Some(t) = IpfixTarget::parse(s) {
        return t.map(ExportTarget::Ipfix).map_err(|e| anyhow!(e));
    }
    if let Some(dir) = s.strip_prefix("parquet:") {
        if dir.is_empty() {
            bail!("--to parquet: needs a directory, e.g. parquet:/srv/flows");
        }
        return Ok(ExportTarget::Parquet(PathBuf::from(dir)));
    }
    bail!("unknown target '{s}': expected ipfix+udp://HOST:PORT, ipfix+tcp://HOST:PORT or parquet:OUTDIR")
}

/// Which records a reading command looks at, resolved: times fixed, filter parsed, store open.
pub(super) struct Selection {
    pub store: Store,
    pub since: Option<Nanos>,
    pub until: Option<Nanos>,
    pub filter: query::Filter,
    /// The filter expression as given (for the `access` entry).
    pub expr: String,
}

impl Selection {
    /// Adds every selected record to `tally` (stats, series, the report).
    pub(super) fn tally<T: query::Tally>(&self, tally: T) -> Result<(T, query::QueryStats)> {
        Ok(query::tally(
            &self.store,
            self.since,
            self.until,
            &self.filter,
            tally,
        )?)
    }
}

impl SelectArgs {
    /// Reads the wall clock once, for relative times; parses the filter before opening the
    /// store, so a typo costs nothing.
    pub(super) fn resolve(&self) -> Result<Selection> {
        let now = super::wall_clock();
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
        let expr = self.expr.join(" ");
        let filter = query::Filter::parse(&expr)?;
        let store = Store::open(&self.store)?;
        let store = super::holds::scoped(store, self.hold.as_deref())?;
        Ok(Selection {
            store,
            since,
            until,
            filter,
            expr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(matches!(
            parse_target("ipfix+udp://127.0.0.1:4739").unwrap(),
            ExportTarget::Ipfix(IpfixTarget { tcp: false, .. })
        ));
        let ExportTarget::Ipfix(t) = parse_target("ipfix+tcp://[::1]:4739").unwrap() else {
            panic!("not ipfix")
        };
        assert_eq!((t.tcp, t.addr.as_str()), (true, "[::1]:4739"));
        assert_eq!(t.to_string(), "ipfix+tcp://[::1]:4739");
        assert!(matches!(
            parse_target("parquet:/tmp/out").unwrap(),
            ExportTarget::Parquet(_)
        ));
        let e = parse_target("ipfix+udp://collector").err().unwrap();
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
        assert!(parse_target("ipfix+udp://h:0").is_err());
        let e = parse_target("netflow://h:2055").err().unwrap();
        assert!(e.to_string().contains("unknown target"), "{e}");
    }
}
