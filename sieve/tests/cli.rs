//! The `sieve` binary end to end: output, modes, verification, bad arguments, failures.
//! Each test runs the binary as a child process (fork + exec, safe from a threaded harness).

// Its `enter` is not used here: these tests run on the harness's threads, so only the children
// they start go into a cgroup, never the test process itself.
#[allow(dead_code)]
#[path = "support/limited_cgroup.rs"]
mod limited_cgroup;

use limited_cgroup::LimitedCgroup;
use sieve::pipeline::PipelineConfig;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sieve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sieve")).args(args).output().expect("run sieve")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

const ORIGINAL_N100_S3: &str = "Prime numbers:\n2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97 \n\nprimes in pipeline stage are [97]\n\nprimes in pipeline stage are [79, 83, 89]\n\nprimes in pipeline stage are [67, 71, 73]\n\nprimes in pipeline stage are [53, 59, 61]\n\nprimes in pipeline stage are [41, 43, 47]\n\nprimes in pipeline stage are [29, 31, 37]\n\nprimes in pipeline stage are [17, 19, 23]\n\nprimes in pipeline stage are [7, 11, 13]\n\nprimes in pipeline stage are [2, 3, 5]\n";

#[test]
fn default_output_is_the_originals_byte_for_byte() {
    let out = sieve(&["--max-number", "100", "--stage-size", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), ORIGINAL_N100_S3);
    assert_eq!(stderr(&out), "", "nothing on stderr");
}

#[test]
fn sequential_mode_prints_the_same_as_the_pipeline() {
    let out = sieve(&["--max-number", "100", "--stage-size", "3", "--mode", "sequential"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), ORIGINAL_N100_S3);
}

/// The sequential mode has no queues: its JSON says `null` for what only queues measure, and its
/// table `-`, while the divisibility tests per stage are real.
#[test]
fn a_mode_without_queues_reports_none_of_their_numbers() {
    let out = sieve(&["--max-number", "100", "--stage-size", "3", "--mode", "sequential", "--json"]);
    assert!(out.status.success());
    let json = stdout(&out);
    assert!(json.contains("\"items_in\":null,\"items_out\":null") && json.contains("\"futex_waits\":null"), "{json}");
    assert!(!json.contains("\"tests_done\":null"), "{json}");
    assert!(json.contains("\"source\":null,\"main\":null,"), "no queue ends either: {json}");
    let out = sieve(&["--max-number", "100", "--stage-size", "3", "--mode", "sequential", "--quiet", "--stats"]);
    let table = stdout(&out);
    let row = table.lines().find(|l| l.trim_start().starts_with("0 ")).expect("stage 0's row");
    assert_eq!(row.split_whitespace().filter(|f| *f == "-").count(), 5, "{row}");
    assert!(!table.contains("source") && !table.contains("main"), "no rows for queue ends: {table}");
    let out = sieve(&["--max-number", "100", "--stage-size", "3", "--json"]);
    assert!(!stdout(&out).contains("null"), "the pipeline measures them all: {}", stdout(&out));
}

/// `count=… sum=… largest=… stages=…` without the wall time.
fn quiet_fields(args: &[&str]) -> String {
    let out = sieve(args);
    assert!(out.status.success(), "sieve {args:?}: {}", stderr(&out));
    let line = stdout(&out);
    line.split_whitespace().filter(|f| !f.starts_with("wall=")).collect::<Vec<_>>().join(" ")
}

#[test]
fn count_sum_and_stages_agree_with_the_reference_over_a_table_of_shapes() {
    let cases: &[(u64, u32, u32, &str)] = &[
        (2, 3, 10, "count=1 sum=2 largest=2 stages=1"),
        (3, 3, 10, "count=2 sum=5 largest=3 stages=1"),
        (100, 1, 10, "count=25 sum=1060 largest=97 stages=25"),
        (100, 3, 1, "count=25 sum=1060 largest=97 stages=9"),
        (1000, 7, 3, "count=168 sum=76127 largest=997 stages=24"),
        (100_000, 100, 10, "count=9592 sum=454396537 largest=99991 stages=96"),
        (100_000, 100, 1024, "count=9592 sum=454396537 largest=99991 stages=96"),
    ];
    for &(n, s, d, expected) in cases {
        let (n, s, d) = (n.to_string(), s.to_string(), d.to_string());
        let args = ["--max-number", &n, "--stage-size", &s, "--queue-depth", &d, "--quiet", "--verify"];
        assert_eq!(quiet_fields(&args), expected, "pipeline N={n} S={s} D={d}");
        let mut seq = args.to_vec();
        seq.extend(["--mode", "sequential"]);
        assert_eq!(quiet_fields(&seq), expected, "sequential N={n} S={s}");
        let reference = quiet_fields(&["--max-number", &n, "--quiet", "--mode", "reference"]);
        let (without_stages, _) = expected.rsplit_once(' ').unwrap();
        assert_eq!(reference, format!("{without_stages} stages=0"), "reference N={n}");
    }
}

#[test]
fn sqrt_cutoff_changes_nothing_but_the_work() {
    let plain = quiet_fields(&["--max-number", "20000", "--stage-size", "5", "--quiet"]);
    let cut = quiet_fields(&["--max-number", "20000", "--stage-size", "5", "--quiet", "--sqrt-cutoff"]);
    assert_eq!(plain, cut);
    let a = sieve(&["--max-number", "2000", "--stage-size", "5"]);
    let b = sieve(&["--max-number", "2000", "--stage-size", "5", "--sqrt-cutoff"]);
    assert_eq!(stdout(&a), stdout(&b), "same output, stage lines included");
}

/// Every value of `"key":` in a one-line JSON object, in order (numbers only).
fn json_numbers(json: &str, key: &str) -> Vec<u64> {
    let pattern = format!("\"{key}\":");
    json.match_indices(&pattern)
        .map(|(at, _)| {
            let digits: String = json[at + pattern.len()..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
        })
        .collect()
}

/// The original's tests, stage by stage: the pipeline's processes must do exactly the
/// divisibility tests the one-process run of the same algorithm does (and hold the same
/// primes), however the numbers were batched between them.
#[test]
fn the_pipeline_does_the_same_tests_as_the_sequential_run_stage_by_stage() {
    let shapes: &[&[&str]] = &[
        &["--max-number", "2000", "--stage-size", "3"],
        &["--max-number", "10000", "--stage-size", "7", "--queue-depth", "1"],
        &["--max-number", "10000", "--stage-size", "1", "--queue-depth", "4"],
        &["--max-number", "30000", "--stage-size", "20", "--queue-depth", "4096"],
        &["--max-number", "30000", "--stage-size", "5", "--queue-depth", "64", "--sqrt-cutoff"],
    ];
    for shape in shapes {
        let run = |mode: &str| {
            let mut args = shape.to_vec();
            args.extend(["--mode", mode, "--json"]);
            let out = sieve(&args);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            stdout(&out)
        };
        let (pipeline, sequential) = (run("pipeline"), run("sequential"));
        for key in ["tests", "tests_done", "first_prime", "primes_held", "count", "sum"] {
            let (p, s) = (json_numbers(&pipeline, key), json_numbers(&sequential, key));
            assert!(!p.is_empty(), "{key} missing");
            assert_eq!(p, s, "{key} differs for {shape:?}");
        }
        let total: u64 = json_numbers(&pipeline, "tests_done").iter().sum();
        assert_eq!(json_numbers(&pipeline, "tests"), [total], "{shape:?}");
    }
}

#[test]
fn json_has_the_documented_fields() {
    let out = sieve(&["--max-number", "1000", "--stage-size", "10", "--json"]);
    assert!(out.status.success());
    let json = stdout(&out);
    assert_eq!(json.lines().count(), 1, "one object on one line");
    for field in [
        "\"count\":168",
        "\"sum\":76127",
        "\"largest\":997",
        "\"stages\":",
        "\"max_number\":1000",
        "\"stage_size\":10",
        "\"queue_depth\":10",
        "\"mode\":\"pipeline\"",
        "\"wall_s\":",
        "\"cpu_s\":",
        "\"tests\":",
        "\"per_stage\":[",
        "\"items_in\":",
        "\"tests_done\":",
        // The run's two ends: all 998 numbers written, all 168 primes read.
        "\"source\":{\"items_out\":998,\"blocked_full_ns\":",
        "\"main\":{\"items_in\":168,\"blocked_empty_ns\":",
    ] {
        assert!(json.contains(field), "{field} missing from {json}");
    }
}

#[test]
fn stats_and_draw_describe_the_pipeline() {
    let dir = std::env::temp_dir().join(format!("sieve-draw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("pipeline.svg");
    let out = sieve(&["--max-number", "100", "--stage-size", "3", "--stats", "--draw", svg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(ORIGINAL_N100_S3), "the stats table follows the original output");
    assert!(text.contains("blocked_full"), "{text}");
    // The run's ends, first and last: the source wrote 98 numbers, main read 25 primes.
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    let source = rows.iter().find(|r| r.first() == Some(&"source")).expect("a source row");
    let main = rows.iter().find(|r| r.first() == Some(&"main")).expect("a main row");
    assert_eq!((source[4], main[3]), ("98", "25"), "{text}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("79"), "a picture with the stages' primes");
    assert!(picture.contains(">98 numbers<") && picture.contains(">25 primes<") && picture.contains(">empty "));
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--draw` to something that is not a regular file: `/dev/null` takes the picture as it is
/// (there is no length to cut), and a device that refuses it fails the run naming the picture,
/// not the primes' output.
#[test]
fn draw_writes_to_devices_and_names_its_file_when_that_fails() {
    let out = sieve(&["--max-number", "100", "--stage-size", "3", "--draw", "/dev/null"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), ORIGINAL_N100_S3);
    if std::path::Path::new("/dev/full").exists() {
        let out = sieve(&["--max-number", "100", "--stage-size", "3", "--quiet", "--draw", "/dev/full"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.starts_with("sieve: writing /dev/full: ") && err.lines().count() == 1, "{err:?}");
    }
}

/// `sieve | head`: the reader goes away with most primes unwritten. The run ends as quietly as
/// a program that SIGPIPE killed, with the status a shell gives one, and leaves nothing.
#[test]
fn a_reader_that_goes_away_ends_the_run_quietly_and_leaves_nothing() {
    use std::io::Read;
    // 78,498 primes, ~540 KB: more than a pipe holds, so the root is still writing.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sieve"))
        .args(["--max-number", "1000000", "--stage-size", "100", "--queue-depth", "1024"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = child.stdout.take().unwrap();
    let mut first = [0u8; 15];
    reader.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"Prime numbers:\n");
    let server = children_of(child.id()).first().copied();
    let stages = server.map(children_of).unwrap_or_default();
    drop(reader);
    let root = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGPIPE), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "nothing to say about a reader that left");
    assert_nothing_left(root, server.unwrap_or(0), &stages);
    // The modes without processes, which hand their primes over as they find them too.
    for mode in ["sequential", "reference"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sieve"))
            .args(["--max-number", "1000000", "--stage-size", "100", "--mode", mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(128 + libc::SIGPIPE), "{mode}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{mode}");
    }
}

#[test]
fn bad_arguments_get_one_line_and_a_nonzero_exit() {
    let cases: &[(&[&str], &str)] = &[
        (&["--stage-size", "0"], "0 is not in 1..=4294967295"),
        (&["--stage-size", "4294967296"], "4294967296 is not in 1..=4294967295"),
        (&["--stage-size", "-1"], "-1 is not in 1..=4294967295"),
        (&["--queue-depth", "-3"], "-3 is not in 1..=1073741824"),
        (&["--max-number"], "a value is required for '--max-number <N>' but none was supplied"),
        (&["--max-number", "1"], "--max-number must be at least 2"),
        (&["--queue-depth", "0"], "0 is not in 1..=1073741824"),
        (&["--queue-depth", "99999999999"], "99999999999 is not in 1..=1073741824"),
        (&["--queue-depth", "1073741825"], "1073741825 is not in 1..=1073741824"),
        (&["--max-number", "ten"], "invalid value 'ten'"),
        (&["--max-number", "-5"], "invalid value '-5' for '--max-number <N>'"),
        (&["--stage-size", "99999999999"], "invalid value"),
        (
            &["--mode", "quantum"],
            "invalid value 'quantum' for '--mode <MODE>' (one of: pipeline, sequential, reference)",
        ),
        (&["--max-numbr", "5"], "unexpected argument '--max-numbr' found; did you mean --max-number?"),
        (&["--mode", "pipelin"], "(one of: pipeline, sequential, reference); did you mean pipeline?"),
        (&["--draw", "/nonexistent-dir/x.svg"], "cannot write /nonexistent-dir/x.svg"),
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
        (&["--max-number", "100000000", "--stage-size", "3"], "needs at least 1809561 stage processes, "),
        // π(N) itself, where its lower bound (62,052) would have let the run start.
        (&["--max-number", "850000", "--stage-size", "1"], "needs at least 67617 stage processes, "),
        (
            &["--max-number", "18446744073709551614", "--stage-size", "4294967295"],
            "needs at least 96817626 stage processes, ",
        ),
        (
            &["--max-number", "18446744073709551614", "--stage-size", "4294967295", "--quiet"],
            ": no stage size fits; a smaller N would",
        ),
        (&["--json", "--stats"], "cannot be used with '--stats'"),
        // ~3 TiB of rings (~400 of 8 GiB): beyond any machine, refused before anything is made,
        // while its stages fit the processes any machine can start (checked
        // below to be refused, so that this case can never start such a run).
        (
            &["--max-number", "1000000000000", "--stage-size", "100000000", "--queue-depth", "1073741824"],
            "a queue depth of at most",
        ),
        (&["--mode", "sequential", "--draw", "/tmp/x.svg"], "use it with --mode pipeline"),
        (&["--mode", "reference", "--stats"], "the reference sieve has none: use another --mode"),
    ];
    let huge = PipelineConfig {
        max_number: 1_000_000_000_000,
        stage_size: 100_000_000,
        queue_depth: 1 << 30,
        sqrt_cutoff: false,
    };
    assert!(sieve::shared_memory::shortfall(&huge).is_some(), "the machine can tell what it has free");
    for (args, needle) in cases {
        let out = sieve(args);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with("sieve: ") && err.contains(needle), "{args:?}: {err:?}");
        assert!(!err.contains("panicked"), "{args:?}: no panic");
        assert!(stdout(&out).is_empty(), "{args:?}: no output");
    }
}

/// A stage whose work fails (here: its next queue finds `/dev/shm` full) ends the run with one
/// line that names it and says why, exit 1, and nothing left. Runs in a private mount
/// namespace whose `/dev/shm` is a 6 MiB tmpfs: the rings alone would fit (so the run is not
/// refused up front), but with the run's 4.5 MiB table and spawn queue beside them a stage
/// some forty deep cannot make its child's ring. Needs root and `unshare` (CI has both).
#[test]
fn a_stage_that_fails_ends_the_run_with_one_line_saying_why() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and unshare for a private /dev/shm");
        return;
    }
    // A picture that was there stays as it was; one the run had to create is removed again.
    let dir = std::env::temp_dir().join(format!("sieve-failing-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (kept, made) = (dir.join("kept.svg"), dir.join("made.svg"));
    std::fs::write(&kept, "an earlier picture").unwrap();
    let out = a_run_that_runs_out_of_dev_shm(&kept);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("sieve: stage "), "names the stage: {err:?}");
    assert!(err.contains("(sieve-stage, pid ") && err.contains("failed: exit code 1: no space left for a"), "{err:?}");
    assert_eq!(stdout(&out), "", "no output, and nothing left in /dev/shm");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "an earlier picture", "a failed run leaves it alone");
    let again = a_run_that_runs_out_of_dev_shm(&made);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(!made.exists(), "a picture the failed run created is removed");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A run that needs more processes than its pids cgroup allows (a container's
/// `--pids-limit`, a unit's `TasksMax`) is refused up front, naming the limit, instead of
/// failing stages in; a run that fits runs under the same limit. Needs root.
#[test]
fn a_run_beyond_the_pids_cgroups_limit_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to make a pids cgroup");
        return;
    }
    let cgroup = match LimitedCgroup::pids(&format!("sieve-pids-limit-{}", std::process::id()), 40) {
        Ok(cgroup) => cgroup,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let dir = cgroup.dir().to_owned();
    // The shell moves itself into the cgroup, then becomes the sieve.
    let in_cgroup = |args: &[&str]| {
        Command::new("sh")
            .args(["-c", "echo $$ > \"$1/cgroup.procs\" && shift && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_sieve"))
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    let refused = in_cgroup(&["--max-number", "100000", "--stage-size", "100", "--quiet"]);
    let fits = in_cgroup(&["--max-number", "10000", "--stage-size", "100", "--quiet"]);
    drop(cgroup);
    assert!(!dir.exists(), "the test's cgroup is removed");
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("the run needs at least 96 stage processes, but this machine can start only "), "{err}");
    assert!(err.contains(&format!("(pids.max of the cgroup {})", dir.display())), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(fits.status.success(), "{}", stderr(&fits));
    assert!(stdout(&fits).starts_with("count=1229 "), "{}", stdout(&fits));
}

/// A `/dev/shm` mounted without a size limit reports no blocks at all (`statvfs`): the run is
/// judged on memory alone, not refused for "0 B free". Needs root and `unshare`, as above.
#[test]
fn an_unlimited_dev_shm_does_not_read_as_full() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and unshare for a private /dev/shm");
        return;
    }
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=0 tmpfs /dev/shm || exit 99; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sieve"))
        .args(["--max-number", "10000", "--stage-size", "100", "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("count=1229 "), "{}", stdout(&out));
}

/// A run under a memory cgroup's limit that its rings cannot fit in is refused up front, however
/// much `/dev/shm` and the machine have free (before the check, such a run had the kernel's
/// OOM killer end it, and its segments stayed behind). Runs the sieve in a child of this
/// process's memory cgroup limited to 64 MiB; needs root and a writable cgroup file system.
#[test]
fn a_run_beyond_the_memory_cgroups_limit_is_refused() {
    let cgroup = match LimitedCgroup::new(&format!("sieve-cli-{}", std::process::id()), 64 << 20) {
        Ok(cgroup) => cgroup,
        Err(why) => return eprintln!("skipped: {why}"),
    };
    let in_cgroup = |args: &[&str]| {
        Command::new("sh")
            .arg("-c")
            .arg("echo $$ > \"$0/cgroup.procs\" || exit 99; exec \"$@\"")
            .arg(cgroup.dir())
            .arg(env!("CARGO_BIN_EXE_sieve"))
            .args(args)
            .output()
            .unwrap()
    };
    // 786 rings of 516 KiB: ~396 MiB.
    let refused = in_cgroup(&["--max-number", "1000000", "--stage-size", "100", "--queue-depth", "65536", "--quiet"]);
    let fits = in_cgroup(&["--max-number", "100000", "--stage-size", "100", "--queue-depth", "1024", "--quiet"]);
    let dir = cgroup.dir().to_owned();
    drop(cgroup);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains("a queue depth of at most"), "{err}");
    // What it found free is what the cgroup allows, not what /dev/shm or the machine has.
    let free = err.split(" more than the ").nth(1).and_then(|rest| rest.split(" free").next()).unwrap_or("");
    let bytes = free.split_once(' ').and_then(|(number, unit)| {
        let scale = ["B", "KiB", "MiB", "GiB", "TiB"].iter().position(|u| *u == unit)?;
        Some(number.parse::<f64>().ok()? * 1024f64.powi(scale as i32))
    });
    assert!(bytes.is_some_and(|b| b <= (64 << 20) as f64), "{free:?} free under a 64 MiB limit: {err}");
    assert!(fits.status.success(), "a run that fits is not refused: {}", stderr(&fits));
    assert!(stdout(&fits).starts_with("count=9592 "), "{}", stdout(&fits));
    assert!(!dir.exists(), "the test's cgroup is removed");
}

/// A run with 80 rings of 36 KiB (79 stages of 1,000 primes, depth 4096, and the sink) in a private mount
/// namespace whose `/dev/shm` is a 6 MiB tmpfs: with the run's table, some forty rings fit.
/// What the run left in that `/dev/shm` (which goes with the namespace) is listed on stdout.
fn a_run_that_runs_out_of_dev_shm(picture: &std::path::Path) -> Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=6m tmpfs /dev/shm || exit 99; \"$0\" \"$@\"; code=$?; ls -A /dev/shm; exit $code")
        .arg(env!("CARGO_BIN_EXE_sieve"))
        .args(["--max-number", "1000000", "--stage-size", "1000", "--queue-depth", "4096", "--quiet", "--draw"])
        .arg(picture)
        .output()
        .unwrap()
}

fn children_of(parent: u32) -> Vec<u32> {
    let pids = std::fs::read_dir("/proc").unwrap().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok());
    pids.filter(|&pid| shm_queue::ProcessStatus::read(pid).is_some_and(|s| s.parent == parent)).collect()
}

fn segments_of(root: u32) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.starts_with(&format!("shmpipe.{root}.")))
        .collect()
}

/// Starts a long run and returns it once its stages exist: (child, server pid, stage pids).
fn long_run(extra: &[&str]) -> (std::process::Child, u32, Vec<u32>) {
    long_run_with(extra, |_| {})
}

/// [`long_run`], with the command adjusted first.
fn long_run_with(extra: &[&str], adjust: impl FnOnce(&mut Command)) -> (std::process::Child, u32, Vec<u32>) {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_sieve"));
    command
        .args(["--max-number", "100000000", "--stage-size", "1000", "--quiet"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // The sieve keeps ignoring what its caller ignores, as a shell's background job ignores
    // SIGINT and SIGQUIT (and these tests may run in one): the runs here start from defaults.
    // SAFETY: only `signal`, async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP] {
                libc::signal(signal, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    adjust(&mut command);
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the run never grew stages");
        if let Some(server) = children_of(child.id()).first().copied() {
            let stages = children_of(server);
            if stages.len() >= 4 {
                return (child, server, stages);
            }
        }
        if child.try_wait().unwrap().is_some() {
            panic!("the run ended before it could be interrupted");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_nothing_left(root: u32, server: u32, stages: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stages.iter().chain([&server]).any(|p| std::path::Path::new(&format!("/proc/{p}")).exists()) {
        assert!(Instant::now() < deadline, "processes of the run are left");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(segments_of(root).is_empty(), "segments left: {:?}", segments_of(root));
}

#[test]
fn kill_9_of_a_stage_ends_the_run_with_a_clear_error_and_leaves_nothing() {
    let (child, server, stages) = long_run(&[]);
    let victim = stages[stages.len() / 2];
    // SAFETY: a process of the run we started.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let root = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains(&format!("pid {victim}) failed: signal 9 (SIGKILL)")), "{err:?}");
    assert_nothing_left(root, server, &stages);
}

#[test]
fn sigint_to_the_root_exits_130_and_leaves_nothing() {
    let (child, server, stages) = long_run(&[]);
    let root = child.id();
    // SAFETY: the run we started.
    unsafe { libc::kill(root as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted by signal 2"));
    assert_nothing_left(root, server, &stages);
}

/// What a terminal sends to the whole process group when it closes (SIGHUP) or on Ctrl-\
/// (SIGQUIT): the root ends the run as for Ctrl-C, and nothing is left. (The server used to
/// die of them beside the root, and nobody removed the run's segments.)
#[test]
fn hangup_or_quit_to_the_process_group_exits_128_plus_signal_and_leaves_nothing() {
    use std::os::unix::process::CommandExt;
    for (signal, code) in [(libc::SIGHUP, 129), (libc::SIGQUIT, 131)] {
        let (child, server, stages) = long_run_with(&[], |command| {
            command.process_group(0);
        });
        let root = child.id();
        // SAFETY: signalling the process group of the run we started (its root leads it).
        unsafe { libc::kill(-(root as i32), signal) };
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert!(stderr(&out).contains(&format!("interrupted by signal {signal}")), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        assert_nothing_left(root, server, &stages);
    }
}

#[test]
fn sigterm_to_the_root_exits_143() {
    let (child, server, stages) = long_run(&["--queue-depth", "1024"]);
    let root = child.id();
    // SAFETY: the run we started.
    unsafe { libc::kill(root as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert_nothing_left(root, server, &stages);
}
