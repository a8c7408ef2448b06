use super::*;
use crate::record::LeaseObservation;
use crate::store::holds::HoldState;
use crate::store::{StoreWriter, WriterConfig};
use crate::testing::sample;
use crate::time::NANOS_PER_SEC;
use std::net::Ipv6Addr;

const DAY: Nanos = 86_400 * NANOS_PER_SEC;
const KEY: &[u8; 32] = b"boojahyoo3vaeToong0Eijee7Ahz3yee";

#[test]
fn key_files_are_32_bytes_or_64_hex_digits() {
    let raw = Key::parse(KEY).unwrap();
    let mut nl = KEY.to_vec();
    nl.push(b'\n');
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    for k in [
        Key::parse(&nl).unwrap(),
        Key::parse(hex.as_bytes()).unwrap(),
        Key::parse(format!("{}\n", hex.to_uppercase()).as_bytes()).unwrap(),
    ] {
        assert_eq!(k.0, raw.0);
    }
    // 32 raw bytes whose last one happens to be a newline are still 32 bytes.
    let mut ends_nl = *KEY;
    ends_nl[31] = b'\n';
    assert_eq!(Key::parse(&ends_nl).unwrap().0, ends_nl);
    let short = Key::parse(&KEY[..31]).err().unwrap();
    assert!(short.contains("31 bytes"), "{short}");
    assert!(Key::parse(b"").is_err());
    assert!(Key::parse(&[7u8; 40]).err().unwrap().contains("40 bytes"));
    let mut two_nl = nl.clone();
    two_nl.push(b'\n');
    assert!(Key::parse(&two_nl).is_err());
    let not_hex = "g".repeat(64);
    assert!(Key::parse(not_hex.as_bytes()).is_err());
    assert_eq!(raw.fingerprint().len(), 16);
    assert_ne!(
        raw.fingerprint(),
        Key::parse(&ends_nl).unwrap().fingerprint()
    );
}

#[test]
fn names_of_rewrites_and_their_sources() {
    let src = Path::new("/s/2026-01-01T00-00Z/seg-00000001-00000002.fks");
    let anon = anon_path(src);
    assert_eq!(
        anon,
        Path::new("/s/2026-01-01T00-00Z/seg-00000001-00000002.anon.fks")
    );
    assert_eq!(source_path(&anon).as_deref(), Some(src));
    assert_eq!(source_path(src), None);
}

fn lease(i: u8) -> LeaseObservation {
    LeaseObservation {
        time: sample(0).first + i64::from(i) * NANOS_PER_SEC,
        v6: i % 2 == 1,
        message: 5,
        address: if i % 2 == 1 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i)))
        } else {
            IpAddr::from([10, 0, 0, i])
        },
        client_mac: Some([2, 0, 0, 0, 0, i]),
        lease_secs: Some(3600),
        hostname: Some(format!("host-{i}")),
        server: Some(IpAddr::from([10, 0, 0, 1])),
        xid: 0x1234,
    }
}

/// A store of one segment: 50 records (MACs on) and 4 leases, on 2026-01-01.
fn store() -> (tempfile::TempDir, Vec<FlowRecord>, Vec<LeaseObservation>) {
    let d = tempfile::tempdir().unwrap();
    let mut w = StoreWriter::create(WriterConfig::new(d.path())).unwrap();
    let recs: Vec<FlowRecord> = (0..50).map(sample).collect();
    let leases: Vec<LeaseObservation> = (0..4).map(lease).collect();
    for r in &recs {
        w.append(r).unwrap();
    }
    for l in &leases {
        w.append_lease(l).unwrap();
    }
    w.finish().unwrap();
    (d, recs, leases)
}

fn contents(path: &Path) -> (Vec<FlowRecord>, Vec<LeaseObservation>) {
    let mut r = Vec::new();
    let stats = Store::scan_segment(path, None, None, None, &AllRecords, |_, x| {
        r.push(x.clone());
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert!(stats.problems.is_empty());
    let mut l = Store::segment_leases(path).unwrap();
    r.sort_by_key(|x| (x.first, x.sport));
    l.sort_by_key(|x| x.time);
    (r, l)
}

#[test]
fn a_rewrite_anonymizes_addresses_drops_macs_and_lease_details_and_is_audited() {
    let (d, recs, leases) = store();
    let st = Store::open(d.path()).unwrap();
    let now = sample(0).last + 30 * DAY;
    let key = Key::parse(KEY).unwrap();
    let segs = st.segments().unwrap();
    // Not old enough yet: nothing to do.
    let young = plan(&segs, &[], 7 * DAY, sample(49).last + 6 * DAY, &[]);
    assert_eq!(young, Plan::default());
    let p = plan(&segs, &[], 7 * DAY, now, &[]);
    assert_eq!(p.rewrite.len(), 1);
    let done = apply(&st, &p, &key, now).unwrap();
    assert_eq!((done.rewritten.len(), done.failed.len()), (1, 0));
    let segs = st.segments().unwrap();
    assert_eq!(segs.len(), 1);
    let s = &segs[0];
    assert_eq!(s.path, anon_path(&p.rewrite[0].path));
    assert_ne!(s.capture.flags & CAPTURE_ANONYMIZED, 0);
    assert_ne!(s.capture.flags & CAPTURE_MACS_NOT_STORED, 0);
    let pan = key.cryptopan();
    let (got, got_leases) = contents(&s.path);
    let mut want = recs.clone();
    want.sort_by_key(|x| (x.first, x.sport));
    for (g, w) in got.iter().zip(&want) {
        let expect = FlowRecord {
            src: pan.anonymize(w.src),
            dst: pan.anonymize(w.dst),
            src_mac: None,
            dst_mac: None,
            ..w.clone()
        };
        assert_eq!(g, &expect);
        assert_ne!(g.src, w.src);
    }
    assert_eq!(got.len(), recs.len());
    assert_eq!(got_leases.len(), leases.len());
    for (g, w) in got_leases.iter().zip(&leases) {
        assert_eq!(g.address, pan.anonymize(w.address));
        assert_eq!(
            (g.time, g.v6, g.message, g.lease_secs),
            (w.time, w.v6, 5, w.lease_secs)
        );
        assert_eq!(
            (g.client_mac, &g.hostname, g.server, g.xid),
            (None, &None, None, 0)
        );
    }
    let v = st.verify().unwrap();
    assert_eq!(v.problem_count(), 0, "{:?}", v.problem_lines());
    let log = crate::store::audit::read_all(d.path()).unwrap();
    let reasons: Vec<&str> = log.iter().map(|e| e.record.reason.as_str()).collect();
    let src = relative(d.path(), &p.rewrite[0].path);
    let anon = relative(d.path(), &s.path);
    let fp = key.fingerprint();
    assert!(reasons.contains(&format!("tier=anonymized source={src} key={fp}").as_str()));
    assert!(reasons.contains(&format!("tier=anonymized replaced-by={anon}").as_str()));
    // Never rewritten twice.
    assert_eq!(
        plan(&st.segments().unwrap(), &[], 7 * DAY, now + DAY, &[]),
        Plan::default()
    );
}

#[test]
fn an_interrupted_rewrite_is_finished_by_the_next_run() {
    let (d, _, _) = store();
    let st = Store::open(d.path()).unwrap();
    let now = sample(0).last + 30 * DAY;
    let key = Key::parse(KEY).unwrap();
    let source = st.segments().unwrap().remove(0);
    // Sealed, then a crash before the source went.
    let r = rewrite(&st, &source, &key.cryptopan(), &key, now)
        .unwrap()
        .unwrap()
        .unwrap();
    // And a build left half done.
    let stale = source
        .path
        .with_file_name(".build-seg-00000009-00000000.anon.fks.tmp");
    std::fs::write(&stale, b"partial").unwrap();
    let p = plan(&st.segments().unwrap(), &[], 7 * DAY, now, &[]);
    assert_eq!(p.repair, vec![(source.clone(), r.anon.clone())]);
    assert!(p.rewrite.is_empty());
    let done = apply(&st, &p, &key, now).unwrap();
    assert_eq!(done.repaired, vec![source.path.clone()]);
    assert_eq!(done.stale_removed, vec![stale.clone()]);
    assert!(!source.path.exists() && !stale.exists() && r.anon.exists());
    let v = st.verify().unwrap();
    assert_eq!(v.problem_count(), 0, "{:?}", v.problem_lines());
}

#[test]
fn holds_keeping_whole_segments_keep_them_raw() {
    let (d, _, _) = store();
    let st = Store::open(d.path()).unwrap();
    let segs = st.segments().unwrap();
    let now = sample(0).last + 30 * DAY;
    let hold = |filter: Option<&str>, state: HoldState| Hold {
        name: "case-1".into(),
        from: sample(0).first - DAY,
        until: sample(0).first + DAY,
        filter: filter.map(String::from),
        note: None,
        added: now,
        expires: None,
        state,
        released: None,
    };
    let filtered = Some("host 10.0.0.1");
    for h in [
        hold(None, HoldState::Ready),
        hold(filtered, HoldState::Copying),
    ] {
        let p = plan(&segs, &[h], 7 * DAY, now, &[]);
        assert!(p.rewrite.is_empty());
        let kept = vec![(segs[0].clone(), vec!["case-1".to_string()])];
        assert_eq!(p.kept_for_hold, kept);
    }
    // A complete hold with a filter keeps copies of what it names, not the segment whole.
    let p = plan(
        &segs,
        &[hold(filtered, HoldState::Ready)],
        7 * DAY,
        now,
        &[],
    );
    assert_eq!((p.rewrite.len(), p.kept_for_hold.len()), (1, 0));
    // A segment a dry run's retention would delete is not listed.
    let p = plan(&segs, &[], 7 * DAY, now, &[segs[0].path.clone()]);
    assert_eq!(p, Plan::default());
}
