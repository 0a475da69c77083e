//! The writing end.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::attached::{Attached, Handover};
use crate::control::{CONSUMERS_GONE, POISONED};
use crate::error::PushError;
use crate::kind::{Kind, MultiProducer, SingleProducer};
use crate::ring::{ProducerCursor, Span};
use crate::stats::QueueStats;
use crate::sync::Ordering;
use crate::wait::{self, Waited, Waiter};
use crate::wake::WakePolicy;

/// The writing end of a queue. `Send` (move it to a thread) but not `Sync`: it keeps a private
/// cursor, so every operation takes `&mut self`.
///
/// Dropping the last producer closes the queue: consumers drain what is left, then get
/// [`PopError::Disconnected`](crate::PopError::Disconnected).
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<shm_queue::Producer<u64>>(); // a producer is not Sync
/// ```
pub struct Producer<T: Pod, K: Kind = crate::Spsc> {
    end: Attached<T>,
    cursor: ProducerCursor,
    waiter: Waiter,
    _kind: PhantomData<K>,
    _not_sync: PhantomData<Cell<()>>,
}

crate::attached::shared_end_api!(Producer, "adopt_producer", MultiProducer, crate::endpoint::Role::Producer);

impl<T: Pod, K: Kind> Producer<T, K> {
    pub(crate) fn new(end: Attached<T>) -> Self {
        let cursor = end.ring.producer_cursor();
        Self { end, cursor, waiter: Waiter::default(), _kind: PhantomData, _not_sync: PhantomData }
    }

    /// The error for a queue that no longer takes items, if it does not.
    #[inline]
    fn check_open(&self) -> Result<(), PushError<()>> {
        let flags = self.end.control().state.flags.load(Ordering::Acquire);
        if flags & (POISONED | CONSUMERS_GONE) == 0 {
            return Ok(());
        }
        Err(if flags & POISONED != 0 {
            match self.end.poison_cause() {
                Some(pid) => PushError::PeerDead { pid, item: () },
                None => PushError::Poisoned(()),
            }
        } else {
            PushError::Disconnected(())
        })
    }

    /// Pushes without blocking.
    ///
    /// # Errors
    /// `Full` when there is no room, `Disconnected` when every consumer has left, `Poisoned`
    /// or `PeerDead` when the queue is broken; the item comes back in each.
    #[inline]
    pub fn try_push(&mut self, item: T) -> Result<(), PushError<T>> {
        if let Err(e) = self.check_open() {
            return Err(e.with_item(item));
        }
        match self.end.ring.reserve(&mut self.cursor, 1) {
            Some(span) => {
                // SAFETY: a fresh reservation of one slot, not yet committed.
                unsafe { self.end.ring.slots_mut(span)[0].write(item) };
                self.publish(span);
                Ok(())
            }
            None => Err(PushError::Full(item)),
        }
    }

    /// Pushes, blocking while the ring is full.
    ///
    /// # Errors
    /// `Disconnected`, `Poisoned` or `PeerDead`, with the item.
    pub fn push(&mut self, item: T) -> Result<(), PushError<T>> {
        self.push_until(item, None)
    }

    /// Pushes, blocking at most `timeout` while the ring is full (a `timeout` too large to
    /// add to the clock, such as `Duration::MAX`, blocks like [`push`](Self::push)).
    ///
    /// # Errors
    /// `Timeout` when no room appeared in time, and those of [`push`](Self::push).
    pub fn push_timeout(&mut self, item: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.push_until(item, wait::deadline_after(timeout))
    }

    fn push_until(&mut self, mut item: T, deadline: Option<Instant>) -> Result<(), PushError<T>> {
        loop {
            match self.try_push(item) {
                Err(PushError::Full(back)) => item = back,
                other => return other,
            }
            if let Err(e) = self.wait_for_room(deadline) {
                return Err(e.with_item(item));
            }
        }
    }

    /// Pushes every item of `items`, blocking while the ring is full, one chunk at a time.
    ///
    /// # Errors
    /// Those of [`push`](Self::push), carrying how many items were pushed before the failure.
    pub fn push_slice(&mut self, items: &[T]) -> Result<(), PushError<usize>> {
        let mut done = 0;
        while done < items.len() {
            let mut chunk = self.write_chunk(items.len() - done).map_err(|e| e.with_item(done))?;
            let n = chunk.len();
            chunk.copy_from_slice(&items[done..done + n]);
            chunk.commit();
            done += n;
        }
        Ok(())
    }

    /// Reserves between 1 and `max` contiguous slots in the segment without blocking, for
    /// writing in place; [`WriteChunk::commit`] publishes them.
    ///
    /// # Errors
    /// `Full` when there is no room (or `max` is 0), and the others of [`try_push`](Self::try_push).
    pub fn try_write_chunk(&mut self, max: usize) -> Result<WriteChunk<'_, T, K>, PushError<()>> {
        self.check_open()?;
        match self.end.ring.reserve(&mut self.cursor, max) {
            Some(span) => Ok(WriteChunk { producer: self, span, committed: false }),
            None => Err(PushError::Full(())),
        }
    }

    /// Reserves between 1 and `max` slots (`max` ≥ 1), blocking while the ring is full.
    ///
    /// # Errors
    /// Those of [`push`](Self::push), without an item.
    pub fn write_chunk(&mut self, max: usize) -> Result<WriteChunk<'_, T, K>, PushError<()>> {
        self.write_chunk_until(max, None)
    }

    /// Like [`write_chunk`](Self::write_chunk), waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`, and those of [`push`](Self::push).
    pub fn write_chunk_timeout(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<WriteChunk<'_, T, K>, PushError<()>> {
        self.write_chunk_until(max, wait::deadline_after(timeout))
    }

    fn write_chunk_until(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
    ) -> Result<WriteChunk<'_, T, K>, PushError<()>> {
        let max = max.max(1);
        loop {
            self.check_open()?;
            if let Some(span) = self.end.ring.reserve(&mut self.cursor, max) {
                return Ok(WriteChunk { producer: self, span, committed: false });
            }
            self.wait_for_room(deadline)?;
        }
    }

    fn wait_for_room(&mut self, deadline: Option<Instant>) -> Result<(), PushError<()>> {
        // Before sleeping, make sure the consumer is not asleep on items we published under a
        // batched policy: otherwise both sides could sleep until the recheck timeout.
        self.flush();
        let end = &self.end;
        let ctl = end.control();
        let ring = &end.ring;
        let cursor = &self.cursor;
        let waited = wait::wait_until(
            &ctl.not_full,
            &ctl.producer_stats,
            &mut self.waiter,
            deadline,
            end.recheck,
            || ring.room_ready(cursor) || ctl.state.flags.load(Ordering::Acquire) & (POISONED | CONSUMERS_GONE) != 0,
            || {
                crate::endpoint::reap_dead(ctl, crate::endpoint::Role::Consumer);
            },
        );
        match waited {
            Waited::Ready => Ok(()),
            Waited::TimedOut => Err(PushError::Timeout(())),
        }
    }

    /// Publishes a span and wakes consumers as the wake policy says.
    #[inline]
    fn publish(&mut self, span: Span) {
        self.end.ring.commit(&mut self.cursor, span);
        let ctl = self.end.control();
        if !wait::anyone_sleeping(&ctl.not_empty) {
            return;
        }
        let threshold = self.end.wake.consumer_threshold();
        if threshold <= 1 || self.end.ring.fill() >= threshold {
            wait::wake_all(&ctl.not_empty, &ctl.producer_stats);
        }
    }

    /// Looks for a consumer that died without detaching, now. Waiting calls do this every
    /// re-check period, but the `try_` calls never do: a producer that only polls calls this
    /// now and then instead (it reads `/proc` once per consumer: every few milliseconds, not
    /// per item). A dead consumer poisons the queue, as a waiting call would have.
    ///
    /// ```
    /// use shm_queue::{PushError, Queue, QueueOptions, Spsc};
    /// let queue = Queue::<u64, Spsc>::on_heap(QueueOptions::new(2))?;
    /// let (mut tx, _rx) = (queue.producer()?, queue.consumer()?);
    /// let mut polls = 0u32;
    /// while let Err(PushError::Full(_)) | Ok(()) = tx.try_push(7) {
    ///     polls += 1;
    ///     if polls % 1024 == 0 {
    ///         tx.check_peers()?; // the consumer lives here, so this polls on
    ///     }
    ///     if polls == 4096 {
    ///         break;
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `PeerDead` (a consumer died; the queue is now poisoned) or `Poisoned`. A queue every
    /// consumer has left is not an error here; the next push says `Disconnected`.
    pub fn check_peers(&self) -> Result<(), PushError<()>> {
        match self.end.check_peers(crate::endpoint::Role::Consumer) {
            None => Ok(()),
            Some(Some(pid)) => Err(PushError::PeerDead { pid, item: () }),
            Some(None) => Err(PushError::Poisoned(())),
        }
    }

    /// Wakes sleeping consumers if the ring holds anything, whatever the wake policy. Call it
    /// before waiting on something other than this queue under [`WakePolicy::Batched`].
    pub fn flush(&mut self) {
        let ctl = self.end.control();
        if wait::anyone_sleeping(&ctl.not_empty) && self.end.ring.fill() > 0 {
            wait::wake_all(&ctl.not_empty, &ctl.producer_stats);
        }
    }

    /// Items in the ring now, published and not yet consumed (with multiple producers, also
    /// slots others have claimed but not yet published; with multiple consumers, items a
    /// consumer has claimed leave the count at once). A snapshot: consumers may take items
    /// right after. With [`flush`](Self::flush), it lets a producer that is about to wait on
    /// something else decide whether what it has queued is worth waking a consumer for.
    ///
    /// ```
    /// # use shm_queue::{Queue, QueueOptions, Spsc};
    /// let queue = Queue::<u64, Spsc>::on_heap(QueueOptions::with_depth(8))?;
    /// let mut producer = queue.producer()?;
    /// let mut consumer = queue.consumer()?;
    /// producer.push_slice(&[1, 2, 3])?;
    /// assert_eq!(producer.len(), 3);
    /// consumer.pop()?;
    /// assert_eq!(producer.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.end.ring.fill() as usize
    }

    /// Whether the ring holds no item now (a snapshot, as [`len`](Self::len)).
    ///
    /// ```
    /// # use shm_queue::{Queue, QueueOptions, Spsc};
    /// let queue = Queue::<u64, Spsc>::on_heap(QueueOptions::with_depth(8))?;
    /// let mut producer = queue.producer()?;
    /// assert!(producer.is_empty());
    /// producer.push(1)?;
    /// assert!(!producer.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The wake policy the queue was created with.
    pub fn wake_policy(&self) -> WakePolicy {
        self.end.wake
    }
}

/// Reserved slots in the segment, written in place, then published by [`commit`](Self::commit).
///
/// Dropping it uncommitted discards the reservation for single-producer kinds. A
/// multi-producer claim cannot be taken back, so there an uncommitted drop poisons the queue
/// (consumers would otherwise wait forever for those slots).
pub struct WriteChunk<'a, T: Pod, K: Kind> {
    producer: &'a mut Producer<T, K>,
    span: Span,
    committed: bool,
}

impl<T: Pod, K: Kind> fmt::Debug for WriteChunk<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteChunk").field("len", &self.span.len).finish()
    }
}

impl<T: Pod, K: Kind> WriteChunk<'_, T, K> {
    /// Slots reserved.
    pub fn len(&self) -> usize {
        self.span.len
    }

    /// Never true: a chunk holds at least one slot.
    pub fn is_empty(&self) -> bool {
        self.span.len == 0
    }

    /// The reserved slots, in the segment, to be overwritten. They hold what was there
    /// before (zeros, or an older item): any bits are a valid `T`, since `T` is `Pod`.
    ///
    /// Plain `&mut [T]`, not `MaybeUninit`: with `MaybeUninit`, safe code could store
    /// `MaybeUninit::uninit()` in a slot and publish it, and the consumer would read
    /// uninitialised memory as a `T`. That no longer compiles:
    ///
    /// ```compile_fail
    /// use shm_queue::{Queue, QueueOptions, Spsc};
    /// let queue = Queue::<u64, Spsc>::on_heap(QueueOptions::new(4)).unwrap();
    /// let mut tx = queue.producer().unwrap();
    /// let mut chunk = tx.write_chunk(1).unwrap();
    /// chunk.as_mut_slice()[0] = std::mem::MaybeUninit::uninit();
    /// ```
    ///
    /// ```
    /// use shm_queue::{Queue, QueueOptions, Spsc};
    /// let queue = Queue::<u64, Spsc>::on_heap(QueueOptions::new(4))?;
    /// let (mut tx, mut rx) = (queue.producer()?, queue.consumer()?);
    /// let mut chunk = tx.write_chunk(2)?;
    /// chunk.as_mut_slice().copy_from_slice(&[7, 8]);
    /// chunk.commit();
    /// assert_eq!(&*rx.read_chunk(2)?, &[7, 8]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: our reservation, not committed yet; the &mut self borrow keeps it unique.
        let slots = unsafe { self.producer.end.ring.slots_mut(self.span) };
        // SAFETY: every slot is initialised: rings start zero-filled (a fresh segment, or
        // `alloc_zeroed` on the heap) and only ever receive whole `T` values, and a `Pod` `T`
        // (no padding) is valid for any initialised bits. `MaybeUninit<T>` has `T`'s layout.
        unsafe { &mut *(std::ptr::from_mut::<[MaybeUninit<T>]>(slots) as *mut [T]) }
    }

    /// Copies `src` into the chunk's slots.
    ///
    /// # Panics
    /// If `src.len()` differs from [`len`](Self::len).
    pub fn copy_from_slice(&mut self, src: &[T]) {
        let dst = self.as_mut_slice();
        assert_eq!(dst.len(), src.len(), "source length must equal the chunk length");
        dst.copy_from_slice(src);
    }

    /// Publishes every slot of the chunk.
    pub fn commit(mut self) {
        self.committed = true;
        let span = self.span;
        self.producer.publish(span);
    }
}

impl<T: Pod, K: SingleProducer> WriteChunk<'_, T, K> {
    /// Publishes the first `n` slots and gives the rest of the reservation back, for a writer
    /// that learns how much it has only as it writes (a filter: reserve room for a whole input
    /// chunk, write the survivors, publish those). Single-producer kinds only: a multi-producer
    /// claim cannot be shortened.
    ///
    /// # Panics
    /// If `n` exceeds [`len`](Self::len).
    ///
    /// ```
    /// use shm_queue::{Queue, QueueOptions, Spsc};
    /// # let name = format!("/shmq-doc-commit-first-{}", std::process::id());
    /// let queue = Queue::<u64, Spsc>::create_with(&name, QueueOptions::new(16))?;
    /// let (mut tx, mut rx) = (queue.producer()?, queue.consumer()?);
    /// let input = [3u64, 4, 5, 6, 7];
    /// let mut chunk = tx.write_chunk(input.len())?;
    /// let mut kept = 0;
    /// for (slot, &n) in chunk.as_mut_slice().iter_mut().zip(input.iter().filter(|&&n| n % 2 == 1)) {
    ///     *slot = n;
    ///     kept += 1;
    /// }
    /// chunk.commit_first(kept);
    /// assert_eq!(&*rx.read_chunk(8)?, &[3, 5, 7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit_first(mut self, n: usize) {
        assert!(n <= self.span.len, "cannot publish {n} of {} reserved slots", self.span.len);
        self.committed = true;
        if n > 0 {
            let span = Span { pos: self.span.pos, len: n };
            self.producer.publish(span);
        }
    }
}

impl<T: Pod, K: Kind> Drop for WriteChunk<'_, T, K> {
    fn drop(&mut self) {
        if !self.committed && !self.producer.end.ring.abandon(self.span) {
            self.producer.end.poison();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{PopError, Queue, QueueOptions, SingleProducer, Spmc, Spsc};

    fn drain<K: SingleProducer>(rx: &mut crate::Consumer<u64, K>) -> Vec<u64> {
        let mut got = Vec::new();
        loop {
            match rx.try_pop() {
                Ok(v) => got.push(v),
                Err(PopError::Empty) => return got,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn a_partial_commit_publishes_the_prefix_and_frees_the_rest<K: SingleProducer>() {
        let queue = Queue::<u64, K>::on_heap(QueueOptions::new(4)).unwrap();
        let (mut tx, mut rx) = (queue.producer().unwrap(), queue.consumer().unwrap());
        let mut chunk = tx.write_chunk(4).unwrap();
        assert_eq!(chunk.len(), 4);
        for (i, slot) in chunk.as_mut_slice().iter_mut().enumerate() {
            *slot = 10 + i as u64;
        }
        chunk.commit_first(2);
        assert_eq!(drain(&mut rx), [10, 11], "only the prefix is published");
        tx.write_chunk(4).unwrap().commit_first(0);
        assert_eq!(drain(&mut rx), [], "publishing none publishes nothing");
        // The next reservation starts right after what was published, and wraps.
        for round in 0..3u64 {
            let mut chunk = tx.write_chunk(3).unwrap();
            let n = chunk.len();
            for (i, slot) in chunk.as_mut_slice().iter_mut().enumerate() {
                *slot = 100 * round + i as u64;
            }
            chunk.commit_first(n - 1);
            let expected: Vec<u64> = (0..n as u64 - 1).map(|i| 100 * round + i).collect();
            assert_eq!(drain(&mut rx), expected, "round {round}");
        }
    }

    #[test]
    fn spsc_partial_commits() {
        a_partial_commit_publishes_the_prefix_and_frees_the_rest::<Spsc>();
    }

    #[test]
    fn spmc_partial_commits() {
        a_partial_commit_publishes_the_prefix_and_frees_the_rest::<Spmc>();
    }

    fn len_counts_what_is_queued_and_not_yet_taken<K: crate::Kind>() {
        let queue = Queue::<u64, K>::on_heap(QueueOptions::new(4)).unwrap();
        let (mut tx, mut rx) = (queue.producer().unwrap(), queue.consumer().unwrap());
        assert!(tx.is_empty());
        for round in 0..3u64 {
            tx.push_slice(&[round, round + 1, round + 2]).unwrap();
            assert_eq!(tx.len(), 3, "round {round}");
            assert_eq!(rx.pop().unwrap(), round);
            assert_eq!(tx.len(), 2, "round {round}");
            tx.push_slice(&[7, 7]).unwrap();
            assert_eq!(tx.len(), 4, "a full ring, round {round}");
            while rx.try_pop().is_ok() {}
            assert!(tx.is_empty(), "round {round}");
        }
    }

    /// With several producers, slots one has claimed count before it publishes them.
    fn len_counts_claims_of_other_producers<K: crate::kind::MultiProducer>() {
        let queue = Queue::<u64, K>::on_heap(QueueOptions::new(8)).unwrap();
        let (mut tx, mut other) = (queue.producer().unwrap(), queue.producer().unwrap());
        tx.push(1).unwrap();
        let mut claim = other.write_chunk(3).unwrap();
        claim.copy_from_slice(&[2, 3, 4]);
        assert_eq!(tx.len(), 4, "one published, three claimed");
        claim.commit();
        assert_eq!(tx.len(), 4);
    }

    #[test]
    fn len_counts_claims_with_several_producers() {
        len_counts_claims_of_other_producers::<crate::Mpsc>();
        len_counts_claims_of_other_producers::<crate::Mpmc>();
    }

    #[test]
    fn len_on_every_kind() {
        len_counts_what_is_queued_and_not_yet_taken::<Spsc>();
        len_counts_what_is_queued_and_not_yet_taken::<Spmc>();
        len_counts_what_is_queued_and_not_yet_taken::<crate::Mpsc>();
        len_counts_what_is_queued_and_not_yet_taken::<crate::Mpmc>();
    }

    #[test]
    #[should_panic(expected = "cannot publish 3 of 2 reserved slots")]
    fn publishing_more_than_was_reserved_panics() {
        let queue = Queue::<u64, Spsc>::on_heap(QueueOptions::new(2)).unwrap();
        let mut tx = queue.producer().unwrap();
        tx.write_chunk(2).unwrap().commit_first(3);
    }
}
