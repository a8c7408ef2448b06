#![no_main]
// See flowkeep::fuzz_api::tor_list for what this target feeds and checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| flowkeep::fuzz_api::tor_list(data));
