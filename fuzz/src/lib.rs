//! The fuzzed operation, shared by the libFuzzer target (`fuzz_targets/open_segment.rs`) and
//! the corpus replay test that runs on stable (`shm-queue/tests/fuzz_corpus.rs`).
//!
//! An input is one selector byte followed by a segment's bytes. The bytes are written to a
//! file in `/dev/shm`, exactly as a process scribbling on a real segment could leave it; then
//! the segment is opened as the queue kind and element type the selector picks, inspected, and
//! if it opens, both ends attach and push, pop, reserve and read without blocking. Whatever the
//! bytes, that must end in `Ok` or a typed error: never a panic, an out-of-bounds access or a
//! hang.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use shm_queue::{Inspector, Kind, Mpmc, Mpsc, Pod, Queue, Spmc, Spsc, SHM_DIR};

/// Where a header keeps `init_state`, and the value that says "ready". An opener waits up to a
/// second for a segment that is not ready; the harness writes READY there so that the fuzzer
/// spends its time past that wait instead of in it. The replay test checks both constants
/// against real segments.
pub const INIT_STATE_AT: std::ops::Range<usize> = 12..16;
/// See [`INIT_STATE_AT`].
pub const INIT_READY: u32 = 0x5EAD_1E55;
/// Where a header keeps its creator's PID namespace. The harness writes 0 there ("unknown"),
/// so that inputs open in any namespace, as a segment whose creator could not read `/proc`
/// would, and the seeds hold 0 there too.
pub const PID_NAMESPACE_AT: std::ops::Range<usize> = 208..216;

/// What became of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No selector byte, or no segment bytes after it.
    Empty,
    /// `Queue::open` accepted the segment; its ends were exercised.
    Opened,
    /// `Queue::open` refused it with this error.
    Refused(String),
}

/// Writes `data` (after its selector byte) as segment `name`, opens and uses it, removes it.
pub fn open_segment(name: &str, data: &[u8]) -> Outcome {
    // An empty file reads as a segment still being sized: the opener waits a second for its
    // creator (tested in bad_input.rs). Not worth a second of every such input here.
    let Some((&selector, bytes)) = data.split_first().filter(|(_, bytes)| !bytes.is_empty()) else {
        return Outcome::Empty;
    };
    let mut bytes = bytes.to_vec();
    if bytes.len() >= INIT_STATE_AT.end {
        bytes[INIT_STATE_AT].copy_from_slice(&INIT_READY.to_ne_bytes());
    }
    // Any other namespace is refused before everything else: spend the fuzzer's time past it.
    if bytes.len() >= PID_NAMESPACE_AT.end {
        bytes[PID_NAMESPACE_AT].fill(0);
    }
    let path = format!("{SHM_DIR}/{}", name.trim_start_matches('/'));
    let _ = std::fs::remove_file(&path);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(&bytes));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&path);
        panic!("cannot stage {path}: {e}");
    }
    let outcome = match selector % 8 {
        0 => exercise::<u64, Spsc>(name),
        1 => exercise::<u64, Mpsc>(name),
        2 => exercise::<u64, Spmc>(name),
        3 => exercise::<u64, Mpmc>(name),
        4 => exercise::<[u8; 16], Spsc>(name),
        5 => exercise::<[u8; 16], Mpsc>(name),
        6 => exercise::<[u8; 16], Spmc>(name),
        _ => exercise::<[u8; 16], Mpmc>(name),
    };
    inspect(name);
    let _ = std::fs::remove_file(&path);
    outcome
}

/// Opens the segment as a `Queue<T, K>` and drives both ends with non-blocking calls.
fn exercise<T: Pod, K: Kind>(name: &str) -> Outcome {
    let queue = match Queue::<T, K>::open(name) {
        Ok(queue) => queue,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let _ = queue.stats();
    if let Ok(mut tx) = queue.producer() {
        for _ in 0..3 {
            let _ = tx.try_push(T::zeroed());
        }
        if let Ok(mut chunk) = tx.try_write_chunk(5) {
            for slot in chunk.as_mut_slice() {
                *slot = T::zeroed();
            }
            chunk.commit();
        }
        // Dropped uncommitted: abandoned, or the queue poisoned where it cannot be.
        drop(tx.try_write_chunk(2));
    }
    if let Ok(mut rx) = queue.consumer() {
        for _ in 0..3 {
            let _ = rx.try_pop();
        }
        if let Ok(chunk) = rx.try_read_chunk(5) {
            let _ = chunk.as_slice().len();
        }
        let _ = rx.is_empty();
    }
    let _ = queue.stats();
    Outcome::Opened
}

/// Reads the segment the way `shmq ls/stat/clean` do.
fn inspect(name: &str) {
    if let Ok(inspector) = Inspector::open(name) {
        let _ = inspector.stats();
        let _ = inspector.endpoints();
        let _ = inspector.is_stale();
    }
}
