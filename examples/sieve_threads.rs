//! One run of the sieve's threads-and-crossbeam peer (the one `benches/sieve.rs` measures),
//! for the runs too long for criterion, such as the original's depth 10 at N = 10⁶:
//!
//! ```text
//! cargo run --release --example sieve_threads -- 1000000 100 10 item
//! cargo run --release --example sieve_threads -- 1000000 100 1024 chunk modulo
//! ```
//!
//! Arguments: N, S, the channel capacity, `item` (one number per send) or `chunk` (up to 1,024
//! per send), and optionally `inverse` (the default: the pipeline's own divisibility test) or
//! `modulo` (the original's `%`, as in the issue's measurement). Prints how many primes it
//! found and the wall time; compare with `sieve --max-number N --stage-size S --queue-depth D
//! --quiet` run beside it.

#[path = "../benches/sieve_threads/mod.rs"]
mod sieve_threads;

use std::process::ExitCode;
use std::time::Instant;

use sieve_threads::{Divisibility, Transfer};

const USAGE: &str = "usage: sieve_threads MAX_NUMBER STAGE_SIZE DEPTH item|chunk [inverse|modulo]";

/// What a run was asked for.
struct Run {
    max_number: u64,
    stage_size: usize,
    depth: usize,
    transfer: Transfer,
    divisibility: Divisibility,
}

fn parse(args: &[String]) -> Result<Run, String> {
    let (max_number, stage_size, depth, transfer, divisibility) = match args {
        [n, s, d, t] => (n, s, d, t, "inverse"),
        [n, s, d, t, test] => (n, s, d, t, test.as_str()),
        _ => return Err(USAGE.into()),
    };
    let number = |what: &str, text: &str| -> Result<u64, String> {
        match text.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{what} must be a positive integer, not {text:?} ({USAGE})")),
        }
    };
    let max_number = number("MAX_NUMBER", max_number)?;
    if max_number < 2 {
        return Err(format!("MAX_NUMBER must be at least 2 ({USAGE})"));
    }
    let stage_size = usize::try_from(number("STAGE_SIZE", stage_size)?).map_err(|e| e.to_string())?;
    let depth = usize::try_from(number("DEPTH", depth)?).map_err(|e| e.to_string())?;
    let transfer = match transfer.as_str() {
        "item" => Transfer::PerItem,
        "chunk" => Transfer::Chunked,
        other => return Err(format!("the transfer is item or chunk, not {other:?} ({USAGE})")),
    };
    let divisibility = match divisibility {
        "inverse" => Divisibility::Inverse,
        "modulo" => Divisibility::Modulo,
        other => return Err(format!("the divisibility test is inverse or modulo, not {other:?} ({USAGE})")),
    };
    Ok(Run { max_number, stage_size, depth, transfer, divisibility })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("sieve_threads: {message}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let count = sieve_threads::run_threads(run.max_number, run.stage_size, run.depth, run.transfer, run.divisibility);
    println!("count={count} wall={:.3}s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
