//! `shmq`: look at and clean up shmpipe's shared-memory segments on this node.
//!
//! ```text
//! shmq ls                 every queue segment and run table in /dev/shm, with owners
//! shmq stat NAME          one queue's header, counters and endpoints
//! shmq clean [--dry-run] [--force]
//!                         remove segments whose processes are all dead (a queue still
//!                         holding items only with --force)
//! shmq bench              a ~10 s smoke run: cross-process throughput and round trip
//! ```
//!
//! Exit status: 0; 1 when what was asked failed (one line on stderr); 2 for a command line it
//! does not know.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use shm_queue::{EndpointState, GoneNamespaces, Inspector, OpenError, PidNamespace, Queue, QueueOptions, Spsc};

/// `println!` that ignores a closed stdout (`shmq ls | head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

const USAGE: &str = "usage: shmq ls | shmq stat NAME | shmq clean [--dry-run] [--force] | shmq bench";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match words.as_slice() {
        ["ls"] => ls(),
        ["stat", name] => stat(name),
        ["clean", flags @ ..] if flags.iter().all(|f| matches!(*f, "--dry-run" | "--force")) => {
            clean(flags.contains(&"--dry-run"), flags.contains(&"--force"))
        }
        ["bench"] => bench(),
        ["-h" | "--help" | "help"] => {
            outln!("{USAGE}");
            Ok(())
        }
        _ => {
            // A bad command line is 2, as for the sieve (and most tools); a failure 1.
            eprintln!("shmq: unknown command line {:?}; {USAGE}", words.join(" "));
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shmq: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Every entry of /dev/shm, with a leading `/`.
fn all_segments() -> Result<Vec<String>, String> {
    shm_queue::list("").map_err(|e| format!("cannot read {}: {e}", shm_queue::SHM_DIR))
}

fn alive(alive: bool) -> &'static str {
    if alive {
        "alive"
    } else {
        "dead"
    }
}

/// Whether each other PID namespace met is gone: a look through all of `/proc` each, so
/// once a namespace, not once a pid shown.
#[derive(Default)]
struct Namespaces(GoneNamespaces);

impl Namespaces {
    fn is_gone(&mut self, namespace: u64) -> bool {
        self.0.is_gone(namespace)
    }

    /// What can be said of a pid recorded in a segment of PID namespace `namespace`: for
    /// another namespace's, only whether that whole namespace is gone.
    fn liveness(&mut self, namespace: u64, alive_here: impl FnOnce() -> bool) -> &'static str {
        if !PidNamespace::is_foreign(namespace) {
            alive(alive_here())
        } else if self.is_gone(namespace) {
            "dead: its PID namespace is gone"
        } else {
            "other PID namespace"
        }
    }
}

fn ls() -> Result<(), String> {
    let mut namespaces = Namespaces::default();
    outln!("{:<48} {:<5} {:<24} {:>9} {:>9}  {:<14} endpoints", "name", "kind", "element", "capacity", "fill", "owner");
    for name in all_segments()? {
        // Anyone can name a file in /dev/shm: shown escaped, like everything read from there.
        let shown = name.escape_debug().to_string();
        // A segment half-made by a dead creator would cost a second each with `open`.
        match Inspector::open_now(&name) {
            Ok(queue) => {
                let header = queue.header();
                let stats = queue.stats();
                let endpoints: Vec<String> = queue
                    .endpoints()
                    .iter()
                    .map(|e| {
                        let state = match e.state {
                            EndpointState::Attached => "",
                            EndpointState::HandedOver => " handed-over",
                            EndpointState::Dead => " marked-dead",
                        };
                        format!(
                            "{}:{}({}{state})",
                            e.role.as_str(),
                            e.owner.pid,
                            namespaces.liveness(queue.header().pid_namespace, || e.alive)
                        )
                    })
                    .collect();
                outln!(
                    "{:<48} {:<5} {:<24} {:>9} {:>9}  {:<14} {}",
                    shown,
                    header.kind.as_str(),
                    format!("{}B {}", header.element.size, short(&header.element.name).escape_debug()),
                    header.capacity,
                    stats.len,
                    format!(
                        "{} ({})",
                        header.creator.pid,
                        namespaces.liveness(header.pid_namespace, || header.creator.is_alive())
                    ),
                    if endpoints.is_empty() { "-".to_owned() } else { endpoints.join(" ") }
                );
            }
            Err(OpenError::BadMagic(_)) | Err(OpenError::Truncated { .. }) => {
                if let Some(root) = runtime::root_of(&name) {
                    outln!(
                        "{:<48} {:<5} {:<24} {:>9} {:>9}  {} ({})",
                        shown,
                        "run",
                        "-",
                        "-",
                        "-",
                        root.process.pid,
                        namespaces.liveness(root.pid_namespace, || root.process.is_alive())
                    );
                }
            }
            Err(e) => outln!("{shown:<48} unreadable: {e}"),
        }
    }
    Ok(())
}

fn short(type_name: &str) -> &str {
    type_name.rsplit("::").next().unwrap_or(type_name)
}

fn stat(name: &str) -> Result<(), String> {
    let queue = Inspector::open(name).map_err(|e| format!("{name}: {e}"))?;
    let h = queue.header();
    let s = queue.stats();
    let mut namespaces = Namespaces::default();
    outln!("name        {name}");
    outln!("kind        {}", h.kind);
    // Read from the segment: shown escaped, so that no byte in it can steer the terminal.
    outln!("element     {}", h.element.to_string().escape_debug());
    outln!("capacity    {} (bound {})", h.capacity, h.bound);
    outln!("wake        {:?}, re-check every {} ms", h.wake, h.recheck_ms);
    outln!("creator     pid {} ({})", h.creator.pid, namespaces.liveness(h.pid_namespace, || h.creator.is_alive()));
    outln!("pushed      {}", s.pushed);
    outln!("popped      {}", s.popped);
    outln!("fill        {}", s.len);
    outln!("producers   {}{}", s.producers, if s.producers_gone { " (all gone)" } else { "" });
    outln!("consumers   {}{}", s.consumers, if s.consumers_gone { " (all gone)" } else { "" });
    outln!(
        "state       {}",
        match (s.poisoned, s.dead_peer) {
            (true, Some(pid)) => format!("poisoned: peer {pid} died"),
            (true, None) => "poisoned".to_owned(),
            _ => "ok".to_owned(),
        }
    );
    for (side, c) in [("producers", s.producer), ("consumers", s.consumer)] {
        outln!(
            "{side:<11} blocked {} times for {:.3} ms, {} futex waits, {} wakes sent",
            c.blocked,
            c.blocked_ns as f64 / 1e6,
            c.futex_waits,
            c.futex_wakes
        );
    }
    for e in queue.endpoints() {
        outln!(
            "endpoint    slot {} {} pid {} ({}) {:?}",
            e.slot,
            e.role.as_str(),
            e.owner.pid,
            namespaces.liveness(queue.header().pid_namespace, || e.alive),
            e.state
        );
    }
    Ok(())
}

fn clean(dry_run: bool, force: bool) -> Result<(), String> {
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut removed = 0;
    // Runs whose root died: everything under their prefix.
    let runs = if dry_run { runtime::find_stale() } else { runtime::remove_stale() }.map_err(|e| e.to_string())?;
    for name in &runs.removed {
        outln!("{verb} {} (its run's root is dead)", name.escape_debug());
        removed += 1;
    }
    if !runs.foreign.is_empty() {
        outln!(
            "kept {} segment(s) of runs in another PID namespace (their pids mean nothing here)",
            runs.foreign.len()
        );
    }
    // Queues made outside the runtime: stale when their creator and every endpoint are dead
    // (for another PID namespace's, when that namespace is gone: `Inspector::is_stale`).
    let mut namespaces = Namespaces::default();
    for name in all_segments()? {
        if runtime::root_of(&name).is_some() {
            continue; // a run's segment: decided above, by its root
        }
        let Ok(queue) = Inspector::open_now(&name) else { continue }; // not ours: never touched
        let foreign = queue.is_foreign();
        let stale = if foreign { namespaces.is_gone(queue.header().pid_namespace) } else { queue.is_stale() };
        if !stale {
            if foreign {
                outln!("kept {name}: made in another PID namespace (its pids mean nothing here)");
            }
            continue;
        }
        // Nobody is attached, but the items may be what a creator kept the name for.
        let queued = queue.stats().len;
        if queued > 0 && !force {
            outln!("kept {name}: {queued} item(s) still queued (--force removes it)");
            continue;
        }
        if !dry_run && shm_queue::unlink(&name).is_err() {
            continue; // another cleaner won
        }
        let why = if foreign { "its PID namespace is gone" } else { "creator and endpoints dead" };
        outln!("{verb} {name} ({why})");
        removed += 1;
    }
    outln!("{removed} segment(s) {verb}");
    Ok(())
}

/// A forked helper of `bench`: killed and reaped when dropped, so that no error path leaves
/// it running (it may be blocked on a queue nobody will ever serve).
struct Helper(libc::pid_t);

impl Helper {
    /// Forks; in the child runs `body` and exits with its code.
    fn fork(body: impl FnOnce() -> i32) -> Result<Self, String> {
        // SAFETY: shmq is single-threaded.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // A panic must not unwind into the parent's frames (their destructors kill and
            // reap the parent's other helpers).
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: leave the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        Ok(Self(pid))
    }

    /// Whether it has ended (without reaping it).
    fn ended(&self) -> bool {
        // SAFETY: a zeroed siginfo_t is a valid out-buffer; WNOWAIT leaves it for the drop.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info is a valid out-pointer.
        let rc = unsafe {
            libc::waitid(libc::P_PID, self.0 as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
        };
        // SAFETY: waitid filled si_pid (0 while the child runs).
        rc != 0 || unsafe { info.si_pid() } != 0
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // SAFETY: our own child, not yet reaped.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

fn bench() -> Result<(), String> {
    let name = format!("/shmq-bench-{}", std::process::id());
    let items: u64 = 200_000_000;
    let queue = Queue::<u64, Spsc>::create_with(&name, QueueOptions::new(65536)).map_err(|e| e.to_string())?;
    let producer = Helper::fork(|| {
        Queue::<u64, Spsc>::open(&name)
            .ok()
            .and_then(|q| q.producer().ok())
            .map(|mut tx| {
                let mut next = 0u64;
                while next < items {
                    let Ok(mut chunk) = tx.write_chunk((items - next).min(4096) as usize) else { return 1 };
                    for slot in chunk.as_mut_slice() {
                        *slot = next;
                        next += 1;
                    }
                    chunk.commit();
                }
                0
            })
            .unwrap_or(1)
    })?;
    let mut rx = queue.consumer().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (mut seen, mut sum) = (0u64, 0u64);
    loop {
        match rx.read_chunk_timeout(4096, Duration::from_secs(1)) {
            Ok(chunk) => {
                seen += chunk.len() as u64;
                sum = chunk.iter().fold(sum, |s, &v| s.wrapping_add(v));
            }
            // A producer that never attached cannot close the queue: look at it instead.
            Err(shm_queue::PopError::Timeout) if producer.ended() && seen == 0 => {
                return Err("the producer process could not attach".into());
            }
            Err(shm_queue::PopError::Timeout) => {}
            Err(_) => break,
        }
    }
    let elapsed = started.elapsed();
    drop(producer);
    if seen != items || sum != items * (items - 1) / 2 {
        return Err(format!("throughput run lost items: {seen} of {items}"));
    }
    outln!("SPSC chunked, 2 processes: {:.0} M u64/s", items as f64 / elapsed.as_secs_f64() / 1e6);
    drop(rx);
    drop(queue);
    round_trip()
}

fn round_trip() -> Result<(), String> {
    let (ping, pong) = (format!("/shmq-ping-{}", std::process::id()), format!("/shmq-pong-{}", std::process::id()));
    let rounds = 1_000_000u64;
    let a = Queue::<u64, Spsc>::create(&ping, 16).map_err(|e| e.to_string())?;
    let b = Queue::<u64, Spsc>::create(&pong, 16).map_err(|e| e.to_string())?;
    let echo = Helper::fork(|| {
        let ok = (|| -> Option<()> {
            let mut rx = Queue::<u64, Spsc>::open(&ping).ok()?.consumer().ok()?;
            let mut tx = Queue::<u64, Spsc>::open(&pong).ok()?.producer().ok()?;
            while let Ok(v) = rx.pop() {
                tx.push(v).ok()?;
            }
            Some(())
        })();
        i32::from(ok.is_none())
    })?;
    let mut tx = a.producer().map_err(|e| e.to_string())?;
    let mut rx = b.consumer().map_err(|e| e.to_string())?;
    let started = Instant::now();
    for i in 0..rounds {
        tx.push(i).map_err(|e| e.to_string())?;
        if rx.pop_timeout(Duration::from_secs(10)).map_err(|e| e.to_string())? != i {
            return Err("round trip returned the wrong item".into());
        }
    }
    let elapsed = started.elapsed();
    drop(tx);
    drop(echo);
    outln!("SPSC round trip, 2 processes: {:.0} ns", elapsed.as_nanos() as f64 / rounds as f64);
    Ok(())
}
