//! libFuzzer entry: the input becomes a segment's bytes, which are then opened and used.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = format!("/shmq-fuzz.{}", std::process::id());
    shm_queue_fuzz::open_segment(&name, data);
});
