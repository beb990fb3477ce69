#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| traverse_fuzz::manifest(data));
