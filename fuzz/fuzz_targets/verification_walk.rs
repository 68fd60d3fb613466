#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| speclight_fuzz::verification_walk(data));
