#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| speclight_fuzz::metrics_inputs(data));
