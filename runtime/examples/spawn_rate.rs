//! Spawn rate: the root asks for N stages that return at once, then joins them all.
//!
//! ```text
//! cargo run --release -p shmpipe-runtime --example spawn_rate -- 10000
//! ```
//! Prints the time per stage to send the requests, and per stage until all have been joined
//! (the fork server forks them one after the other, so this is its spawn throughput).

use std::time::Instant;

use runtime::{RunHandle, Runtime, RuntimeError, StageResult};

fn nothing(_run: &RunHandle, _index: u64) -> StageResult {
    Ok(0)
}

fn main() -> Result<(), RuntimeError> {
    let stages: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut builder = Runtime::builder();
    let nothing = builder.register("nothing", nothing);
    let run = builder.start()?;
    let started = Instant::now();
    let handles = (0..stages).map(|i| run.spawn(nothing, &i)).collect::<Result<Vec<_>, _>>()?;
    let requested = started.elapsed();
    for handle in handles {
        handle.join()?;
    }
    let joined = started.elapsed();
    run.finish()?;
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / stages as f64;
    println!(
        "{stages} stages: requests sent after {:.1} µs/stage, all joined after {:.1} µs/stage ({:.2} s)",
        per(requested),
        per(joined),
        joined.as_secs_f64()
    );
    Ok(())
}
