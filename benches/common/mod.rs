//! Helpers shared by the benchmark suites: the quick setting, segment names, a monotonic clock
//! every process agrees on, raw shared futexes, a start gate in shared memory, and forked peers
//! that are always reaped.
//!
//! Forking is only sound from a single-threaded process (the child gets one thread, and any lock
//! another thread held stays held forever), so [`Peers::spawn`] checks that the bench process has
//! one thread. Criterion itself (built without rayon) never starts one; suites that use threads
//! as a peer join them all before returning.

// Each suite uses its own part of this module.
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Whether `SHMPIPE_BENCH_QUICK` asks for the shrunk matrices (set by `scripts/bench.sh quick`).
pub fn quick() -> bool {
    std::env::var_os("SHMPIPE_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A fresh segment name, `/shmpipe-bench-{pid}-{n}`.
pub fn segment_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("/shmpipe-bench-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process, so a start taken in one
/// process and an end taken in another make a duration.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; the clock exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds from `start_ns` to `end_ns` as a duration (zero if the clock went backwards,
/// which CLOCK_MONOTONIC does not).
pub fn between(start_ns: u64, end_ns: u64) -> Duration {
    Duration::from_nanos(end_ns.saturating_sub(start_ns))
}

/// FUTEX_WAIT on a word that may live in shared memory (no `FUTEX_PRIVATE_FLAG`, so another
/// process's FUTEX_WAKE reaches it). Returns on wake, timeout, signal, or if `*word != expected`.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 (AtomicU32 has u32's layout) for the whole call and
    // FUTEX_WAIT only reads it; `ts_ptr` is null or points to a timespec on our stack.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr);
    }
}

/// FUTEX_WAKE of up to `n` waiters on `word` (shared, as [`futex_wait`]).
pub fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE does not access the word's memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n);
    }
}

/// A `T` in a `MAP_SHARED | MAP_ANONYMOUS` mapping: after a fork, parent and children see the
/// same `T`. Meant for structs of atomics. Unmapped on drop (a forked child never drops it: it
/// leaves with `_exit`).
pub struct Shared<T> {
    ptr: NonNull<T>,
    len: usize,
}

impl<T: Default> Shared<T> {
    /// Maps pages holding `T::default()`.
    pub fn new() -> Self {
        assert!(std::mem::align_of::<T>() <= 4096, "a page is aligned to 4096 bytes");
        let len = std::mem::size_of::<T>().max(1);
        // SAFETY: an anonymous mapping with no address hint has no preconditions; the result is
        // checked against MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(ptr != libc::MAP_FAILED, "mmap of a shared page failed: {}", std::io::Error::last_os_error());
        let ptr = NonNull::new(ptr.cast::<T>()).expect("mmap never returns null on success");
        // SAFETY: the mapping is fresh, page-aligned (so aligned for T, checked above), writable
        // and at least size_of::<T>() long; nobody else has it yet.
        unsafe { ptr.as_ptr().write(T::default()) };
        Self { ptr, len }
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: initialised in `new`, mapped until drop; T is only ever accessed through
        // shared references (it is made of atomics), so aliasing across processes is fine.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // SAFETY: our own mapping of `len` bytes; no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Where forked peers meet before a timed transfer and report after it.
///
/// Children [`arrive`](Self::arrive) once they are set up (ends attached) and sleep until the
/// parent [`open`](Self::open)s the gate, which takes the start time; workers whose end marks
/// the end of the transfer [`finish`](Self::finish) with their end time, item count and
/// checksum.
#[derive(Default)]
pub struct Gate {
    ready: AtomicU32,
    go: AtomicU32,
    end_ns: AtomicU64,
    items: AtomicU64,
    checksum: AtomicU64,
    /// Free words for a suite's own reports.
    pub extra: [AtomicU64; 4],
}

impl Gate {
    /// Says "ready" and sleeps until the parent opens the gate.
    pub fn arrive(&self) {
        self.ready.fetch_add(1, Ordering::AcqRel);
        futex_wake(&self.ready, i32::MAX);
        while self.go.load(Ordering::Acquire) == 0 {
            futex_wait(&self.go, 0, Some(Duration::from_millis(100)));
        }
    }

    /// Waits until `n` children have arrived (failing if one of `peers` dies first), then opens
    /// the gate; returns the start time ([`mono_ns`]).
    pub fn open(&self, n: u32, peers: &mut Peers) -> u64 {
        loop {
            let ready = self.ready.load(Ordering::Acquire);
            if ready >= n {
                break;
            }
            peers.check();
            futex_wait(&self.ready, ready, Some(Duration::from_millis(50)));
        }
        let start = mono_ns();
        self.go.store(1, Ordering::Release);
        futex_wake(&self.go, i32::MAX);
        start
    }

    /// Records that a worker is done now, with `items` moved and a checksum of them.
    pub fn finish(&self, items: u64, checksum: u64) {
        self.end_ns.fetch_max(mono_ns(), Ordering::AcqRel);
        self.items.fetch_add(items, Ordering::AcqRel);
        self.checksum.fetch_add(checksum, Ordering::AcqRel);
    }

    /// The latest end time reported.
    pub fn end_ns(&self) -> u64 {
        self.end_ns.load(Ordering::Acquire)
    }

    /// Items reported, summed over workers.
    pub fn items(&self) -> u64 {
        self.items.load(Ordering::Acquire)
    }

    /// Checksums reported, summed (wrapping) over workers.
    pub fn checksum(&self) -> u64 {
        self.checksum.load(Ordering::Acquire)
    }
}

/// The checksum of items `0..n` when each contributes its index: `n (n - 1) / 2`, wrapping.
pub fn index_checksum(n: u64) -> u64 {
    let (a, b) = if n.is_multiple_of(2) { (n / 2, n.wrapping_sub(1)) } else { (n, (n - 1) / 2) };
    a.wrapping_mul(b)
}

/// Number of threads of this process, from `/proc/self/task`.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1)
}

/// Panics unless this process has a single thread. A thread that was just joined can linger in
/// `/proc` for a moment while the kernel finishes its exit, so this waits a little first.
pub fn assert_single_threaded() {
    let deadline = Instant::now() + Duration::from_millis(500);
    while thread_count() > 1 {
        assert!(
            Instant::now() < deadline,
            "forking from a process with {} threads: join every thread before forking",
            thread_count()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A forked child: pid, and its rusage once reaped.
#[derive(Clone, Copy)]
struct Child {
    pid: libc::pid_t,
    reaped: Option<libc::rusage>,
}

/// Forked peer processes. Every child is reaped: by [`wait`](Self::wait), or on drop (after a
/// panic in the parent) by SIGKILL then waitpid.
#[derive(Default)]
pub struct Peers {
    children: Vec<Child>,
}

impl Peers {
    /// No children yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forks a child that runs `f` and exits: code 0 if `f` returns, 101 if it panics. The child
    /// never returns into the caller (it leaves with `_exit`, running no destructor of the
    /// parent's state), so `f` must not own a queue that unlinks its name on drop.
    pub fn spawn(&mut self, f: impl FnOnce()) {
        assert_single_threaded();
        // SAFETY: this process is single-threaded (checked above), so the child gets a
        // consistent copy of every lock and allocator state.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = match catch_unwind(AssertUnwindSafe(f)) {
                Ok(()) => 0,
                Err(_) => 101,
            };
            // SAFETY: _exit ends this child at once without unwinding into the parent's frames
            // or running its atexit handlers.
            unsafe { libc::_exit(code) };
        }
        self.children.push(Child { pid, reaped: None });
    }

    /// Number of children forked so far.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Reaps children that have exited, panicking if one failed.
    pub fn check(&mut self) {
        for child in &mut self.children {
            if child.reaped.is_none() {
                if let Some((status, usage)) = reap(child.pid, libc::WNOHANG) {
                    child.reaped = Some(usage);
                    check_status(child.pid, status);
                }
            }
        }
    }

    /// Waits for every child; panics if one failed. Returns their rusage, in spawn order.
    pub fn wait(mut self) -> Vec<libc::rusage> {
        let mut out = Vec::with_capacity(self.children.len());
        for child in &mut self.children {
            let usage = match child.reaped {
                Some(usage) => usage,
                None => {
                    let (status, usage) = reap(child.pid, 0).expect("waitpid on our own child");
                    child.reaped = Some(usage);
                    check_status(child.pid, status);
                    usage
                }
            };
            out.push(usage);
        }
        out
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for child in &mut self.children {
            if child.reaped.is_none() {
                // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped
                // child, so it cannot have been reused.
                unsafe { libc::kill(child.pid, libc::SIGKILL) };
                let _ = reap(child.pid, 0);
                child.reaped = Some(zero_rusage());
            }
        }
    }
}

fn zero_rusage() -> libc::rusage {
    // SAFETY: rusage is plain integers and timevals, for which all zeros is a valid value.
    unsafe { std::mem::zeroed() }
}

/// wait4 on `pid`, retrying on EINTR; `None` if (with WNOHANG) it has not exited.
fn reap(pid: libc::pid_t, flags: libc::c_int) -> Option<(libc::c_int, libc::rusage)> {
    loop {
        let mut status = 0;
        let mut usage = zero_rusage();
        // SAFETY: both out-pointers are valid for the call.
        let rc = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if rc == pid {
            return Some((status, usage));
        }
        if rc == 0 {
            return None;
        }
        let err = std::io::Error::last_os_error();
        assert!(err.raw_os_error() == Some(libc::EINTR), "wait4({pid}) failed: {err}");
    }
}

fn check_status(pid: libc::pid_t, status: libc::c_int) {
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return;
    }
    if libc::WIFSIGNALED(status) {
        panic!("peer process {pid} was killed by signal {}", libc::WTERMSIG(status));
    }
    panic!("peer process {pid} failed with exit code {}", libc::WEXITSTATUS(status));
}

/// User + system CPU time of a reaped child.
pub fn cpu_time(usage: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The suite's `main`: runs `groups` with criterion's command-line configuration, then prints
/// criterion's summary. (Instead of `criterion_group!`, whose generated `pub fn` has no docs.)
pub fn run(groups: &[fn(&mut criterion::Criterion)]) {
    let mut criterion = criterion::Criterion::default().configure_from_args();
    for group in groups {
        group(&mut criterion);
    }
    criterion.final_summary();
}
