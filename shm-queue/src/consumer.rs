//! The reading end.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::attached::{Attached, Handover};
use crate::control::{POISONED, PRODUCERS_GONE};
use crate::error::PopError;
use crate::kind::{Kind, MultiConsumer};
use crate::ring::{ConsumerCursor, Span};
use crate::stats::QueueStats;
use crate::sync::Ordering;
use crate::wait::{self, Waited, Waiter};

/// The reading end of a queue. `Send` but not `Sync`; operations take `&mut self`.
///
/// Dropping the last consumer makes pushes fail with
/// [`PushError::Disconnected`](crate::PushError::Disconnected).
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<shm_queue::Consumer<u64>>(); // a consumer is not Sync
/// ```
pub struct Consumer<T: Pod, K: Kind = crate::Spsc> {
    end: Attached<T>,
    cursor: ConsumerCursor,
    waiter: Waiter,
    _kind: PhantomData<K>,
    _not_sync: PhantomData<Cell<()>>,
}

crate::attached::shared_end_api!(Consumer, "adopt_consumer", MultiConsumer, crate::endpoint::Role::Consumer);

impl<T: Pod, K: Kind> Consumer<T, K> {
    pub(crate) fn new(end: Attached<T>) -> Self {
        let cursor = end.ring.consumer_cursor();
        Self { end, cursor, waiter: Waiter::default(), _kind: PhantomData, _not_sync: PhantomData }
    }

    fn poisoned_error(&self) -> PopError {
        match self.end.poison_cause() {
            Some(pid) => PopError::PeerDead { pid },
            None => PopError::Poisoned,
        }
    }

    /// Takes a span of up to `max` items, or says why there is none: `Empty`, or
    /// `Disconnected` once the producers are gone and the ring is drained.
    #[inline]
    fn take(&mut self, max: usize) -> Result<Span, PopError> {
        let flags = self.end.control().state.flags.load(Ordering::Acquire);
        if flags & POISONED != 0 {
            return Err(self.poisoned_error());
        }
        if let Some(span) = self.end.ring.acquire(&mut self.cursor, max) {
            return Ok(span);
        }
        if flags & PRODUCERS_GONE != 0 {
            return Err(PopError::Disconnected);
        }
        // The last producer may have published and left since our flag load: its Release on
        // the flags follows its last publish, so one more look after an Acquire load is final.
        if self.end.control().state.flags.load(Ordering::Acquire) & PRODUCERS_GONE != 0 {
            return self.end.ring.acquire(&mut self.cursor, max).ok_or(PopError::Disconnected);
        }
        Err(PopError::Empty)
    }

    /// Hands a span back to producers and wakes them as the wake policy says.
    #[inline]
    fn finish(&mut self, span: Span) {
        self.end.ring.release(&mut self.cursor, span);
        let ctl = self.end.control();
        if !wait::anyone_sleeping(&ctl.not_full) {
            return;
        }
        let capacity = self.end.ring.capacity() as u64;
        let threshold = self.end.wake.producer_threshold(capacity);
        if threshold >= capacity || self.end.ring.fill() <= threshold {
            wait::wake_all(&ctl.not_full, &ctl.consumer_stats);
        }
    }

    /// Pops without blocking.
    ///
    /// # Errors
    /// `Empty`, `Disconnected` (producers gone, ring drained), `Poisoned` or `PeerDead`.
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, PopError> {
        let span = self.take(1)?;
        // SAFETY: an acquired span, released right after the read.
        let item = unsafe { self.end.ring.slots(span)[0] };
        self.finish(span);
        Ok(item)
    }

    /// Pops, blocking while the ring is empty.
    ///
    /// # Errors
    /// `Disconnected`, `Poisoned` or `PeerDead`.
    pub fn pop(&mut self) -> Result<T, PopError> {
        self.pop_until(None)
    }

    /// Pops, blocking at most `timeout` (a `timeout` too large to add to the clock, such as
    /// `Duration::MAX`, blocks like [`pop`](Self::pop)).
    ///
    /// # Errors
    /// `Timeout`, and those of [`pop`](Self::pop).
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<T, PopError> {
        self.pop_until(wait::deadline_after(timeout))
    }

    fn pop_until(&mut self, deadline: Option<Instant>) -> Result<T, PopError> {
        loop {
            match self.try_pop() {
                Err(PopError::Empty) => self.wait_for_item(deadline)?,
                other => return other,
            }
        }
    }

    /// Pops up to `out.len()` items into `out`, blocking until at least one is there; returns
    /// how many were popped.
    ///
    /// # Errors
    /// Those of [`pop`](Self::pop).
    pub fn pop_into(&mut self, out: &mut [T]) -> Result<usize, PopError> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut n = {
            let chunk = self.read_chunk(out.len())?;
            out[..chunk.len()].copy_from_slice(chunk.as_slice());
            chunk.len()
        };
        // The first chunk may have stopped at the ring's end: take what is ready after it.
        while n < out.len() {
            match self.try_read_chunk(out.len() - n) {
                Ok(chunk) => {
                    out[n..n + chunk.len()].copy_from_slice(chunk.as_slice());
                    n += chunk.len();
                }
                Err(_) => break,
            }
        }
        Ok(n)
    }

    /// Takes between 1 and `max` ready items without blocking, read in place in the segment;
    /// dropping (or [`release`](ReadChunk::release)-ing) the chunk hands the slots back.
    ///
    /// # Errors
    /// Those of [`try_pop`](Self::try_pop); `Empty` for `max` = 0.
    pub fn try_read_chunk(&mut self, max: usize) -> Result<ReadChunk<'_, T, K>, PopError> {
        let span = self.take(max)?;
        Ok(ReadChunk { consumer: self, span })
    }

    /// Takes between 1 and `max` items (`max` ≥ 1), blocking while the ring is empty.
    ///
    /// # Errors
    /// Those of [`pop`](Self::pop).
    pub fn read_chunk(&mut self, max: usize) -> Result<ReadChunk<'_, T, K>, PopError> {
        self.read_chunk_until(max, None)
    }

    /// Like [`read_chunk`](Self::read_chunk), waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`, and those of [`pop`](Self::pop).
    pub fn read_chunk_timeout(&mut self, max: usize, timeout: Duration) -> Result<ReadChunk<'_, T, K>, PopError> {
        self.read_chunk_until(max, wait::deadline_after(timeout))
    }

    fn read_chunk_until(&mut self, max: usize, deadline: Option<Instant>) -> Result<ReadChunk<'_, T, K>, PopError> {
        let max = max.max(1);
        loop {
            match self.take(max) {
                Ok(span) => return Ok(ReadChunk { consumer: self, span }),
                Err(PopError::Empty) => self.wait_for_item(deadline)?,
                Err(e) => return Err(e),
            }
        }
    }

    fn wait_for_item(&mut self, deadline: Option<Instant>) -> Result<(), PopError> {
        let end = &self.end;
        let ctl = end.control();
        let ring = &end.ring;
        let cursor = &self.cursor;
        let waited = wait::wait_until(
            &ctl.not_empty,
            &ctl.consumer_stats,
            &mut self.waiter,
            deadline,
            end.recheck,
            || ring.item_ready(cursor) || ctl.state.flags.load(Ordering::Acquire) & (POISONED | PRODUCERS_GONE) != 0,
            || {
                crate::endpoint::reap_dead(ctl, crate::endpoint::Role::Producer);
            },
        );
        match waited {
            Waited::Ready => Ok(()),
            Waited::TimedOut => Err(PopError::Timeout),
        }
    }

    /// Looks for a producer that died without detaching, now. Waiting calls do this every
    /// re-check period, but the `try_` calls never do: a consumer that only polls calls this
    /// now and then instead (it reads `/proc` once per producer: every few milliseconds, not
    /// per item). A dead producer poisons the queue, as a waiting call would have.
    ///
    /// ```
    /// use shm_queue::{PopError, Queue, QueueOptions, Spsc};
    /// let queue = Queue::<u64, Spsc>::on_heap(QueueOptions::new(8))?;
    /// let (_tx, mut rx) = (queue.producer()?, queue.consumer()?);
    /// let mut empty_polls = 0u32;
    /// while let Err(PopError::Empty) = rx.try_pop() {
    ///     empty_polls += 1;
    ///     if empty_polls % 1024 == 0 {
    ///         rx.check_peers()?; // the producer lives here, so this polls on
    ///     }
    ///     if empty_polls == 4096 {
    ///         break;
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `PeerDead` (a producer died; the queue is now poisoned) or `Poisoned`. A queue every
    /// producer has left is not an error here; the next pop says `Disconnected` once drained.
    pub fn check_peers(&self) -> Result<(), PopError> {
        match self.end.check_peers(crate::endpoint::Role::Producer) {
            None => Ok(()),
            Some(Some(pid)) => Err(PopError::PeerDead { pid }),
            Some(None) => Err(PopError::Poisoned),
        }
    }

    /// Whether no item is ready now (a snapshot: producers may publish right after).
    pub fn is_empty(&self) -> bool {
        !self.end.ring.item_ready(&self.cursor)
    }

    /// Wakes sleeping producers if the ring has room, whatever the wake policy.
    pub fn flush(&mut self) {
        let ctl = self.end.control();
        if wait::anyone_sleeping(&ctl.not_full) && self.end.ring.fill() < self.end.ring.capacity() as u64 {
            wait::wake_all(&ctl.not_full, &ctl.consumer_stats);
        }
    }
}

/// Items read in place in the segment. Dropping it releases the slots (the items count as
/// consumed), for every kind alike.
pub struct ReadChunk<'a, T: Pod, K: Kind> {
    consumer: &'a mut Consumer<T, K>,
    span: Span,
}

impl<T: Pod, K: Kind> fmt::Debug for ReadChunk<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunk").field("len", &self.span.len).finish()
    }
}

impl<T: Pod, K: Kind> ReadChunk<'_, T, K> {
    /// Items in the chunk.
    pub fn len(&self) -> usize {
        self.span.len
    }

    /// Never true: a chunk holds at least one item.
    pub fn is_empty(&self) -> bool {
        self.span.len == 0
    }

    /// The items, in the segment.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: our acquired span, released only when the chunk goes; T is Pod.
        unsafe { self.consumer.end.ring.slots(self.span) }
    }

    /// Hands the slots back to producers (the same as dropping the chunk).
    pub fn release(self) {}
}

impl<T: Pod, K: Kind> std::ops::Deref for ReadChunk<'_, T, K> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod, K: Kind> Drop for ReadChunk<'_, T, K> {
    fn drop(&mut self) {
        let span = self.span;
        self.consumer.finish(span);
    }
}
