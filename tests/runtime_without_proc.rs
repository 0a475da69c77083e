//! Without a readable `/proc` (a sandbox that hides it), liveness by pid cannot be checked and
//! every process counts as alive. The root must still notice that its fork server died: it
//! asks the kernel about its own child instead. Before, a join waited forever. The check runs
//! in a private mount namespace with `/proc` unmounted (needs root and `unshare`; said plainly
//! when missing).
//!
//! `harness = false`: the same binary is the child that runs inside the namespace.

#[path = "../shm-queue/tests/support/mod.rs"]
mod support;

use runtime::{QueueName, RunHandle, Runtime, RuntimeError, StageResult};
use shm_queue::{Queue, QueueOptions, Spsc};

/// Waits for a number that never comes.
fn sleeper(_run: &RunHandle, input: QueueName) -> StageResult {
    Ok(Queue::<u64, Spsc>::open(input.as_str())?.consumer()?.pop()?)
}

fn child() -> Result<(), String> {
    if std::path::Path::new("/proc/self/stat").exists() {
        return Err("/proc is still there".into());
    }
    // A hang is the failure this looks for: end it, as a failure, rather than wait forever.
    // SAFETY: alarm only schedules a signal whose default action ends this process.
    unsafe { libc::alarm(30) };
    let mut rt = Runtime::builder();
    let sleeper = rt.register("sleeper", sleeper);
    let run = rt.start().map_err(|e| format!("start: {e}"))?;
    let (queue, name) = run.create_queue::<u64, Spsc>(QueueOptions::new(8)).map_err(|e| e.to_string())?;
    let _tx = queue.producer().map_err(|e| e.to_string())?;
    let stage = run.spawn(sleeper, &name).map_err(|e| e.to_string())?;
    let prefix = run.prefix().to_owned();
    // SAFETY: the run's own fork server, our child.
    unsafe { libc::kill(run.server_pid() as i32, libc::SIGKILL) };
    let joined = stage.join();
    drop((_tx, queue));
    drop(run);
    match joined {
        Err(RuntimeError::ServerGone) => {}
        other => return Err(format!("expected ServerGone, got {other:?}")),
    }
    let left = shm_queue::list(&prefix).map_err(|e| e.to_string())?;
    if !left.is_empty() {
        return Err(format!("segments left: {left:?}"));
    }
    Ok(())
}

fn main() {
    support::main_in_private_mount_namespace(
        "without_proc_the_root_still_sees_its_server_die",
        "umount -l /proc",
        child,
    )
}
