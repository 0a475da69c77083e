//! Without a readable `/proc` (a sandbox that hides it), nobody's liveness can be checked: a
//! peer must then count as alive, not dead. Before, every re-check found every peer "dead" and
//! poisoned healthy queues. The check runs in a private mount namespace with `/proc` unmounted
//! (needs root and `unshare`; both are there in CI, and the test says so plainly when not).
//!
//! `harness = false`: the same binary is the child that runs inside the namespace.

use std::process::Command;
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
    if std::env::args().any(|a| a == "--in-namespace") {
        match child() {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    let name = "without_proc_a_peer_is_alive_not_dead";
    println!("\nrunning 1 test");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let me = std::env::current_exe().expect("the test binary's path");
    let out = root.then(|| {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("umount -l /proc && exec \"$0\" --in-namespace")
            .arg(&me)
            .output()
    });
    let (verdict, failed) = match out {
        Some(Ok(out)) if out.status.success() => ("ok", 0),
        Some(Ok(out)) => {
            println!("{}", String::from_utf8_lossy(&out.stderr));
            ("FAILED", 1)
        }
        Some(Err(e)) => {
            println!("cannot run unshare: {e}");
            ("FAILED", 1)
        }
        None => ("ignored (needs root to hide /proc)", 0),
    };
    println!("test {name} ... {verdict}");
    let passed = usize::from(verdict == "ok");
    let ignored = usize::from(verdict.starts_with("ignored"));
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; {ignored} ignored; 0 measured; 0 filtered out\n",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    std::process::exit(failed);
}
