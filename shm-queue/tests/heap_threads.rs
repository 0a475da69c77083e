//! `Queue::on_heap` between threads of one process: the same rings and blocking as in shared
//! memory, without a segment. Exactly once per kind at capacities 1, 2 and 1024, blocking in
//! both directions, and `Disconnected` once the producer thread's end is dropped.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use shm_queue::{Consumer, Kind, Mpmc, Mpsc, PopError, Producer, PushError, Queue, QueueOptions, Spmc, Spsc};

const WATCHDOG: Duration = Duration::from_secs(30);
const NO_RECHECK: Duration = Duration::from_secs(60);
const PRODUCER_SHIFT: u32 = 40;

fn items() -> u64 {
    std::env::var("SHMQ_ITEMS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000)
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Producer `who` pushes its items with one of three APIs (`push`, `push_slice`,
/// `write_chunk`), chosen by `api`.
fn produce<K: Kind>(mut tx: Producer<u64, K>, who: u64, per_producer: u64, api: usize) {
    let item = |i: u64| (who << PRODUCER_SHIFT) | i;
    let mut next = 0;
    let mut step = 0u64;
    while next < per_producer {
        let n = (1 + step * 7 % 61).min(per_producer - next);
        match api % 3 {
            0 => {
                tx.push(item(next)).unwrap();
                next += 1;
            }
            1 => {
                let batch: Vec<u64> = (next..next + n).map(item).collect();
                tx.push_slice(&batch).unwrap();
                next += n;
            }
            _ => {
                let mut chunk = tx.write_chunk(n as usize).unwrap();
                for (i, slot) in chunk.as_mut_slice().iter_mut().enumerate() {
                    *slot = item(next + i as u64);
                }
                next += chunk.len() as u64;
                chunk.commit();
            }
        }
        step += 1;
    }
}

/// Consumer: pops with `pop`, `pop_into` or `read_chunk` until `Disconnected`, marking each
/// item in `seen` and checking each producer's order. Returns how many it took.
fn consume<K: Kind>(mut rx: Consumer<u64, K>, seen: &[AtomicU8], per_producer: u64, api: usize) -> usize {
    let mut last: Vec<Option<u64>> = vec![None; 2];
    let mut taken = 0;
    let mut record = |v: u64| {
        let (producer, index) = ((v >> PRODUCER_SHIFT) as usize, v & ((1 << PRODUCER_SHIFT) - 1));
        assert!(producer < 2 && index < per_producer, "item {v:#x} was never pushed");
        assert!(
            last[producer].is_none_or(|prev| index > prev),
            "producer {producer}: {index} after {:?}",
            last[producer]
        );
        last[producer] = Some(index);
        let flag = &seen[producer * per_producer as usize + index as usize];
        assert_eq!(flag.swap(1, Ordering::Relaxed), 0, "item {v:#x} delivered twice");
        taken += 1;
    };
    let mut buf = [0u64; 32];
    let end = loop {
        let got = match api % 3 {
            0 => rx.pop().map(&mut record),
            1 => rx.pop_into(&mut buf).map(|n| buf[..n].iter().copied().for_each(&mut record)),
            _ => rx.read_chunk(32).map(|chunk| chunk.iter().copied().for_each(&mut record)),
        };
        if let Err(e) = got {
            break e;
        }
    };
    assert_eq!(end, PopError::Disconnected);
    taken
}

fn exactly_once<K: Kind>(producers: u64, consumers: usize) {
    let per_producer = items().div_ceil(producers);
    for (cap_index, capacity) in [1, 2, 1024].into_iter().enumerate() {
        let queue = Queue::<u64, K>::on_heap(QueueOptions::new(capacity)).unwrap();
        assert_eq!(queue.name(), None);
        // Attach every end before any thread starts, so none sees the queue closed early.
        let txs: Vec<_> = (0..producers).map(|_| queue.producer().unwrap()).collect();
        let rxs: Vec<_> = (0..consumers).map(|_| queue.consumer().unwrap()).collect();
        let seen: Vec<AtomicU8> = (0..per_producer * producers).map(|_| AtomicU8::new(0)).collect();
        let taken: usize = std::thread::scope(|s| {
            for (who, tx) in txs.into_iter().enumerate() {
                s.spawn(move || produce(tx, who as u64, per_producer, who + cap_index));
            }
            let seen = &seen;
            let handles: Vec<_> = rxs
                .into_iter()
                .enumerate()
                .map(|(who, rx)| s.spawn(move || consume(rx, seen, per_producer, who + cap_index + 1)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken as u64, per_producer * producers, "capacity {capacity}");
        assert!(seen.iter().all(|f| f.load(Ordering::Relaxed) == 1), "capacity {capacity}: every item delivered");
        let stats = queue.stats();
        assert_eq!(stats.popped, per_producer * producers, "{stats:?}");
        assert!(stats.producers_gone && stats.consumers_gone && !stats.poisoned, "{stats:?}");
    }
}

#[test]
fn spsc_threads_deliver_exactly_once_at_capacities_1_2_1024() {
    exactly_once::<Spsc>(1, 1);
}

#[test]
fn mpsc_threads_deliver_exactly_once_at_capacities_1_2_1024() {
    exactly_once::<Mpsc>(2, 1);
}

#[test]
fn spmc_threads_deliver_exactly_once_at_capacities_1_2_1024() {
    exactly_once::<Spmc>(1, 2);
}

#[test]
fn mpmc_threads_deliver_exactly_once_at_capacities_1_2_1024() {
    exactly_once::<Mpmc>(2, 2);
}

fn sleeping_consumer_is_woken_by_a_push_from_another_thread<K: Kind>() {
    let queue = Queue::<u64, K>::on_heap(QueueOptions::new(4).recheck(NO_RECHECK)).unwrap();
    let (mut tx, mut rx) = (queue.producer().unwrap(), queue.consumer().unwrap());
    std::thread::scope(|s| {
        s.spawn(|| {
            wait_until(|| queue.stats().consumer.futex_waits >= 1);
            tx.push(11).unwrap();
        });
        assert_eq!(rx.pop_timeout(WATCHDOG), Ok(11));
    });
    let stats = queue.stats();
    assert!(stats.consumer.futex_waits >= 1 && stats.producer.futex_wakes >= 1, "{stats:?}");
}

fn sleeping_producer_is_woken_by_a_pop_from_another_thread<K: Kind>() {
    let queue = Queue::<u64, K>::on_heap(QueueOptions::new(1).recheck(NO_RECHECK)).unwrap();
    let (mut tx, mut rx) = (queue.producer().unwrap(), queue.consumer().unwrap());
    tx.push(1).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            wait_until(|| queue.stats().producer.futex_waits >= 1);
            assert_eq!(rx.pop_timeout(WATCHDOG), Ok(1));
            assert_eq!(rx.pop_timeout(WATCHDOG), Ok(2));
        });
        assert_eq!(tx.push_timeout(2, WATCHDOG), Ok(()));
    });
    let stats = queue.stats();
    assert!(stats.producer.futex_waits >= 1 && stats.consumer.futex_wakes >= 1, "{stats:?}");
}

#[test]
fn blocking_push_and_pop_across_threads() {
    sleeping_consumer_is_woken_by_a_push_from_another_thread::<Spsc>();
    sleeping_consumer_is_woken_by_a_push_from_another_thread::<Mpmc>();
    sleeping_producer_is_woken_by_a_pop_from_another_thread::<Spsc>();
    sleeping_producer_is_woken_by_a_pop_from_another_thread::<Mpmc>();
}

#[test]
fn consumer_gets_disconnected_after_the_producer_thread_drops_its_end() {
    for capacity in [1, 1024] {
        let queue = Queue::<u64, Mpsc>::on_heap(QueueOptions::new(capacity).recheck(NO_RECHECK)).unwrap();
        let (tx, mut rx) = (queue.producer().unwrap(), queue.consumer().unwrap());
        let producer = std::thread::spawn(move || {
            let mut tx = tx;
            for i in 0..100 {
                tx.push(i).unwrap();
            }
            // `tx` is dropped here: the queue closes.
        });
        for want in 0..100 {
            assert_eq!(rx.pop_timeout(WATCHDOG), Ok(want));
        }
        // Sleeping (a 60 s re-check) or not, the drop ends the wait.
        assert_eq!(rx.pop_timeout(WATCHDOG), Err(PopError::Disconnected));
        producer.join().unwrap();
        assert_eq!(rx.try_pop(), Err(PopError::Disconnected));
    }
}

#[test]
fn producer_gets_disconnected_after_the_consumer_thread_drops_its_end() {
    let queue = Queue::<u64, Spmc>::on_heap(QueueOptions::new(2).recheck(NO_RECHECK)).unwrap();
    let (mut tx, rx) = (queue.producer().unwrap(), queue.consumer().unwrap());
    tx.push(1).unwrap();
    tx.push(2).unwrap();
    std::thread::scope(|s| {
        let queue = &queue;
        s.spawn(move || {
            let mut rx = rx;
            assert_eq!(rx.pop_timeout(WATCHDOG), Ok(1));
            // Stay attached until the blocked push got its room, then leave.
            wait_until(|| queue.stats().pushed == 3);
        });
        assert_eq!(tx.push_timeout(3, WATCHDOG), Ok(()));
    });
    // The only consumer is gone: no push succeeds any more, room or not.
    assert_eq!(tx.push_timeout(4, WATCHDOG), Err(PushError::Disconnected(4)));
    assert_eq!(queue.stats().len, 2, "items 2 and 3 stay in the ring");
}
