//! Blocking across processes: a sleeper on one side is woken by the other side's process, and
//! timeouts report `Timeout` with the item.
//!
//! Sleeping cases create their queue with a 60 s re-check interval, so a sleeper's only futex
//! wait is one long sleep: it comes back in time only if it is woken. The waking process first
//! waits until the sleeper has counted a futex wait (and ~300 ms more), so the sleep is real,
//! not a spin that happened to see the item. Deadlines are generous watchdogs, never speed
//! assertions.

#[macro_use]
mod support;

use std::time::Duration;

use shm_queue::{Kind, Mpmc, Mpsc, PopError, PushError, Queue, QueueOptions, Spmc, Spsc, WakePolicy};

/// Far longer than any wake-up should take; reached only when a wake-up is lost.
const WATCHDOG: Duration = Duration::from_secs(30);
/// A sleeper re-checks only this rarely: a wake-up must come from the other side.
const NO_RECHECK: Duration = Duration::from_secs(60);
/// How long the waking side dawdles once the sleeper sleeps.
const DAWDLE: Duration = Duration::from_millis(300);

fn consumer_asleep_on_empty_is_woken_by_a_push_from_another_process<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create_with(&name, QueueOptions::new(8).recheck(NO_RECHECK)).unwrap();
    let mut rx = queue.consumer().unwrap();
    let producer = support::fork_ok(|| {
        let queue = Queue::<u64, K>::open(&name).map_err(|e| e.to_string())?;
        let mut tx = queue.producer().map_err(|e| e.to_string())?;
        support::wait_until(|| queue.stats().consumer.futex_waits >= 1);
        std::thread::sleep(DAWDLE);
        tx.push(42).map_err(|e| format!("push: {e}"))?;
        // Stay attached until the item is taken: the wake-up must come from the push, not
        // from the close that dropping `tx` makes.
        support::wait_until(|| queue.stats().popped >= 1);
        Ok(())
    });
    assert_eq!(rx.pop_timeout(WATCHDOG), Ok(42), "the sleeping consumer gets the pushed item");
    // The waker counts its wake after making it: read the counts once the waker is done.
    producer.wait_ok("producer");
    let stats = queue.stats();
    assert!(stats.consumer.futex_waits >= 1, "the consumer really slept: {stats:?}");
    assert!(stats.consumer.blocked >= 1, "{stats:?}");
    assert!(stats.producer.futex_wakes >= 1, "the producer's push woke it: {stats:?}");
    assert_eq!(rx.pop_timeout(WATCHDOG), Err(PopError::Disconnected));
}

fn producer_asleep_on_full_is_woken_by_a_pop_from_another_process<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create_with(&name, QueueOptions::new(2).recheck(NO_RECHECK)).unwrap();
    let mut tx = queue.producer().unwrap();
    tx.try_push(0).unwrap();
    tx.try_push(1).unwrap();
    assert_eq!(tx.try_push(9), Err(PushError::Full(9)));
    let consumer = support::fork_ok(|| {
        let queue = Queue::<u64, K>::open(&name).map_err(|e| e.to_string())?;
        let mut rx = queue.consumer().map_err(|e| e.to_string())?;
        support::wait_until(|| queue.stats().producer.futex_waits >= 1);
        std::thread::sleep(DAWDLE);
        for want in 0..3 {
            match rx.pop_timeout(WATCHDOG) {
                Ok(got) if got == want => {}
                other => return Err(format!("pop {want}: {other:?}")),
            }
        }
        match rx.pop_timeout(WATCHDOG) {
            Err(PopError::Disconnected) => Ok(()),
            other => Err(format!("after the last item: {other:?}, not Disconnected")),
        }
    });
    assert_eq!(tx.push_timeout(2, WATCHDOG), Ok(()), "the sleeping producer gets room");
    drop(tx);
    // The waker counts its wake after making it: read the counts once the waker is done.
    consumer.wait_ok("consumer");
    let stats = queue.stats();
    assert!(stats.producer.futex_waits >= 1, "the producer really slept: {stats:?}");
    assert!(stats.producer.blocked >= 1, "{stats:?}");
    assert!(stats.consumer.futex_wakes >= 1, "the consumer's pop woke it: {stats:?}");
}

/// Under a batched policy a push below the threshold leaves a sleeping consumer asleep; the
/// producer's `flush` wakes it.
fn batched_wake_leaves_the_consumer_asleep_until_the_threshold_or_a_flush<K: Kind>() {
    let name = support::shm_name();
    let options = QueueOptions::new(8).recheck(NO_RECHECK).wake(WakePolicy::Batched { consumer_at: 4, producer_at: 0 });
    let queue = Queue::<u64, K>::create_with(&name, options).unwrap();
    let mut tx = queue.producer().unwrap();
    let consumer = support::fork_ok(|| {
        let queue = Queue::<u64, K>::open(&name).map_err(|e| e.to_string())?;
        let mut rx = queue.consumer().map_err(|e| e.to_string())?;
        for want in 0..5 {
            match rx.pop_timeout(WATCHDOG) {
                Ok(got) if got == want => {}
                other => return Err(format!("pop {want}: {other:?}")),
            }
        }
        Ok(())
    });
    support::wait_until(|| queue.stats().consumer.futex_waits >= 1);
    tx.push(0).unwrap();
    let stats = queue.stats();
    assert_eq!(stats.producer.futex_wakes, 0, "one item is below the threshold of 4: {stats:?}");
    tx.flush();
    assert_eq!(queue.stats().producer.futex_wakes, 1, "flush wakes the sleeping consumer");
    // The consumer takes item 0 and sleeps again; four more reach the threshold.
    support::wait_until(|| queue.stats().consumer.futex_waits >= 2);
    for i in 1..5 {
        tx.push(i).unwrap();
    }
    assert!(queue.stats().producer.futex_wakes >= 2, "the fourth item woke the consumer");
    consumer.wait_ok("consumer");
}

fn push_timeout_on_full_returns_timeout_with_the_item<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 4).unwrap();
    let mut tx = queue.producer().unwrap();
    let mut rx = queue.consumer().unwrap();
    for i in 0..4 {
        tx.try_push(i).unwrap();
    }
    assert_eq!(tx.push_timeout(99, Duration::from_millis(50)), Err(PushError::Timeout(99)));
    assert_eq!(tx.try_push(98), Err(PushError::Full(98)));
    assert_eq!(tx.write_chunk_timeout(2, Duration::from_millis(20)).unwrap_err(), PushError::Timeout(()));
    assert_eq!(tx.try_write_chunk(2).unwrap_err(), PushError::Full(()));
    assert!(queue.stats().producer.blocked >= 1);
    // Nothing was pushed by the failed calls.
    for i in 0..4 {
        assert_eq!(rx.try_pop(), Ok(i));
    }
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}

fn a_timeout_too_large_for_a_deadline_waits_without_one<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 4).unwrap();
    let mut tx = queue.producer().unwrap();
    let mut rx = queue.consumer().unwrap();
    // `Instant::now() + Duration::MAX` overflows: these used to panic.
    assert_eq!(tx.push_timeout(1, Duration::MAX), Ok(()));
    let mut chunk = tx.write_chunk_timeout(1, Duration::MAX).unwrap();
    chunk.as_mut_slice()[0] = 2;
    chunk.commit();
    tx.flush();
    assert_eq!(rx.pop_timeout(Duration::MAX), Ok(1));
    assert_eq!(&*rx.read_chunk_timeout(4, Duration::MAX).unwrap(), &[2]);
}

fn pop_timeout_on_empty_returns_timeout<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 4).unwrap();
    let mut tx = queue.producer().unwrap();
    let mut rx = queue.consumer().unwrap();
    assert_eq!(rx.pop_timeout(Duration::from_millis(50)), Err(PopError::Timeout));
    assert_eq!(rx.read_chunk_timeout(2, Duration::from_millis(20)).unwrap_err(), PopError::Timeout);
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    assert_eq!(rx.try_read_chunk(2).unwrap_err(), PopError::Empty);
    assert!(queue.stats().consumer.blocked >= 1);
    // Still working afterwards.
    tx.push(5).unwrap();
    assert_eq!(rx.pop_timeout(WATCHDOG), Ok(5));
}

macro_rules! per_kind {
    ($($case:ident => [$($name:ident: $kind:ty),*];)*) => {
        $($(fn $name() { $case::<$kind>() })*)*
        fn main() { support::main(cases![$($($name),*),*]) }
    };
}

per_kind! {
    consumer_asleep_on_empty_is_woken_by_a_push_from_another_process => [
        spsc_consumer_asleep_on_empty_is_woken_by_a_push_from_another_process: Spsc,
        mpsc_consumer_asleep_on_empty_is_woken_by_a_push_from_another_process: Mpsc,
        spmc_consumer_asleep_on_empty_is_woken_by_a_push_from_another_process: Spmc,
        mpmc_consumer_asleep_on_empty_is_woken_by_a_push_from_another_process: Mpmc
    ];
    producer_asleep_on_full_is_woken_by_a_pop_from_another_process => [
        spsc_producer_asleep_on_full_is_woken_by_a_pop_from_another_process: Spsc,
        mpsc_producer_asleep_on_full_is_woken_by_a_pop_from_another_process: Mpsc,
        spmc_producer_asleep_on_full_is_woken_by_a_pop_from_another_process: Spmc,
        mpmc_producer_asleep_on_full_is_woken_by_a_pop_from_another_process: Mpmc
    ];
    batched_wake_leaves_the_consumer_asleep_until_the_threshold_or_a_flush => [
        spsc_batched_wake_leaves_the_consumer_asleep_until_the_threshold_or_a_flush: Spsc,
        mpmc_batched_wake_leaves_the_consumer_asleep_until_the_threshold_or_a_flush: Mpmc
    ];
    push_timeout_on_full_returns_timeout_with_the_item => [
        spsc_push_timeout_on_full_returns_timeout_with_the_item: Spsc,
        mpsc_push_timeout_on_full_returns_timeout_with_the_item: Mpsc,
        spmc_push_timeout_on_full_returns_timeout_with_the_item: Spmc,
        mpmc_push_timeout_on_full_returns_timeout_with_the_item: Mpmc
    ];
    a_timeout_too_large_for_a_deadline_waits_without_one => [
        spsc_a_timeout_too_large_for_a_deadline_waits_without_one: Spsc,
        mpmc_a_timeout_too_large_for_a_deadline_waits_without_one: Mpmc
    ];
    pop_timeout_on_empty_returns_timeout => [
        spsc_pop_timeout_on_empty_returns_timeout: Spsc,
        mpsc_pop_timeout_on_empty_returns_timeout: Mpsc,
        spmc_pop_timeout_on_empty_returns_timeout: Spmc,
        mpmc_pop_timeout_on_empty_returns_timeout: Mpmc
    ];
}
