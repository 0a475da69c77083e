//! Closing, poisoning and dead peers, between processes.
//!
//! - The last producer out closes the queue: consumers drain what is left, then get
//!   `Disconnected`; the last consumer out makes pushes fail with `Disconnected` and the item.
//! - An end whose process died without detaching (SIGKILL, or exit without dropping it) is
//!   found by a sleeper on the other side, which poisons the queue and reports `PeerDead` with
//!   the dead pid, also when the dead producer held an uncommitted multi-producer claim.
//! - An end dropped while its process panics poisons the queue (a cut-short stream is not a
//!   closed one).
//! - A stopped (SIGSTOP) process is not dead.
//! - `poison` wakes every sleeper, in every process.
//! - An end inherited through `fork` and dropped in the child does not close the queue, and a
//!   creator's `Queue` inherited and dropped there does not remove the name.
//! - A child's start time known from the clock around its fork is the one `/proc` shows.
//!
//! Deadlines are watchdogs: `pop_timeout(10 s)` must give `PeerDead`, never `Timeout`.

#[macro_use]
mod support;

use std::time::Duration;

use shm_queue::{
    AttachError, ForkClock, Handover, Kind, Mpmc, Mpsc, PopError, ProcessStatus, PushError, Queue, QueueOptions, Spmc,
    Spsc,
};
use support::{Pipe, Status};

/// Far longer than detection or a wake-up should take.
const WATCHDOG: Duration = Duration::from_secs(10);
/// A sleeper re-checks only this rarely: a wake-up must come from the other side.
const NO_RECHECK: Duration = Duration::from_secs(60);
/// Exit code of a child that got `Poisoned`, as expected.
const GOT_POISONED: i32 = 42;

fn pause_forever() -> ! {
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}

/// Producers in child processes, all attached before any of them leaves (else the first to
/// leave would close the queue to the others). Each pushes 10 items when told, then detaches.
fn last_producer_dropped_consumer_drains_then_gets_disconnected<K: Kind>(producers: u64) {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 64).unwrap();
    let mut rx = queue.consumer().unwrap();
    let attached = Pipe::new();
    let go: Vec<Pipe> = (0..producers).map(|_| Pipe::new()).collect();
    let children: Vec<_> = (0..producers)
        .map(|p| {
            let (attached, go) = (&attached, &go[p as usize]);
            let name = &name;
            support::fork_ok(move || {
                let queue = Queue::<u64, K>::open(name).map_err(|e| e.to_string())?;
                let mut tx = queue.producer().map_err(|e| e.to_string())?;
                attached.send(p);
                go.recv();
                for i in 0..10 {
                    tx.push(p * 100 + i).map_err(|e| format!("push: {e}"))?;
                }
                Ok(())
            })
        })
        .collect();
    for _ in 0..producers {
        attached.recv();
    }
    for (p, child) in children.into_iter().enumerate() {
        let p = p as u64;
        go[p as usize].send(1);
        child.wait_ok("producer");
        let stats = queue.stats();
        assert_eq!(stats.len, 10, "{stats:?}");
        for i in 0..10 {
            assert_eq!(rx.try_pop(), Ok(p * 100 + i), "every item of producer {p} before the end");
        }
        if p + 1 < producers {
            assert_eq!(rx.try_pop(), Err(PopError::Empty), "a producer is still attached");
            assert!(!queue.stats().producers_gone);
        }
    }
    assert_eq!(rx.try_pop(), Err(PopError::Disconnected));
    assert_eq!(rx.pop(), Err(PopError::Disconnected));
    assert_eq!(rx.pop_timeout(WATCHDOG), Err(PopError::Disconnected));
    assert_eq!(rx.read_chunk(4).unwrap_err(), PopError::Disconnected);
    assert_eq!(rx.pop_into(&mut [0; 4]), Err(PopError::Disconnected));
    assert!(queue.stats().producers_gone);
    assert_eq!(queue.producer().unwrap_err(), AttachError::Closed { role: "producer" });
}

/// A producer process whose code panics mid-stream drops its end while unwinding: the consumer
/// gets `Poisoned`, not the `Disconnected` of a stream that ended, and a producer's panic
/// likewise shows to the other side as a broken queue, not a closed one.
fn end_dropped_by_a_panic_poisons_the_queue<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 64).unwrap();
    let mut rx = queue.consumer().unwrap();
    let producer = support::fork(|| {
        let queue = Queue::<u64, K>::open(&name).unwrap();
        let mut tx = queue.producer().unwrap();
        for i in 0..3 {
            tx.push(i).unwrap();
        }
        panic!("the producer gives up after 3 items (expected by the test)");
    });
    assert_eq!(producer.wait(), Status::Exited(support::PANICKED));
    assert_eq!(rx.pop_timeout(WATCHDOG), Err(PopError::Poisoned));
    let stats = queue.stats();
    assert!(stats.poisoned && stats.dead_peer.is_none(), "{stats:?}");
    // The mirror image: a consumer that panics leaves its producers a broken queue too.
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 64).unwrap();
    let mut tx = queue.producer().unwrap();
    let consumer = support::fork(|| {
        let queue = Queue::<u64, K>::open(&name).unwrap();
        let _rx = queue.consumer().unwrap();
        panic!("the consumer gives up at once (expected by the test)");
    });
    assert_eq!(consumer.wait(), Status::Exited(support::PANICKED));
    assert_eq!(tx.push_timeout(1, WATCHDOG), Err(PushError::Poisoned(1)));
}

fn last_producer_leaving_wakes_a_sleeping_consumer<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create_with(&name, QueueOptions::new(4).recheck(NO_RECHECK)).unwrap();
    let mut rx = queue.consumer().unwrap();
    let attached = Pipe::new();
    let producer = support::fork_ok(|| {
        let queue = Queue::<u64, K>::open(&name).map_err(|e| e.to_string())?;
        let tx = queue.producer().map_err(|e| e.to_string())?;
        attached.send(1);
        support::wait_until(|| queue.stats().consumer.futex_waits >= 1);
        drop(tx);
        Ok(())
    });
    attached.recv();
    assert_eq!(rx.pop_timeout(Duration::from_secs(30)), Err(PopError::Disconnected));
    // The waker counts its wake after making it: read the count once the waker is done.
    producer.wait_ok("producer");
    assert!(queue.stats().producer.futex_wakes >= 1, "the leaving producer woke the consumer");
}

/// Consumers in child processes; each pops one item when told, then detaches.
fn last_consumer_dropped_push_returns_disconnected_with_the_item<K: Kind>(consumers: u64) {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 64).unwrap();
    let mut tx = queue.producer().unwrap();
    let attached = Pipe::new();
    let go: Vec<Pipe> = (0..consumers).map(|_| Pipe::new()).collect();
    let children: Vec<_> = (0..consumers)
        .map(|c| {
            let (attached, go) = (&attached, &go[c as usize]);
            let name = &name;
            support::fork_ok(move || {
                let queue = Queue::<u64, K>::open(name).map_err(|e| e.to_string())?;
                let mut rx = queue.consumer().map_err(|e| e.to_string())?;
                attached.send(c);
                go.recv();
                match rx.pop_timeout(WATCHDOG) {
                    Ok(v) if v == c => Ok(()),
                    other => Err(format!("consumer {c} popped {other:?}")),
                }
            })
        })
        .collect();
    for _ in 0..consumers {
        attached.recv();
    }
    for (c, child) in children.into_iter().enumerate() {
        tx.push(c as u64).unwrap();
        go[c].send(1);
        child.wait_ok("consumer");
    }
    let stats = queue.stats();
    assert!(stats.consumers_gone && stats.len == 0, "{stats:?}");
    assert_eq!(tx.push(7), Err(PushError::Disconnected(7)));
    assert_eq!(tx.try_push(8), Err(PushError::Disconnected(8)));
    assert_eq!(tx.push_timeout(9, WATCHDOG), Err(PushError::Disconnected(9)));
    assert_eq!(tx.write_chunk(2).unwrap_err(), PushError::Disconnected(()));
    assert_eq!(tx.push_slice(&[1, 2, 3]), Err(PushError::Disconnected(0)));
    assert_eq!(queue.consumer().unwrap_err(), AttachError::Closed { role: "consumer" });
}

fn last_consumer_leaving_wakes_a_sleeping_producer<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create_with(&name, QueueOptions::new(1).recheck(NO_RECHECK)).unwrap();
    let mut tx = queue.producer().unwrap();
    tx.push(1).unwrap();
    let attached = Pipe::new();
    let consumer = support::fork_ok(|| {
        let queue = Queue::<u64, K>::open(&name).map_err(|e| e.to_string())?;
        let rx = queue.consumer().map_err(|e| e.to_string())?;
        attached.send(1);
        support::wait_until(|| queue.stats().producer.futex_waits >= 1);
        drop(rx);
        Ok(())
    });
    attached.recv();
    assert_eq!(tx.push_timeout(2, Duration::from_secs(30)), Err(PushError::Disconnected(2)));
    // The waker counts its wake after making it: read the count once the waker is done.
    consumer.wait_ok("consumer");
    assert!(queue.stats().consumer.futex_wakes >= 1, "the leaving consumer woke the producer");
}

/// A producer process is SIGKILLed while a consumer process sleeps on the empty queue.
fn producer_killed_while_consumer_sleeps_gives_peer_dead<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 8).unwrap();
    let attached = Pipe::new();
    let producer = support::fork(|| {
        let queue = Queue::<u64, K>::open(&name).unwrap();
        let _tx = queue.producer().unwrap();
        attached.send(1);
        pause_forever();
    });
    let dead = producer.pid() as u32;
    attached.recv();
    let consumer = support::fork_ok(|| {
        let queue = Queue::<u64, K>::open(&name).map_err(|e| e.to_string())?;
        let mut rx = queue.consumer().map_err(|e| e.to_string())?;
        match rx.pop_timeout(WATCHDOG) {
            Err(PopError::PeerDead { pid }) if pid == dead => {}
            other => return Err(format!("pop after the producer died: {other:?}, not PeerDead {{ pid: {dead} }}")),
        }
        // Poisoned for good.
        match rx.try_pop() {
            Err(PopError::PeerDead { pid }) if pid == dead => Ok(()),
            other => Err(format!("try_pop afterwards: {other:?}")),
        }
    });
    support::wait_until(|| queue.stats().consumer.futex_waits >= 1);
    producer.signal(libc::SIGKILL);
    assert_eq!(producer.wait(), Status::Signaled(libc::SIGKILL));
    consumer.wait_ok("consumer");
    let stats = queue.stats();
    assert!(stats.poisoned, "{stats:?}");
    assert_eq!(stats.dead_peer, Some(dead), "{stats:?}");
    assert_eq!(queue.producer().unwrap_err(), AttachError::Poisoned);
}

/// The mirror image: a consumer process is SIGKILLed while a producer sleeps on the full queue.
fn consumer_killed_while_producer_sleeps_gives_peer_dead<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 2).unwrap();
    let attached = Pipe::new();
    let consumer = support::fork(|| {
        let queue = Queue::<u64, K>::open(&name).unwrap();
        let _rx = queue.consumer().unwrap();
        attached.send(1);
        pause_forever();
    });
    let dead = consumer.pid() as u32;
    attached.recv();
    let producer = support::fork_ok(|| {
        let queue = Queue::<u64, K>::open(&name).map_err(|e| e.to_string())?;
        let mut tx = queue.producer().map_err(|e| e.to_string())?;
        tx.push(1).and_then(|()| tx.push(2)).map_err(|e| format!("filling: {e}"))?;
        match tx.push_timeout(3, WATCHDOG) {
            Err(PushError::PeerDead { pid, item: 3 }) if pid == dead => Ok(()),
            other => Err(format!("push after the consumer died: {other:?}, not PeerDead {{ pid: {dead}, item: 3 }}")),
        }
    });
    support::wait_until(|| queue.stats().producer.futex_waits >= 1);
    consumer.signal(libc::SIGKILL);
    assert_eq!(consumer.wait(), Status::Signaled(libc::SIGKILL));
    producer.wait_ok("producer");
    assert_eq!(queue.stats().dead_peer, Some(dead));
}

/// Polls that each wait less than the re-check period still find a dead peer: the time asleep
/// in calls that timed out adds up toward the check (an event loop's `pop_timeout(5 ms)` would
/// otherwise wait on a dead producer forever).
fn short_timeouts_still_find_a_dead_producer<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 8).unwrap();
    let mut rx = queue.consumer().unwrap();
    let dead = a_peer_killed_holding(&name, |queue: &Queue<u64, K>| queue.producer().unwrap());
    let outcome = poll_until_not_timeout(|| match rx.pop_timeout(SHORT_POLL) {
        Err(PopError::Timeout) => None,
        other => Some(other),
    });
    assert_eq!(outcome, Some(Err(PopError::PeerDead { pid: dead })));
}

/// The mirror image, for a producer polling a full queue whose consumer died.
fn short_timeouts_still_find_a_dead_consumer<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 2).unwrap();
    let mut tx = queue.producer().unwrap();
    tx.push(1).and_then(|()| tx.push(2)).unwrap();
    let dead = a_peer_killed_holding(&name, |queue: &Queue<u64, K>| queue.consumer().unwrap());
    let outcome = poll_until_not_timeout(|| match tx.push_timeout(3, SHORT_POLL) {
        Err(PushError::Timeout(_)) => None,
        other => Some(other),
    });
    assert_eq!(outcome, Some(Err(PushError::PeerDead { pid: dead, item: 3 })));
}

/// A poller that never waits (only `try_` calls) finds a dead peer by asking: the `try_`
/// calls themselves never look, `check_peers` does, poisons the queue, and says who died.
fn check_peers_finds_what_polling_does_not<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 2).unwrap();
    let mut rx = queue.consumer().unwrap();
    let mut tx = queue.producer().unwrap();
    tx.push(1).and_then(|()| tx.push(2)).unwrap();
    assert_eq!(tx.check_peers(), Ok(()), "every consumer lives");
    assert_eq!(rx.check_peers(), Ok(()), "every producer lives");
    let dead =
        a_peer_killed_holding(&name, |queue: &Queue<u64, K>| (queue.producer().unwrap(), queue.consumer().unwrap()));
    assert_eq!(tx.try_push(3), Err(PushError::Full(3)), "a try_ call does not look");
    assert_eq!(tx.check_peers(), Err(PushError::PeerDead { pid: dead, item: () }));
    assert_eq!(rx.check_peers(), Err(PopError::PeerDead { pid: dead }));
    assert_eq!(rx.try_pop(), Err(PopError::PeerDead { pid: dead }), "the queue is poisoned");
}

/// Forks a process that opens `name` and holds what `attach` makes of it (its ends), then
/// SIGKILLs and reaps it: a peer that died without detaching. Returns its pid.
fn a_peer_killed_holding<K: Kind, Held>(name: &str, attach: impl FnOnce(&Queue<u64, K>) -> Held) -> u32 {
    let attached = Pipe::new();
    let peer = support::fork(|| {
        let queue = Queue::<u64, K>::open(name).unwrap();
        let _held = attach(&queue);
        attached.send(1);
        pause_forever();
    });
    attached.recv();
    let pid = peer.pid() as u32;
    peer.signal(libc::SIGKILL);
    assert_eq!(peer.wait(), Status::Signaled(libc::SIGKILL));
    pid
}

/// A poll's timeout: far below the queue's default re-check period of 100 ms.
const SHORT_POLL: Duration = Duration::from_millis(5);

/// Calls `poll` until it gives something (`None` stands for a timeout), for at most a
/// watchdog's worth of polls; `None` if every poll timed out.
fn poll_until_not_timeout<R>(mut poll: impl FnMut() -> Option<R>) -> Option<R> {
    (0..WATCHDOG.as_millis() / SHORT_POLL.as_millis()).find_map(|_| poll())
}

/// A process that exits without dropping its end did not detach: it is a dead peer too.
fn producer_exiting_without_detaching_gives_peer_dead() {
    let name = support::shm_name();
    let queue = Queue::<u64, Spsc>::create(&name, 8).unwrap();
    let mut rx = queue.consumer().unwrap();
    let producer = support::fork_ok(|| {
        let queue = Queue::<u64, Spsc>::open(&name).map_err(|e| e.to_string())?;
        let mut tx = queue.producer().map_err(|e| e.to_string())?;
        tx.push(5).map_err(|e| e.to_string())?;
        std::mem::forget(tx);
        Ok(())
    });
    let dead = producer.pid() as u32;
    producer.wait_ok("producer");
    // The item published before the death is still delivered; then the death is found.
    assert_eq!(rx.pop_timeout(WATCHDOG), Ok(5));
    assert_eq!(rx.pop_timeout(WATCHDOG), Err(PopError::PeerDead { pid: dead }));
}

/// An MPSC/MPMC producer is killed between its claim (`write_chunk`) and its commit. Consumers
/// can never get past the hole; they must report the death, not hang.
fn producer_killed_between_claim_and_commit_gives_peer_dead<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 16).unwrap();
    let mut tx = queue.producer().unwrap();
    let mut rx = queue.consumer().unwrap();
    tx.push(0).unwrap();
    tx.push(1).unwrap();
    let claimed = Pipe::new();
    let victim = support::fork(|| {
        let queue = Queue::<u64, K>::open(&name).unwrap();
        let mut tx = queue.producer().unwrap();
        let mut chunk = tx.write_chunk(1).unwrap();
        chunk.as_mut_slice()[0] = 2;
        claimed.send(1);
        pause_forever(); // never commits
    });
    let dead = victim.pid() as u32;
    claimed.recv();
    // Behind the hole.
    tx.push(3).unwrap();
    tx.push(4).unwrap();
    assert_eq!(rx.try_pop(), Ok(0));
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.try_pop(), Err(PopError::Empty), "the claimed slot is not published");
    // While its owner lives, the hole is only a wait (the consumer re-checks every 100 ms).
    assert_eq!(rx.pop_timeout(Duration::from_millis(300)), Err(PopError::Timeout));
    victim.signal(libc::SIGKILL);
    assert_eq!(victim.wait(), Status::Signaled(libc::SIGKILL));
    assert_eq!(rx.pop_timeout(WATCHDOG), Err(PopError::PeerDead { pid: dead }));
    assert_eq!(tx.try_push(5), Err(PushError::PeerDead { pid: dead, item: 5 }));
}

/// A SIGSTOPped producer is alive: waiting on it times out, it is not declared dead, and once
/// continued it pushes and the consumer gets the item.
fn stopped_producer_is_not_declared_dead() {
    let name = support::shm_name();
    let options = QueueOptions::new(8).recheck(Duration::from_millis(20));
    let queue = Queue::<u64, Mpsc>::create_with(&name, options).unwrap();
    let mut rx = queue.consumer().unwrap();
    let (attached, go) = (Pipe::new(), Pipe::new());
    let producer = support::fork_ok(|| {
        let queue = Queue::<u64, Mpsc>::open(&name).map_err(|e| e.to_string())?;
        let mut tx = queue.producer().map_err(|e| e.to_string())?;
        attached.send(1);
        go.recv();
        tx.push(7).map_err(|e| e.to_string())
    });
    attached.recv();
    producer.signal(libc::SIGSTOP);
    producer.wait_stopped();
    // About 15 re-checks for dead peers happen during this wait.
    assert_eq!(rx.pop_timeout(Duration::from_millis(300)), Err(PopError::Timeout));
    let stats = queue.stats();
    assert!(!stats.poisoned && stats.dead_peer.is_none(), "a stopped producer is not dead: {stats:?}");
    producer.signal(libc::SIGCONT);
    go.send(1);
    assert_eq!(rx.pop_timeout(WATCHDOG), Ok(7));
    producer.wait_ok("producer");
    assert_eq!(rx.pop_timeout(WATCHDOG), Err(PopError::Disconnected));
}

/// Two consumer processes asleep on an empty MPMC queue and a producer process asleep on a
/// full second queue: poisoning both queues from here wakes all three with `Poisoned`.
fn poison_wakes_every_sleeper() {
    let (name1, name2) = (support::shm_name(), support::shm_name());
    let empty = Queue::<u64, Mpmc>::create_with(&name1, QueueOptions::new(4).recheck(NO_RECHECK)).unwrap();
    let full = Queue::<u64, Spsc>::create_with(&name2, QueueOptions::new(1).recheck(NO_RECHECK)).unwrap();
    let mut tx = empty.producer().unwrap();
    let exit_code = |what: &str, poisoned: bool, other: String| {
        if poisoned {
            GOT_POISONED
        } else {
            eprintln!("{what}: {other}, not Poisoned");
            1
        }
    };
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            support::fork(|| {
                let queue = Queue::<u64, Mpmc>::open(&name1).unwrap();
                let mut rx = queue.consumer().unwrap();
                let got = rx.pop();
                exit_code("consumer", got == Err(PopError::Poisoned), format!("{got:?}"))
            })
        })
        .collect();
    let producer = support::fork(|| {
        let queue = Queue::<u64, Spsc>::open(&name2).unwrap();
        let mut tx = queue.producer().unwrap();
        tx.push(1).unwrap();
        let got = tx.push(2);
        exit_code("producer", got == Err(PushError::Poisoned(2)), format!("{got:?}"))
    });
    // With a 60 s re-check interval each sleeper makes exactly one futex wait until woken.
    support::wait_until(|| empty.stats().consumer.futex_waits >= 2);
    support::wait_until(|| full.stats().producer.futex_waits >= 1);
    empty.poison();
    full.poison();
    for child in consumers {
        assert_eq!(child.wait(), Status::Exited(GOT_POISONED), "consumer");
    }
    assert_eq!(producer.wait(), Status::Exited(GOT_POISONED), "producer");
    assert!(empty.stats().producer.futex_wakes >= 1, "poison woke the consumers");
    assert!(full.stats().consumer.futex_wakes >= 1, "poison woke the producer");
    let stats = empty.stats();
    assert!(stats.poisoned && stats.dead_peer.is_none(), "{stats:?}");
    assert_eq!(tx.push(3), Err(PushError::Poisoned(3)));
    assert_eq!(empty.consumer().unwrap_err(), AttachError::Poisoned);
}

/// The child gets copies of the parent's ends through `fork` and drops them: they are not its
/// own (the endpoint table names the parent), so the queue stays open in both directions.
fn end_inherited_through_fork_does_not_close_the_queue<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 8).unwrap();
    let mut ends = Some((queue.producer().unwrap(), queue.consumer().unwrap()));
    let child = support::fork(|| {
        // The child's copies of the parent's producer and consumer.
        drop(ends.take());
        0
    });
    child.wait_ok("child");
    let (mut tx, mut rx) = ends.take().unwrap();
    let stats = queue.stats();
    assert_eq!((stats.producers, stats.consumers), (1, 1), "{stats:?}");
    assert!(!stats.producers_gone && !stats.consumers_gone, "{stats:?}");
    tx.push(1).unwrap();
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.try_pop(), Err(PopError::Empty), "not Disconnected");
    // Our own drop still closes it.
    drop(tx);
    assert_eq!(rx.try_pop(), Err(PopError::Disconnected));
}

/// A child cannot give away the parent's end through its inherited copy: `into_handover` there
/// hands over nothing, its token adopts nothing, and the parent's end still closes the queue.
fn end_inherited_through_fork_cannot_be_handed_over<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create(&name, 8).unwrap();
    let mut tx = Some(queue.producer().unwrap());
    let mut rx = queue.consumer().unwrap();
    let token = Pipe::new();
    let child = support::fork(|| {
        let handed = tx.take().unwrap().into_handover();
        token.send(u64::from(handed.slot) << 32 | u64::from(handed.role));
        0
    });
    let packed = token.recv();
    child.wait_ok("child");
    let token = Handover { slot: (packed >> 32) as u32, role: packed as u32 };
    assert_eq!(queue.adopt_producer(token).unwrap_err(), AttachError::NoPendingHandover { slot: token.slot });
    let mut tx = tx.take().unwrap();
    tx.push(1).unwrap();
    drop(tx);
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.try_pop(), Err(PopError::Disconnected), "our end was still ours to close");
}

/// The same for the queue itself: a child dropping its copy of the creator's `Queue` does not
/// remove the name (only the creating process's drop does).
fn queue_inherited_through_fork_does_not_unlink_the_name() {
    let name = support::shm_name();
    let mut queue = Some(Queue::<u64, Spsc>::create(&name, 8).unwrap());
    support::fork(|| {
        drop(queue.take()); // the child's copy
        0
    })
    .wait_ok("child");
    assert_eq!(shm_queue::list(&name).unwrap(), std::slice::from_ref(&name), "the name is still there");
    let mut rx = Queue::<u64, Spsc>::open(&name).expect("others can still open it by name").consumer().unwrap();
    let mut tx = queue.as_ref().unwrap().producer().unwrap();
    tx.push(1).unwrap();
    assert_eq!(rx.try_pop(), Ok(1));
    drop((tx, rx));
    // The creator's own drop removes it.
    drop(queue);
    assert!(shm_queue::list(&name).unwrap().is_empty());
}

/// `name => expression;`: a case function per line.
macro_rules! instantiate {
    ($($name:ident => $body:expr;)*) => {
        $(fn $name() { $body })*
    };
}

instantiate! {
    spsc_last_producer_dropped_consumer_drains_then_gets_disconnected =>
        last_producer_dropped_consumer_drains_then_gets_disconnected::<Spsc>(1);
    mpsc_last_producer_dropped_consumer_drains_then_gets_disconnected =>
        last_producer_dropped_consumer_drains_then_gets_disconnected::<Mpsc>(2);
    spmc_last_producer_dropped_consumer_drains_then_gets_disconnected =>
        last_producer_dropped_consumer_drains_then_gets_disconnected::<Spmc>(1);
    mpmc_last_producer_dropped_consumer_drains_then_gets_disconnected =>
        last_producer_dropped_consumer_drains_then_gets_disconnected::<Mpmc>(2);
    spsc_last_producer_leaving_wakes_a_sleeping_consumer =>
        last_producer_leaving_wakes_a_sleeping_consumer::<Spsc>();
    mpmc_last_producer_leaving_wakes_a_sleeping_consumer =>
        last_producer_leaving_wakes_a_sleeping_consumer::<Mpmc>();
    spsc_last_consumer_dropped_push_returns_disconnected_with_the_item =>
        last_consumer_dropped_push_returns_disconnected_with_the_item::<Spsc>(1);
    mpsc_last_consumer_dropped_push_returns_disconnected_with_the_item =>
        last_consumer_dropped_push_returns_disconnected_with_the_item::<Mpsc>(1);
    spmc_last_consumer_dropped_push_returns_disconnected_with_the_item =>
        last_consumer_dropped_push_returns_disconnected_with_the_item::<Spmc>(2);
    mpmc_last_consumer_dropped_push_returns_disconnected_with_the_item =>
        last_consumer_dropped_push_returns_disconnected_with_the_item::<Mpmc>(2);
    spsc_last_consumer_leaving_wakes_a_sleeping_producer =>
        last_consumer_leaving_wakes_a_sleeping_producer::<Spsc>();
    mpmc_last_consumer_leaving_wakes_a_sleeping_producer =>
        last_consumer_leaving_wakes_a_sleeping_producer::<Mpmc>();
    spsc_producer_killed_while_consumer_sleeps_gives_peer_dead =>
        producer_killed_while_consumer_sleeps_gives_peer_dead::<Spsc>();
    mpsc_producer_killed_while_consumer_sleeps_gives_peer_dead =>
        producer_killed_while_consumer_sleeps_gives_peer_dead::<Mpsc>();
    spmc_producer_killed_while_consumer_sleeps_gives_peer_dead =>
        producer_killed_while_consumer_sleeps_gives_peer_dead::<Spmc>();
    mpmc_producer_killed_while_consumer_sleeps_gives_peer_dead =>
        producer_killed_while_consumer_sleeps_gives_peer_dead::<Mpmc>();
    spsc_consumer_killed_while_producer_sleeps_gives_peer_dead =>
        consumer_killed_while_producer_sleeps_gives_peer_dead::<Spsc>();
    mpmc_consumer_killed_while_producer_sleeps_gives_peer_dead =>
        consumer_killed_while_producer_sleeps_gives_peer_dead::<Mpmc>();
    spsc_end_dropped_by_a_panic_poisons_the_queue => end_dropped_by_a_panic_poisons_the_queue::<Spsc>();
    mpmc_end_dropped_by_a_panic_poisons_the_queue => end_dropped_by_a_panic_poisons_the_queue::<Mpmc>();
    mpmc_check_peers_finds_what_polling_does_not => check_peers_finds_what_polling_does_not::<Mpmc>();
    spsc_short_timeouts_still_find_a_dead_producer => short_timeouts_still_find_a_dead_producer::<Spsc>();
    mpmc_short_timeouts_still_find_a_dead_producer => short_timeouts_still_find_a_dead_producer::<Mpmc>();
    spsc_short_timeouts_still_find_a_dead_consumer => short_timeouts_still_find_a_dead_consumer::<Spsc>();
    mpmc_short_timeouts_still_find_a_dead_consumer => short_timeouts_still_find_a_dead_consumer::<Mpmc>();
    mpsc_producer_killed_between_claim_and_commit_gives_peer_dead =>
        producer_killed_between_claim_and_commit_gives_peer_dead::<Mpsc>();
    mpmc_producer_killed_between_claim_and_commit_gives_peer_dead =>
        producer_killed_between_claim_and_commit_gives_peer_dead::<Mpmc>();
    spsc_end_inherited_through_fork_does_not_close_the_queue =>
        end_inherited_through_fork_does_not_close_the_queue::<Spsc>();
    mpmc_end_inherited_through_fork_does_not_close_the_queue =>
        end_inherited_through_fork_does_not_close_the_queue::<Mpmc>();
    spsc_end_inherited_through_fork_cannot_be_handed_over =>
        end_inherited_through_fork_cannot_be_handed_over::<Spsc>();
    mpmc_end_inherited_through_fork_cannot_be_handed_over =>
        end_inherited_through_fork_cannot_be_handed_over::<Mpmc>();
}

/// The start time a parent knows from the clock around a fork (`ForkClock`) is the one
/// `/proc` shows for the child, which every liveness check compares with. 500 forks: nearly
/// all fall within one clock tick and are answered from the clock, which is what this checks
/// (units, rounding, the clock itself); the few that straddle a tick read `/proc`.
fn start_time_from_the_clock_around_a_fork_is_the_one_proc_shows() {
    for round in 0..500 {
        let clock = ForkClock::before_fork();
        let child = support::fork(|| 0);
        let pid = child.pid() as u32;
        let from_clock = clock.child_start_time(pid);
        // Until it is reaped, the child stays in /proc (as a zombie once it has exited).
        let from_proc = ProcessStatus::read(pid).map(|status| status.start_time);
        assert!(from_proc.is_some(), "round {round}: /proc has no child {pid}");
        assert_eq!(from_clock, from_proc, "round {round}, child {pid}");
        assert_eq!(child.wait(), Status::Exited(0));
    }
}

fn main() {
    support::main(cases![
        spsc_last_producer_dropped_consumer_drains_then_gets_disconnected,
        mpsc_last_producer_dropped_consumer_drains_then_gets_disconnected,
        spmc_last_producer_dropped_consumer_drains_then_gets_disconnected,
        mpmc_last_producer_dropped_consumer_drains_then_gets_disconnected,
        spsc_last_producer_leaving_wakes_a_sleeping_consumer,
        mpmc_last_producer_leaving_wakes_a_sleeping_consumer,
        spsc_last_consumer_dropped_push_returns_disconnected_with_the_item,
        mpsc_last_consumer_dropped_push_returns_disconnected_with_the_item,
        spmc_last_consumer_dropped_push_returns_disconnected_with_the_item,
        mpmc_last_consumer_dropped_push_returns_disconnected_with_the_item,
        spsc_last_consumer_leaving_wakes_a_sleeping_producer,
        mpmc_last_consumer_leaving_wakes_a_sleeping_producer,
        spsc_producer_killed_while_consumer_sleeps_gives_peer_dead,
        mpsc_producer_killed_while_consumer_sleeps_gives_peer_dead,
        spmc_producer_killed_while_consumer_sleeps_gives_peer_dead,
        mpmc_producer_killed_while_consumer_sleeps_gives_peer_dead,
        spsc_consumer_killed_while_producer_sleeps_gives_peer_dead,
        mpmc_consumer_killed_while_producer_sleeps_gives_peer_dead,
        spsc_end_dropped_by_a_panic_poisons_the_queue,
        mpmc_end_dropped_by_a_panic_poisons_the_queue,
        mpmc_check_peers_finds_what_polling_does_not,
        spsc_short_timeouts_still_find_a_dead_producer,
        mpmc_short_timeouts_still_find_a_dead_producer,
        spsc_short_timeouts_still_find_a_dead_consumer,
        mpmc_short_timeouts_still_find_a_dead_consumer,
        producer_exiting_without_detaching_gives_peer_dead,
        mpsc_producer_killed_between_claim_and_commit_gives_peer_dead,
        mpmc_producer_killed_between_claim_and_commit_gives_peer_dead,
        stopped_producer_is_not_declared_dead,
        poison_wakes_every_sleeper,
        spsc_end_inherited_through_fork_does_not_close_the_queue,
        mpmc_end_inherited_through_fork_does_not_close_the_queue,
        spsc_end_inherited_through_fork_cannot_be_handed_over,
        mpmc_end_inherited_through_fork_cannot_be_handed_over,
        queue_inherited_through_fork_does_not_unlink_the_name,
        start_time_from_the_clock_around_a_fork_is_the_one_proc_shows,
    ])
}
