//! The sieve benchmarks' threads-and-crossbeam peer finds the primes the reference finds, with
//! either divisibility test and either transfer: a benchmark of a wrong peer would compare
//! nothing. (Threads only, no fork: the default harness is fine here.)

#[path = "../benches/sieve_threads/mod.rs"]
mod sieve_threads;

use sieve::reference::count_primes_up_to;
use sieve_threads::{run_threads, Divisibility, Transfer};

#[test]
fn both_tests_and_both_transfers_find_every_prime() {
    for (max_number, stage_size, depth) in [(2, 1, 1), (3, 1, 1), (100, 3, 10), (10_000, 7, 1), (30_000, 50, 64)] {
        let expected = count_primes_up_to(max_number);
        for divisibility in [Divisibility::Inverse, Divisibility::Modulo] {
            for transfer in [Transfer::PerItem, Transfer::Chunked] {
                let found = run_threads(max_number, stage_size, depth, transfer, divisibility);
                assert_eq!(
                    found, expected,
                    "N = {max_number}, S = {stage_size}, depth {depth}, {transfer:?}, {divisibility:?}"
                );
            }
        }
    }
}
