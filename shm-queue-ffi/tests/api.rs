//! The C ABI called from Rust, in one process: every record size and kind, interop with
//! `shm_queue::Queue<[u8; N], K>` both ways, chunks, and handles used from several threads.

use std::ffi::{c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};

use shm_queue::{Mpmc, Mpsc, PopError, Queue, Spsc};
use shm_queue_ffi::*;

static NAMES: AtomicUsize = AtomicUsize::new(0);

/// A fresh segment name, removed when dropped.
struct Name(CString);

impl Name {
    fn new() -> Self {
        let n = NAMES.fetch_add(1, Ordering::Relaxed);
        Self(CString::new(format!("/shmq-test-ffi-api-{}-{n}", std::process::id())).unwrap())
    }

    fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = shm_queue::unlink(self.str());
    }
}

fn last_error() -> String {
    // SAFETY: never NULL, valid until this thread's next failure.
    unsafe { CStr::from_ptr(shmq_last_error()) }.to_string_lossy().into_owned()
}

/// Calls that must succeed.
macro_rules! ok {
    ($call:expr) => {{
        // SAFETY: every pointer a test passes is live and large enough for its use.
        let rc = unsafe { $call };
        assert_eq!(rc, SHMQ_OK, "{} failed: {}", stringify!($call), last_error());
    }};
}

/// Calls that must fail with `code`.
macro_rules! fails {
    ($call:expr, $code:expr) => {{
        // SAFETY: every pointer a test passes is live and large enough, or deliberately NULL.
        let rc = unsafe { $call };
        assert_eq!(rc, $code, "{}: {}", stringify!($call), last_error());
    }};
}

fn create(name: &Name, kind: i32, size: usize, capacity: usize) -> *mut ShmqQueue {
    let mut q = null_mut();
    ok!(shmq_create(name.0.as_ptr(), kind, size, capacity, &mut q));
    q
}

fn stats(q: *const ShmqQueue) -> ShmqStats {
    let mut s = ShmqStats::default();
    ok!(shmq_stats(q, &mut s));
    s
}

#[test]
fn every_record_size_and_kind_round_trips() {
    for kind in [SHMQ_SPSC, SHMQ_MPSC, SHMQ_SPMC, SHMQ_MPMC] {
        for &size in RECORD_SIZES.iter() {
            let name = Name::new();
            let q = create(&name, kind, size, 4);
            let s = stats(q);
            assert_eq!((s.kind, s.record_size, s.capacity, s.bound), (kind, size as u64, 4, 4));
            let (mut tx, mut rx) = (null_mut(), null_mut());
            ok!(shmq_producer_attach(q, &mut tx));
            ok!(shmq_consumer_attach(q, &mut rx));
            let records: Vec<Vec<u8>> =
                (0..4u8).map(|i| (0..size).map(|b| (b as u8) ^ i.wrapping_mul(37)).collect()).collect();
            for r in &records {
                ok!(shmq_try_push(tx, r.as_ptr().cast()));
            }
            fails!(shmq_try_push(tx, records[0].as_ptr().cast()), SHMQ_EAGAIN);
            let mut out = vec![0u8; size];
            for r in &records {
                ok!(shmq_try_pop(rx, out.as_mut_ptr().cast()));
                assert_eq!(&out, r, "kind {kind} size {size}");
            }
            fails!(shmq_try_pop(rx, out.as_mut_ptr().cast()), SHMQ_EAGAIN);
            ok!(shmq_producer_close(tx));
            fails!(shmq_try_pop(rx, out.as_mut_ptr().cast()), SHMQ_EPIPE);
            ok!(shmq_consumer_close(rx));
            ok!(shmq_queue_close(q));
        }
    }
}

#[test]
fn unsupported_sizes_and_kinds_are_refused() {
    let name = Name::new();
    let mut q = null_mut();
    for size in [0, 3, 40, 100, 4097, usize::MAX] {
        fails!(shmq_create(name.0.as_ptr(), SHMQ_SPSC, size, 8, &mut q), SHMQ_EINVAL);
        assert!(last_error().contains("unsupported record size"), "{}", last_error());
        assert!(!shmq_record_size_supported(size));
    }
    for kind in [-1, 0, 5, i32::MAX] {
        fails!(shmq_create(name.0.as_ptr(), kind, 8, 8, &mut q), SHMQ_EINVAL);
    }
    assert!(q.is_null());
    assert_eq!(shmq_record_size_fit(0), 1);
    assert_eq!(shmq_record_size_fit(33), 48);
    assert_eq!(shmq_record_size_fit(4096), 4096);
}

/// Created through the C API, used as `Queue<[u8; 16], Mpmc>` from Rust, and back.
#[test]
fn c_created_queue_is_a_rust_byte_array_queue() {
    let name = Name::new();
    let q = create(&name, SHMQ_MPMC, 16, 64);
    let rust = Queue::<[u8; 16], Mpmc>::open(name.str()).expect("Rust opens the C-created queue");
    assert!(Queue::<[u8; 8], Mpmc>::open(name.str()).is_err(), "other sizes are refused");
    assert!(Queue::<[u8; 16], Mpsc>::open(name.str()).is_err(), "other kinds are refused");
    assert!(Queue::<u128, Mpmc>::open(name.str()).is_err(), "other 16-byte types are refused");

    let mut rust_tx = rust.producer().unwrap();
    let mut rust_rx = rust.consumer().unwrap();
    let (mut tx, mut rx) = (null_mut(), null_mut());
    ok!(shmq_producer_attach(q, &mut tx));
    ok!(shmq_consumer_attach(q, &mut rx));

    rust_tx.push(*b"from rust, 16 b!").unwrap();
    let mut out = [0u8; 16];
    ok!(shmq_pop(rx, out.as_mut_ptr().cast()));
    assert_eq!(&out, b"from rust, 16 b!");

    ok!(shmq_push(tx, b"from C ABI, 16b!".as_ptr().cast()));
    assert_eq!(&rust_rx.pop().unwrap(), b"from C ABI, 16b!");

    ok!(shmq_producer_close(tx));
    drop(rust_tx);
    assert_eq!(rust_rx.try_pop(), Err(PopError::Disconnected));
    ok!(shmq_consumer_close(rx));
    drop(rust_rx);
    drop(rust);
    ok!(shmq_queue_close(q));
    fails!(shmq_unlink(name.0.as_ptr()), SHMQ_ENOENT);
}

/// Created in Rust, opened through the C API with and without naming kind and size.
#[test]
fn rust_created_queue_opens_through_the_c_api() {
    let name = Name::new();
    let rust = Queue::<[u8; 32], Spsc>::create(name.str(), 8).unwrap();
    let mut q = null_mut();
    fails!(shmq_open(name.0.as_ptr(), SHMQ_SPSC, 64, &mut q), SHMQ_EPROTO);
    fails!(shmq_open(name.0.as_ptr(), SHMQ_MPMC, 32, &mut q), SHMQ_EPROTO);
    ok!(shmq_open(name.0.as_ptr(), SHMQ_SPSC, 32, &mut q));
    ok!(shmq_queue_close(q));
    ok!(shmq_open(name.0.as_ptr(), SHMQ_ANY_KIND, 32, &mut q));
    ok!(shmq_queue_close(q));
    ok!(shmq_open(name.0.as_ptr(), SHMQ_SPSC, SHMQ_ANY_SIZE, &mut q));
    let s = stats(q);
    assert_eq!((s.kind, s.record_size, s.capacity), (SHMQ_SPSC, 32, 8));

    let mut tx = null_mut();
    ok!(shmq_producer_attach(q, &mut tx));
    let mut rx = rust.consumer().unwrap();
    let mut slots: *mut c_void = null_mut();
    let mut len = 0;
    ok!(shmq_reserve(tx, 3, &mut slots, &mut len));
    assert!((1..=3).contains(&len));
    for i in 0..len {
        // SAFETY: `len` reserved slots of 32 bytes each, ours until the commit.
        unsafe { slots.cast::<u8>().add(i * 32).write_bytes(i as u8 + 1, 32) };
    }
    ok!(shmq_commit(tx));
    for i in 0..len {
        assert_eq!(rx.pop().unwrap(), [i as u8 + 1; 32]);
    }
    ok!(shmq_producer_close(tx));
    ok!(shmq_queue_close(q)); // opened, not created: the name stays
    assert!(shm_queue::Inspector::open(name.str()).is_ok());
    drop(rx);
    drop(rust);
}

/// A queue of some other element type is not a byte-record queue.
#[test]
fn typed_rust_queues_are_not_byte_records() {
    let name = Name::new();
    let _rust = Queue::<u64, Spsc>::create(name.str(), 8).unwrap();
    let mut q = null_mut();
    fails!(shmq_open(name.0.as_ptr(), SHMQ_ANY_KIND, SHMQ_ANY_SIZE, &mut q), SHMQ_EPROTO);
    assert!(last_error().contains("not byte records"), "{}", last_error());
    fails!(shmq_open(name.0.as_ptr(), SHMQ_SPSC, 8, &mut q), SHMQ_EPROTO);
    let mut s = ShmqStats::default();
    ok!(shmq_stats_by_name(name.0.as_ptr(), &mut s));
    assert_eq!((s.record_size, s.capacity), (8, 8));
}

/// An abandoned multi-producer reservation cannot be taken back: it poisons the queue, as
/// does closing a producer that still holds one.
#[test]
fn abandoning_a_multi_producer_chunk_poisons() {
    let name = Name::new();
    let q = create(&name, SHMQ_MPSC, 8, 16);
    let (mut tx, mut rx) = (null_mut(), null_mut());
    ok!(shmq_producer_attach(q, &mut tx));
    ok!(shmq_consumer_attach(q, &mut rx));
    let (mut slots, mut len) = (null_mut(), 0);
    ok!(shmq_reserve(tx, 4, &mut slots, &mut len));
    ok!(shmq_producer_close(tx));
    assert_eq!(stats(q).poisoned, 1);
    let mut out = 0u64;
    fails!(shmq_pop(rx, (&raw mut out).cast()), SHMQ_ENOTRECOVERABLE);
    ok!(shmq_consumer_close(rx));
    ok!(shmq_queue_close(q));
}

/// `shmq_commit_first` publishes a prefix on single-producer kinds; a multi-producer queue
/// takes only the whole chunk and leaves a shorter request's chunk reserved.
#[test]
fn committing_the_first_records_of_a_chunk() {
    for kind in [SHMQ_SPSC, SHMQ_SPMC, SHMQ_MPSC, SHMQ_MPMC] {
        let name = Name::new();
        let q = create(&name, kind, 8, 16);
        let (mut tx, mut rx) = (null_mut(), null_mut());
        ok!(shmq_producer_attach(q, &mut tx));
        ok!(shmq_consumer_attach(q, &mut rx));
        fails!(shmq_commit_first(tx, 0), SHMQ_EINVAL); // nothing reserved
        let (mut slots, mut len) = (null_mut::<c_void>(), 0);
        ok!(shmq_reserve(tx, 4, &mut slots, &mut len));
        assert_eq!(len, 4);
        for i in 0..len {
            // SAFETY: `len` reserved 8-byte records, ours until published.
            unsafe { slots.cast::<u64>().add(i).write(10 + i as u64) };
        }
        fails!(shmq_commit_first(tx, 5), SHMQ_EINVAL); // more than reserved
        let multi = kind == SHMQ_MPSC || kind == SHMQ_MPMC;
        if multi {
            fails!(shmq_commit_first(tx, 2), SHMQ_EINVAL);
            assert!(last_error().contains("multi-producer"), "{}", last_error());
            ok!(shmq_commit_first(tx, 4)); // still reserved: all of it goes
        } else {
            ok!(shmq_commit_first(tx, 2));
        }
        let mut got = Vec::new();
        let mut out = 0u64;
        // SAFETY: `out` holds one 8-byte record.
        while unsafe { shmq_try_pop(rx, (&raw mut out).cast()) } == SHMQ_OK {
            got.push(out);
        }
        assert_eq!(got, if multi { vec![10, 11, 12, 13] } else { vec![10, 11] }, "kind {kind}");
        fails!(shmq_commit_first(tx, 0), SHMQ_EINVAL); // the chunk is gone
        assert_eq!(stats(q).poisoned, 0);
        ok!(shmq_producer_close(tx));
        ok!(shmq_consumer_close(rx));
        ok!(shmq_queue_close(q));
    }
}

/// Closing a consumer with a read chunk outstanding releases it; the queue stays usable.
#[test]
fn closing_with_an_outstanding_read_releases_it() {
    let name = Name::new();
    let q = create(&name, SHMQ_SPMC, 8, 8);
    let (mut tx, mut rx1, mut rx2) = (null_mut(), null_mut(), null_mut());
    ok!(shmq_producer_attach(q, &mut tx));
    ok!(shmq_consumer_attach(q, &mut rx1));
    ok!(shmq_consumer_attach(q, &mut rx2));
    let records: Vec<u64> = (0..8).collect();
    let mut pushed = 0;
    ok!(shmq_push_many(tx, records.as_ptr().cast(), 8, &mut pushed));
    assert_eq!(pushed, 8);
    let (mut items, mut len) = (null(), 0);
    ok!(shmq_read(rx1, 3, &mut items, &mut len));
    ok!(shmq_consumer_close(rx1));
    let mut rest = [0u64; 8];
    let mut popped = 0;
    ok!(shmq_pop_many(rx2, rest.as_mut_ptr().cast(), 8, &mut popped));
    assert!(popped >= 1 && popped <= 8 - len, "popped {popped} after {len} released");
    assert_eq!(rest[0], len as u64);
    ok!(shmq_producer_close(tx));
    ok!(shmq_consumer_close(rx2));
    ok!(shmq_queue_close(q));
}

/// Handles are plain pointers: one producer or consumer per thread, the queue shared.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: the C API allows moving producer/consumer handles between threads and sharing a
// queue handle; each test thread uses its own end.
unsafe impl<T> Send for SendPtr<T> {}

#[test]
fn handles_work_from_several_threads() {
    const PER_PRODUCER: u64 = 20_000;
    const PRODUCERS: u64 = 3;
    let name = Name::new();
    let q = SendPtr(create(&name, SHMQ_MPMC, 16, 256));
    let mut ends = Vec::new();
    for _ in 0..2 {
        let mut rx = null_mut();
        ok!(shmq_consumer_attach(q.0, &mut rx));
        ends.push(SendPtr(rx));
    }
    let consumers: Vec<_> = ends
        .into_iter()
        .map(|rx| {
            std::thread::spawn(move || {
                let rx = rx;
                let mut seen = Vec::new();
                let mut rec = [0u64; 2];
                loop {
                    // SAFETY: this thread's own consumer; `rec` holds 16 bytes.
                    match unsafe { shmq_pop(rx.0, rec.as_mut_ptr().cast()) } {
                        SHMQ_OK => seen.push((rec[0], rec[1])),
                        SHMQ_EPIPE => break,
                        rc => panic!("pop: {rc}"),
                    }
                }
                ok!(shmq_consumer_close(rx.0));
                seen
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let mut tx = null_mut();
            ok!(shmq_producer_attach(q.0, &mut tx));
            let tx = SendPtr(tx);
            std::thread::spawn(move || {
                let tx = tx;
                for seq in 0..PER_PRODUCER {
                    let rec = [id, seq];
                    ok!(shmq_push(tx.0, rec.as_ptr().cast()));
                }
                ok!(shmq_producer_close(tx.0));
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<(u64, u64)> = Vec::new();
    for c in consumers {
        let seen = c.join().unwrap();
        // Each consumer sees each producer's records in increasing order.
        for id in 0..PRODUCERS {
            let mine: Vec<u64> = seen.iter().filter(|r| r.0 == id).map(|r| r.1).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "producer {id} out of order");
        }
        all.extend(seen);
    }
    all.sort_unstable();
    let expected: Vec<(u64, u64)> = (0..PRODUCERS).flat_map(|id| (0..PER_PRODUCER).map(move |s| (id, s))).collect();
    assert_eq!(all, expected, "every record exactly once");
    ok!(shmq_queue_close(q.0));
}

#[test]
fn null_arguments_are_einval_and_closes_accept_null() {
    let mut q = null_mut();
    let mut s = ShmqStats::default();
    let mut byte = 0u8;
    fails!(shmq_create(null(), SHMQ_SPSC, 8, 8, &mut q), SHMQ_EINVAL);
    fails!(shmq_open(null(), SHMQ_SPSC, 8, &mut q), SHMQ_EINVAL);
    fails!(shmq_create_with(c"/x".as_ptr(), null(), &mut q), SHMQ_EINVAL);
    fails!(shmq_options_init(null_mut(), SHMQ_SPSC, 8, 8), SHMQ_EINVAL);
    fails!(shmq_stats(null(), &mut s), SHMQ_EINVAL);
    fails!(shmq_stats_by_name(null(), &mut s), SHMQ_EINVAL);
    fails!(shmq_producer_attach(null(), &mut null_mut()), SHMQ_EINVAL);
    fails!(shmq_consumer_attach(null(), &mut null_mut()), SHMQ_EINVAL);
    fails!(shmq_push(null_mut(), (&raw const byte).cast()), SHMQ_EINVAL);
    fails!(shmq_pop(null_mut(), (&raw mut byte).cast()), SHMQ_EINVAL);
    fails!(shmq_commit(null_mut()), SHMQ_EINVAL);
    fails!(shmq_commit_first(null_mut(), 0), SHMQ_EINVAL);
    fails!(shmq_release(null_mut()), SHMQ_EINVAL);
    fails!(shmq_poison(null()), SHMQ_EINVAL);
    fails!(shmq_keep_name(null()), SHMQ_EINVAL);
    fails!(shmq_unlink(null()), SHMQ_EINVAL);
    ok!(shmq_queue_close(null_mut()));
    ok!(shmq_producer_close(null_mut()));
    ok!(shmq_consumer_close(null_mut()));
    // A misaligned out-pointer (into a packed struct, say) is refused, never made a reference.
    let mut bytes = [0u64; 64];
    let misaligned = bytes.as_mut_ptr().cast::<u8>().wrapping_add(1).cast::<ShmqStats>();
    fails!(shmq_stats_by_name(c"/shmq-test-ffi-api-none".as_ptr(), misaligned), SHMQ_EINVAL);
    assert!(last_error().contains("misaligned"), "{}", last_error());

    let name = Name::new();
    let q = create(&name, SHMQ_SPSC, 1, 2);
    let (mut tx, mut rx) = (null_mut(), null_mut());
    ok!(shmq_producer_attach(q, &mut tx));
    ok!(shmq_consumer_attach(q, &mut rx));
    fails!(shmq_push(tx, null()), SHMQ_EINVAL);
    fails!(shmq_pop(rx, null_mut()), SHMQ_EINVAL);
    fails!(shmq_push_many(tx, null(), 1, null_mut()), SHMQ_EINVAL);
    ok!(shmq_push_many(tx, null(), 0, null_mut()));
    fails!(shmq_push_many(tx, (&raw const byte).cast(), usize::MAX, null_mut()), SHMQ_EINVAL);
    fails!(shmq_reserve(tx, 1, null_mut(), &mut 0), SHMQ_EINVAL);
    fails!(shmq_reserve(tx, 0, &mut null_mut(), &mut 0), SHMQ_EINVAL);
    fails!(shmq_read(rx, 0, &mut null(), &mut 0), SHMQ_EINVAL);
    ok!(shmq_producer_close(tx));
    ok!(shmq_consumer_close(rx));
    ok!(shmq_queue_close(q));
}

#[test]
fn last_error_is_per_thread() {
    fails!(shmq_unlink(c"/shmq-test-ffi-api-none".as_ptr()), SHMQ_ENOENT);
    assert_eq!(shmq_last_error_code(), SHMQ_ENOENT);
    std::thread::spawn(|| {
        assert_eq!(shmq_last_error_code(), SHMQ_OK);
        assert_eq!(last_error(), "");
        fails!(shmq_unlink(c"no-slash".as_ptr()), SHMQ_EINVAL);
    })
    .join()
    .unwrap();
    assert_eq!(shmq_last_error_code(), SHMQ_ENOENT);
    assert!(last_error().contains("/shmq-test-ffi-api-none"), "{}", last_error());
    // SAFETY: a static string.
    let text = unsafe { CStr::from_ptr(shmq_strerror(SHMQ_ETIMEDOUT)) };
    assert_eq!(text.to_str().unwrap(), "timed out");
}
