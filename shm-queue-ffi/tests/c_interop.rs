//! C programs against the library, and C and Rust processes sharing queues.
//!
//! The C sources under `examples/c/` are compiled with the machine's C compiler (`cc`, or
//! `$CC`) against `include/shm_queue.h` and the `libshm_queue_ffi.a` / `.so` that cargo built
//! next to this test's binary, in `deps/` (the crate's `cdylib` and `staticlib` are rebuilt
//! there with its rlib). The C
//! programs run as child processes (fork + exec through `Command`; nothing here forks on its
//! own), and each exchange moves 10^6 records, checked for exactly-once and order on the
//! consuming side, whichever language that is.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use shm_queue::{Consumer, Kind, Mpsc, OpenError, PopError, Queue, Spsc};

/// Records per exchange.
const RECORDS: u64 = 1_000_000;
/// How long any one wait may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(120);

/// The record of `examples/c/exchange.c`: `{ uint64_t producer, seq, check; }`.
type Record = [u8; 24];

fn check_of(producer: u64, seq: u64) -> u64 {
    seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (producer + 1)
}

fn record(producer: u64, seq: u64) -> Record {
    let mut r = [0u8; 24];
    r[0..8].copy_from_slice(&producer.to_ne_bytes());
    r[8..16].copy_from_slice(&seq.to_ne_bytes());
    r[16..24].copy_from_slice(&check_of(producer, seq).to_ne_bytes());
    r
}

fn fields(r: &Record) -> (u64, u64, u64) {
    let word = |i: usize| u64::from_ne_bytes(r[i * 8..i * 8 + 8].try_into().unwrap());
    (word(0), word(1), word(2))
}

// ---------------------------------------------------------------------------------------------
// Names and cleanup.

static NAMES: AtomicUsize = AtomicUsize::new(0);

/// A fresh segment name; the prefix is the one `scripts/check-leftovers.sh` looks for.
fn shm_name() -> String {
    format!("/shmq-test-ffi-{}-{}", std::process::id(), NAMES.fetch_add(1, Ordering::Relaxed))
}

/// Removes the test's names and kills its children, however the test ends.
struct Cleanup {
    names: Vec<String>,
    children: Vec<Option<Child>>,
}

impl Cleanup {
    fn new(names: &[&str]) -> Self {
        let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        // api_check makes a second queue next to its own.
        names.extend(names.clone().iter().map(|n| format!("{n}-kept")));
        Self { names, children: Vec::new() }
    }

    fn spawn(&mut self, program: &Path, args: &[&str]) {
        let child = built_program(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        self.children.push(Some(child));
    }

    /// Waits for child `i` (its output is piped, and small) and returns its output.
    fn wait(&mut self, i: usize) -> Output {
        let mut child = self.children[i].take().expect("a child not waited for yet");
        let deadline = Instant::now() + PATIENCE;
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let output = child.wait_with_output().expect("collect the output");
                panic!("C process did not finish in time:\n{}", describe(&output));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait_with_output().expect("collect the output")
    }

    /// Panics with child `i`'s output if it has already exited.
    fn check_alive(&mut self, i: usize) {
        let exited = self.children[i].as_mut().is_some_and(|c| !matches!(c.try_wait(), Ok(None)));
        if exited {
            panic!("C process exited early:\n{}", describe(&self.wait(i)));
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        for name in &self.names {
            let _ = shm_queue::unlink(name);
        }
    }
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_success(output: &Output, expect_in_stdout: &str) {
    assert!(output.status.success(), "C process failed: {}", describe(output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(expect_in_stdout), "unexpected output: {}", describe(output));
}

// ---------------------------------------------------------------------------------------------
// Building the C programs.

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate sits in the workspace").to_path_buf()
}

/// Where cargo put this crate's `.a` and `.so` when it built this test: `deps/`, next to the
/// test binary. (`cargo test` rebuilds them there with the rlib, but only `cargo build` copies
/// them up to the profile directory, where they may be stale.)
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test binary sits in deps/");
    assert!(
        deps.join("libshm_queue_ffi.a").exists() && deps.join("libshm_queue_ffi.so").exists(),
        "libshm_queue_ffi.a/.so not found next to {}",
        exe.display()
    );
    deps.to_path_buf()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Link {
    Static,
    Shared,
}

/// A command running a program built here. Without `LD_LIBRARY_PATH`: `cargo test` puts the
/// profile directory there, where a `libshm_queue_ffi.so` from an older `cargo build` may sit
/// and would win over the rpath to `deps/` (it did, when the segment format changed).
fn built_program(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_remove("LD_LIBRARY_PATH");
    command
}

fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_owned())
}

/// Runs `command` (a compiler, its output left to us), writing the program to `name` in one
/// directory that every run reuses: it writes a file of its own, then renames it into place, so
/// a concurrent run never executes a half-written program.
fn compile(mut command: Command, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shm-queue-ffi");
    std::fs::create_dir_all(&dir).expect("create the output directory");
    let out = dir.join(name);
    let partial = dir.join(format!("{name}.partial-{}", std::process::id()));
    command.arg("-o").arg(&partial);
    let output = command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(output.status.success(), "{command:?} failed:\n{}", describe(&output));
    std::fs::rename(&partial, &out).expect("rename the program into place");
    out
}

/// Compiles `examples/c/{program}.c` once per test run, strictly (warnings are errors).
fn c_program(program: &str, link: Link) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, Link, PathBuf)>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, path)) = built.iter().find(|(p, l, _)| p == program && *l == link) {
        return path.clone();
    }
    let root = workspace_root();
    let lib = library_dir();
    let mut cmd = Command::new(compiler());
    cmd.args(["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("examples/c").join(format!("{program}.c")));
    match link {
        Link::Static => cmd.arg(lib.join("libshm_queue_ffi.a")).args(["-lpthread", "-ldl", "-lm"]),
        Link::Shared => cmd.arg("-L").arg(&lib).arg("-lshm_queue_ffi").arg(format!("-Wl,-rpath,{}", lib.display())),
    };
    let out = compile(cmd, &format!("{program}-{link:?}").to_lowercase());
    built.push((program.to_owned(), link, out.clone()));
    out
}

// ---------------------------------------------------------------------------------------------
// The Rust side of the exchanges.

/// Pops until the producers leave, alternating single pops and in-place chunks; checks each
/// of `producers` producers' records `0..each` arrive exactly once and in order.
fn consume_all<K: Kind>(rx: &mut Consumer<Record, K>, producers: u64, each: u64) {
    let mut next = vec![0u64; producers as usize];
    let mut total = 0u64;
    let mut accept = |r: &Record| {
        let (producer, seq, check) = fields(r);
        assert!(producer < producers, "record from unknown producer {producer} after {total} records");
        assert_eq!(seq, next[producer as usize], "producer {producer}: record lost, repeated or out of order");
        assert_eq!(check, check_of(producer, seq), "producer {producer} record {seq} corrupt");
        next[producer as usize] += 1;
        total += 1;
    };
    let end = (0u64..)
        .map(|round| {
            if round % 2 == 0 {
                rx.pop_timeout(PATIENCE).map(|r| accept(&r))
            } else {
                rx.read_chunk_timeout(512, PATIENCE).map(|chunk| chunk.iter().for_each(&mut accept))
            }
        })
        .find_map(Result::err)
        .expect("endless");
    assert_eq!(end, PopError::Disconnected, "the stream must end by its producers leaving");
    assert_eq!(next, vec![each; producers as usize], "records per producer");
}

/// Opens a queue that a C process is about to create.
fn open_when_there<K: Kind>(name: &str, cleanup: &mut Cleanup) -> Queue<Record, K> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match Queue::<Record, K>::open(name) {
            Ok(queue) => return queue,
            Err(OpenError::NotFound(_)) if Instant::now() < deadline => {
                cleanup.check_alive(0);
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("opening the C-created queue {name}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Every return code of the C API, from C.
#[test]
fn c_api_return_codes() {
    let name = shm_name();
    let mut cleanup = Cleanup::new(&[&name]);
    cleanup.spawn(&c_program("api_check", Link::Static), &[&name]);
    let output = cleanup.wait(0);
    assert_success(&output, "all checks passed");
    assert_success(&output, "a call at exit returned its code");
}

/// The README's example, linked against the shared library.
#[test]
fn c_hello_example_runs() {
    let name = shm_name();
    let mut cleanup = Cleanup::new(&[&name]);
    cleanup.spawn(&c_program("hello", Link::Shared), &[&name]);
    assert_success(&cleanup.wait(0), "received 100000 particles");
}

/// A queue created in C, opened in Rust with the matching element type: 10^6 records from a C
/// producer to a Rust consumer.
#[test]
fn c_creates_and_produces_rust_consumes() {
    let name = shm_name();
    let mut cleanup = Cleanup::new(&[&name]);
    let exchange = c_program("exchange", Link::Static);
    cleanup.spawn(&exchange, &["create-produce", &name, "spsc", &RECORDS.to_string()]);
    let queue = open_when_there::<Spsc>(&name, &mut cleanup);
    assert_eq!(queue.capacity(), 1024);
    let mut rx = queue.consumer().expect("attach a consumer");
    consume_all(&mut rx, 1, RECORDS);
    drop(rx);
    drop(queue);
    assert_success(&cleanup.wait(0), &format!("produced {RECORDS} records"));
    assert!(matches!(Queue::<Record, Spsc>::open(&name), Err(OpenError::NotFound(_))), "the creator removed the name");
}

/// A queue created in Rust, opened in C (by name alone: kind and record size are read from
/// the segment): 10^6 records from a Rust producer to a C consumer.
#[test]
fn rust_creates_and_produces_c_consumes() {
    let name = shm_name();
    let mut cleanup = Cleanup::new(&[&name]);
    let exchange = c_program("exchange", Link::Static);
    let queue = Queue::<Record, Spsc>::create(&name, 1024).expect("create");
    let mut tx = queue.producer().expect("attach a producer");
    cleanup.spawn(&exchange, &["consume", &name, "1", &RECORDS.to_string()]);
    let mut seq = 0;
    while seq < RECORDS {
        // Single pushes and in-place chunks, a thousand at a time each.
        if (seq / 1000) % 2 == 0 {
            tx.push_timeout(record(0, seq), PATIENCE).unwrap_or_else(|e| {
                cleanup.check_alive(0);
                panic!("push {seq}: {e}")
            });
            seq += 1;
        } else {
            let max = (1000 - seq % 1000).min(RECORDS - seq) as usize;
            let mut chunk = tx.write_chunk_timeout(max, PATIENCE).unwrap_or_else(|e| panic!("chunk at {seq}: {e}"));
            for slot in chunk.as_mut_slice() {
                *slot = record(0, seq);
                seq += 1;
            }
            chunk.commit();
        }
    }
    drop(tx); // closes the queue: the C consumer drains it and sees SHMQ_EPIPE
    assert_success(&cleanup.wait(0), &format!("consumed {RECORDS} records from 1 producers"));
}

/// Several C producer processes into one Rust-created MPSC queue, consumed in Rust: 10^6
/// records in all, each producer's in order.
#[test]
fn c_producers_into_rust_mpsc() {
    const PRODUCERS: u64 = 2;
    let each = RECORDS / PRODUCERS;
    let name = shm_name();
    let mut cleanup = Cleanup::new(&[&name]);
    let exchange = c_program("exchange", Link::Shared);
    let queue = Queue::<Record, Mpsc>::create(&name, 4096).expect("create");
    let mut rx = queue.consumer().expect("attach a consumer");
    // Keeps the queue open until every C producer has attached (the first one out would
    // otherwise close it under a late starter).
    let keep_open = queue.producer().expect("attach a producer");
    for id in 0..PRODUCERS {
        cleanup.spawn(&exchange, &["produce", &name, "mpsc", &id.to_string(), &each.to_string()]);
    }
    // Nobody consumes yet, so no producer can finish (each pushes more than the ring holds):
    // once all are attached, none can find the queue closed.
    assert!(each > queue.capacity() as u64);
    let deadline = Instant::now() + PATIENCE;
    while queue.stats().producers < 1 + PRODUCERS as u32 {
        for i in 0..cleanup.children.len() {
            cleanup.check_alive(i);
        }
        assert!(Instant::now() < deadline, "the C producers did not attach");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(keep_open);
    consume_all(&mut rx, PRODUCERS, each);
    for i in 0..cleanup.children.len() {
        assert_success(&cleanup.wait(i), &format!("produced {each} records"));
    }
}

/// The header also compiles as C++ (`extern "C"`, no C-only constructs).
#[test]
fn header_compiles_as_cplusplus() {
    let Some(cxx) = ["c++", "g++", "clang++"].into_iter().find(|c| Command::new(c).arg("--version").output().is_ok())
    else {
        eprintln!("no C++ compiler found; skipping");
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shm-queue-ffi");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join(format!("header-{}.cpp", std::process::id()));
    std::fs::write(
        &source,
        "#include \"shm_queue.h\"\n#include <cstdio>\n\
         int main() {\n  shmq_stats_t stats{};\n  shmq_queue *q = nullptr;\n\
         int rc = shmq_stats(q, &stats);\n  std::printf(\"%s\\n\", shmq_strerror(rc));\n\
         return rc == SHMQ_EINVAL && shmq_record_size_fit(20) == 24 ? 0 : 1;\n}\n",
    )
    .unwrap();
    let mut cmd = Command::new(cxx);
    cmd.args(["-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I"])
        .arg(workspace_root().join("include"))
        .arg(&source)
        .arg(library_dir().join("libshm_queue_ffi.a"))
        .args(["-lpthread", "-ldl", "-lm"]);
    let binary = compile(cmd, "header-cpp");
    std::fs::remove_file(&source).unwrap();
    let run = built_program(&binary).output().unwrap();
    assert_success(&run, "invalid argument");
}

/// The Fortran interface module, `include/shm_queue.f90`, with a Fortran program using it
/// (skipped when gfortran is not installed: `apt-get install gfortran`).
#[test]
fn fortran_interface_round_trips() {
    let fortran = std::env::var("FC").unwrap_or_else(|_| "gfortran".to_owned());
    if Command::new(&fortran).arg("--version").output().is_err() {
        eprintln!("{fortran} not found; skipping the Fortran interface test");
        return;
    }
    // The module file goes to a directory of this run's own.
    let modules = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("shm-queue-ffi/modules-{}", std::process::id()));
    std::fs::create_dir_all(&modules).unwrap();
    let root = workspace_root();
    let mut cmd = Command::new(&fortran);
    cmd.args(["-std=f2008", "-Wall", "-Wextra", "-Werror", "-J"])
        .arg(&modules)
        .arg(root.join("include/shm_queue.f90"))
        .arg(root.join("shm-queue-ffi/examples/fortran/roundtrip.f90"))
        .arg(library_dir().join("libshm_queue_ffi.a"))
        .args(["-lpthread", "-ldl", "-lm"]);
    let binary = compile(cmd, "roundtrip-fortran");
    std::fs::remove_dir_all(&modules).unwrap();
    let name = shm_name();
    let mut cleanup = Cleanup::new(&[&name]);
    cleanup.spawn(&binary, &[&name]);
    assert_success(&cleanup.wait(0), "fortran ok");
}
