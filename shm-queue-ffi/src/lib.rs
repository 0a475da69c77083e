//! A C ABI for `shm-queue`: bounded lock-free rings in POSIX shared memory whose slots are
//! fixed-size byte records, for C, C++ and Fortran programs (and for Rust programs that talk to
//! them).
//!
//! Built as `libshm_queue_ffi.so` and `libshm_queue_ffi.a`; the C header is
//! `include/shm_queue.h`, generated from this crate by cbindgen (see `cbindgen.toml`).
//!
//! - Every function returns `0` or a negative errno-style code (`SHMQ_EAGAIN` = `-EAGAIN`, …);
//!   `shmq_strerror` describes a code and `shmq_last_error` gives the details of the calling
//!   thread's last failure. No Rust panic crosses the boundary: one is caught and reported as
//!   `SHMQ_EIO`.
//! - Handles are opaque: `shmq_queue` (a mapped queue), `shmq_producer`, `shmq_consumer`.
//! - A record is `record_size` bytes, one of [`RECORD_SIZES`], chosen at creation. In Rust the
//!   element type is `[u8; record_size]`: a queue created here opens in Rust as
//!   `Queue::<[u8; N], K>::open(name)`, and a Rust-created `Queue<[u8; N], K>` opens here with
//!   `shmq_open(name, kind, N, &q)`.
#![deny(unsafe_op_in_unsafe_fn)]

mod error;
mod records;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shm_queue::{Inspector, KindId, QueueOptions, WakePolicy};

pub use error::*;
pub use records::RECORD_SIZES;
use records::{ConsumerOps, ProducerOps, QueueOps, Wait};

/// Kind: single producer, single consumer (the fastest).
pub const SHMQ_SPSC: c_int = 1;
/// Kind: many producers, single consumer.
pub const SHMQ_MPSC: c_int = 2;
/// Kind: single producer, many consumers.
pub const SHMQ_SPMC: c_int = 3;
/// Kind: many producers, many consumers.
pub const SHMQ_MPMC: c_int = 4;
/// Kind for `shmq_open`: whatever the segment holds.
pub const SHMQ_ANY_KIND: c_int = 0;
/// Record size for `shmq_open`: whatever the segment holds.
pub const SHMQ_ANY_SIZE: usize = 0;
/// The largest record size.
pub const SHMQ_MAX_RECORD_SIZE: usize = 4096;
/// The largest capacity (2^30 records).
pub const SHMQ_MAX_CAPACITY: usize = 1 << 30;

const _: () = assert!(SHMQ_MAX_CAPACITY == shm_queue::MAX_CAPACITY);
const _: () = assert!(SHMQ_MAX_RECORD_SIZE == RECORD_SIZES[RECORD_SIZES.len() - 1]);
const _: () = {
    assert!(SHMQ_SPSC == KindId::Spsc as c_int);
    assert!(SHMQ_MPSC == KindId::Mpsc as c_int);
    assert!(SHMQ_SPMC == KindId::Spmc as c_int);
    assert!(SHMQ_MPMC == KindId::Mpmc as c_int);
};

/// A queue mapped in this process: from it, producers and consumers are attached.
///
/// A queue made by `shmq_create` owns its name and removes it from `/dev/shm` when closed
/// (unless `shmq_keep_name` was called); one made by `shmq_open` does not. Producers and
/// consumers keep the mapping alive: they may outlive the queue handle.
///
/// Thread safety: a queue handle may be used by several threads at once (attach, stats,
/// poison), but must not be closed while another thread uses it.
pub struct ShmqQueue {
    ops: Box<dyn QueueOps>,
    keep_name: AtomicBool,
}

/// The writing end of a queue. Use it from one thread at a time (it may move between threads).
/// Closing the last producer closes the queue: consumers drain it, then get `SHMQ_EPIPE`.
pub struct ShmqProducer {
    ops: Box<dyn ProducerOps>,
}

/// The reading end of a queue. Use it from one thread at a time (it may move between threads).
/// Closing the last consumer makes pushes fail with `SHMQ_EPIPE`.
pub struct ShmqConsumer {
    ops: Box<dyn ConsumerOps>,
}

impl fmt::Debug for ShmqQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmqQueue").field("record_size", &self.ops.record_size()).finish_non_exhaustive()
    }
}

impl fmt::Debug for ShmqProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmqProducer").field("record_size", &self.ops.record_size()).finish_non_exhaustive()
    }
}

impl fmt::Debug for ShmqConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmqConsumer").field("record_size", &self.ops.record_size()).finish_non_exhaustive()
    }
}

/// How a queue is created, for `shmq_create_with`. Fill it with `shmq_options_init`, then
/// change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmqOptions {
    /// Bytes per record: one of 1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 2048,
    /// 4096 (`shmq_record_size_fit` rounds a size up to the next one).
    pub record_size: usize,
    /// Slots: a power of two in 1..=`SHMQ_MAX_CAPACITY`.
    pub capacity: usize,
    /// Records allowed in flight; 0 means the capacity. Only an SPSC queue may hold fewer than
    /// its capacity.
    pub bound: usize,
    /// `SHMQ_SPSC`, `SHMQ_MPSC`, `SHMQ_SPMC` or `SHMQ_MPMC`.
    pub kind: c_int,
    /// 0: wake a sleeping consumer after every push (the default). Otherwise wake it only once
    /// the ring holds this many records (1..=bound), or on flush, close or poison.
    pub wake_consumer_at: u32,
    /// With `wake_consumer_at` non-zero: wake a sleeping producer only once the ring drains to
    /// this many records (0..bound).
    pub wake_producer_at: u32,
    /// How often sleepers re-check for dead peers, in milliseconds; 0 means 100.
    pub recheck_ms: u32,
}

/// A snapshot of a queue's state and counters (read field by field, not atomically).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShmqStats {
    /// `SHMQ_SPSC` … `SHMQ_MPMC`.
    pub kind: c_int,
    /// 1 if the queue is poisoned.
    pub poisoned: u32,
    /// Producers attached.
    pub producers: u32,
    /// Consumers attached.
    pub consumers: u32,
    /// 1 once every producer has left (the queue is closed to consumers).
    pub producers_gone: u32,
    /// 1 once every consumer has left.
    pub consumers_gone: u32,
    /// The pid of the dead peer that poisoned the queue, or 0.
    pub dead_peer: u32,
    /// Always 0.
    pub reserved: u32,
    /// Bytes per record.
    pub record_size: u64,
    /// Slots in the ring.
    pub capacity: u64,
    /// Records allowed in flight.
    pub bound: u64,
    /// Records pushed (claimed) so far.
    pub pushed: u64,
    /// Records popped (claimed) so far.
    pub popped: u64,
    /// Records in the ring now.
    pub len: u64,
    /// Producer waits past the spin (ring full).
    pub producer_blocked: u64,
    /// FUTEX_WAIT calls by producers.
    pub producer_futex_waits: u64,
    /// FUTEX_WAKE calls by producers.
    pub producer_futex_wakes: u64,
    /// Nanoseconds producers spent blocked.
    pub producer_blocked_ns: u64,
    /// Consumer waits past the spin (ring empty).
    pub consumer_blocked: u64,
    /// FUTEX_WAIT calls by consumers.
    pub consumer_futex_waits: u64,
    /// FUTEX_WAKE calls by consumers.
    pub consumer_futex_wakes: u64,
    /// Nanoseconds consumers spent blocked.
    pub consumer_blocked_ns: u64,
}

// -------------------------------------------------------------------------------------------
// Boundary helpers.

/// Runs `f`, catching panics, and turns its outcome into a return code.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SHMQ_OK,
        Ok(Err(failure)) => failure.record(),
        Err(payload) => Failure::panic(&*payload).record(),
    }
}

/// Runs `f`, which cannot fail, returning `fallback` if it panics.
fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Failure::panic(&*payload).record();
        fallback
    })
}

/// A segment name from C.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string that outlives `'a`.
unsafe fn name_arg<'a>(name: *const c_char) -> Result<&'a str, Failure> {
    if name.is_null() {
        return Err(Failure::invalid("name is NULL"));
    }
    // SAFETY: non-null, and NUL-terminated by the caller's contract.
    let name = unsafe { CStr::from_ptr(name) };
    name.to_str().map_err(|_| Failure::invalid("name is not UTF-8"))
}

/// A mutable reference from a C pointer, `-EINVAL` for NULL or a misaligned pointer (into a
/// packed struct, say), which a reference must never be.
///
/// # Safety
/// `ptr` is NULL or valid for reads and writes of a `T`, unaliased for `'a`.
unsafe fn mut_arg<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("{what} is misaligned")));
    }
    // SAFETY: aligned, and valid or NULL by the caller's contract; NULL becomes None.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// A shared reference from a C pointer, `-EINVAL` for NULL or a misaligned pointer.
///
/// # Safety
/// `ptr` is NULL or valid for reads of a `T`, not mutated for `'a`.
unsafe fn ref_arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    if !ptr.is_aligned() {
        return Err(Failure::invalid(format!("{what} is misaligned")));
    }
    // SAFETY: aligned, and valid or NULL by the caller's contract; NULL becomes None.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// `len` bytes from C.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes, not mutated for `'a`.
unsafe fn bytes_arg<'a>(ptr: *const c_void, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!("{what}: {len} bytes is more than any object")));
    }
    // SAFETY: non-null and valid for `len` bytes by the caller's contract (and `len` fits an
    // object, checked above); u8 has alignment 1.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// `len` writable bytes from C.
///
/// # Safety
/// `ptr` is NULL or valid for writes of `len` bytes, unaliased for `'a`.
unsafe fn bytes_mut_arg<'a>(ptr: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!("{what}: {len} bytes is more than any object")));
    }
    // SAFETY: non-null and valid for writes of `len` bytes by the caller's contract (and `len`
    // fits an object, checked above); the bytes may hold anything (u8), and alignment is 1.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) })
}

/// Stores a new handle in `*out` (which the caller has checked is writable).
fn hand_out<T>(out: &mut *mut T, value: T) {
    *out = Box::into_raw(Box::new(value));
}

fn options_from_c(options: &ShmqOptions) -> Result<(KindId, QueueOptions), Failure> {
    let kind = records::kind_from_c(options.kind)?;
    records::check_size(options.record_size)?;
    let mut rust = QueueOptions::new(options.capacity);
    if options.bound != 0 {
        rust = rust.bound(options.bound);
    }
    if options.wake_consumer_at != 0 {
        rust = rust
            .wake(WakePolicy::Batched { consumer_at: options.wake_consumer_at, producer_at: options.wake_producer_at });
    }
    if options.recheck_ms != 0 {
        rust = rust.recheck(Duration::from_millis(u64::from(options.recheck_ms)));
    }
    Ok((kind, rust))
}

// -------------------------------------------------------------------------------------------
// Errors and record sizes.

/// A static description of a return code (negative or positive). Never NULL.
#[no_mangle]
pub extern "C" fn shmq_strerror(code: c_int) -> *const c_char {
    guard_value(c"internal error".as_ptr(), || describe(code).as_ptr())
}

/// The details of the calling thread's last failure (empty if none yet), such as which name
/// was not found or which types mismatched. Valid until the thread's next failing call. Never
/// NULL.
#[no_mangle]
pub extern "C" fn shmq_last_error() -> *const c_char {
    guard_value(c"internal error".as_ptr(), error::last_error_message)
}

/// The code of the calling thread's last failure (0 if none yet).
#[no_mangle]
pub extern "C" fn shmq_last_error_code() -> c_int {
    guard_value(SHMQ_EIO, error::last_error_code)
}

/// Whether queues may be created with records of `size` bytes.
#[no_mangle]
pub extern "C" fn shmq_record_size_supported(size: usize) -> bool {
    guard_value(false, || records::supported(size))
}

/// The smallest supported record size of at least `size` bytes, or 0 above
/// `SHMQ_MAX_RECORD_SIZE`.
#[no_mangle]
pub extern "C" fn shmq_record_size_fit(size: usize) -> usize {
    guard_value(0, || RECORD_SIZES.iter().copied().find(|&s| s >= size).unwrap_or(0))
}

// -------------------------------------------------------------------------------------------
// Queues.

/// Fills `*options` with the defaults for a queue of `kind` holding `capacity` records of
/// `record_size` bytes: no bound below the capacity, eager wake-ups, 100 ms re-checks.
///
/// Returns 0, or `SHMQ_EINVAL` if `options` is NULL. The values are checked by
/// `shmq_create_with`.
///
/// # Safety
/// `options` is NULL or points to a writable `shmq_options_t`.
#[no_mangle]
pub unsafe extern "C" fn shmq_options_init(
    options: *mut ShmqOptions,
    kind: c_int,
    record_size: usize,
    capacity: usize,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let options = unsafe { mut_arg(options, "options") }?;
        *options = ShmqOptions {
            record_size,
            capacity,
            bound: 0,
            kind,
            wake_consumer_at: 0,
            wake_producer_at: 0,
            recheck_ms: 0,
        };
        Ok(())
    })
}

/// Creates the segment `name` (such as `"/my-queue"`: a leading slash, no other) holding an
/// empty queue of `kind` with `capacity` records of `record_size` bytes, and maps it. Fails if
/// the name exists (`O_EXCL`); the segment has mode 0600. On success `*out` is the new queue,
/// on failure NULL.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL argument, bad name, kind, record size or capacity),
/// `SHMQ_ENAMETOOLONG`, `SHMQ_EEXIST`, `SHMQ_EACCES`, `SHMQ_ENOSPC`, `SHMQ_EMFILE`, or another
/// negative errno.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_create(
    name: *const c_char,
    kind: c_int,
    record_size: usize,
    capacity: usize,
    out: *mut *mut ShmqQueue,
) -> c_int {
    let options =
        ShmqOptions { record_size, capacity, bound: 0, kind, wake_consumer_at: 0, wake_producer_at: 0, recheck_ms: 0 };
    // SAFETY: the caller's contract for `name` and `out`; `options` is a local.
    unsafe { shmq_create_with(name, &options, out) }
}

/// Like `shmq_create`, with every option (see `shmq_options_t`).
///
/// Returns 0 or the codes of `shmq_create` (`SHMQ_EINVAL` also for a bad bound or wake
/// threshold).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `options` is NULL or readable; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_create_with(
    name: *const c_char,
    options: *const ShmqOptions,
    out: *mut *mut ShmqQueue,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { mut_arg(out, "out") }?;
        *out = std::ptr::null_mut();
        // SAFETY: NULL or a NUL-terminated string by the caller's contract.
        let name = unsafe { name_arg(name) }?;
        // SAFETY: NULL or readable by the caller's contract.
        let options = unsafe { ref_arg(options, "options") }?;
        let (kind, rust) = options_from_c(options)?;
        let ops = records::create(name, kind, options.record_size, rust)?;
        hand_out(out, ShmqQueue { ops, keep_name: AtomicBool::new(false) });
        Ok(())
    })
}

/// Maps the existing queue `name` and checks that it holds `kind` records of `record_size`
/// bytes. `SHMQ_ANY_KIND` and `SHMQ_ANY_SIZE` accept what the segment holds (a byte-record
/// queue of any kind or size: read them back with `shmq_stats`). Waits up to a second for a
/// racing creator to finish initialising it. On success `*out` is the queue, on failure NULL.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL argument, bad name, kind or unsupported record size),
/// `SHMQ_ENOENT` (no such segment: not created yet?), `SHMQ_EACCES`, `SHMQ_EPERM` (another
/// user's segment), `SHMQ_EAGAIN` (its creator did not finish initialising it in time),
/// `SHMQ_EPROTO` (another kind or record size, not a queue, another format version, corrupt),
/// `SHMQ_EMFILE`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_open(
    name: *const c_char,
    kind: c_int,
    record_size: usize,
    out: *mut *mut ShmqQueue,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { mut_arg(out, "out") }?;
        *out = std::ptr::null_mut();
        // SAFETY: NULL or a NUL-terminated string by the caller's contract.
        let name = unsafe { name_arg(name) }?;
        let kind = if kind == SHMQ_ANY_KIND { None } else { Some(records::kind_from_c(kind)?) };
        let size = if record_size == SHMQ_ANY_SIZE {
            None
        } else {
            records::check_size(record_size)?;
            Some(record_size)
        };
        let ops = records::open(name, kind, size)?;
        hand_out(out, ShmqQueue { ops, keep_name: AtomicBool::new(false) });
        Ok(())
    })
}

/// Keeps the name in `/dev/shm` when the queue (made by `shmq_create`) is closed: someone else
/// will `shmq_unlink` it.
///
/// Returns 0, or `SHMQ_EINVAL` for NULL.
///
/// # Safety
/// `queue` is NULL or a live queue handle.
#[no_mangle]
pub unsafe extern "C" fn shmq_keep_name(queue: *const ShmqQueue) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle by the caller's contract.
        let queue = unsafe { ref_arg(queue, "queue") }?;
        queue.keep_name.store(true, Ordering::Relaxed);
        Ok(())
    })
}

/// Marks the queue broken and wakes every sleeper: every end, in every process, then fails
/// with `SHMQ_ENOTRECOVERABLE`. For when a computation must stop.
///
/// Returns 0, or `SHMQ_EINVAL` for NULL.
///
/// # Safety
/// `queue` is NULL or a live queue handle.
#[no_mangle]
pub unsafe extern "C" fn shmq_poison(queue: *const ShmqQueue) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle by the caller's contract.
        let queue = unsafe { ref_arg(queue, "queue") }?;
        queue.ops.poison();
        Ok(())
    })
}

/// Fills `*out` with the queue's state and counters.
///
/// Returns 0, or `SHMQ_EINVAL` for NULL.
///
/// # Safety
/// `queue` is NULL or a live queue handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_stats(queue: *const ShmqQueue, out: *mut ShmqStats) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle by the caller's contract.
        let queue = unsafe { ref_arg(queue, "queue") }?;
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { mut_arg(out, "out") }?;
        *out = queue.ops.stats();
        Ok(())
    })
}

/// Fills `*out` with the state and counters of the queue `name`, without attaching to it (for
/// monitoring). Works for a queue of any element type.
///
/// Returns 0, or the codes of `shmq_open`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_stats_by_name(name: *const c_char, out: *mut ShmqStats) -> c_int {
    guard(|| {
        // SAFETY: NULL or a NUL-terminated string by the caller's contract.
        let name = unsafe { name_arg(name) }?;
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { mut_arg(out, "out") }?;
        let inspector = Inspector::open(name)?;
        let header = inspector.header();
        *out = records::c_stats(&inspector.stats(), header.element.size as usize, header.bound);
        Ok(())
    })
}

/// Unmaps the queue and frees the handle; a queue made by `shmq_create` also removes its name
/// (unless `shmq_keep_name` was called). Attached producers and consumers keep working. NULL
/// is accepted and ignored.
///
/// Returns 0.
///
/// # Safety
/// `queue` is NULL or a live queue handle, which is dead afterwards.
#[no_mangle]
pub unsafe extern "C" fn shmq_queue_close(queue: *mut ShmqQueue) -> c_int {
    guard(|| {
        if queue.is_null() {
            return Ok(());
        }
        // SAFETY: a live handle made by `hand_out` (Box::into_raw), given back by the caller.
        let mut queue = unsafe { Box::from_raw(queue) };
        if queue.keep_name.load(Ordering::Relaxed) {
            queue.ops.keep_name();
        }
        drop(queue);
        Ok(())
    })
}

/// Removes the name `name` from `/dev/shm`. Processes that have the queue mapped keep using it;
/// its memory is freed when the last one unmaps.
///
/// Returns 0, or `SHMQ_EINVAL`, `SHMQ_ENAMETOOLONG`, `SHMQ_ENOENT`, `SHMQ_EACCES`.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmq_unlink(name: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: NULL or a NUL-terminated string by the caller's contract.
        let name = unsafe { name_arg(name) }?;
        shm_queue::unlink(name)?;
        Ok(())
    })
}

/// Attaches a producer to the queue. On success `*out` is the producer, on failure NULL.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL), `SHMQ_EBUSY` (the single producer of an SPSC or SPMC
/// queue is attached already), `SHMQ_EPIPE` (every producer has already left: the queue is
/// closed), `SHMQ_ENOTRECOVERABLE` (poisoned), `SHMQ_EUSERS` (endpoint table full).
///
/// # Safety
/// `queue` is NULL or a live queue handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_producer_attach(queue: *const ShmqQueue, out: *mut *mut ShmqProducer) -> c_int {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { mut_arg(out, "out") }?;
        *out = std::ptr::null_mut();
        // SAFETY: NULL or a live handle by the caller's contract.
        let queue = unsafe { ref_arg(queue, "queue") }?;
        hand_out(out, ShmqProducer { ops: queue.ops.producer()? });
        Ok(())
    })
}

/// Attaches a consumer to the queue. On success `*out` is the consumer, on failure NULL.
///
/// Returns 0, or the codes of `shmq_producer_attach` (`SHMQ_EBUSY` for a second consumer of an
/// SPSC or MPSC queue).
///
/// # Safety
/// `queue` is NULL or a live queue handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_consumer_attach(queue: *const ShmqQueue, out: *mut *mut ShmqConsumer) -> c_int {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { mut_arg(out, "out") }?;
        *out = std::ptr::null_mut();
        // SAFETY: NULL or a live handle by the caller's contract.
        let queue = unsafe { ref_arg(queue, "queue") }?;
        hand_out(out, ShmqConsumer { ops: queue.ops.consumer()? });
        Ok(())
    })
}

// -------------------------------------------------------------------------------------------
// Producers.

/// # Safety
/// `producer` is NULL or a live producer handle not used by another thread; `record` is NULL
/// or readable for the record size.
unsafe fn push_with(producer: *mut ShmqProducer, record: *const c_void, wait: Wait) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { mut_arg(producer, "producer") }?;
        // SAFETY: NULL or readable for a record by the caller's contract.
        let record = unsafe { bytes_arg(record, producer.ops.record_size(), "record") }?;
        producer.ops.push(record, wait)
    })
}

/// Copies one record (`record_size` bytes from `record`) into the queue, blocking while it is
/// full.
///
/// Returns 0, or `SHMQ_EPIPE` (every consumer has left), `SHMQ_ENOTRECOVERABLE` (poisoned),
/// `SHMQ_EOWNERDEAD` (a consumer died without detaching; now poisoned), `SHMQ_EBUSY` (a
/// reserved chunk is outstanding), `SHMQ_EINVAL` (NULL).
///
/// # Safety
/// `producer` is NULL or a live producer handle not used by another thread at the same time;
/// `record` is NULL or points to `record_size` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn shmq_push(producer: *mut ShmqProducer, record: *const c_void) -> c_int {
    // SAFETY: the caller's contract is `push_with`'s.
    unsafe { push_with(producer, record, Wait::Forever) }
}

/// Like `shmq_push`, without blocking: `SHMQ_EAGAIN` if the queue is full.
///
/// # Safety
/// As for `shmq_push`.
#[no_mangle]
pub unsafe extern "C" fn shmq_try_push(producer: *mut ShmqProducer, record: *const c_void) -> c_int {
    // SAFETY: the caller's contract is `push_with`'s.
    unsafe { push_with(producer, record, Wait::No) }
}

/// Like `shmq_push`, blocking at most `timeout_ns` nanoseconds: `SHMQ_ETIMEDOUT` if the queue
/// stayed full.
///
/// # Safety
/// As for `shmq_push`.
#[no_mangle]
pub unsafe extern "C" fn shmq_push_timeout(
    producer: *mut ShmqProducer,
    record: *const c_void,
    timeout_ns: u64,
) -> c_int {
    // SAFETY: the caller's contract is `push_with`'s.
    unsafe { push_with(producer, record, Wait::For(Duration::from_nanos(timeout_ns))) }
}

/// Pushes `count` records stored back to back at `records`, blocking while the queue is full.
/// `*pushed` (if not NULL) receives how many were pushed, also on failure.
///
/// Returns 0, or the codes of `shmq_push`.
///
/// # Safety
/// `producer` as for `shmq_push`; `records` is NULL or points to `count * record_size`
/// readable bytes; `pushed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_push_many(
    producer: *mut ShmqProducer,
    records: *const c_void,
    count: usize,
    pushed: *mut usize,
) -> c_int {
    let mut done = 0;
    let rc = guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { mut_arg(producer, "producer") }?;
        if count == 0 {
            return Ok(());
        }
        let len = count.checked_mul(producer.ops.record_size()).ok_or_else(|| Failure::invalid("count overflows"))?;
        // SAFETY: NULL or readable for `count` records by the caller's contract.
        let records = unsafe { bytes_arg(records, len, "records") }?;
        producer.ops.push_many(records, &mut done)
    });
    // SAFETY: NULL or writable by the caller's contract.
    if let Some(pushed) = unsafe { pushed.as_mut() } {
        *pushed = done;
    }
    rc
}

/// # Safety
/// `producer` is NULL or a live producer handle not used by another thread; `slots` and `len`
/// are NULL or writable.
unsafe fn reserve_with(
    producer: *mut ShmqProducer,
    max: usize,
    slots: *mut *mut c_void,
    len: *mut usize,
    wait: Wait,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let slots = unsafe { mut_arg(slots, "slots") }?;
        // SAFETY: NULL or writable by the caller's contract.
        let len = unsafe { mut_arg(len, "len") }?;
        (*slots, *len) = (std::ptr::null_mut(), 0);
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { mut_arg(producer, "producer") }?;
        let (ptr, n) = producer.ops.reserve(max, wait)?;
        (*slots, *len) = (ptr.cast(), n);
        Ok(())
    })
}

/// Reserves between 1 and `max` consecutive free slots in the shared segment, blocking while
/// the queue is full, for writing records in place (zero copy). On success `*slots` points to
/// the first slot and `*len` is how many were reserved (slots are `record_size` bytes apart and
/// hold stale bytes); write all `*len` records, then call `shmq_commit` to publish them. Until
/// then the producer does nothing but `shmq_commit`, `shmq_abandon`, `shmq_producer_poison` and
/// `shmq_producer_close` (others fail with `SHMQ_EBUSY`).
///
/// Returns 0, or `SHMQ_EINVAL` (NULL, `max` of 0), `SHMQ_EBUSY` (a chunk is outstanding
/// already), and the codes of `shmq_push`.
///
/// # Safety
/// `producer` as for `shmq_push`; `slots` and `len` are NULL or writable. The slots may be
/// written until `shmq_commit`, `shmq_abandon` or a close, not after.
#[no_mangle]
pub unsafe extern "C" fn shmq_reserve(
    producer: *mut ShmqProducer,
    max: usize,
    slots: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    // SAFETY: the caller's contract is `reserve_with`'s.
    unsafe { reserve_with(producer, max, slots, len, Wait::Forever) }
}

/// Like `shmq_reserve`, without blocking: `SHMQ_EAGAIN` if the queue is full.
///
/// # Safety
/// As for `shmq_reserve`.
#[no_mangle]
pub unsafe extern "C" fn shmq_try_reserve(
    producer: *mut ShmqProducer,
    max: usize,
    slots: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    // SAFETY: the caller's contract is `reserve_with`'s.
    unsafe { reserve_with(producer, max, slots, len, Wait::No) }
}

/// Like `shmq_reserve`, blocking at most `timeout_ns` nanoseconds: `SHMQ_ETIMEDOUT` if the
/// queue stayed full.
///
/// # Safety
/// As for `shmq_reserve`.
#[no_mangle]
pub unsafe extern "C" fn shmq_reserve_timeout(
    producer: *mut ShmqProducer,
    max: usize,
    slots: *mut *mut c_void,
    len: *mut usize,
    timeout_ns: u64,
) -> c_int {
    // SAFETY: the caller's contract is `reserve_with`'s.
    unsafe { reserve_with(producer, max, slots, len, Wait::For(Duration::from_nanos(timeout_ns))) }
}

/// Publishes every slot of the chunk reserved by `shmq_reserve`.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL, or no chunk is reserved).
///
/// # Safety
/// `producer` as for `shmq_push`.
#[no_mangle]
pub unsafe extern "C" fn shmq_commit(producer: *mut ShmqProducer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { mut_arg(producer, "producer") }?;
        producer.ops.commit()
    })
}

/// Publishes the first `n` records of the chunk reserved by `shmq_reserve` (at most its `*len`),
/// for a writer that learns how many it has only as it writes them (a filter). On SPSC and
/// SPMC queues the other slots return to the ring; a multi-producer claim cannot be shortened,
/// so on MPSC and MPMC queues only `n` equal to the whole chunk is accepted (`SHMQ_EINVAL`
/// otherwise, and the chunk stays reserved: commit all of it or abandon it).
///
/// Returns 0, or `SHMQ_EINVAL` (NULL, no chunk is reserved, `n` exceeds it, or the partial
/// publication a multi-producer queue refuses).
///
/// # Safety
/// `producer` as for `shmq_push`.
#[no_mangle]
pub unsafe extern "C" fn shmq_commit_first(producer: *mut ShmqProducer, n: usize) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { mut_arg(producer, "producer") }?;
        producer.ops.commit_first(n)
    })
}

/// Gives up the chunk reserved by `shmq_reserve` without publishing it. On SPSC and SPMC
/// queues the slots return to the ring; a multi-producer claim cannot be taken back, so on
/// MPSC and MPMC queues this poisons the queue (consumers would wait for those slots forever).
///
/// Returns 0, or `SHMQ_EINVAL` (NULL, or no chunk is reserved).
///
/// # Safety
/// `producer` as for `shmq_push`.
#[no_mangle]
pub unsafe extern "C" fn shmq_abandon(producer: *mut ShmqProducer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { mut_arg(producer, "producer") }?;
        producer.ops.abort()
    })
}

/// Wakes sleeping consumers if the queue holds anything, whatever the wake policy. With
/// batched wake-ups (`wake_consumer_at`), call it before waiting on something else.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL), `SHMQ_EBUSY` (a chunk is outstanding).
///
/// # Safety
/// `producer` as for `shmq_push`.
#[no_mangle]
pub unsafe extern "C" fn shmq_producer_flush(producer: *mut ShmqProducer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { mut_arg(producer, "producer") }?;
        producer.ops.flush()
    })
}

/// Looks for a consumer that died without detaching, now (see `shmq_consumer_check_peers`).
///
/// Returns 0, or `SHMQ_EOWNERDEAD` (a consumer died; the queue is now poisoned),
/// `SHMQ_ENOTRECOVERABLE` (poisoned), `SHMQ_EINVAL` (NULL), `SHMQ_EBUSY` (a chunk is
/// outstanding).
///
/// # Safety
/// `producer` as for `shmq_push`.
#[no_mangle]
pub unsafe extern "C" fn shmq_producer_check_peers(producer: *const ShmqProducer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { ref_arg(producer, "producer") }?;
        producer.ops.check_peers()
    })
}

/// Poisons the queue (see `shmq_poison`); an outstanding chunk is abandoned first.
///
/// Returns 0, or `SHMQ_EINVAL` for NULL.
///
/// # Safety
/// `producer` as for `shmq_push`.
#[no_mangle]
pub unsafe extern "C" fn shmq_producer_poison(producer: *mut ShmqProducer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { mut_arg(producer, "producer") }?;
        producer.ops.poison();
        Ok(())
    })
}

/// Fills `*out` with the queue's state and counters. Despite the `const`, only the thread
/// that uses the handle may call it (it looks at the handle's chunk); a monitor elsewhere
/// uses `shmq_stats_by_name`.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL), `SHMQ_EBUSY` (a chunk is outstanding).
///
/// # Safety
/// `producer` as for `shmq_push`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_producer_stats(producer: *const ShmqProducer, out: *mut ShmqStats) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let producer = unsafe { ref_arg(producer, "producer") }?;
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { mut_arg(out, "out") }?;
        *out = producer.ops.stats()?;
        Ok(())
    })
}

/// Detaches the producer and frees the handle; an outstanding chunk is abandoned first (see
/// `shmq_abandon`). The last producer out closes the queue: consumers drain it, then get
/// `SHMQ_EPIPE`. NULL is accepted and ignored.
///
/// Returns 0.
///
/// # Safety
/// `producer` is NULL or a live producer handle, which is dead afterwards.
#[no_mangle]
pub unsafe extern "C" fn shmq_producer_close(producer: *mut ShmqProducer) -> c_int {
    guard(|| {
        if !producer.is_null() {
            // SAFETY: a live handle made by `hand_out` (Box::into_raw), given back by the caller.
            drop(unsafe { Box::from_raw(producer) });
        }
        Ok(())
    })
}

// -------------------------------------------------------------------------------------------
// Consumers.

/// # Safety
/// `consumer` is NULL or a live consumer handle not used by another thread; `out` is NULL or
/// writable for the record size.
unsafe fn pop_with(consumer: *mut ShmqConsumer, out: *mut c_void, wait: Wait) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let consumer = unsafe { mut_arg(consumer, "consumer") }?;
        // SAFETY: NULL or writable for a record by the caller's contract.
        let out = unsafe { bytes_mut_arg(out, consumer.ops.record_size(), "out") }?;
        consumer.ops.pop(out, wait)
    })
}

/// Copies the oldest record into `out` (`record_size` bytes), blocking while the queue is
/// empty.
///
/// Returns 0, or `SHMQ_EPIPE` (every producer has left and the queue is drained: end of
/// stream), `SHMQ_ENOTRECOVERABLE` (poisoned), `SHMQ_EOWNERDEAD` (a producer died without
/// detaching; now poisoned), `SHMQ_EBUSY` (a read chunk is outstanding), `SHMQ_EINVAL` (NULL).
///
/// # Safety
/// `consumer` is NULL or a live consumer handle not used by another thread at the same time;
/// `out` is NULL or points to `record_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn shmq_pop(consumer: *mut ShmqConsumer, out: *mut c_void) -> c_int {
    // SAFETY: the caller's contract is `pop_with`'s.
    unsafe { pop_with(consumer, out, Wait::Forever) }
}

/// Like `shmq_pop`, without blocking: `SHMQ_EAGAIN` if the queue is empty.
///
/// # Safety
/// As for `shmq_pop`.
#[no_mangle]
pub unsafe extern "C" fn shmq_try_pop(consumer: *mut ShmqConsumer, out: *mut c_void) -> c_int {
    // SAFETY: the caller's contract is `pop_with`'s.
    unsafe { pop_with(consumer, out, Wait::No) }
}

/// Like `shmq_pop`, blocking at most `timeout_ns` nanoseconds: `SHMQ_ETIMEDOUT` if the queue
/// stayed empty.
///
/// # Safety
/// As for `shmq_pop`.
#[no_mangle]
pub unsafe extern "C" fn shmq_pop_timeout(consumer: *mut ShmqConsumer, out: *mut c_void, timeout_ns: u64) -> c_int {
    // SAFETY: the caller's contract is `pop_with`'s.
    unsafe { pop_with(consumer, out, Wait::For(Duration::from_nanos(timeout_ns))) }
}

/// Copies up to `max` records into `out` (back to back), blocking until there is at least one;
/// `*popped` (which must not be NULL) receives how many (0 on failure). A `max` of 0 returns 0
/// at once.
///
/// Returns 0, or the codes of `shmq_pop`.
///
/// # Safety
/// `consumer` as for `shmq_pop`; `out` is NULL or points to `max * record_size` writable
/// bytes; `popped` is NULL (`SHMQ_EINVAL`) or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_pop_many(
    consumer: *mut ShmqConsumer,
    out: *mut c_void,
    max: usize,
    popped: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let popped = unsafe { mut_arg(popped, "popped") }?;
        *popped = 0;
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let consumer = unsafe { mut_arg(consumer, "consumer") }?;
        if max == 0 {
            return Ok(());
        }
        let len = max.checked_mul(consumer.ops.record_size()).ok_or_else(|| Failure::invalid("max overflows"))?;
        // SAFETY: NULL or writable for `max` records by the caller's contract.
        let out = unsafe { bytes_mut_arg(out, len, "out") }?;
        *popped = consumer.ops.pop_many(out)?;
        Ok(())
    })
}

/// # Safety
/// `consumer` is NULL or a live consumer handle not used by another thread; `items` and `len`
/// are NULL or writable.
unsafe fn read_with(
    consumer: *mut ShmqConsumer,
    max: usize,
    items: *mut *const c_void,
    len: *mut usize,
    wait: Wait,
) -> c_int {
    guard(|| {
        // SAFETY: NULL or writable by the caller's contract.
        let items = unsafe { mut_arg(items, "items") }?;
        // SAFETY: NULL or writable by the caller's contract.
        let len = unsafe { mut_arg(len, "len") }?;
        (*items, *len) = (std::ptr::null(), 0);
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let consumer = unsafe { mut_arg(consumer, "consumer") }?;
        let (ptr, n) = consumer.ops.read(max, wait)?;
        (*items, *len) = (ptr.cast(), n);
        Ok(())
    })
}

/// Takes between 1 and `max` of the oldest records, in place in the shared segment (zero
/// copy), blocking while the queue is empty. On success `*items` points to the first and
/// `*len` is how many (`record_size` bytes apart). Read them, then call `shmq_release` to hand
/// the slots back (the records count as consumed). Until then the consumer does nothing but
/// `shmq_release`, `shmq_consumer_poison` and `shmq_consumer_close` (others fail with
/// `SHMQ_EBUSY`).
///
/// Returns 0, or `SHMQ_EINVAL` (NULL, `max` of 0), `SHMQ_EBUSY` (a chunk is outstanding
/// already), and the codes of `shmq_pop`.
///
/// # Safety
/// `consumer` as for `shmq_pop`; `items` and `len` are NULL or writable. The records may be
/// read until `shmq_release` or a close, not after, and never written.
#[no_mangle]
pub unsafe extern "C" fn shmq_read(
    consumer: *mut ShmqConsumer,
    max: usize,
    items: *mut *const c_void,
    len: *mut usize,
) -> c_int {
    // SAFETY: the caller's contract is `read_with`'s.
    unsafe { read_with(consumer, max, items, len, Wait::Forever) }
}

/// Like `shmq_read`, without blocking: `SHMQ_EAGAIN` if the queue is empty.
///
/// # Safety
/// As for `shmq_read`.
#[no_mangle]
pub unsafe extern "C" fn shmq_try_read(
    consumer: *mut ShmqConsumer,
    max: usize,
    items: *mut *const c_void,
    len: *mut usize,
) -> c_int {
    // SAFETY: the caller's contract is `read_with`'s.
    unsafe { read_with(consumer, max, items, len, Wait::No) }
}

/// Like `shmq_read`, blocking at most `timeout_ns` nanoseconds: `SHMQ_ETIMEDOUT` if the queue
/// stayed empty.
///
/// # Safety
/// As for `shmq_read`.
#[no_mangle]
pub unsafe extern "C" fn shmq_read_timeout(
    consumer: *mut ShmqConsumer,
    max: usize,
    items: *mut *const c_void,
    len: *mut usize,
    timeout_ns: u64,
) -> c_int {
    // SAFETY: the caller's contract is `read_with`'s.
    unsafe { read_with(consumer, max, items, len, Wait::For(Duration::from_nanos(timeout_ns))) }
}

/// Hands back the slots of the chunk taken by `shmq_read`; its records count as consumed.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL, or no chunk is outstanding).
///
/// # Safety
/// `consumer` as for `shmq_pop`.
#[no_mangle]
pub unsafe extern "C" fn shmq_release(consumer: *mut ShmqConsumer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let consumer = unsafe { mut_arg(consumer, "consumer") }?;
        consumer.ops.release()
    })
}

/// Wakes sleeping producers if the queue has room, whatever the wake policy.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL), `SHMQ_EBUSY` (a chunk is outstanding).
///
/// # Safety
/// `consumer` as for `shmq_pop`.
#[no_mangle]
pub unsafe extern "C" fn shmq_consumer_flush(consumer: *mut ShmqConsumer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let consumer = unsafe { mut_arg(consumer, "consumer") }?;
        consumer.ops.flush()
    })
}

/// Looks for a producer that died without detaching, now. Blocking and timed calls do this
/// every re-check period, but `shmq_try_pop` and the other non-blocking calls never do: a
/// consumer that only polls calls this now and then instead (it reads `/proc` once per
/// producer: every few milliseconds, not per record). A dead producer poisons the queue.
///
/// Returns 0, or `SHMQ_EOWNERDEAD` (a producer died; the queue is now poisoned),
/// `SHMQ_ENOTRECOVERABLE` (poisoned), `SHMQ_EINVAL` (NULL), `SHMQ_EBUSY` (a chunk is
/// outstanding).
///
/// # Safety
/// `consumer` as for `shmq_pop`.
#[no_mangle]
pub unsafe extern "C" fn shmq_consumer_check_peers(consumer: *const ShmqConsumer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let consumer = unsafe { ref_arg(consumer, "consumer") }?;
        consumer.ops.check_peers()
    })
}

/// Poisons the queue (see `shmq_poison`); an outstanding chunk is released first.
///
/// Returns 0, or `SHMQ_EINVAL` for NULL.
///
/// # Safety
/// `consumer` as for `shmq_pop`.
#[no_mangle]
pub unsafe extern "C" fn shmq_consumer_poison(consumer: *mut ShmqConsumer) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let consumer = unsafe { mut_arg(consumer, "consumer") }?;
        consumer.ops.poison();
        Ok(())
    })
}

/// Fills `*out` with the queue's state and counters. Despite the `const`, only the thread
/// that uses the handle may call it (it looks at the handle's chunk); a monitor elsewhere
/// uses `shmq_stats_by_name`.
///
/// Returns 0, or `SHMQ_EINVAL` (NULL), `SHMQ_EBUSY` (a chunk is outstanding).
///
/// # Safety
/// `consumer` as for `shmq_pop`; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmq_consumer_stats(consumer: *const ShmqConsumer, out: *mut ShmqStats) -> c_int {
    guard(|| {
        // SAFETY: NULL or a live handle, used by this thread only, by the caller's contract.
        let consumer = unsafe { ref_arg(consumer, "consumer") }?;
        // SAFETY: NULL or writable by the caller's contract.
        let out = unsafe { mut_arg(out, "out") }?;
        *out = consumer.ops.stats()?;
        Ok(())
    })
}

/// Detaches the consumer and frees the handle; an outstanding chunk is released first. The
/// last consumer out makes pushes fail with `SHMQ_EPIPE`. NULL is accepted and ignored.
///
/// Returns 0.
///
/// # Safety
/// `consumer` is NULL or a live consumer handle, which is dead afterwards.
#[no_mangle]
pub unsafe extern "C" fn shmq_consumer_close(consumer: *mut ShmqConsumer) -> c_int {
    guard(|| {
        if !consumer.is_null() {
            // SAFETY: a live handle made by `hand_out` (Box::into_raw), given back by the caller.
            drop(unsafe { Box::from_raw(consumer) });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_eio_with_their_message() {
        assert_eq!(guard(|| panic!("boom")), SHMQ_EIO);
        // SAFETY: never NULL; valid until this thread's next failure.
        let message = unsafe { CStr::from_ptr(shmq_last_error()) }.to_str().unwrap().to_owned();
        assert!(message.contains("boom"), "{message}");
        assert_eq!(guard_value(7, || -> i32 { panic!("again") }), 7);
        assert_eq!(shmq_last_error_code(), SHMQ_EIO);
    }

    #[test]
    fn c_structs_have_no_hidden_padding() {
        assert_eq!(std::mem::size_of::<ShmqStats>(), 8 * 4 + 14 * 8);
        assert_eq!(std::mem::size_of::<ShmqOptions>(), 3 * 8 + 4 * 4);
    }
}
