//! A tiny test harness for test binaries that fork (`harness = false`).
//!
//! libtest runs tests on threads, and forking a multi-threaded process is unsound (only the
//! forking thread survives in the child, with whatever locks the others held). So these
//! binaries run each case in its own child forked from a single-threaded `main`:
//!
//! - the child gets its own process group (so a watchdog can kill the case with everything it
//!   forked) and, unless `--nocapture`, its stdout/stderr go to a memfd shown on failure;
//! - the parent waits with a watchdog (`SHMQ_CASE_TIMEOUT` seconds, default 60) and kills the
//!   whole group with SIGKILL when it fires;
//! - after each case it checks that no entry named after the case is left in `/dev/shm` and
//!   that no process the case forked is left (this process is a child subreaper, so orphans
//!   come back to it and can be found and reaped);
//! - it prints libtest-like lines and exits non-zero on any failure.
//!
//! Arguments: filters (substring match; `--exact` for whole names; `--skip PATTERN`), `--list`,
//! `--nocapture`, `--show-output`; other libtest flags are accepted and ignored.
//!
//! Inside a case, [`fork`] and [`fork_ok`] run a closure in a grandchild that `_exit`s with
//! its result, never returning into the case's code (and so never dropping the case's `Queue`,
//! whose drop would unlink the name).
#![allow(dead_code, unused_macros)]

use std::ffi::CString;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One named case.
pub struct Case {
    /// Its name, as filters match it.
    pub name: &'static str,
    /// Its body: panics to fail.
    pub run: fn(),
}

/// `cases![a, b, c]`: a list of cases named after their functions.
macro_rules! cases {
    ($($f:ident),* $(,)?) => {
        &[$($crate::support::Case { name: stringify!($f), run: $f }),*]
    };
}

/// The prefix of every segment name a case makes: `shmq-test-{case pid}-{case name}-`.
static CASE_PREFIX: OnceLock<String> = OnceLock::new();
static NAME_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh segment name for the running case: `/shmq-test-{pid}-{case}-{n}`. Call it from the
/// case process (a grandchild would count from the case's counter and could repeat a name).
pub fn shm_name() -> String {
    let prefix = CASE_PREFIX.get().expect("shm_name() is called inside a case");
    let n = NAME_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/{prefix}{n}")
}

/// The `/dev/shm` prefix of a case run by process `pid`.
pub fn case_prefix(pid: u32, case: &str) -> String {
    format!("shmq-test-{pid}-{case}-")
}

/// `SHMQ_ITEMS` (default `default`): how many items a throughput case moves in total.
pub fn items(default: u64) -> u64 {
    std::env::var("SHMQ_ITEMS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Forking inside a case.

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `_exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(i32),
}

/// Exit code of a child whose closure panicked.
pub const PANICKED: i32 = 101;
/// Exit code of a [`fork_ok`] child whose closure returned `Err`.
pub const FAILED: i32 = 1;

/// A forked child, to be waited for (dropping it unwaited kills and reaps it).
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

impl Child {
    /// Its pid.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill has no memory preconditions; our unreaped child's pid cannot be reused.
        let rc = unsafe { libc::kill(self.pid, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}): {}", self.pid, std::io::Error::last_os_error());
    }

    /// Waits until the child has stopped (after SIGSTOP).
    pub fn wait_stopped(&self) {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid out-pointer.
        let rc = unsafe { libc::waitpid(self.pid, &mut status, libc::WUNTRACED) };
        assert_eq!(rc, self.pid, "waitpid: {}", std::io::Error::last_os_error());
        assert!(libc::WIFSTOPPED(status), "child {} did not stop: status {status:#x}", self.pid);
    }

    /// Waits for the child to end (blocking; the case watchdog bounds it).
    pub fn wait(mut self) -> Status {
        self.reaped = true;
        wait_pid(self.pid)
    }

    /// Waits and panics unless the child exited with 0.
    pub fn wait_ok(self, what: &str) {
        let pid = self.pid;
        let status = self.wait();
        assert_eq!(status, Status::Exited(0), "{what} (pid {pid}) failed");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: as in `signal`.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            wait_pid(self.pid);
        }
    }
}

fn wait_pid(pid: libc::pid_t) -> Status {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::EINTR), "waitpid({pid}): {err}");
    }
    if libc::WIFEXITED(status) {
        Status::Exited(libc::WEXITSTATUS(status))
    } else {
        Status::Signaled(libc::WTERMSIG(status))
    }
}

/// Runs `f` in a forked child, which `_exit`s with the code `f` returns ([`PANICKED`] if it
/// panics). The caller must be single-threaded (every case process is).
pub fn fork<F: FnOnce() -> i32>(f: F) -> Child {
    flush_std();
    // SAFETY: the calling process is single-threaded (cases run in a child forked from the
    // harness's single-threaded main, and fork no threads).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = catch_unwind(AssertUnwindSafe(f)).unwrap_or(PANICKED);
        flush_std();
        // SAFETY: _exit ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    Child { pid, reaped: false }
}

/// [`fork`] with a closure that says why it failed: `Err(msg)` prints `msg` and exits [`FAILED`].
pub fn fork_ok<F: FnOnce() -> Result<(), String>>(f: F) -> Child {
    fork(|| match f() {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("child {}: {msg}", std::process::id());
            FAILED
        }
    })
}

fn flush_std() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// Every process in /proc with what its stat file says.
fn processes() -> Vec<(u32, shm_queue::ProcessStatus)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, shm_queue::ProcessStatus::read(pid)?)))
        .collect()
}

/// Live (or zombie) children of `parent`.
#[allow(dead_code)] // not every test binary that includes this harness asks
pub fn children_of(parent: u32) -> Vec<u32> {
    processes().into_iter().filter(|(_, s)| s.parent == parent).map(|(pid, _)| pid).collect()
}

/// Processes of group `group` that have not ended (zombies have).
#[allow(dead_code)] // as above
pub fn live_members_of_group(group: u32) -> Vec<u32> {
    processes().into_iter().filter(|(_, s)| s.group == group && !s.has_ended()).map(|(pid, _)| pid).collect()
}

/// Waits (polling every millisecond) until `cond` holds. Unbounded: the case watchdog bounds it.
pub fn wait_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------------------------
// Memory and pipes shared with children.

/// Types for which all-zero bytes are a valid value.
///
/// # Safety
/// Implement only for such types.
pub unsafe trait ZeroValid: Sync {}
// SAFETY: atomics of integers are valid at zero.
unsafe impl ZeroValid for std::sync::atomic::AtomicU8 {}
// SAFETY: as above.
unsafe impl ZeroValid for std::sync::atomic::AtomicUsize {}
// SAFETY: as above.
unsafe impl ZeroValid for std::sync::atomic::AtomicBool {}

/// A zeroed `MAP_SHARED | MAP_ANONYMOUS` array, shared with children forked after it is made.
pub struct SharedSlice<T: ZeroValid> {
    ptr: *mut T,
    len: usize,
}

impl<T: ZeroValid> SharedSlice<T> {
    /// `len` zeroed elements.
    pub fn new(len: usize) -> Self {
        let bytes = (len * std::mem::size_of::<T>()).max(1);
        // SAFETY: a fresh anonymous mapping at a kernel-chosen address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        Self { ptr: ptr.cast(), len }
    }
}

impl<T: ZeroValid> std::ops::Deref for SharedSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` zeroed (hence valid, by `ZeroValid`) elements, mapped while we live;
        // they are only accessed through shared references (atomics).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: ZeroValid> Drop for SharedSlice<T> {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.ptr.cast(), (self.len * std::mem::size_of::<T>()).max(1)) };
    }
}

/// A pipe for one-way signals between a case and its children. Both ends are inherited.
#[derive(Debug)]
pub struct Pipe {
    read: libc::c_int,
    write: libc::c_int,
}

impl Pipe {
    /// A new pipe.
    pub fn new() -> Self {
        let mut fds = [0; 2];
        // SAFETY: a valid two-element out-array.
        let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
        assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
        Self { read: fds[0], write: fds[1] }
    }

    /// Writes one u64.
    pub fn send(&self, value: u64) {
        let bytes = value.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer; a pipe write of 8 bytes is atomic.
        let n = unsafe { libc::write(self.write, bytes.as_ptr().cast(), bytes.len()) };
        assert_eq!(n, 8, "pipe write: {}", std::io::Error::last_os_error());
    }

    /// Reads one u64 (blocking; the case watchdog bounds it).
    pub fn recv(&self) -> u64 {
        let mut bytes = [0u8; 8];
        let mut got = 0;
        while got < bytes.len() {
            // SAFETY: reads into the rest of a live buffer.
            let n = unsafe { libc::read(self.read, bytes[got..].as_mut_ptr().cast(), bytes.len() - got) };
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            assert!(n != 0, "pipe read: end of file");
            assert!(n > 0, "pipe read: {}", std::io::Error::last_os_error());
            got += n as usize;
        }
        u64::from_ne_bytes(bytes)
    }
}

impl Default for Pipe {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The runner.

struct Args {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    terse: bool,
    capture: bool,
    show_output: bool,
    ignored_only: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        filters: Vec::new(),
        skips: Vec::new(),
        exact: false,
        list: false,
        terse: false,
        capture: true,
        show_output: false,
        ignored_only: false,
    };
    // libtest options that take a value as the next argument (unless given as `--opt=value`).
    const WITH_VALUE: &[&str] = &["--test-threads", "--color", "--format", "--logfile", "-Z", "--shuffle-seed"];
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--list" => args.list = true,
            "--exact" => args.exact = true,
            "--nocapture" | "--no-capture" => args.capture = false,
            "--show-output" => args.show_output = true,
            "--ignored" => args.ignored_only = true,
            "--skip" => args.skips.extend(it.next()),
            "--format" => args.terse = it.next().as_deref() == Some("terse"),
            "--format=terse" => args.terse = true,
            a if a.starts_with("--skip=") => args.skips.push(a["--skip=".len()..].to_owned()),
            a if WITH_VALUE.contains(&a) => {
                it.next();
            }
            a if a.starts_with('-') => {} // -q, --quiet, --include-ignored, --test-threads=N, ...
            _ => args.filters.push(arg),
        }
    }
    args
}

impl Args {
    fn selects(&self, name: &str) -> bool {
        let hit = |pattern: &String| if self.exact { name == pattern } else { name.contains(pattern.as_str()) };
        !self.ignored_only && (self.filters.is_empty() || self.filters.iter().any(hit)) && !self.skips.iter().any(hit)
    }
}

fn case_timeout() -> Duration {
    let secs = std::env::var("SHMQ_CASE_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    Duration::from_secs(secs)
}

/// Runs the selected cases, each in its own forked child, and exits (101 on any failure).
pub fn main(cases: &[Case]) -> ! {
    let args = parse_args();
    let selected: Vec<&Case> = cases.iter().filter(|c| args.selects(c.name)).collect();
    if args.list {
        for case in &selected {
            println!("{}: test", case.name);
        }
        if !args.terse {
            println!("\n{} tests, 0 benchmarks", selected.len());
        }
        std::process::exit(0);
    }
    // Orphans of a case (grandchildren whose parent died) are re-parented to us, where we can
    // find and reap them.
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER): {}", std::io::Error::last_os_error());

    let started = Instant::now();
    println!("\nrunning {} tests", selected.len());
    let mut failures = Vec::new();
    for case in &selected {
        print!("test {} ... ", case.name);
        flush_std();
        let outcome = run_case(case, &args);
        let (verdict, output) = match &outcome {
            Ok(output) => ("ok", output),
            Err((_, output)) => ("FAILED", output),
        };
        println!("{verdict}");
        if let Err((why, _)) = &outcome {
            failures.push((case.name, why.clone(), output.clone()));
        } else if args.show_output && !output.is_empty() {
            println!("---- {} stdout ----\n{output}", case.name);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let filtered_out = cases.len() - selected.len();
    if failures.is_empty() {
        println!(
            "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; {filtered_out} filtered out; finished in {secs:.2}s\n",
            selected.len()
        );
        flush_std();
        std::process::exit(0);
    }
    println!("\nfailures:\n");
    for (name, why, output) in &failures {
        println!("---- {name} ----\n{output}{why}\n");
    }
    println!("failures:");
    for (name, _, _) in &failures {
        println!("    {name}");
    }
    println!(
        "\ntest result: FAILED. {} passed; {} failed; 0 ignored; 0 measured; {filtered_out} filtered out; finished in {secs:.2}s\n",
        selected.len() - failures.len(),
        failures.len()
    );
    flush_std();
    std::process::exit(101);
}

/// Runs one case in a forked child: `Ok(output)` or `Err((why, output))`.
fn run_case(case: &Case, args: &Args) -> Result<String, (String, String)> {
    let capture = args.capture.then(|| {
        let name = CString::new("shmq-test-output").expect("no NUL");
        // SAFETY: a valid C string and no flags we do not handle.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        fd
    });
    // SAFETY: main is single-threaded (this harness starts no thread).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: plain system calls on our own process and descriptors; dup2 clears CLOEXEC
        // on the new descriptors 1 and 2.
        unsafe {
            libc::setpgid(0, 0);
            if let Some(fd) = capture {
                libc::dup2(fd, 1);
                libc::dup2(fd, 2);
            }
        }
        let me = std::process::id();
        CASE_PREFIX.set(case_prefix(me, case.name)).expect("set once per case process");
        let code = match catch_unwind(case.run) {
            Ok(()) => 0,
            Err(_) => PANICKED,
        };
        flush_std();
        // SAFETY: ends the case process; nothing of the harness's state needs dropping.
        unsafe { libc::_exit(code) };
    }
    // Also from here, so a kill of the group cannot race the child's own setpgid.
    // SAFETY: plain system call on our child.
    unsafe { libc::setpgid(pid, pid) };

    let mut problems = Vec::new();
    let deadline = Instant::now() + case_timeout();
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            break;
        }
        assert!(rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR), "waitpid");
        if Instant::now() >= deadline {
            problems.push(format!("watchdog: the case ran longer than {:?}; killed it", case_timeout()));
            // SAFETY: kills the case's process group (the case and everything it forked).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            wait_pid(pid);
            status = 0;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if problems.is_empty() {
        if libc::WIFSIGNALED(status) {
            problems.push(format!("the case process died of signal {}", libc::WTERMSIG(status)));
        } else if libc::WEXITSTATUS(status) != 0 {
            problems.push(format!("the case failed (exit code {})", libc::WEXITSTATUS(status)));
        }
    }
    leftover_processes(pid, &mut problems);
    leftover_segments(&case_prefix(pid as u32, case.name), &mut problems);
    // Runs of the shmpipe runtime rooted in the case (the root tests share this harness).
    leftover_segments(&format!("shmpipe.{pid}."), &mut problems);

    let output = capture.map(read_and_close).unwrap_or_default();
    if problems.is_empty() {
        Ok(output)
    } else {
        Err((problems.join("\n"), output))
    }
}

/// Children of the harness: after a case is reaped, any is a process the case left behind
/// (re-parented to us, the subreaper). Kills and reaps them, and reports them.
fn leftover_processes(case_pid: libc::pid_t, problems: &mut Vec<String>) {
    let me = std::process::id();
    // Still running with us as parent, or still in the case's process group. A zombie has
    // finished: an orphan that died (say of its parent-death signal) and came back to us to be
    // reaped is no leftover.
    let mut leftovers: Vec<u32> = processes()
        .into_iter()
        .filter(|(_, s)| !s.has_ended() && (s.parent == me || s.group == case_pid as u32))
        .map(|(pid, _)| pid)
        .collect();
    leftovers.sort_unstable();
    for &pid in &leftovers {
        // SAFETY: kills a process the case left behind.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    // Reap whatever is ours (children re-parented to us, now dead).
    let mut reaped = 0;
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc > 0 {
            reaped += 1;
            continue;
        }
        if rc == 0 && reaped < leftovers.len() && Instant::now() < give_up {
            // Killed ones may take a moment to die (and to be re-parented to us).
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        break;
    }
    if !leftovers.is_empty() {
        problems.push(format!("the case left processes behind: {leftovers:?} ({reaped} reaped here)"));
    }
}

/// Entries of `/dev/shm` named after the case: reported and removed.
fn leftover_segments(prefix: &str, problems: &mut Vec<String>) {
    match shm_queue::list(prefix) {
        Ok(names) if names.is_empty() => {}
        Ok(names) => {
            for name in &names {
                let _ = shm_queue::unlink(name);
            }
            problems.push(format!("the case left segments in /dev/shm: {names:?}"));
        }
        Err(e) => problems.push(format!("cannot list /dev/shm: {e}")),
    }
}

fn read_and_close(fd: libc::c_int) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut offset = 0;
    loop {
        // SAFETY: reads into a live buffer from our own descriptor.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
        offset += n as libc::off_t;
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    String::from_utf8_lossy(&out).into_owned()
}

/// The `main` of a test binary whose one case needs a private mount namespace (root and
/// `unshare`): run with `--in-namespace`, it runs `case` there and exits 0 or 1; otherwise it
/// starts itself under `unshare --mount` after running `setup` (a shell line, e.g. mounting a
/// small tmpfs on `/dev/shm`), and reports in libtest's format. Without root the case is
/// reported as ignored, saying why, never as passed.
pub fn main_in_private_mount_namespace(name: &str, setup: &str, case: fn() -> Result<(), String>) -> ! {
    if std::env::args().any(|a| a == "--in-namespace") {
        match case() {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    println!("\nrunning 1 test");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let me = std::env::current_exe().expect("the test binary's path");
    let out = root.then(|| {
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{setup} && exec \"$0\" --in-namespace"))
            .arg(&me)
            .output()
    });
    let (verdict, failed) = match out {
        Some(Ok(out)) if out.status.success() => ("ok", 0),
        Some(Ok(out)) => {
            println!("{}", String::from_utf8_lossy(&out.stderr));
            ("FAILED", 1)
        }
        // With root but without unshare: say so, do not pretend.
        Some(Err(e)) => {
            println!("cannot run unshare: {e}");
            ("FAILED", 1)
        }
        None => ("ignored (needs root for a private mount namespace)", 0),
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
