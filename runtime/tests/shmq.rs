//! The `shmq` ops tool: listing, inspecting and cleaning segments.

use std::io::{Seek, SeekFrom, Write};
use std::process::Command;

use shm_queue::{Queue, Spsc};

fn shmq(args: &[&str]) -> (bool, String, String) {
    let out = shmq_output(args);
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn shmq_output(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shmq")).args(args).output().expect("run shmq")
}

/// Held by every test that makes a stale segment or cleans: one test's `clean` would remove
/// another's stale segment between that test's own steps.
static CLEANING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cleaning() -> std::sync::MutexGuard<'static, ()> {
    CLEANING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn name(what: &str) -> String {
    format!("/shmq-tool-test-{}-{what}", std::process::id())
}

/// Byte offset of `creator_pid` in the segment header (format version 2, as in 1).
const CREATOR_PID_OFFSET: u64 = 144;

/// A queue segment `name` holding `items`, left as if its creator had died.
fn left_by_a_dead_creator(name: &str, items: &[u64]) {
    let mut queue = Queue::<u64, Spsc>::create(name, 8).unwrap();
    queue.keep_name();
    if !items.is_empty() {
        queue.producer().unwrap().push_slice(items).unwrap();
    }
    drop(queue);
    orphan(name);
}

/// Makes a queue segment look as if its creator had died (a pid above the kernel's limit).
fn orphan(name: &str) {
    let mut file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
    file.seek(SeekFrom::Start(CREATOR_PID_OFFSET)).unwrap();
    file.write_all(&((1u32 << 22) + 1).to_le_bytes()).unwrap();
}

#[test]
fn ls_and_stat_show_a_live_queue_with_its_endpoints() {
    let n = name("live");
    let queue = Queue::<u64, Spsc>::create(&n, 8).unwrap();
    let mut tx = queue.producer().unwrap();
    tx.push(1).unwrap();
    let (ok, out, _) = shmq(&["ls"]);
    assert!(ok);
    let line = out.lines().find(|l| l.starts_with(&n)).expect("listed");
    assert!(line.contains("SPSC") && line.contains("u64") && line.contains("(alive)"), "{line}");
    let (ok, out, _) = shmq(&["stat", &n]);
    assert!(ok);
    assert!(out.contains("pushed      1") && out.contains("producer pid"), "{out}");
}

#[test]
fn clean_removes_only_segments_whose_processes_are_dead() {
    let _serial = cleaning();
    let (live, stale) = (name("keep"), name("stale"));
    let _live = Queue::<u64, Spsc>::create(&live, 8).unwrap();
    left_by_a_dead_creator(&stale, &[]);
    let (ok, out, _) = shmq(&["clean", "--dry-run"]);
    assert!(ok && out.contains(&format!("would remove {stale}")), "{out}");
    assert!(std::path::Path::new(&format!("/dev/shm{stale}")).exists(), "a dry run removes nothing");
    let (ok, out, _) = shmq(&["clean"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("removed {stale}")), "{out}");
    assert!(!out.contains(&live), "a live segment is never touched: {out}");
    assert!(!std::path::Path::new(&format!("/dev/shm{stale}")).exists());
    assert!(std::path::Path::new(&format!("/dev/shm{live}")).exists());
}

#[test]
fn clean_keeps_a_stale_queue_that_still_holds_items_unless_forced() {
    let _serial = cleaning();
    let n = name("full");
    left_by_a_dead_creator(&n, &[42]);
    let (ok, out, _) = shmq(&["clean"]);
    assert!(ok && out.contains(&format!("kept {n}: 1 item(s) still queued")), "{out}");
    assert!(std::path::Path::new(&format!("/dev/shm{n}")).exists(), "its item is not thrown away");
    let (ok, out, _) = shmq(&["clean", "--force"]);
    assert!(ok && out.contains(&format!("removed {n}")), "{out}");
    assert!(!std::path::Path::new(&format!("/dev/shm{n}")).exists());
    let (ok, _, err) = shmq(&["clean", "--everything"]);
    assert!(!ok && err.lines().count() == 1, "{err}");
}

#[test]
fn clean_leaves_files_that_are_not_ours() {
    let _serial = cleaning();
    let path = format!("/dev/shm/shmq-tool-test-{}-foreign", std::process::id());
    std::fs::write(&path, b"not a queue").unwrap();
    // Named like a run of a dead root, but with a byte no name of ours holds (a terminal
    // escape): not ours either, and never echoed.
    let lookalike = format!("/dev/shm/shmpipe.{}.1.0.0.\x1b[31mred", (1u32 << 22) + 1);
    std::fs::write(&lookalike, b"").unwrap();
    let (ok, out, _) = shmq(&["clean", "--dry-run"]);
    assert!(ok && !out.contains('\x1b') && !out.contains("red"), "{out:?}");
    let (ok, out, _) = shmq(&["clean"]);
    assert!(ok);
    assert!(std::path::Path::new(&path).exists(), "{out}");
    assert!(std::path::Path::new(&lookalike).exists(), "{out:?}");
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(lookalike).unwrap();
}

/// Byte offset of the creator's PID namespace in the segment header.
const PID_NAMESPACE_OFFSET: u64 = 208;

/// A queue made in a PID namespace that has ended (a container killed outright): its pids
/// are never judged here; the host's namespace, which sees every process, sees that none is
/// left in it and removes the queue, and a cleaner in any other namespace keeps it.
#[test]
fn a_queue_of_another_pid_namespace_is_judged_by_its_namespace() {
    let _serial = cleaning();
    let n = name("other-pidns");
    left_by_a_dead_creator(&n, &[]);
    // Namespace numbers are 32-bit: this one never had a process.
    let mut file = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{n}")).unwrap();
    file.seek(SeekFrom::Start(PID_NAMESPACE_OFFSET)).unwrap();
    file.write_all(&(1u64 << 40).to_le_bytes()).unwrap();
    // Seen gone from the host's namespace as root, who may read every process's namespace;
    // never from another namespace; without root, if no one else's process hides its own.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let host = shm_queue::PidNamespace::sees_every_namespace() && (root || shm_queue::PidNamespace::is_gone(1 << 40));
    let (ok, out, _) = shmq(&["ls"]);
    let line = out.lines().find(|l| l.starts_with(&n)).expect("listed");
    let shown = if host { "(dead: its PID namespace is gone)" } else { "(other PID namespace)" };
    assert!(ok && line.contains(shown), "{line}");
    let (ok, out, _) = shmq(&["clean"]);
    if host {
        assert!(ok && out.contains(&format!("removed {n} (its PID namespace is gone)")), "{out}");
    } else {
        assert!(ok && out.contains(&format!("kept {n}: made in another PID namespace")), "{out}");
        shm_queue::unlink(&n).unwrap();
    }
    assert!(!std::path::Path::new(&format!("/dev/shm{n}")).exists());
}

#[test]
fn bad_usage_is_one_line_and_exit_2_a_failure_exit_1() {
    for args in [&["frobnicate"][..], &["clean", "--now"], &["stat"]] {
        let out = shmq_output(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
        assert_eq!(err.lines().count(), 1);
        assert!(err.starts_with("shmq: unknown command line"), "{err}");
    }
    let out = shmq_output(&["stat", "/shmq-tool-test-no-such"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no shared-memory segment named"), "{err}");
}
