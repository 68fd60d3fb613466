#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| speclight_fuzz::incremental_builder(data));
