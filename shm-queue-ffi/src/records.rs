//! Rings of byte records: `[u8; N]` elements for a fixed menu of sizes, behind trait objects
//! chosen at run time by record size and kind.
//!
//! The element type is the plain array `[u8; N]`, whose fingerprint (name `[u8; N]`, size `N`,
//! align 1) is [`shm_queue::TypeFingerprint::bytes`]: a Rust program depending on `shm-queue`
//! alone opens a C-created queue as `Queue::<[u8; N], K>` and the other way round.

use std::ptr::NonNull;
use std::time::Duration;

use shm_queue::{
    Consumer, Inspector, Kind, KindId, Mpmc, Mpsc, Pod, Producer, Queue, QueueOptions, QueueStats, ReadChunk, Spmc,
    Spsc, TypeFingerprint, WriteChunk,
};

use crate::error::{Failure, SHMQ_EBUSY, SHMQ_EINVAL, SHMQ_EPROTO};
use crate::ShmqStats;

/// The supported record sizes, in bytes: those for which `[u8; N]` is `Pod` in bytemuck's
/// default features (so a Rust program needs no extra feature to name the element type).
/// `dispatch!` below must list the same.
pub const RECORD_SIZES: [usize; 16] = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096];

/// Calls `f::<N, K>args` for the record size `size` and kind `kind` (a [`KindId`]); `None` if
/// the size is not one of [`RECORD_SIZES`].
macro_rules! dispatch {
    ($size:expr, $kind:expr, $f:ident $args:tt) => {
        dispatch!(@sizes ($size, $kind, $f $args) [1 2 4 8 16 24 32 48 64 96 128 256 512 1024 2048 4096])
    };
    (@sizes ($size:expr, $kind:expr, $f:ident $args:tt) [$($n:literal)*]) => {
        match $size {
            $($n => Some(match $kind {
                KindId::Spsc => $f::<$n, Spsc> $args,
                KindId::Mpsc => $f::<$n, Mpsc> $args,
                KindId::Spmc => $f::<$n, Spmc> $args,
                KindId::Mpmc => $f::<$n, Mpmc> $args,
            }),)*
            _ => None,
        }
    };
}

/// How long an operation may wait for room or items.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all (`try_*`).
    No,
    /// As long as it takes.
    Forever,
    /// At most this long.
    For(Duration),
}

/// A queue of byte records, whatever its record size and kind.
pub(crate) trait QueueOps: Send + Sync {
    fn record_size(&self) -> usize;
    fn producer(&self) -> Result<Box<dyn ProducerOps>, Failure>;
    fn consumer(&self) -> Result<Box<dyn ConsumerOps>, Failure>;
    fn stats(&self) -> ShmqStats;
    fn poison(&self);
    fn keep_name(&mut self);
}

/// A producer of byte records. Slices passed in hold whole records (a multiple of
/// `record_size` bytes); the caller checks.
pub(crate) trait ProducerOps {
    fn record_size(&self) -> usize;
    fn push(&mut self, record: &[u8], wait: Wait) -> Result<(), Failure>;
    fn push_many(&mut self, records: &[u8], done: &mut usize) -> Result<(), Failure>;
    fn reserve(&mut self, max: usize, wait: Wait) -> Result<(*mut u8, usize), Failure>;
    fn commit(&mut self) -> Result<(), Failure>;
    fn commit_first(&mut self, n: usize) -> Result<(), Failure>;
    fn abort(&mut self) -> Result<(), Failure>;
    fn flush(&mut self) -> Result<(), Failure>;
    fn check_peers(&self) -> Result<(), Failure>;
    fn poison(&mut self);
    fn stats(&self) -> Result<ShmqStats, Failure>;
}

/// A consumer of byte records. Output slices hold whole records; the caller checks.
pub(crate) trait ConsumerOps {
    fn record_size(&self) -> usize;
    fn pop(&mut self, out: &mut [u8], wait: Wait) -> Result<(), Failure>;
    fn pop_many(&mut self, out: &mut [u8]) -> Result<usize, Failure>;
    fn read(&mut self, max: usize, wait: Wait) -> Result<(*const u8, usize), Failure>;
    fn release(&mut self) -> Result<(), Failure>;
    fn flush(&mut self) -> Result<(), Failure>;
    fn check_peers(&self) -> Result<(), Failure>;
    fn poison(&mut self);
    fn stats(&self) -> Result<ShmqStats, Failure>;
}

/// The record sizes a queue may be created with.
pub(crate) fn supported(size: usize) -> bool {
    RECORD_SIZES.contains(&size)
}

fn unsupported(size: usize) -> Failure {
    Failure::invalid(format!("unsupported record size {size}: supported sizes are {RECORD_SIZES:?} bytes"))
}

/// Creates a queue of `options.capacity` records of `size` bytes.
pub(crate) fn create(
    name: &str,
    kind: KindId,
    size: usize,
    options: QueueOptions,
) -> Result<Box<dyn QueueOps>, Failure> {
    dispatch!(size, kind, create_typed(name, options)).unwrap_or_else(|| Err(unsupported(size)))
}

fn create_typed<const N: usize, K: PublishFirst>(
    name: &str,
    options: QueueOptions,
) -> Result<Box<dyn QueueOps>, Failure>
where
    [u8; N]: Pod,
{
    Ok(Box::new(Queue::<[u8; N], K>::create_with(name, options)?))
}

/// Opens `name`; `kind` and `size` `None` accept what the segment holds.
pub(crate) fn open(name: &str, kind: Option<KindId>, size: Option<usize>) -> Result<Box<dyn QueueOps>, Failure> {
    let (kind, size) = match (kind, size) {
        (Some(kind), Some(size)) => (kind, size),
        _ => {
            let inspector = Inspector::open(name)?;
            let header = inspector.header();
            let element = &header.element;
            if *element != TypeFingerprint::bytes(element.size) {
                return Err(Failure::new(
                    SHMQ_EPROTO,
                    format!("segment {name} holds elements of type {element}, not byte records"),
                ));
            }
            (kind.unwrap_or(header.kind), size.unwrap_or(element.size as usize))
        }
    };
    dispatch!(size, kind, open_typed(name)).unwrap_or_else(|| Err(unsupported(size)))
}

fn open_typed<const N: usize, K: PublishFirst>(name: &str) -> Result<Box<dyn QueueOps>, Failure>
where
    [u8; N]: Pod,
{
    Ok(Box::new(Queue::<[u8; N], K>::open(name)?))
}

/// Converts the library's counters to the C struct.
pub(crate) fn c_stats(stats: &QueueStats, record_size: usize, bound: usize) -> ShmqStats {
    ShmqStats {
        kind: stats.kind as i32,
        poisoned: stats.poisoned.into(),
        producers: stats.producers,
        consumers: stats.consumers,
        producers_gone: stats.producers_gone.into(),
        consumers_gone: stats.consumers_gone.into(),
        dead_peer: stats.dead_peer.unwrap_or(0),
        reserved: 0,
        record_size: record_size as u64,
        capacity: stats.capacity as u64,
        bound: bound as u64,
        pushed: stats.pushed,
        popped: stats.popped,
        len: stats.len,
        producer_blocked: stats.producer.blocked,
        producer_futex_waits: stats.producer.futex_waits,
        producer_futex_wakes: stats.producer.futex_wakes,
        producer_blocked_ns: stats.producer.blocked_ns,
        consumer_blocked: stats.consumer.blocked,
        consumer_futex_waits: stats.consumer.futex_waits,
        consumer_futex_wakes: stats.consumer.futex_wakes,
        consumer_blocked_ns: stats.consumer.blocked_ns,
    }
}

impl<const N: usize, K: PublishFirst> QueueOps for Queue<[u8; N], K>
where
    [u8; N]: Pod,
{
    fn record_size(&self) -> usize {
        N
    }

    fn producer(&self) -> Result<Box<dyn ProducerOps>, Failure> {
        let producer = Queue::producer(self)?;
        Ok(Box::new(ProducerEnd::<N, K>::new(producer, self.bound())))
    }

    fn consumer(&self) -> Result<Box<dyn ConsumerOps>, Failure> {
        let consumer = Queue::consumer(self)?;
        Ok(Box::new(ConsumerEnd::<N, K>::new(consumer, self.bound())))
    }

    fn stats(&self) -> ShmqStats {
        c_stats(&Queue::stats(self), N, self.bound())
    }

    fn poison(&self) {
        Queue::poison(self);
    }

    fn keep_name(&mut self) {
        Queue::keep_name(self);
    }
}

fn chunk_outstanding(what: &str) -> Failure {
    Failure::new(SHMQ_EBUSY, format!("a {what} chunk is outstanding on this handle; finish it first"))
}

/// Publishing the first `n` records of a reservation (`n` at most its length): single-producer
/// kinds give the rest back; a multi-producer claim cannot be shortened, so there only all of
/// it can be published, and a shorter `n` is refused with the chunk left reserved.
pub(crate) trait PublishFirst: Kind + Sized {
    fn publish_first<const N: usize>(
        chunk: &mut Option<WriteChunk<'static, [u8; N], Self>>,
        n: usize,
    ) -> Result<(), Failure>
    where
        [u8; N]: Pod;
}

macro_rules! publish_first {
    (single: $($kind:ty),*; multi: $($multi:ty),*) => {
        $(impl PublishFirst for $kind {
            fn publish_first<const N: usize>(chunk: &mut Option<WriteChunk<'static, [u8; N], Self>>, n: usize) -> Result<(), Failure>
            where
                [u8; N]: Pod,
            {
                if let Some(chunk) = chunk.take() {
                    chunk.commit_first(n);
                }
                Ok(())
            }
        })*
        $(impl PublishFirst for $multi {
            fn publish_first<const N: usize>(chunk: &mut Option<WriteChunk<'static, [u8; N], Self>>, n: usize) -> Result<(), Failure>
            where
                [u8; N]: Pod,
            {
                match chunk.take() {
                    Some(whole) if whole.len() == n => whole.commit(),
                    other => {
                        *chunk = other;
                        return Err(Failure::invalid(
                            "a multi-producer reservation cannot be published in part: commit all of it, or abandon it",
                        ));
                    }
                }
                Ok(())
            }
        })*
    };
}
publish_first!(single: Spsc, Spmc; multi: Mpsc, Mpmc);

/// A producer and the write chunk it may have lent out between `shmq_reserve` and
/// `shmq_commit`.
///
/// The chunk borrows the producer mutably, so the producer lives in its own allocation,
/// reached through a raw pointer: while `chunk` is `Some`, nothing but the chunk touches the
/// producer; the chunk is dropped before the producer is freed.
struct ProducerEnd<const N: usize, K: Kind>
where
    [u8; N]: Pod,
{
    /// From `Box::into_raw`; freed in `drop`.
    producer: NonNull<Producer<[u8; N], K>>,
    /// Borrows `*producer` for as long as it is `Some`.
    chunk: Option<WriteChunk<'static, [u8; N], K>>,
    bound: usize,
}

impl<const N: usize, K: Kind> ProducerEnd<N, K>
where
    [u8; N]: Pod,
{
    fn new(producer: Producer<[u8; N], K>, bound: usize) -> Self {
        Self { producer: NonNull::from(Box::leak(Box::new(producer))), chunk: None, bound }
    }

    /// The producer, unless a chunk borrows it.
    fn producer(&mut self) -> Result<&mut Producer<[u8; N], K>, Failure> {
        if self.chunk.is_some() {
            return Err(chunk_outstanding("reserved"));
        }
        // SAFETY: the pointer is live until `drop`, and no chunk borrows the producer (checked
        // above), so this is the only reference; it borrows `self` mutably, so no chunk can be
        // made while it lives.
        Ok(unsafe { self.producer.as_mut() })
    }

    fn producer_ref(&self) -> Result<&Producer<[u8; N], K>, Failure> {
        if self.chunk.is_some() {
            return Err(chunk_outstanding("reserved"));
        }
        // SAFETY: as in `producer`; a shared borrow of `self` keeps chunks from being made.
        Ok(unsafe { self.producer.as_ref() })
    }
}

impl<const N: usize, K: Kind> Drop for ProducerEnd<N, K>
where
    [u8; N]: Pod,
{
    fn drop(&mut self) {
        // An uncommitted chunk goes first: discarded (single producer) or poisoning (multi).
        self.chunk = None;
        // SAFETY: from `Box::into_raw` (via `Box::leak`) in `new`, freed only here, and the
        // chunk that borrowed it is gone.
        drop(unsafe { Box::from_raw(self.producer.as_ptr()) });
    }
}

impl<const N: usize, K: PublishFirst> ProducerOps for ProducerEnd<N, K>
where
    [u8; N]: Pod,
{
    fn record_size(&self) -> usize {
        N
    }

    fn push(&mut self, record: &[u8], wait: Wait) -> Result<(), Failure> {
        let item: [u8; N] = record.try_into().map_err(|_| Failure::invalid("record length"))?;
        let producer = self.producer()?;
        match wait {
            Wait::No => producer.try_push(item)?,
            Wait::Forever => producer.push(item)?,
            Wait::For(timeout) => producer.push_timeout(item, timeout)?,
        }
        Ok(())
    }

    fn push_many(&mut self, records: &[u8], done: &mut usize) -> Result<(), Failure> {
        let items: &[[u8; N]] = bytemuck::try_cast_slice(records).map_err(|_| Failure::invalid("records length"))?;
        let producer = self.producer()?;
        producer.push_slice(items).map_err(|e| {
            *done = e.clone().into_inner();
            Failure::from(e)
        })?;
        *done = items.len();
        Ok(())
    }

    fn reserve(&mut self, max: usize, wait: Wait) -> Result<(*mut u8, usize), Failure> {
        if max == 0 {
            return Err(Failure::invalid("max must be at least 1"));
        }
        self.producer()?;
        // SAFETY: no chunk borrows the producer (checked just above) and none will be made
        // until this one is gone; the allocation lives until `drop`, which drops the chunk
        // first. So the `'static` borrow is unique for as long as the chunk holds it.
        let producer: &'static mut Producer<[u8; N], K> = unsafe { &mut *self.producer.as_ptr() };
        let mut chunk = match wait {
            Wait::No => producer.try_write_chunk(max)?,
            Wait::Forever => producer.write_chunk(max)?,
            Wait::For(timeout) => producer.write_chunk_timeout(max, timeout)?,
        };
        let slots = chunk.as_mut_slice();
        let span = (slots.as_mut_ptr().cast::<u8>(), slots.len());
        self.chunk = Some(chunk);
        Ok(span)
    }

    fn commit(&mut self) -> Result<(), Failure> {
        let chunk = self.chunk.take().ok_or_else(|| Failure::invalid("no reserved chunk to commit"))?;
        chunk.commit();
        Ok(())
    }

    fn commit_first(&mut self, n: usize) -> Result<(), Failure> {
        let len = self.chunk.as_ref().ok_or_else(|| Failure::invalid("no reserved chunk to commit"))?.len();
        if n > len {
            return Err(Failure::invalid(format!("cannot publish {n} of {len} reserved records")));
        }
        K::publish_first(&mut self.chunk, n)
    }

    fn abort(&mut self) -> Result<(), Failure> {
        let chunk = self.chunk.take().ok_or_else(|| Failure::invalid("no reserved chunk to abort"))?;
        drop(chunk);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.producer()?.flush();
        Ok(())
    }

    fn check_peers(&self) -> Result<(), Failure> {
        Ok(self.producer_ref()?.check_peers()?)
    }

    fn poison(&mut self) {
        self.chunk = None;
        if let Ok(producer) = self.producer() {
            producer.poison();
        }
    }

    fn stats(&self) -> Result<ShmqStats, Failure> {
        Ok(c_stats(&self.producer_ref()?.stats(), N, self.bound))
    }
}

/// A consumer and the read chunk it may have lent out between `shmq_read` and `shmq_release`;
/// built like [`ProducerEnd`].
struct ConsumerEnd<const N: usize, K: Kind>
where
    [u8; N]: Pod,
{
    /// From `Box::into_raw`; freed in `drop`.
    consumer: NonNull<Consumer<[u8; N], K>>,
    /// Borrows `*consumer` for as long as it is `Some`.
    chunk: Option<ReadChunk<'static, [u8; N], K>>,
    bound: usize,
}

impl<const N: usize, K: Kind> ConsumerEnd<N, K>
where
    [u8; N]: Pod,
{
    fn new(consumer: Consumer<[u8; N], K>, bound: usize) -> Self {
        Self { consumer: NonNull::from(Box::leak(Box::new(consumer))), chunk: None, bound }
    }

    fn consumer(&mut self) -> Result<&mut Consumer<[u8; N], K>, Failure> {
        if self.chunk.is_some() {
            return Err(chunk_outstanding("read"));
        }
        // SAFETY: live until `drop`; no chunk borrows the consumer (checked above); the
        // reference borrows `self` mutably, so no chunk is made while it lives.
        Ok(unsafe { self.consumer.as_mut() })
    }

    fn consumer_ref(&self) -> Result<&Consumer<[u8; N], K>, Failure> {
        if self.chunk.is_some() {
            return Err(chunk_outstanding("read"));
        }
        // SAFETY: as in `consumer`; a shared borrow of `self` keeps chunks from being made.
        Ok(unsafe { self.consumer.as_ref() })
    }
}

impl<const N: usize, K: Kind> Drop for ConsumerEnd<N, K>
where
    [u8; N]: Pod,
{
    fn drop(&mut self) {
        // An unreleased chunk goes first (its items count as consumed).
        self.chunk = None;
        // SAFETY: from `Box::into_raw` (via `Box::leak`) in `new`, freed only here, and the
        // chunk that borrowed it is gone.
        drop(unsafe { Box::from_raw(self.consumer.as_ptr()) });
    }
}

impl<const N: usize, K: Kind> ConsumerOps for ConsumerEnd<N, K>
where
    [u8; N]: Pod,
{
    fn record_size(&self) -> usize {
        N
    }

    fn pop(&mut self, out: &mut [u8], wait: Wait) -> Result<(), Failure> {
        if out.len() != N {
            return Err(Failure::invalid("record length"));
        }
        let consumer = self.consumer()?;
        let item = match wait {
            Wait::No => consumer.try_pop()?,
            Wait::Forever => consumer.pop()?,
            Wait::For(timeout) => consumer.pop_timeout(timeout)?,
        };
        out.copy_from_slice(&item);
        Ok(())
    }

    fn pop_many(&mut self, out: &mut [u8]) -> Result<usize, Failure> {
        let items: &mut [[u8; N]] =
            bytemuck::try_cast_slice_mut(out).map_err(|_| Failure::invalid("records length"))?;
        Ok(self.consumer()?.pop_into(items)?)
    }

    fn read(&mut self, max: usize, wait: Wait) -> Result<(*const u8, usize), Failure> {
        if max == 0 {
            return Err(Failure::invalid("max must be at least 1"));
        }
        self.consumer()?;
        // SAFETY: as in `ProducerEnd::reserve`: no chunk borrows the consumer now, none will
        // be made while this one lives, and `drop` drops the chunk before the consumer.
        let consumer: &'static mut Consumer<[u8; N], K> = unsafe { &mut *self.consumer.as_ptr() };
        let chunk = match wait {
            Wait::No => consumer.try_read_chunk(max)?,
            Wait::Forever => consumer.read_chunk(max)?,
            Wait::For(timeout) => consumer.read_chunk_timeout(max, timeout)?,
        };
        let span = (chunk.as_slice().as_ptr().cast::<u8>(), chunk.len());
        self.chunk = Some(chunk);
        Ok(span)
    }

    fn release(&mut self) -> Result<(), Failure> {
        let chunk = self.chunk.take().ok_or_else(|| Failure::invalid("no read chunk to release"))?;
        chunk.release();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.consumer()?.flush();
        Ok(())
    }

    fn check_peers(&self) -> Result<(), Failure> {
        Ok(self.consumer_ref()?.check_peers()?)
    }

    fn poison(&mut self) {
        self.chunk = None;
        if let Ok(consumer) = self.consumer() {
            consumer.poison();
        }
    }

    fn stats(&self) -> Result<ShmqStats, Failure> {
        Ok(c_stats(&self.consumer_ref()?.stats(), N, self.bound))
    }
}

/// Fails with `-EINVAL` unless `size` is a supported record size.
pub(crate) fn check_size(size: usize) -> Result<(), Failure> {
    if supported(size) {
        Ok(())
    } else {
        Err(unsupported(size))
    }
}

/// The kind named by a C `kind` argument.
pub(crate) fn kind_from_c(kind: i32) -> Result<KindId, Failure> {
    u32::try_from(kind)
        .ok()
        .and_then(KindId::from_raw)
        .ok_or_else(|| Failure::new(SHMQ_EINVAL, format!("unknown queue kind {kind}: use SHMQ_SPSC..SHMQ_MPMC")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size_of_dispatched<const N: usize, K: Kind>() -> (usize, KindId)
    where
        [u8; N]: Pod,
    {
        (N, K::ID)
    }

    #[test]
    fn dispatch_covers_exactly_the_listed_sizes() {
        for kind in [KindId::Spsc, KindId::Mpsc, KindId::Spmc, KindId::Mpmc] {
            for size in 0..=5000 {
                let got = dispatch!(size, kind, size_of_dispatched());
                assert_eq!(got.is_some(), supported(size), "size {size}");
                if let Some(got) = got {
                    assert_eq!(got, (size, kind));
                }
            }
        }
    }

    /// Interop rests on this: the fingerprint of `[u8; N]` is the library's byte-record one.
    #[test]
    fn byte_arrays_have_the_byte_record_fingerprint() {
        #[allow(clippy::extra_unused_type_parameters)] // dispatch! passes a kind
        fn check<const N: usize, K: Kind>() -> bool
        where
            [u8; N]: Pod,
        {
            TypeFingerprint::of::<[u8; N]>() == TypeFingerprint::bytes(N as u32)
        }
        for size in RECORD_SIZES {
            assert_eq!(dispatch!(size, KindId::Spsc, check()), Some(true), "size {size}");
        }
    }
}
