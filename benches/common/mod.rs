//! What the benchmarks share: the tests' seeded generator and pcap writer, criterion's settings and the `main`
//! they make of them.
// Each bench uses a different part of this module.
#![allow(dead_code)]

use criterion::Criterion;
use std::time::Duration;

#[path = "../../tests/common/pcap.rs"]
pub mod pcap;
#[path = "../../tests/common/rng.rs"]
mod rng;
#[allow(unused_imports)] // as dead_code above
pub use rng::Rng;

/// Short runs, so `cargo bench` finishes in about a minute on two cores.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

/// `benches`, the criterion group of the `targets` with [`config`].
macro_rules! bench_group {
    ($($target:path),+ $(,)?) => {
        criterion::criterion_group! {
            name = benches;
            config = $crate::common::config();
            targets = $($target),+
        }
    };
}

/// A bench's `main`: criterion runs the `targets` with [`config`].
#[allow(unused_macros)] // benches/query.rs has a `main` of its own
macro_rules! bench_main {
    ($($target:path),+ $(,)?) => {
        $crate::common::bench_group!($($target),+);
        criterion::criterion_main!(benches);
    };
}

#[allow(unused_imports)]
pub(crate) use {bench_group, bench_main};
