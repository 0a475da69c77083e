//! Without a readable `/proc` (a sandbox that hides it), nobody's liveness can be checked: a
//! peer must then count as alive, not dead. Before, every re-check found every peer "dead" and
//! poisoned healthy queues. The check runs in a private mount namespace with `/proc` unmounted
//! (needs root and `unshare`; both are there in CI, and the test says so plainly when not).
//!
//! `harness = false`: the same binary is the child that runs inside the namespace.

mod support;

use std::time::Duration;

use shm_queue::{PopError, Queue, QueueOptions, Spsc};

fn child() -> Result<(), String> {
    if std::path::Path::new("/proc/self/stat").exists() {
        return Err("/proc is still there".into());
    }
    let name = format!("/shmq-no-proc-{}", std::process::id());
    let queue = Queue::<u64, Spsc>::create_with(&name, QueueOptions::new(8).recheck(Duration::from_millis(5)))
        .map_err(|e| format!("create: {e}"))?;
    let _tx = queue.producer().map_err(|e| e.to_string())?;
    let mut rx = queue.consumer().map_err(|e| e.to_string())?;
    // ~40 re-checks for dead producers; ours is alive (it is this process).
    match rx.pop_timeout(Duration::from_millis(200)) {
        Err(PopError::Timeout) => Ok(()),
        other => Err(format!("expected a timeout, got {other:?}")),
    }
}

fn main() {
    support::main_in_private_mount_namespace("without_proc_a_peer_is_alive_not_dead", "umount -l /proc", child)
}
