//! A tiny test harness for tests that fork: each case runs in its own process, forked from a
//! single-threaded main (libtest runs tests on threads, and forking a threaded process copies
//! only one thread). After each case it checks that nothing was left behind: no process (the
//! harness is a child subreaper, so orphans come back to it) and no segment of the case.
//!
//! Usage: `[[test]] harness = false` and `fn main() { support::run(&[case!(name), ...]) }`.
//! Arguments: an optional name filter; `--list`; other libtest flags are ignored.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A named test case.
pub struct Case {
    pub name: &'static str,
    pub run: fn(),
}

/// `case!(f)` names a case after its function.
#[macro_export]
macro_rules! case {
    ($f:path) => {
        $crate::support::Case { name: stringify!($f), run: $f }
    };
}

/// How long a case may run before it is killed and failed.
const WATCHDOG: Duration = Duration::from_secs(120);

fn pid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Processes whose parent is `parent`, from /proc.
pub fn children_of(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<libc::pid_t>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let ppid = stat[close + 2..].split_ascii_whitespace().nth(1).and_then(|s| s.parse().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// Entries in /dev/shm whose names contain `needle`.
pub fn shm_entries_containing(needle: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .filter(|n| n.contains(needle))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the cases and exits with 0 if all passed.
pub fn run(cases: &[Case]) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    if args.iter().any(|a| a == "--list") {
        for case in cases {
            println!("{}: test", case.name);
        }
        std::process::exit(0);
    }
    // SAFETY: prctl with these arguments only changes our reaping role.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let selected: Vec<&Case> =
        cases.iter().filter(|c| filter.as_ref().is_none_or(|f| c.name.contains(f.as_str()))).collect();
    println!("\nrunning {} tests", selected.len());
    let (mut passed, mut failed) = (0, Vec::new());
    let started = Instant::now();
    for case in &selected {
        match run_one(case) {
            Ok(()) => {
                println!("test {} ... ok", case.name);
                passed += 1;
            }
            Err(why) => {
                println!("test {} ... FAILED ({why})", case.name);
                failed.push(case.name);
            }
        }
    }
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {verdict}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        failed.len(),
        cases.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    std::process::exit(i32::from(!failed.is_empty()))
}

fn run_one(case: &Case) -> Result<(), String> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: the harness main is single-threaded.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err("fork failed".into());
    }
    if child == 0 {
        let ok = std::panic::catch_unwind(case.run).is_ok();
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: leave without the harness's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + WATCHDOG;
    let mut status = 0;
    let outcome = loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        if rc == child {
            break if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                Ok(())
            } else if libc::WIFSIGNALED(status) {
                Err(format!("killed by signal {}", libc::WTERMSIG(status)))
            } else {
                Err(format!("exit code {}", libc::WEXITSTATUS(status)))
            };
        }
        if Instant::now() > deadline {
            // SAFETY: our child.
            unsafe { libc::kill(child, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // Orphans of the case come back to us: any still here is a leak.
    let leftovers = reap_leftovers();
    let segments = shm_entries_containing(&format!(".{child}."));
    let segments2 = shm_entries_containing(&format!("-{child}-"));
    outcome?;
    if !leftovers.is_empty() {
        return Err(format!("processes left behind: {leftovers:?}"));
    }
    if !segments.is_empty() || !segments2.is_empty() {
        for s in segments.iter().chain(&segments2) {
            let _ = std::fs::remove_file(format!("/dev/shm/{s}"));
        }
        return Err(format!("segments left behind: {segments:?} {segments2:?}"));
    }
    Ok(())
}

/// Kills and reaps every remaining child of the harness; returns those that were alive.
fn reap_leftovers() -> Vec<libc::pid_t> {
    let mut alive = Vec::new();
    for _ in 0..3 {
        loop {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer.
            if unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) } <= 0 {
                break;
            }
        }
        let now = children_of(pid());
        if now.is_empty() {
            break;
        }
        // Give processes that are dying (pdeathsig in flight) a moment before calling them leaks.
        std::thread::sleep(Duration::from_millis(100));
        for p in children_of(pid()) {
            if !alive.contains(&p) {
                alive.push(p);
            }
            // SAFETY: a process that should not exist any more.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
    alive
}
