//! Replays the fuzzer's committed corpus (`fuzz/corpus/open_segment/`) through the fuzzed
//! operation on stable, so every `cargo test` re-checks the inputs that once mattered; and
//! checks that the seeds, made from real segments of every kind, still open.
//!
//! Regenerate the seeds after a format change with
//! `SHMQ_WRITE_SEEDS=1 cargo test -p shm-queue --test fuzz_corpus` (see fuzz/README.md).

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::{open_segment, Outcome, INIT_READY, INIT_STATE_AT, PID_NAMESPACE_AT};
use shm_queue::{Kind, Mpmc, Mpsc, PidNamespace, Pod, Queue, QueueOptions, Spmc, Spsc, WakePolicy, SHM_DIR};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/open_segment")
}

/// A segment name no other test thread or process uses.
fn unique_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("/shmq-fuzz-replay.{}.{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn ours_left(name: &str) -> bool {
    Path::new(SHM_DIR).join(name.trim_start_matches('/')).exists()
}

/// The bytes of a real segment with a few items in it and both ends attached, as a fuzz input
/// whose selector picks the same kind and element type; its PID namespace is left unknown
/// (0), so that the committed seeds open on any machine.
fn seed<T: Pod, K: Kind>(selector: u8, options: QueueOptions) -> Vec<u8> {
    let mut input = real_segment::<T, K>(selector, options);
    input[1 + PID_NAMESPACE_AT.start..1 + PID_NAMESPACE_AT.end].fill(0);
    input
}

fn real_segment<T: Pod, K: Kind>(selector: u8, options: QueueOptions) -> Vec<u8> {
    let name = unique_name();
    let queue = Queue::<T, K>::create_with(&name, options).expect("create");
    let mut tx = queue.producer().expect("producer");
    let _rx = queue.consumer().expect("consumer");
    assert!(tx.try_push(T::zeroed()).is_ok(), "push");
    let bytes = std::fs::read(Path::new(SHM_DIR).join(name.trim_start_matches('/'))).expect("read segment");
    let mut input = vec![selector];
    input.extend_from_slice(&bytes);
    input
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let batched = WakePolicy::Batched { consumer_at: 2, producer_at: 1 };
    vec![
        ("spsc-u64-cap1".into(), seed::<u64, Spsc>(0, QueueOptions::new(1))),
        ("spsc-u64-depth3".into(), seed::<u64, Spsc>(0, QueueOptions::with_depth(3))),
        ("mpsc-u64-cap4".into(), seed::<u64, Mpsc>(1, QueueOptions::new(4))),
        ("spmc-u64-cap2".into(), seed::<u64, Spmc>(2, QueueOptions::new(2))),
        ("mpmc-u64-cap8-batched".into(), seed::<u64, Mpmc>(3, QueueOptions::new(8).wake(batched))),
        ("spsc-b16-cap4".into(), seed::<[u8; 16], Spsc>(4, QueueOptions::new(4))),
        ("mpsc-b16-cap2".into(), seed::<[u8; 16], Mpsc>(5, QueueOptions::new(2))),
        ("spmc-b16-cap1".into(), seed::<[u8; 16], Spmc>(6, QueueOptions::new(1))),
        ("mpmc-b16-cap4".into(), seed::<[u8; 16], Mpmc>(7, QueueOptions::new(4))),
    ]
}

#[test]
fn the_harness_marks_init_state_where_real_segments_keep_it() {
    let input = seed::<u64, Spsc>(0, QueueOptions::new(1));
    let at = INIT_STATE_AT.start + 1..INIT_STATE_AT.end + 1;
    assert_eq!(input[at], INIT_READY.to_ne_bytes(), "header layout changed: update the fuzz harness");
}

#[test]
fn seeds_leave_the_pid_namespace_where_real_segments_record_it() {
    let input = real_segment::<u64, Spsc>(0, QueueOptions::new(1));
    let at = PID_NAMESPACE_AT.start + 1..PID_NAMESPACE_AT.end + 1;
    let here = PidNamespace::current().expect("/proc is mounted").as_raw();
    assert_eq!(input[at], here.to_ne_bytes(), "header layout changed: update the fuzz harness");
}

#[test]
fn seeds_from_real_segments_open_and_their_damaged_copies_are_refused() {
    let write_to = std::env::var_os("SHMQ_WRITE_SEEDS").map(|_| corpus_dir());
    for (label, input) in seeds() {
        let name = unique_name();
        assert_eq!(open_segment(&name, &input), Outcome::Opened, "{label}");
        assert!(!ours_left(&name), "{label}: the harness left its segment behind");
        // Cut short: a typed refusal, not a fault.
        let cut = &input[..input.len() / 2];
        match open_segment(&name, cut) {
            Outcome::Refused(e) => assert!(e.contains("header needs"), "{label}: {e}"),
            other => panic!("{label}: half a segment gave {other:?}"),
        }
        // Another kind's selector: a kind mismatch.
        let mut other_kind = input.clone();
        other_kind[0] ^= 1;
        assert!(matches!(open_segment(&name, &other_kind), Outcome::Refused(_)), "{label}: opened as another kind");
        if let Some(dir) = &write_to {
            std::fs::create_dir_all(dir).expect("corpus dir");
            std::fs::write(dir.join(format!("seed-{label}")), &input).expect("write seed");
        }
    }
}

#[test]
fn the_committed_corpus_replays_cleanly() {
    let dir = corpus_dir();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    entries.sort();
    let (mut opened, mut refused) = (0, 0);
    for path in &entries {
        let input = std::fs::read(path).expect("read corpus file");
        let name = unique_name();
        match open_segment(&name, &input) {
            Outcome::Opened => opened += 1,
            Outcome::Refused(_) => refused += 1,
            Outcome::Empty => {}
        }
        assert!(!ours_left(&name), "{}: segment left behind", path.display());
    }
    assert!(entries.len() >= 9, "the corpus holds at least the seeds, found {}", entries.len());
    assert!(opened >= 9 && refused >= 1, "corpus exercises both paths: {opened} opened, {refused} refused");
}
