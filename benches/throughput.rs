//! Throughput of shm-queue rings between processes, against the usual ways to move data.
//!
//! Every benchmark moves `iters` items (one criterion iteration = one item, reported as
//! `Throughput::Elements(1)`), timed from the moment every peer is set up and released (a start
//! gate in shared memory, so fork, queue creation and attaching are not timed) until the last
//! consumer has seen the end of the stream. Items carry their index, and the consumers' count
//! and checksum are checked after each batch.
//!
//! Groups (`throughput/<kind>_<element>`) and what is measured in each:
//! - `spsc_u64`, `spsc_pod64` (a 64-byte `#[repr(C)]` struct): one producer process, one
//!   consumer process.
//!   - `shm_push_pop/<capacity>`: blocking `push`/`pop` per item, capacities 16, 1024, 65536;
//!   - `shm_chunk/<capacity>`: `write_chunk`/`read_chunk` in place, chunks of min(4096,
//!     capacity) items;
//!   - peers: `crossbeam_bounded/1024` and `std_sync_channel/1024` (two threads of one
//!     process), `pipe_item` / `socket_item` (a pipe or an `AF_UNIX` `SOCK_STREAM` socketpair
//!     between two processes, one `write`/`read` per item) and `pipe_32KiB` / `socket_32KiB`
//!     (the same with 32 KiB writes and reads).
//! - `mpsc_u64` (2 producers, 1 consumer), `spmc_u64` (1 producer, 2 consumers), `mpmc_u64` (2
//!   and 2): capacity 1024 only; `shm_push_pop/1024`, `shm_chunk/1024`, and the peers that
//!   support the shape: `crossbeam_bounded/1024` (all), `std_sync_channel/1024` (MPSC) and
//!   `pipe_4KiB` (MPSC: writes of PIPE_BUF bytes are atomic, so two writers never interleave
//!   inside an item).
//!
//! For the shm rings the benchmark process is always one consumer and the other ends are forked
//! children; a batch forks its children once, never per item.
//!
//! `SHMPIPE_BENCH_QUICK=1` drops capacity 65536.

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Barrier;
use std::time::Duration;

use bytemuck::{Pod, Zeroable};
use common::{between, index_checksum, mono_ns, segment_name, Gate, Peers, Shared};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use shm_queue::{Kind, Mpmc, Mpsc, PopError, Queue, QueueOptions, Spmc, Spsc};

/// Items per chunk for the chunked variants (at most the capacity).
const CHUNK: usize = 4096;
/// Capacity of the peers' channels.
const PEER_CAPACITY: usize = 1024;
/// Bytes per write for the batched pipe and socket peers.
const BATCH_BYTES: usize = 32 * 1024;
/// PIPE_BUF: writes up to this size into a pipe are atomic.
const PIPE_BUF: usize = 4096;

/// An element type: plain data that carries its index.
trait Item: Pod + Send {
    /// Element name in group names.
    const NAME: &'static str;
    fn make(index: u64) -> Self;
    fn index(&self) -> u64;
}

impl Item for u64 {
    const NAME: &'static str = "u64";
    #[inline]
    fn make(index: u64) -> Self {
        index
    }
    #[inline]
    fn index(&self) -> u64 {
        *self
    }
}

/// A 64-byte message: a cache line.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Pod64 {
    index: u64,
    payload: [u64; 7],
}

impl Item for Pod64 {
    const NAME: &'static str = "pod64";
    #[inline]
    fn make(index: u64) -> Self {
        Self { index, payload: [index; 7] }
    }
    #[inline]
    fn index(&self) -> u64 {
        self.index
    }
}

/// Per-item calls, or chunks read and written in place.
#[derive(Clone, Copy)]
enum Mode {
    Single,
    Chunk,
}

/// Items producer `j` of `producers` sends out of `total`: indices `j, j + producers, ...`.
fn share(total: u64, producers: u64, j: u64) -> impl Iterator<Item = u64> {
    (j..total).step_by(producers as usize)
}

/// How many items [`share`] yields.
fn share_len(total: u64, producers: u64, j: u64) -> u64 {
    total.saturating_sub(j).div_ceil(producers)
}

/// Checks a batch's count and checksum.
fn verify(what: &str, items: u64, checksum: u64, iters: u64) {
    assert_eq!(items, iters, "{what}: items received");
    assert_eq!(checksum, index_checksum(iters), "{what}: checksum of the items received");
}

/// Pops until the producers are gone; returns (items, checksum).
fn drain<T: Item, K: Kind>(rx: &mut shm_queue::Consumer<T, K>, mode: Mode, chunk: usize) -> (u64, u64) {
    let (mut items, mut sum) = (0u64, 0u64);
    match mode {
        Mode::Single => loop {
            match rx.pop() {
                Ok(v) => {
                    items += 1;
                    sum = sum.wrapping_add(v.index());
                }
                Err(PopError::Disconnected) => break,
                Err(e) => panic!("pop failed: {e}"),
            }
        },
        Mode::Chunk => loop {
            match rx.read_chunk(chunk) {
                Ok(c) => {
                    items += c.len() as u64;
                    sum = c.iter().fold(sum, |s, v| s.wrapping_add(v.index()));
                }
                Err(PopError::Disconnected) => break,
                Err(e) => panic!("read_chunk failed: {e}"),
            }
        },
    }
    (items, sum)
}

/// Pushes this producer's share of `0..total`.
fn fill<T: Item, K: Kind>(
    tx: &mut shm_queue::Producer<T, K>,
    mode: Mode,
    chunk: usize,
    total: u64,
    producers: u64,
    j: u64,
) {
    match mode {
        Mode::Single => {
            for i in share(total, producers, j) {
                tx.push(T::make(i)).unwrap_or_else(|e| panic!("push failed: {e}"));
            }
        }
        Mode::Chunk => {
            let (mut next, mut left) = (j, share_len(total, producers, j));
            while left > 0 {
                let want = usize::try_from(left).map_or(chunk, |l| l.min(chunk));
                let mut c = tx.write_chunk(want).unwrap_or_else(|e| panic!("write_chunk failed: {e}"));
                let n = c.len();
                for (k, slot) in c.as_mut_slice().iter_mut().enumerate() {
                    *slot = T::make(next + k as u64 * producers);
                }
                c.commit();
                next += n as u64 * producers;
                left -= n as u64;
            }
        }
    }
}

/// Moves `iters` items through a fresh ring of kind `K` from `producers` child processes to
/// `consumers` consumers (this process and `consumers - 1` children).
fn shm_transfer<T: Item, K: Kind>(iters: u64, capacity: usize, mode: Mode, producers: u64, consumers: u64) -> Duration {
    let name = segment_name();
    // The creator: removes the name when dropped, also on a panic.
    let queue = Queue::<T, K>::create_with(&name, QueueOptions::new(capacity))
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    let mut rx = queue.consumer().expect("attach the first consumer");
    let chunk = CHUNK.min(capacity);
    let gate = Shared::<Gate>::new();
    let mut peers = Peers::new();
    for j in 0..producers {
        peers.spawn(|| {
            let mut tx = queue.producer().expect("attach a producer");
            gate.arrive();
            fill(&mut tx, mode, chunk, iters, producers, j);
            // Dropping the last producer closes the queue: consumers drain and stop.
        });
    }
    for _ in 1..consumers {
        peers.spawn(|| {
            let mut rx = queue.consumer().expect("attach a consumer");
            gate.arrive();
            let (items, sum) = drain(&mut rx, mode, chunk);
            gate.finish(items, sum);
        });
    }
    let start = gate.open(peers.len() as u32, &mut peers);
    let (items, sum) = drain(&mut rx, mode, chunk);
    gate.finish(items, sum);
    peers.wait();
    verify("shm ring", gate.items(), gate.checksum(), iters);
    between(start, gate.end_ns())
}

/// A crossbeam bounded channel between `producers` and `consumers` threads (this one and
/// `consumers - 1` more). Every thread is joined before returning.
///
/// Each thread notes the time it leaves the start barrier; the transfer starts at the earliest
/// (the main thread may be descheduled right after the barrier while the others work).
fn crossbeam_transfer<T: Item>(iters: u64, producers: u64, consumers: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<T>(PEER_CAPACITY);
    let barrier = Barrier::new((producers + consumers) as usize);
    let drain = |rx: &crossbeam_channel::Receiver<T>| {
        let (mut items, mut sum) = (0u64, 0u64);
        for v in rx.iter() {
            items += 1;
            sum = sum.wrapping_add(v.index());
        }
        (items, sum, mono_ns())
    };
    std::thread::scope(|s| {
        let mut senders = Vec::new();
        for j in 0..producers {
            let tx = tx.clone();
            let barrier = &barrier;
            senders.push(s.spawn(move || {
                barrier.wait();
                let start = mono_ns();
                for i in share(iters, producers, j) {
                    tx.send(T::make(i)).expect("the receivers outlive the senders");
                }
                start
            }));
        }
        drop(tx);
        let mut receivers = Vec::new();
        for _ in 1..consumers {
            let rx = rx.clone();
            let barrier = &barrier;
            receivers.push(s.spawn(move || {
                barrier.wait();
                let start = mono_ns();
                (start, drain(&rx))
            }));
        }
        barrier.wait();
        let mut start = mono_ns();
        let (mut items, mut sum, mut end) = drain(&rx);
        for h in receivers {
            let (s, (i, c, e)) = h.join().expect("a consumer thread panicked");
            items += i;
            sum = sum.wrapping_add(c);
            start = start.min(s);
            end = end.max(e);
        }
        for h in senders {
            start = start.min(h.join().expect("a producer thread panicked"));
        }
        verify("crossbeam channel", items, sum, iters);
        between(start, end)
    })
}

/// `std::sync::mpsc::sync_channel` from `producers` threads to this one (start time as in
/// [`crossbeam_transfer`]).
fn std_transfer<T: Item>(iters: u64, producers: u64) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<T>(PEER_CAPACITY);
    let barrier = Barrier::new(producers as usize + 1);
    std::thread::scope(|s| {
        let mut senders = Vec::new();
        for j in 0..producers {
            let tx = tx.clone();
            let barrier = &barrier;
            senders.push(s.spawn(move || {
                barrier.wait();
                let start = mono_ns();
                for i in share(iters, producers, j) {
                    tx.send(T::make(i)).expect("the receiver outlives the senders");
                }
                start
            }));
        }
        drop(tx);
        barrier.wait();
        let mut start = mono_ns();
        let (mut items, mut sum) = (0u64, 0u64);
        for v in rx.iter() {
            items += 1;
            sum = sum.wrapping_add(v.index());
        }
        let end = mono_ns();
        for h in senders {
            start = start.min(h.join().expect("a producer thread panicked"));
        }
        verify("std sync_channel", items, sum, iters);
        between(start, end)
    })
}

/// A byte stream between processes.
#[derive(Clone, Copy)]
enum Stream {
    Pipe,
    Socket,
}

/// A connected pair of stream ends: (reader, writer).
fn stream_pair(stream: Stream) -> (std::fs::File, std::fs::File) {
    match stream {
        Stream::Pipe => {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors pipe2 writes.
            let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
            assert_eq!(rc, 0, "pipe2 failed: {}", std::io::Error::last_os_error());
            // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
            let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            (r.into(), w.into())
        }
        Stream::Socket => {
            let (a, b) = UnixStream::pair().expect("socketpair(AF_UNIX, SOCK_STREAM)");
            (OwnedFd::from(a).into(), OwnedFd::from(b).into())
        }
    }
}

/// Moves `iters` items over a pipe or socket from `writers` child processes to this one, in
/// writes of one item (`batch_bytes` = None) or of `batch_bytes` bytes (a multiple of the item
/// size); the reader reads the same amounts.
fn stream_transfer<T: Item>(iters: u64, stream: Stream, batch_bytes: Option<usize>, writers: u64) -> Duration {
    let size = std::mem::size_of::<T>();
    let per_write = batch_bytes.map_or(1, |b| b / size);
    let (mut reader, writer) = stream_pair(stream);
    let gate = Shared::<Gate>::new();
    let mut peers = Peers::new();
    for j in 0..writers {
        peers.spawn(|| {
            let mut writer = &writer;
            let mut buf: Vec<T> = Vec::with_capacity(per_write);
            gate.arrive();
            for i in share(iters, writers, j) {
                buf.push(T::make(i));
                if buf.len() == per_write {
                    writer.write_all(bytemuck::cast_slice(&buf)).expect("write to the reader");
                    buf.clear();
                }
            }
            if !buf.is_empty() {
                writer.write_all(bytemuck::cast_slice(&buf)).expect("write to the reader");
            }
        });
    }
    // Our copy of the writing end goes, so the read sees EOF when every writer is done.
    drop(writer);
    let start = gate.open(peers.len() as u32, &mut peers);
    let mut buf = vec![T::zeroed(); per_write];
    let (mut items, mut sum, mut filled) = (0u64, 0u64, 0usize);
    loop {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        let n = match reader.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read failed: {e}"),
        };
        filled += n;
        let whole = filled / size;
        for v in &buf[..whole] {
            items += 1;
            sum = sum.wrapping_add(v.index());
        }
        // Keep a partial item for the next read.
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        bytes.copy_within(whole * size..filled, 0);
        filled -= whole * size;
    }
    let end = mono_ns();
    peers.wait();
    assert_eq!(filled, 0, "the stream ended inside an item");
    verify("byte stream", items, sum, iters);
    between(start, end)
}

fn capacities() -> Vec<usize> {
    if common::quick() {
        vec![16, 1024]
    } else {
        vec![16, 1024, 65536]
    }
}

/// Shm rings at every capacity, both modes, for a shape.
fn shm_benches<T: Item, K: Kind>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    capacities: &[usize],
    producers: u64,
    consumers: u64,
) {
    for &capacity in capacities {
        group.bench_with_input(BenchmarkId::new("shm_push_pop", capacity), &capacity, |b, &cap| {
            b.iter_custom(|iters| shm_transfer::<T, K>(iters, cap, Mode::Single, producers, consumers))
        });
        group.bench_with_input(BenchmarkId::new("shm_chunk", capacity), &capacity, |b, &cap| {
            b.iter_custom(|iters| shm_transfer::<T, K>(iters, cap, Mode::Chunk, producers, consumers))
        });
    }
}

fn spsc<T: Item>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("throughput/spsc_{}", T::NAME));
    group.throughput(Throughput::Elements(1));
    shm_benches::<T, Spsc>(&mut group, &capacities(), 1, 1);
    group.bench_function(BenchmarkId::new("crossbeam_bounded", PEER_CAPACITY), |b| {
        b.iter_custom(|iters| crossbeam_transfer::<T>(iters, 1, 1))
    });
    group.bench_function(BenchmarkId::new("std_sync_channel", PEER_CAPACITY), |b| {
        b.iter_custom(|iters| std_transfer::<T>(iters, 1))
    });
    for (name, stream, batch) in [
        ("pipe_item", Stream::Pipe, None),
        ("pipe_32KiB", Stream::Pipe, Some(BATCH_BYTES)),
        ("socket_item", Stream::Socket, None),
        ("socket_32KiB", Stream::Socket, Some(BATCH_BYTES)),
    ] {
        group.bench_function(name, |b| b.iter_custom(|iters| stream_transfer::<T>(iters, stream, batch, 1)));
    }
    group.finish();
}

fn spsc_u64(c: &mut Criterion) {
    spsc::<u64>(c);
}

fn spsc_pod64(c: &mut Criterion) {
    spsc::<Pod64>(c);
}

fn mpsc_u64(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput/mpsc_u64");
    group.throughput(Throughput::Elements(1));
    shm_benches::<u64, Mpsc>(&mut group, &[PEER_CAPACITY], 2, 1);
    group.bench_function(BenchmarkId::new("crossbeam_bounded", PEER_CAPACITY), |b| {
        b.iter_custom(|iters| crossbeam_transfer::<u64>(iters, 2, 1))
    });
    group.bench_function(BenchmarkId::new("std_sync_channel", PEER_CAPACITY), |b| {
        b.iter_custom(|iters| std_transfer::<u64>(iters, 2))
    });
    group.bench_function("pipe_4KiB", |b| {
        b.iter_custom(|iters| stream_transfer::<u64>(iters, Stream::Pipe, Some(PIPE_BUF), 2))
    });
    group.finish();
}

fn spmc_u64(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput/spmc_u64");
    group.throughput(Throughput::Elements(1));
    shm_benches::<u64, Spmc>(&mut group, &[PEER_CAPACITY], 1, 2);
    group.bench_function(BenchmarkId::new("crossbeam_bounded", PEER_CAPACITY), |b| {
        b.iter_custom(|iters| crossbeam_transfer::<u64>(iters, 1, 2))
    });
    group.finish();
}

fn mpmc_u64(c: &mut Criterion) {
    let mut group = c.benchmark_group("throughput/mpmc_u64");
    group.throughput(Throughput::Elements(1));
    shm_benches::<u64, Mpmc>(&mut group, &[PEER_CAPACITY], 2, 2);
    group.bench_function(BenchmarkId::new("crossbeam_bounded", PEER_CAPACITY), |b| {
        b.iter_custom(|iters| crossbeam_transfer::<u64>(iters, 2, 2))
    });
    group.finish();
}

fn main() {
    common::run(&[spsc_u64, spsc_pod64, mpsc_u64, spmc_u64, mpmc_u64]);
}
