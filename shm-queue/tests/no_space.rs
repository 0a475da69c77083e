//! A full `/dev/shm` is an error at creation, never a SIGBUS later: the test runs its check in
//! a private mount namespace whose `/dev/shm` is a 64 KiB tmpfs (needs root and `unshare`; both
//! are there in CI, and the test says so plainly when they are not).
//!
//! `harness = false`: the same binary is the child that runs inside the namespace.

use std::process::Command;

use shm_queue::{CreateError, Queue, Spsc};

fn child() -> Result<(), String> {
    let small = Queue::<u64, Spsc>::create("/shmq-no-space-small", 16).map_err(|e| format!("small queue: {e}"))?;
    match Queue::<u64, Spsc>::create("/shmq-no-space-big", 1 << 20) {
        Err(CreateError::NoSpace { len, .. }) if len > 64 * 1024 => {}
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
    if std::env::args().any(|a| a == "--in-namespace") {
        match child() {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    let name = "a_full_dev_shm_is_no_space_at_create_and_leaves_nothing";
    println!("\nrunning 1 test");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let me = std::env::current_exe().expect("the test binary's path");
    let out = root.then(|| {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o size=64k tmpfs /dev/shm && exec \"$0\" --in-namespace")
            .arg(&me)
            .output()
    });
    let (verdict, failed) = match out {
        Some(Ok(out)) if out.status.success() => ("ok", 0),
        Some(Ok(out)) => {
            println!("{}", String::from_utf8_lossy(&out.stderr));
            ("FAILED", 1)
        }
        // Without root or unshare there is no private tmpfs to fill: say so, do not pretend.
        Some(Err(e)) => {
            println!("cannot run unshare: {e}");
            ("FAILED", 1)
        }
        None => ("ignored (needs root for a private tmpfs)", 0),
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
