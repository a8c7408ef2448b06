//! What the benchmarks share: the tests' seeded generator and criterion's settings.
// Each bench uses a different part of this module.
#![allow(dead_code)]

use criterion::Criterion;
use std::time::Duration;

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
