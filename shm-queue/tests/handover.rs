//! Handing an end over to another process: the queue never looks closed (or dead) in between.
//!
//! A producer end, attached and handed over by the case process (which then consumes), goes
//! through three generations of forked processes: each adopts it with
//! `Queue::open(name)?.adopt_producer(token)`, pushes its range, hands it over again and forks
//! the next generation with the token in its memory. The consumer (the case process) must get
//! every item exactly once, in order, and see `Disconnected` only after the last generation
//! dropped the end. Its queue re-checks for dead peers every 20 ms, and each generation dawdles
//! before adopting, so the consumer sleeps across every gap.

#[macro_use]
mod support;

use std::time::Duration;

use shm_queue::{Handover, Kind, Mpmc, Mpsc, PopError, Queue, QueueOptions, Spsc};
use support::Pipe;

const PER_GENERATION: u64 = 1000;
const GENERATIONS: u64 = 3;
/// How long a new owner waits before adopting: the consumer sleeps through the gap.
const GAP: Duration = Duration::from_millis(50);
const WATCHDOG: Duration = Duration::from_secs(10);

fn options() -> QueueOptions {
    QueueOptions::new(8).recheck(Duration::from_millis(20))
}

fn push_range<K: Kind>(tx: &mut shm_queue::Producer<u64, K>, generation: u64) -> Result<(), String> {
    for i in generation * PER_GENERATION..(generation + 1) * PER_GENERATION {
        tx.push(i).map_err(|e| format!("generation {generation}: push {i}: {e}"))?;
    }
    Ok(())
}

/// Generation `generation` (1..=GENERATIONS): adopt, push range `generation - 1`, hand over to
/// a forked child and wait for it; the last generation drops the end instead.
fn generation<K: Kind>(name: &str, generation: u64, token: Handover) -> Result<(), String> {
    std::thread::sleep(GAP);
    let queue = Queue::<u64, K>::open(name).map_err(|e| format!("generation {generation}: open: {e}"))?;
    let mut tx = queue.adopt_producer(token).map_err(|e| format!("generation {generation}: adopt: {e}"))?;
    let stats = queue.stats();
    if stats.producers != 1 || stats.producers_gone {
        return Err(format!("generation {generation}: after adoption {stats:?}"));
    }
    push_range(&mut tx, generation - 1)?;
    if generation == GENERATIONS {
        drop(tx); // the last owner's drop closes the queue
        return Ok(());
    }
    let token = tx.into_handover();
    let child = support::fork_ok(|| self::generation::<K>(name, generation + 1, token));
    match child.wait() {
        support::Status::Exited(0) => Ok(()),
        other => Err(format!("generation {} ended {other:?}", generation + 1)),
    }
}

/// Pops until `Disconnected`, checking that the items are exactly `0..count` in order.
fn consume_in_order<K: Kind>(rx: &mut shm_queue::Consumer<u64, K>, from: u64, count: u64) {
    let mut next = from;
    loop {
        match rx.pop_timeout(WATCHDOG) {
            Ok(v) => {
                assert_eq!(v, next, "items in order, exactly once");
                next += 1;
            }
            Err(PopError::Disconnected) => break,
            Err(e) => panic!("after {next} items: {e:?}"),
        }
    }
    assert_eq!(next, count, "Disconnected only after every generation's items");
}

fn producer_handed_over_through_three_generations_of_processes<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create_with(&name, options()).unwrap();
    let mut rx = queue.consumer().unwrap();
    let token = queue.producer().unwrap().into_handover();
    let first = support::fork_ok(|| generation::<K>(&name, 1, token));
    consume_in_order(&mut rx, 0, GENERATIONS * PER_GENERATION);
    first.wait_ok("generation 1");
    let stats = queue.stats();
    assert!(stats.producers_gone && !stats.poisoned, "{stats:?}");
}

/// The giver hands over, sends the token through a pipe and exits; only then is the next
/// owner forked. The handed-over end's last owner is dead meanwhile, but a handed-over end is
/// not a dead peer: the consumer keeps waiting.
fn handover_survives_the_giver_exiting_before_adoption() {
    let name = support::shm_name();
    let queue = Queue::<u64, Mpsc>::create_with(&name, options()).unwrap();
    let mut rx = queue.consumer().unwrap();
    let tokens = Pipe::new();
    let giver = support::fork_ok(|| {
        let queue = Queue::<u64, Mpsc>::open(&name).map_err(|e| e.to_string())?;
        let mut tx = queue.producer().map_err(|e| e.to_string())?;
        push_range(&mut tx, 0)?;
        let token = tx.into_handover();
        tokens.send(bytemuck::cast(token));
        Ok(())
    });
    for want in 0..PER_GENERATION {
        assert_eq!(rx.pop_timeout(WATCHDOG), Ok(want));
    }
    let token: Handover = bytemuck::cast(tokens.recv());
    giver.wait_ok("giver");
    // The giver is gone, the end is not adopted yet: re-checks (every 20 ms) find no dead peer.
    assert_eq!(rx.pop_timeout(Duration::from_millis(200)), Err(PopError::Timeout));
    let stats = queue.stats();
    assert!(stats.producers == 1 && !stats.producers_gone && !stats.poisoned, "{stats:?}");
    let taker = support::fork_ok(|| {
        let queue = Queue::<u64, Mpsc>::open(&name).map_err(|e| e.to_string())?;
        let mut tx = queue.adopt_producer(token).map_err(|e| format!("adopt: {e}"))?;
        push_range(&mut tx, 1)
    });
    consume_in_order(&mut rx, PER_GENERATION, 2 * PER_GENERATION);
    taker.wait_ok("taker");
}

/// A consumer end handed over to a forked process picks up where the giver stopped.
fn consumer_handed_over_to_a_forked_process<K: Kind>() {
    let name = support::shm_name();
    let queue = Queue::<u64, K>::create_with(&name, QueueOptions::new(1024)).unwrap();
    let mut tx = queue.producer().unwrap();
    let mut rx = queue.consumer().unwrap();
    for i in 0..100 {
        tx.push(i).unwrap();
    }
    for want in 0..40 {
        assert_eq!(rx.try_pop(), Ok(want));
    }
    let token = rx.into_handover();
    let taker = support::fork_ok(|| {
        let queue = Queue::<u64, K>::open(&name).map_err(|e| e.to_string())?;
        let mut rx = queue.adopt_consumer(token).map_err(|e| format!("adopt: {e}"))?;
        for want in 40..200 {
            match rx.pop_timeout(WATCHDOG) {
                Ok(v) if v == want => {}
                other => return Err(format!("pop {want}: {other:?}")),
            }
        }
        match rx.pop_timeout(WATCHDOG) {
            Err(PopError::Disconnected) => Ok(()),
            other => Err(format!("after the last item: {other:?}")),
        }
    });
    // Room is made by the new owner only.
    for i in 100..200 {
        tx.push_timeout(i, WATCHDOG).unwrap();
    }
    drop(tx);
    taker.wait_ok("taker");
    assert!(queue.stats().consumers_gone, "the adopted consumer detached on its drop");
}

fn spsc_producer_handed_over_through_three_generations_of_processes() {
    producer_handed_over_through_three_generations_of_processes::<Spsc>();
}

fn mpsc_producer_handed_over_through_three_generations_of_processes() {
    producer_handed_over_through_three_generations_of_processes::<Mpsc>();
}

fn mpmc_producer_handed_over_through_three_generations_of_processes() {
    producer_handed_over_through_three_generations_of_processes::<Mpmc>();
}

fn spsc_consumer_handed_over_to_a_forked_process() {
    consumer_handed_over_to_a_forked_process::<Spsc>();
}

fn mpmc_consumer_handed_over_to_a_forked_process() {
    consumer_handed_over_to_a_forked_process::<Mpmc>();
}

fn main() {
    support::main(cases![
        spsc_producer_handed_over_through_three_generations_of_processes,
        mpsc_producer_handed_over_through_three_generations_of_processes,
        mpmc_producer_handed_over_through_three_generations_of_processes,
        handover_survives_the_giver_exiting_before_adoption,
        spsc_consumer_handed_over_to_a_forked_process,
        mpmc_consumer_handed_over_to_a_forked_process,
    ])
}
