//! A full `/dev/shm` is an error at creation, never a SIGBUS later: the test runs its check in
//! a private mount namespace whose `/dev/shm` is a 64 KiB tmpfs (needs root and `unshare`; both
//! are there in CI, and the test says so plainly when they are not).
//!
//! `harness = false`: the same binary is the child that runs inside the namespace.

mod support;

use shm_queue::{CreateError, Queue, QueueOptions, Spsc};

fn child() -> Result<(), String> {
    let segment_len =
        |capacity| Queue::<u64, Spsc>::segment_len(&QueueOptions::new(capacity)).map_err(|e| e.to_string());
    let small = Queue::<u64, Spsc>::create("/shmq-no-space-small", 16).map_err(|e| format!("small queue: {e}"))?;
    let file_len =
        std::fs::metadata(format!("{}/shmq-no-space-small", shm_queue::SHM_DIR)).map_err(|e| e.to_string())?.len();
    if file_len != segment_len(16)? as u64 {
        return Err(format!("segment_len says {}, the segment has {file_len} bytes", segment_len(16)?));
    }
    match Queue::<u64, Spsc>::create("/shmq-no-space-big", 1 << 20) {
        Err(CreateError::NoSpace { len, .. }) if len > 64 * 1024 => {
            if len != segment_len(1 << 20)? {
                return Err(format!("NoSpace says {len} bytes, segment_len {}", segment_len(1 << 20)?));
            }
        }
        Err(e) => return Err(format!("big queue: expected NoSpace, got {e}")),
        Ok(_) => return Err("a queue larger than the tmpfs was created".into()),
    }
    let names = shm_queue::list("").map_err(|e| e.to_string())?;
    if names != ["/shmq-no-space-small"] {
        return Err(format!("a failed create left something behind: {names:?}"));
    }
    // The queue that fits works: its pages were reserved at creation.
    let mut tx = small.producer().map_err(|e| e.to_string())?;
    let mut rx = small.consumer().map_err(|e| e.to_string())?;
    for i in 0..16 {
        tx.try_push(i).map_err(|e| e.to_string())?;
    }
    let sum: u64 = (0..16).map(|_| rx.try_pop().unwrap_or(0)).sum();
    if sum != 120 {
        return Err(format!("items lost: sum {sum}"));
    }
    Ok(())
}

fn main() {
    support::main_in_private_mount_namespace(
        "a_full_dev_shm_is_no_space_at_create_and_leaves_nothing",
        "mount -t tmpfs -o size=64k tmpfs /dev/shm",
        child,
    )
}
