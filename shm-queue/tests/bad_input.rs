//! Bad input gets its own error variant: names, existing and missing segments, mismatched
//! kinds and element types, corrupted, truncated or foreign segments, unsupported capacities,
//! bounds and wake thresholds, roles already taken or closed, bogus handover tokens. Also: error
//! texts are single clean lines, and segment files are private (mode 0600).
//!
//! No fork here, so libtest's threaded harness is fine. Each test checks on its way out that
//! it left nothing in `/dev/shm`.

mod support;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::Duration;

use shm_queue::{
    AttachError, CreateError, Handover, Inspector, Mpmc, Mpsc, NameError, OpenError, PidNamespace, PopError, PushError,
    Queue, QueueOptions, Segment, ShmName, Spmc, Spsc, UnlinkError, WakePolicy, FORMAT_VERSION, MAX_CAPACITY,
    MAX_NAME_LEN,
};

/// Fresh names for one test; on drop (unless the test is already failing) checks that none of
/// them is left in `/dev/shm`.
struct Names {
    prefix: String,
    next: usize,
}

impl Names {
    fn new(test: &str) -> Self {
        Self { prefix: support::case_prefix(std::process::id(), test), next: 0 }
    }

    fn next(&mut self) -> String {
        self.next += 1;
        format!("/{}{}", self.prefix, self.next)
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        let left = shm_queue::list(&self.prefix).unwrap();
        for name in &left {
            let _ = shm_queue::unlink(name);
        }
        if !std::thread::panicking() {
            assert!(left.is_empty(), "segments left in /dev/shm: {left:?}");
        }
    }
}

fn shm_path(name: &str) -> String {
    format!("{}{name}", shm_queue::SHM_DIR)
}

/// The segment file, for scribbling on.
fn segment_file(name: &str) -> File {
    OpenOptions::new().read(true).write(true).open(shm_path(name)).unwrap()
}

#[test]
fn invalid_names_each_rule_has_its_own_error() {
    let long = format!("/{}", "a".repeat(MAX_NAME_LEN + 1));
    let cases: &[(&str, NameError)] = &[
        ("", NameError::MissingLeadingSlash),
        ("shmq-no-slash", NameError::MissingLeadingSlash),
        ("/", NameError::Empty),
        ("/a/b", NameError::InnerSlash),
        ("//", NameError::InnerSlash),
        ("/.", NameError::DotName),
        ("/..", NameError::DotName),
        (&long, NameError::TooLong { len: MAX_NAME_LEN + 1, max: MAX_NAME_LEN }),
        ("/a b", NameError::NotPrintable { found: ' ' }),
        ("/a\tb", NameError::NotPrintable { found: '\t' }),
        ("/a\0b", NameError::NotPrintable { found: '\0' }),
        ("/caf\u{e9}", NameError::NotPrintable { found: '\u{e9}' }),
    ];
    for (name, want) in cases {
        assert_eq!(ShmName::new(name).as_ref(), Err(want), "ShmName::new({name:?})");
        match Queue::<u64, Spsc>::create(name, 8) {
            Err(CreateError::InvalidName(got)) => assert_eq!(&got, want, "create({name:?})"),
            other => panic!("create({name:?}): {other:?}"),
        }
        match Queue::<u64, Spsc>::open(name) {
            Err(OpenError::InvalidName(got)) => assert_eq!(&got, want, "open({name:?})"),
            other => panic!("open({name:?}): {other:?}"),
        }
        match Segment::create(name, 4096) {
            Err(CreateError::InvalidName(got)) => assert_eq!(&got, want, "Segment::create({name:?})"),
            other => panic!("Segment::create({name:?}): {other:?}"),
        }
        match Inspector::open(name) {
            Err(OpenError::InvalidName(got)) => assert_eq!(&got, want, "Inspector::open({name:?})"),
            other => panic!("Inspector::open({name:?}): {other:?}"),
        }
        match shm_queue::unlink(name) {
            Err(UnlinkError::InvalidName(got)) => assert_eq!(&got, want, "unlink({name:?})"),
            other => panic!("unlink({name:?}): {other:?}"),
        }
    }
}

#[test]
fn longest_valid_name_is_accepted() {
    let mut names = Names::new("longest_valid_name_is_accepted");
    let short = names.next();
    let name = format!("{short}{}", "x".repeat(MAX_NAME_LEN + 1 - short.len()));
    assert_eq!(name.len(), MAX_NAME_LEN + 1, "255 characters after the slash");
    let queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    let mut tx = queue.producer().unwrap();
    let mut rx = Queue::<u64, Spsc>::open(&name).unwrap().consumer().unwrap();
    tx.push(3).unwrap();
    assert_eq!(rx.try_pop(), Ok(3));
}

#[test]
fn create_of_an_existing_name_is_already_exists() {
    let mut names = Names::new("create_of_an_existing_name_is_already_exists");
    let name = names.next();
    let queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    match Queue::<u64, Spsc>::create(&name, 8) {
        Err(CreateError::AlreadyExists(n)) => assert_eq!(n, name),
        other => panic!("second create: {other:?}"),
    }
    // Whatever the kind or type: the name is taken.
    assert!(matches!(Queue::<u32, Mpmc>::create(&name, 4), Err(CreateError::AlreadyExists(_))));
    assert!(matches!(Segment::create(&name, 4096), Err(CreateError::AlreadyExists(_))));
    // The failed creates neither removed nor damaged the first queue.
    let mut tx = queue.producer().unwrap();
    let mut rx = Queue::<u64, Spsc>::open(&name).unwrap().consumer().unwrap();
    tx.push(1).unwrap();
    assert_eq!(rx.try_pop(), Ok(1));
}

#[test]
fn open_of_a_missing_name_is_not_found() {
    let mut names = Names::new("open_of_a_missing_name_is_not_found");
    let name = names.next();
    match Queue::<u64, Spsc>::open(&name) {
        Err(OpenError::NotFound(n)) => assert_eq!(n, name),
        other => panic!("open: {other:?}"),
    }
    assert!(matches!(Inspector::open(&name), Err(OpenError::NotFound(_))));
    assert!(matches!(Segment::open(&name), Err(OpenError::NotFound(_))));
    assert!(matches!(shm_queue::unlink(&name), Err(UnlinkError::NotFound(_))));
    // A queue that is gone (its creator dropped it) is missing too.
    drop(Queue::<u64, Spsc>::create(&name, 8).unwrap());
    assert!(matches!(Queue::<u64, Spsc>::open(&name), Err(OpenError::NotFound(_))));
}

#[test]
fn wrong_element_type_is_type_mismatch() {
    let mut names = Names::new("wrong_element_type_is_type_mismatch");
    let name = names.next();
    let _queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    // Same size and alignment, another type.
    match Queue::<i64, Spsc>::open(&name) {
        Err(OpenError::TypeMismatch { found, expected }) => {
            assert!(found.starts_with("u64 "), "{found}");
            assert!(expected.starts_with("i64 "), "{expected}");
        }
        other => panic!("open as i64: {other:?}"),
    }
    assert!(matches!(Queue::<u32, Spsc>::open(&name), Err(OpenError::TypeMismatch { .. })));
    assert!(matches!(Queue::<[u8; 8], Spsc>::open(&name), Err(OpenError::TypeMismatch { .. })));
    assert!(matches!(Queue::<[u64; 2], Spsc>::open(&name), Err(OpenError::TypeMismatch { .. })));
    assert!(Queue::<u64, Spsc>::open(&name).is_ok());
}

#[test]
fn wrong_kind_is_kind_mismatch() {
    let mut names = Names::new("wrong_kind_is_kind_mismatch");
    let name = names.next();
    let _queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    match Queue::<u64, Mpmc>::open(&name) {
        Err(OpenError::KindMismatch { found, expected }) => assert_eq!((found.as_str(), expected), ("SPSC", "MPMC")),
        other => panic!("open as MPMC: {other:?}"),
    }
    assert!(matches!(Queue::<u64, Mpsc>::open(&name), Err(OpenError::KindMismatch { .. })));
    assert!(matches!(Queue::<u64, Spmc>::open(&name), Err(OpenError::KindMismatch { .. })));
    // The kind is checked before the element type.
    assert!(matches!(Queue::<u32, Mpsc>::open(&name), Err(OpenError::KindMismatch { .. })));
}

#[test]
fn corrupted_magic_is_bad_magic() {
    let mut names = Names::new("corrupted_magic_is_bad_magic");
    let name = names.next();
    let _queue = Queue::<u64, Mpmc>::create(&name, 8).unwrap();
    segment_file(&name).write_all_at(b"NOTMAGIC", 0).unwrap();
    match Queue::<u64, Mpmc>::open(&name) {
        Err(OpenError::BadMagic(n)) => assert_eq!(n, name),
        other => panic!("open: {other:?}"),
    }
    assert!(matches!(Inspector::open(&name), Err(OpenError::BadMagic(_))));
}

#[test]
fn truncated_segment_is_truncated() {
    let mut names = Names::new("truncated_segment_is_truncated");
    let name = names.next();
    // Nothing may touch the mapping beyond the new end (that would raise SIGBUS): no ends are
    // attached, and dropping a queue only unmaps.
    let _queue = Queue::<u64, Mpmc>::create(&name, 1024).unwrap();
    let needed = Inspector::open(&name).unwrap().header().total_len as u64;
    assert!(needed > 4096, "the test needs a segment longer than a page");
    segment_file(&name).set_len(4096).unwrap();
    match Queue::<u64, Mpmc>::open(&name) {
        Err(OpenError::Truncated { len, needed: n }) => assert_eq!((len, n), (4096, needed)),
        other => panic!("open of a one-page segment: {other:?}"),
    }
    // Shorter than a header.
    segment_file(&name).set_len(16).unwrap();
    match Queue::<u64, Mpmc>::open(&name) {
        Err(OpenError::Truncated { len, needed: n }) => assert!(len == 16 && n > 16, "{len} {n}"),
        other => panic!("open of a 16-byte segment: {other:?}"),
    }
}

#[test]
fn header_from_another_format_version_is_version_mismatch() {
    let mut names = Names::new("header_from_another_format_version_is_version_mismatch");
    let name = names.next();
    let _queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    for version in [FORMAT_VERSION + 1, 0, u32::MAX] {
        // `version` is the u32 right after the 8-byte magic.
        segment_file(&name).write_all_at(&version.to_le_bytes(), 8).unwrap();
        match Queue::<u64, Spsc>::open(&name) {
            Err(OpenError::VersionMismatch { found, expected }) => {
                assert_eq!((found, expected), (version, FORMAT_VERSION));
            }
            other => panic!("open of version {version}: {other:?}"),
        }
    }
    segment_file(&name).write_all_at(&FORMAT_VERSION.to_le_bytes(), 8).unwrap();
    assert!(Queue::<u64, Spsc>::open(&name).is_ok(), "the right version opens again");
}

#[test]
fn a_segment_of_another_pid_namespace_is_refused_and_never_judged() {
    let mut names = Names::new("a_segment_of_another_pid_namespace_is_refused_and_never_judged");
    let name = names.next();
    let queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    let here = PidNamespace::current().expect("/proc is mounted").as_raw();
    // The creator's pid (offset 144) rewritten to one no process has: the segment looks stale.
    segment_file(&name).write_all_at(&((1u32 << 22) + 1).to_le_bytes(), 144).unwrap();
    assert!(Inspector::open(&name).unwrap().is_stale());
    // The creator's PID namespace is the u64 at offset 208: as if a container made it, one
    // that has ended (namespace numbers are 32-bit: this one never had a process).
    let other = 1u64 << 40;
    segment_file(&name).write_all_at(&other.to_le_bytes(), 208).unwrap();
    match Queue::<u64, Spsc>::open(&name) {
        Err(OpenError::OtherPidNamespace { name: n, found, here: h }) => {
            assert_eq!((n, found, h), (name.clone(), other, here))
        }
        other => panic!("opened from another namespace: {other:?}"),
    }
    let inspector = Inspector::open(&name).unwrap();
    assert!(inspector.is_foreign(), "an inspector still shows it");
    // Its pid is not judged; its namespace's end is seen from the host's namespace (as root,
    // who may read every process's namespace), never from another.
    // SAFETY: geteuid has no preconditions.
    if PidNamespace::sees_every_namespace() && unsafe { libc::geteuid() } == 0 {
        assert!(inspector.is_stale());
    } else if !PidNamespace::sees_every_namespace() {
        assert!(!inspector.is_stale());
    }
    // 0 is what a creator without /proc records (and what segments older than the field hold).
    segment_file(&name).write_all_at(&0u64.to_le_bytes(), 208).unwrap();
    assert!(Queue::<u64, Spsc>::open(&name).is_ok());
    assert!(!Inspector::open(&name).unwrap().is_foreign());
    drop(queue);
}

#[test]
fn inconsistent_header_is_layout_mismatch() {
    let mut names = Names::new("inconsistent_header_is_layout_mismatch");
    let name = names.next();
    let _queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    // `capacity` is the u64 at offset 24 (after magic, version, init_state, kind, wake_policy).
    segment_file(&name).write_all_at(&3u64.to_le_bytes(), 24).unwrap();
    assert!(matches!(Queue::<u64, Spsc>::open(&name), Err(OpenError::LayoutMismatch(_))));
    segment_file(&name).write_all_at(&8u64.to_le_bytes(), 24).unwrap();
    assert!(Queue::<u64, Spsc>::open(&name).is_ok());
    // `kind` (offset 16): no such kind.
    segment_file(&name).write_all_at(&77u32.to_le_bytes(), 16).unwrap();
    assert!(matches!(Queue::<u64, Spsc>::open(&name), Err(OpenError::LayoutMismatch(_))));
}

#[test]
fn segment_never_initialised_is_not_initialized_or_bad_magic() {
    let mut names = Names::new("segment_never_initialised_is_not_initialized_or_bad_magic");
    let (empty, zeros) = (names.next(), names.next());
    let create = |name: &str, len: u64| {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(shm_path(name)).unwrap();
        file.set_len(len).unwrap();
    };
    // A creator that never sized its segment (openers wait a second for it; `open_now` does
    // not wait, for sweeps over segments whose creators may have died half-way).
    create(&empty, 0);
    let got = Queue::<u64, Spsc>::open(&empty);
    let now = Inspector::open_now(&empty).map(|_| ());
    shm_queue::unlink(&empty).unwrap();
    match got {
        Err(OpenError::NotInitialized(n)) => assert_eq!(n, empty),
        other => panic!("open of an empty segment: {other:?}"),
    }
    assert!(matches!(now, Err(OpenError::NotInitialized(_))), "{now:?}");
    // Sized but never marked ready, and no magic either: not one of ours.
    create(&zeros, 8192);
    let got = Queue::<u64, Spsc>::open(&zeros);
    assert!(matches!(Inspector::open_now(&zeros).map(|_| ()), Err(OpenError::BadMagic(_))));
    // Our magic but never marked ready: a creator that died while initialising it.
    segment_file(&zeros).write_all_at(&u64::from_le_bytes(*b"SHMPIPE\0").to_le_bytes(), 0).unwrap();
    let half_made = Inspector::open_now(&zeros).map(|_| ());
    shm_queue::unlink(&zeros).unwrap();
    assert!(matches!(got, Err(OpenError::BadMagic(_))), "open of a zeroed segment: {got:?}");
    assert!(matches!(half_made, Err(OpenError::NotInitialized(_))), "{half_made:?}");
}

#[test]
fn segment_of_another_user_is_foreign_owner() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a segment to another user");
        return;
    }
    let mut names = Names::new("segment_of_another_user_is_foreign_owner");
    let name = names.next();
    let _queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    std::os::unix::fs::chown(shm_path(&name), Some(65534), None).unwrap();
    match Queue::<u64, Spsc>::open(&name) {
        Err(OpenError::ForeignOwner { owner, me, .. }) => assert_eq!((owner, me), (65534, 0)),
        other => panic!("open: {other:?}"),
    }
}

/// Aligned beyond a page: a segment (page-aligned) could not hold its slots aligned.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(8192))]
struct OverAligned([u64; 1024]);

#[test]
fn an_element_aligned_beyond_a_page_is_unsupported_alignment() {
    let mut names = Names::new("an_element_aligned_beyond_a_page_is_unsupported_alignment");
    let name = names.next();
    let expected = |e: CreateError| matches!(e, CreateError::UnsupportedAlignment { align: 8192, max: 4096 });
    assert!(expected(Queue::<OverAligned, Spsc>::create(&name, 2).unwrap_err()));
    assert!(expected(Queue::<OverAligned, Mpmc>::on_heap(QueueOptions::new(2)).unwrap_err()));
    // Up to a page is fine.
    #[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C, align(4096))]
    struct PageAligned([u8; 4096]);
    let queue = Queue::<PageAligned, Spsc>::create(&name, 2).unwrap();
    let mut tx = queue.producer().unwrap();
    tx.push(PageAligned([7; 4096])).unwrap();
    let slot = queue.consumer().unwrap().pop().unwrap();
    assert_eq!((std::ptr::addr_of!(slot) as usize) % 4096, 0);
    assert_eq!(slot.0[4095], 7);
}

/// Elements of 1 MiB.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Mebibyte([[u8; 4096]; 256]);

#[test]
fn a_heap_queue_larger_than_the_address_space_is_out_of_memory_not_an_abort() {
    // A valid capacity of 1 MiB elements: 2^50 bytes, beyond any address space x86-64 or
    // AArch64 gives a process, so the allocator refuses whatever the overcommit policy.
    match Queue::<Mebibyte, Spsc>::on_heap(QueueOptions::new(1 << 30)) {
        Err(CreateError::OutOfMemory { len }) => assert!(len > 1 << 50, "{len}"),
        other => panic!("expected OutOfMemory, got {:?}", other.map(drop)),
    }
    assert!(Queue::<Mebibyte, Spsc>::on_heap(QueueOptions::new(2)).is_ok(), "a small one fits");
}
#[test]
fn unsupported_capacity_is_invalid_capacity() {
    let mut names = Names::new("unsupported_capacity_is_invalid_capacity");
    for capacity in [0, 3, 6, 1000, MAX_CAPACITY * 2, 1 << 31, usize::MAX] {
        let name = names.next();
        let expect = |got: Result<(), CreateError>, how: &str| match got {
            Err(CreateError::InvalidCapacity { capacity: c, max }) => {
                assert_eq!((c, max), (capacity, MAX_CAPACITY), "{how}({capacity})")
            }
            other => panic!("{how}({capacity}): {other:?}"),
        };
        expect(Queue::<u64, Spsc>::create(&name, capacity).map(drop), "create");
        expect(Queue::<u64, Mpmc>::create_with(&name, QueueOptions::new(capacity)).map(drop), "create_with");
        expect(Queue::<u64, Mpsc>::on_heap(QueueOptions::new(capacity)).map(drop), "on_heap");
    }
    // The edges that are accepted.
    assert!(Queue::<u8, Spsc>::on_heap(QueueOptions::new(1)).is_ok());
    assert!(Queue::<u8, Mpmc>::on_heap(QueueOptions::new(2)).is_ok());
}

#[test]
fn unsupported_bound_is_invalid_bound() {
    let mut names = Names::new("unsupported_bound_is_invalid_bound");
    let expect = |got: Result<(), CreateError>, bound: usize, capacity: usize, what: &str| match got {
        Err(CreateError::InvalidBound { bound: b, capacity: c }) => assert_eq!((b, c), (bound, capacity), "{what}"),
        other => panic!("{what}: {other:?}"),
    };
    // Zero, above the capacity, and below the capacity for a kind other than SPSC.
    let name = names.next();
    expect(Queue::<u64, Spsc>::create_with(&name, QueueOptions::new(8).bound(0)).map(drop), 0, 8, "SPSC bound 0");
    expect(Queue::<u64, Spsc>::create_with(&name, QueueOptions::new(8).bound(9)).map(drop), 9, 8, "SPSC bound 9");
    expect(Queue::<u64, Mpsc>::create_with(&name, QueueOptions::new(8).bound(5)).map(drop), 5, 8, "MPSC bound 5");
    expect(Queue::<u64, Spmc>::on_heap(QueueOptions::new(8).bound(7)).map(drop), 7, 8, "SPMC bound 7");
    expect(Queue::<u64, Mpmc>::on_heap(QueueOptions::with_depth(10)).map(drop), 10, 16, "MPMC depth 10");
    expect(Queue::<u64, Spsc>::on_heap(QueueOptions::with_depth(0)).map(drop), 0, 1, "SPSC depth 0");
    // A wake threshold is checked against the bound, not the capacity.
    let batched = QueueOptions::with_depth(10).wake(WakePolicy::Batched { consumer_at: 11, producer_at: 0 });
    match Queue::<u64, Spsc>::on_heap(batched) {
        Err(e @ CreateError::InvalidWakeThreshold { which, threshold, bound }) => {
            assert_eq!((which, threshold, bound), ("consumer_at", 11, 10));
            assert_eq!(
                e.to_string(),
                "wake threshold 11 for consumer_at is outside 1..=10 (the queue holds at most 10 items)"
            );
        }
        other => panic!("threshold above the bound: {other:?}"),
    }
    // Accepted: an SPSC queue of depth 10 holds 10 items, also as seen by another handle.
    let queue = Queue::<u64, Spsc>::create_with(&name, QueueOptions::with_depth(10)).unwrap();
    assert_eq!((queue.capacity(), queue.bound()), (16, 10));
    assert_eq!(Queue::<u64, Spsc>::open(&name).unwrap().bound(), 10);
    let mut tx = queue.producer().unwrap();
    for i in 0..10 {
        tx.try_push(i).unwrap();
    }
    assert_eq!(tx.try_push(10), Err(PushError::Full(10)));
    // A bound equal to the capacity is fine for every kind.
    assert!(Queue::<u64, Mpmc>::on_heap(QueueOptions::new(8).bound(8)).is_ok());
}

#[test]
fn wake_threshold_out_of_range_is_invalid_wake_threshold() {
    let mut names = Names::new("wake_threshold_out_of_range_is_invalid_wake_threshold");
    let batched =
        |consumer_at, producer_at| QueueOptions::new(8).wake(WakePolicy::Batched { consumer_at, producer_at });
    for (options, which, threshold) in [
        (batched(0, 0), "consumer_at", 0),
        (batched(9, 0), "consumer_at", 9),
        (batched(u32::MAX, 0), "consumer_at", u32::MAX),
        (batched(4, 8), "producer_at", 8),
        (batched(4, u32::MAX), "producer_at", u32::MAX),
    ] {
        let name = names.next();
        match Queue::<u64, Mpmc>::create_with(&name, options) {
            Err(CreateError::InvalidWakeThreshold { which: w, threshold: t, bound }) => {
                assert_eq!((w, t, bound), (which, threshold, 8), "{options:?}")
            }
            other => panic!("{options:?}: {other:?}"),
        }
        assert!(matches!(Queue::<u64, Spsc>::on_heap(options), Err(CreateError::InvalidWakeThreshold { .. })));
    }
    // The edges that are accepted.
    let name = names.next();
    assert!(Queue::<u64, Mpmc>::create_with(&name, batched(8, 7)).is_ok());
    assert!(Queue::<u64, Spsc>::on_heap(QueueOptions::new(8).wake(WakePolicy::at_edges(8))).is_ok());
    assert!(Queue::<u64, Spsc>::on_heap(batched(1, 0)).is_ok());
}

#[test]
fn a_recheck_interval_out_of_range_is_clamped_for_the_creator_too() {
    let mut names = Names::new("a_recheck_interval_out_of_range_is_clamped_for_the_creator_too");
    let name = names.next();
    let queue = Queue::<u64, Spsc>::create_with(&name, QueueOptions::new(4).recheck(Duration::ZERO)).unwrap();
    let mut rx = queue.consumer().unwrap();
    assert_eq!(rx.pop_timeout(Duration::from_millis(100)), Err(PopError::Timeout));
    // Clamped to 1 ms, a sleep lasts at least that: at most ~100 sleeps in 100 ms. Unclamped,
    // every futex wait timed out at once and the "sleeper" spun through tens of thousands.
    let sleeps = queue.stats().consumer.futex_waits;
    assert!((1..=200).contains(&sleeps), "{sleeps} futex waits in 100 ms");
    // Those who open the queue take the clamped value from its header.
    let opened = Queue::<u64, Spsc>::open(&name).unwrap();
    let mut tx = opened.producer().unwrap();
    tx.push(1).unwrap();
    assert_eq!(rx.pop_timeout(Duration::from_secs(30)), Ok(1));
}

#[test]
fn second_end_of_a_single_role_is_role_taken() {
    let mut names = Names::new("second_end_of_a_single_role_is_role_taken");
    let name = names.next();
    let spsc = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    let (_tx, _rx) = (spsc.producer().unwrap(), spsc.consumer().unwrap());
    assert_eq!(spsc.producer().unwrap_err(), AttachError::RoleTaken { kind: "SPSC", role: "producer" });
    assert_eq!(spsc.consumer().unwrap_err(), AttachError::RoleTaken { kind: "SPSC", role: "consumer" });
    // Also through another handle of the same segment.
    let again = Queue::<u64, Spsc>::open(&name).unwrap();
    assert_eq!(again.producer().unwrap_err(), AttachError::RoleTaken { kind: "SPSC", role: "producer" });

    let spmc = Queue::<u64, Spmc>::on_heap(QueueOptions::new(8)).unwrap();
    let _tx = spmc.producer().unwrap();
    assert_eq!(spmc.producer().unwrap_err(), AttachError::RoleTaken { kind: "SPMC", role: "producer" });
    let (_rx1, _rx2) = (spmc.consumer().unwrap(), spmc.consumer().unwrap());

    let mpsc = Queue::<u64, Mpsc>::on_heap(QueueOptions::new(8)).unwrap();
    let _rx = mpsc.consumer().unwrap();
    assert_eq!(mpsc.consumer().unwrap_err(), AttachError::RoleTaken { kind: "MPSC", role: "consumer" });
    let (_tx1, _tx2) = (mpsc.producer().unwrap(), mpsc.producer().unwrap());
}

#[test]
fn attach_after_every_end_of_a_role_left_is_closed() {
    let mut names = Names::new("attach_after_every_end_of_a_role_left_is_closed");
    let name = names.next();
    let queue = Queue::<u64, Mpmc>::create(&name, 8).unwrap();
    let (tx1, tx2) = (queue.producer().unwrap(), queue.producer().unwrap());
    let (rx1, rx2) = (queue.consumer().unwrap(), queue.consumer().unwrap());
    drop(tx1);
    let tx3 = tx2.try_clone().expect("a producer is still attached");
    drop((tx2, tx3));
    assert_eq!(queue.producer().unwrap_err(), AttachError::Closed { role: "producer" });
    assert_eq!(
        Queue::<u64, Mpmc>::open(&name).unwrap().producer().unwrap_err(),
        AttachError::Closed { role: "producer" }
    );
    drop((rx1, rx2));
    assert_eq!(queue.consumer().unwrap_err(), AttachError::Closed { role: "consumer" });
    // A single-producer queue closes with its one producer.
    let spsc = Queue::<u64, Spsc>::on_heap(QueueOptions::new(8)).unwrap();
    drop(spsc.producer().unwrap());
    assert_eq!(spsc.producer().unwrap_err(), AttachError::Closed { role: "producer" });
}

#[test]
fn adopt_with_a_bogus_token_is_no_pending_handover() {
    let mut names = Names::new("adopt_with_a_bogus_token_is_no_pending_handover");
    let name = names.next();
    let queue = Queue::<u64, Mpmc>::create(&name, 8).unwrap();
    let no_pending = |slot| AttachError::NoPendingHandover { slot };
    // Free slots, a slot beyond the table, and the all-zero token.
    assert_eq!(queue.adopt_producer(Handover { slot: 5, role: 1 }).unwrap_err(), no_pending(5));
    assert_eq!(queue.adopt_consumer(Handover { slot: 5, role: 2 }).unwrap_err(), no_pending(5));
    assert_eq!(queue.adopt_producer(Handover { slot: 100_000, role: 1 }).unwrap_err(), no_pending(100_000));
    assert_eq!(queue.adopt_producer(Handover { slot: u32::MAX, role: 1 }).unwrap_err(), no_pending(u32::MAX));
    assert_eq!(queue.adopt_producer(shm_queue::Zeroable::zeroed()).unwrap_err(), no_pending(0));
    // A slot that is attached, not handed over.
    let tx = queue.producer().unwrap();
    let rx = queue.consumer().unwrap();
    for slot in 0..2 {
        assert_eq!(queue.adopt_producer(Handover { slot, role: 1 }).unwrap_err(), no_pending(slot));
        assert_eq!(queue.adopt_consumer(Handover { slot, role: 2 }).unwrap_err(), no_pending(slot));
    }
    // A real token of the wrong role, and a real token used twice.
    let token = tx.into_handover();
    assert_eq!(queue.adopt_consumer(token).unwrap_err(), no_pending(token.slot));
    assert_eq!(queue.adopt_consumer(Handover { role: 2, ..token }).unwrap_err(), no_pending(token.slot));
    let mut tx = queue.adopt_producer(token).expect("the real token");
    assert_eq!(queue.adopt_producer(token).unwrap_err(), no_pending(token.slot));
    // The adopted end works.
    tx.push(1).unwrap();
    let mut rx = rx;
    assert_eq!(rx.try_pop(), Ok(1));
}

#[test]
fn error_display_strings_are_single_clean_lines() {
    let mut names = Names::new("error_display_strings_are_single_clean_lines");
    let name = names.next();
    let queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    let mut texts = vec![
        (
            Queue::<u64, Spsc>::create(&name, 8).unwrap_err().to_string(),
            format!("a shared-memory segment named {name} already exists"),
        ),
        (
            Queue::<u64, Spsc>::open("/shmq-test-missing-x").unwrap_err().to_string(),
            "no shared-memory segment named /shmq-test-missing-x".into(),
        ),
        (
            Queue::<u64, Spsc>::open("nope").unwrap_err().to_string(),
            "invalid name: shared-memory name must start with '/'".into(),
        ),
        (
            // A space is printable, but no part of a name: the message says which rule it broke.
            Queue::<u64, Spsc>::open("/a b").unwrap_err().to_string(),
            "invalid name: shared-memory name contains ' ': only printable ASCII characters other than space are allowed"
                .into(),
        ),
        (
            Queue::<u64, Spsc>::on_heap(QueueOptions::new(3)).unwrap_err().to_string(),
            "unsupported capacity 3: it must be a power of two between 1 and 1073741824".into(),
        ),
        (
            // No power of two lies above this depth: it is refused by its own value, not as 0.
            Queue::<u64, Spsc>::on_heap(QueueOptions::with_depth(usize::MAX)).unwrap_err().to_string(),
            format!("unsupported capacity {}: it must be a power of two between 1 and 1073741824", usize::MAX),
        ),
        (
            Queue::<u64, Spsc>::on_heap(
                QueueOptions::new(8).wake(WakePolicy::Batched { consumer_at: 4, producer_at: 8 }),
            )
            .unwrap_err()
            .to_string(),
            "wake threshold 8 for producer_at is outside 0..=7 (the queue holds at most 8 items)".into(),
        ),
        (Queue::<u64, Mpmc>::open(&name).unwrap_err().to_string(), "segment holds a SPSC ring, expected MPMC".into()),
        (
            Queue::<u32, Spsc>::open(&name).unwrap_err().to_string(),
            "segment holds elements of type u64 (size 8, align 8), expected u32 (size 4, align 4)".into(),
        ),
        (
            AttachError::Closed { role: "producer" }.to_string(),
            "every producer of this queue has already detached; it is closed".into(),
        ),
        (
            queue.adopt_producer(Handover { slot: 9, role: 1 }).unwrap_err().to_string(),
            "no pending handover in endpoint slot 9".into(),
        ),
        (PushError::Disconnected(5u64).to_string(), "every consumer has left the queue".into()),
        (PushError::PeerDead { pid: 12, item: 5u64 }.to_string(), "consumer process 12 died without detaching".into()),
        (PopError::PeerDead { pid: 7 }.to_string(), "producer process 7 died without detaching".into()),
        (PopError::Disconnected.to_string(), "every producer has left and the queue is drained".into()),
        (
            OpenError::OtherPidNamespace { name: "/q".into(), found: 4026532178, here: 4026531836 }.to_string(),
            "segment /q belongs to PID namespace pid:[4026532178], this process is in pid:[4026531836]; processes sharing a queue must share their PID namespace".into(),
        ),
        (CreateError::OutOfMemory { len: 1 << 50 }.to_string(), "cannot allocate 1125899906842624 bytes for a queue on the heap".into()),
    ];
    let _tx = queue.producer().unwrap();
    texts.push((queue.producer().unwrap_err().to_string(), "this SPSC queue already has its single producer".into()));
    for (got, want) in &texts {
        assert_eq!(got, want);
        assert!(!got.contains('\n') && !got.contains('{') && !got.contains('}'), "{got:?}");
    }
}

#[test]
fn segment_file_is_private_to_its_owner() {
    let mut names = Names::new("segment_file_is_private_to_its_owner");
    let (queue_name, segment_name) = (names.next(), names.next());
    let _queue = Queue::<u64, Mpsc>::create(&queue_name, 8).unwrap();
    let _segment = Segment::create(&segment_name, 4096).unwrap();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for name in [&queue_name, &segment_name] {
        let meta = std::fs::metadata(shm_path(name)).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600, "{name}: mode {:o}", meta.mode());
        assert_eq!(meta.uid(), me, "{name}");
    }
    shm_queue::unlink(&segment_name).unwrap();
}
