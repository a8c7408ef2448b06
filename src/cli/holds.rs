//! `flowkeep hold`: adding, listing, renewing and releasing legal holds.

use super::args::{Expiry, HoldAddArgs, HoldArgs, HoldCommand};
use super::evidence::Signer;
use super::{wall_clock, INCOMPLETE};
use anyhow::{bail, Result};
use flowkeep::preserve::{self, AddReport};
use flowkeep::query::Filter;
use flowkeep::retention::format_duration;
use flowkeep::store::holds::{self, format_until, Hold, HoldState, OPEN_UNTIL};
use flowkeep::store::Store;
use flowkeep::time::{format_rfc3339, Nanos};
use std::io::{self, Write};
use std::path::Path;

pub(super) fn hold(a: HoldArgs) -> Result<i32> {
    match a.command {
        HoldCommand::Add(a) => add(a),
        HoldCommand::List { store, now } => {
            let opened = Store::open(&store)?;
            let list = holds::load_holds(&store)?;
            print_holds(
                &opened,
                &list,
                now.unwrap_or_else(wall_clock),
                &mut io::stdout().lock(),
            )?;
            Ok(0)
        }
        HoldCommand::Renew {
            store,
            name,
            by,
            now,
            signing,
        } => {
            Store::open(&store)?;
            let now = now.unwrap_or_else(wall_clock);
            let signer = Signer::new(&signing, &store)?;
            let current = holds::load_holds(&store)?
                .into_iter()
                .find(|h| h.name == name)
                .ok_or_else(|| holds::HoldError::Unknown(name.clone()))?;
            let Some(old) = current.expires else {
                bail!("hold {name} never expires: nothing to renew");
            };
            let h = holds::renew_hold(&store, &name, old.saturating_add(by), now)?;
            println!(
                "hold {name} renewed: expires {}",
                h.expires.map_or("never".into(), format_rfc3339)
            );
            if let Some(s) = signer {
                s.sign_if_changed()?;
            }
            Ok(0)
        }
        HoldCommand::Release {
            store,
            name,
            now,
            signing,
        } => {
            Store::open(&store)?;
            let signer = Signer::new(&signing, &store)?;
            let h = holds::release_hold(&store, &name, now.unwrap_or_else(wall_clock))?;
            if h.filter.is_some() {
                println!("hold {name} released; its copies are deleted by the next expire");
            } else {
                println!("hold {name} released");
            }
            if let Some(s) = signer {
                s.sign_if_changed()?;
            }
            Ok(0)
        }
    }
}

/// `hold add`: a hold without a filter is saved; one with a filter copies what it names.
fn add(a: HoldAddArgs) -> Result<i32> {
    let HoldAddArgs {
        store,
        name,
        from,
        until,
        filter,
        note,
        expires,
        explain,
        now,
        signing,
    } = a;
    let filter = filter
        .map(|f| Filter::parse(&f).map(|p| (f, p)))
        .transpose()?;
    if let Some((f, _)) = filter.as_ref().filter(|(_, p)| p.names_services()) {
        bail!(
            "--filter '{f}' names a port by its service name; write the port number: a hold's \
             filter is kept as text, and /etc/services may say otherwise where it is read again"
        );
    }
    let added = now.unwrap_or_else(wall_clock);
    if until <= from {
        bail!(
            "--until ({}) must be later than --from ({})",
            format_until(until),
            format_rfc3339(from)
        );
    }
    let opened = Store::open(&store)?;
    let signer = Signer::new(&signing, &store)?;
    let expires = match expires {
        Expiry::After(d) => Some(added.saturating_add(d)),
        Expiry::Never => {
            eprintln!(
                "flowkeep: warning: hold {name} never expires: it keeps its records until \
                 released (a preservation request usually runs 90 days, renewable)"
            );
            None
        }
    };
    let hold = Hold {
        filter: filter.as_ref().map(|(text, _)| text.clone()),
        note,
        expires,
        ..Hold::new(&name, from, until, added)
    };
    say_coverage(&opened, &hold)?;
    let status = match &filter {
        None => {
            holds::add_hold(&store, hold)?;
            println!("hold {name} added: keeps whole segments");
            0
        }
        Some((_, f)) => {
            let r = preserve::add_filtered_hold(&store, hold, f, added)?;
            print_added(&name, &r, explain);
            if r.unreadable.is_empty() {
                0
            } else {
                INCOMPLETE
            }
        }
    };
    if let Some(s) = signer {
        s.sign_if_changed()?;
    }
    Ok(status)
}

/// Says on stderr when the store holds nothing of the hold's range (the hold is still kept:
/// a forward-looking one catches what comes).
fn say_coverage(store: &Store, hold: &Hold) -> Result<()> {
    let segs = store.segments()?;
    if segs.iter().any(|s| hold.overlaps(s.first, s.last)) {
        return Ok(());
    }
    let span =
        segs.iter()
            .filter(|s| s.error.is_none())
            .fold(None, |acc: Option<(Nanos, Nanos)>, s| {
                Some(acc.map_or((s.first, s.last), |(a, b)| (a.min(s.first), b.max(s.last))))
            });
    let held = match span {
        Some((a, b)) => format!(
            "its records span {} .. {}",
            format_rfc3339(a),
            format_rfc3339(b)
        ),
        None => "it holds no records".into(),
    };
    eprintln!(
        "flowkeep: note: the store holds nothing in [{}, {}) ({held}); the hold is kept{}",
        format_rfc3339(hold.from),
        format_until(hold.until),
        if hold.filter.is_some() {
            " and catches matching records written from now on"
        } else {
            ""
        }
    );
    Ok(())
}

fn print_added(name: &str, r: &AddReport, explain: bool) {
    println!(
        "hold {name} added: {} records and {} lease observations kept in {} copies ({} bytes)",
        r.records, r.leases, r.copies, r.bytes
    );
    if explain {
        eprintln!(
            "copy: {} segments in the store, {} overlap the range; blocks: {} read, {} skipped by \
             time, {} skipped by address summary; {} records tested",
            r.segments_in_store,
            r.segments_covered,
            r.blocks_read,
            r.blocks_skipped_by_time,
            r.blocks_skipped_by_address,
            r.records_tested
        );
    }
    for p in &r.unreadable {
        eprintln!(
            "flowkeep: incomplete: {} is unreadable and was not copied (it is never expired)",
            p.display()
        );
    }
}

/// What a hold keeps, for `hold list`: its copies, or the live segments it keeps whole.
fn kept(store: &Store, h: &Hold, now: Nanos) -> Result<(String, u64, u64)> {
    if h.filter.is_some() {
        let segs = store.hold_segments(&h.name)?;
        let records = segs.iter().map(|s| s.records).sum();
        let bytes = segs.iter().map(|s| s.bytes).sum();
        return Ok((format!("{} copies", segs.len()), records, bytes));
    }
    let segs: Vec<_> = store
        .segments()?
        .into_iter()
        .filter(|s| h.keeps_whole_segments(now) && h.overlaps(s.first, s.last))
        .collect();
    Ok((
        format!("{} whole", segs.len()),
        segs.iter().map(|s| s.records).sum(),
        segs.iter().map(|s| s.bytes).sum(),
    ))
}

fn state(h: &Hold, now: Nanos) -> String {
    match (h.released, h.expires, h.state) {
        (Some(_), _, _) => "released".into(),
        (None, Some(e), _) if e <= now => "lapsed".into(),
        (None, _, HoldState::Copying) => "copying".into(),
        _ => "standing".into(),
    }
}

fn print_holds(store: &Store, list: &[Hold], now: Nanos, out: &mut dyn Write) -> Result<()> {
    let w = list
        .iter()
        .map(|h| h.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    writeln!(
        out,
        "{:<w$}  {:<8}  {:<30}  {:<30}  {:<30}  {:<30}  {:>12}  {:>10}  {:>12}  {:<20}  NOTE",
        "NAME", "STATE", "FROM", "UNTIL", "ADDED", "EXPIRES", "KEEPS", "RECORDS", "BYTES", "FILTER"
    )?;
    for h in list {
        let (what, records, bytes) = kept(store, h, now)?;
        let expires = match (h.released, h.expires) {
            (Some(t), _) => format!("released {}", format_rfc3339(t)),
            (None, Some(e)) if e > now => {
                format!("{} (in {})", format_rfc3339(e), format_duration(e - now))
            }
            (None, Some(e)) => format_rfc3339(e),
            (None, None) => "never".into(),
        };
        let until = if h.until == OPEN_UNTIL {
            "open".into()
        } else {
            format_rfc3339(h.until)
        };
        writeln!(
            out,
            "{:<w$}  {:<8}  {:<30}  {:<30}  {:<30}  {:<30}  {:>12}  {:>10}  {:>12}  {:<20}  {}",
            h.name,
            state(h, now),
            format_rfc3339(h.from),
            until,
            format_rfc3339(h.added),
            expires,
            what,
            records,
            bytes,
            h.filter.as_deref().unwrap_or("-"),
            h.note.as_deref().unwrap_or("-")
        )?;
    }
    out.flush()?;
    Ok(())
}

/// The store a reading command scans: `--hold NAME` reads only that hold's copies (it must
/// exist and have a filter), otherwise the live store and the standing holds' copies.
pub(super) fn scoped(store: Store, hold: Option<&str>) -> Result<Store> {
    let Some(name) = hold else {
        return Ok(store);
    };
    let dir: &Path = store.dir();
    let list = holds::load_holds(dir)?;
    let Some(h) = list.iter().find(|h| h.name == name) else {
        return Err(holds::HoldError::Unknown(name.to_string()).into());
    };
    if h.filter.is_none() {
        bail!("hold {name} has no filter: it keeps whole live segments, which plain reads (without --hold) already see");
    }
    Ok(store.with_scope(flowkeep::store::Scope::Hold(name.to_string())))
}
