//! `sieve`: the dynamic prime-number pipeline of the DragonHPC cookbook, on shmpipe.
//!
//! ```text
//! sieve --max-number 100 --stage-size 3
//! ```
//! prints what the original prints. See `sieve --help` and the README.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use sieve::draw::{draw_svg, StageDrawing};
use sieve::output::{write_stage_lines, PrimePrinter};
use sieve::pipeline::{preflight, run_pipeline, PipelineConfig, PipelineError, StageReport};
use sieve::progress::Progress;
use sieve::summary::{first_difference, EndStats, QueueStats, RunEnds, StageStats, Summary};

/// The dynamic prime-number pipeline: a source feeds 3..=N through a chain of stage processes,
/// each holding up to S primes and starting the next stage when full.
#[derive(Debug, Parser)]
#[command(name = "sieve", version, about)]
struct Cli {
    // The numbers take a leading `-` as a value, so that `-5` is an invalid value, not an
    // unknown flag.
    /// N: the source feeds 3..=N (at least 2).
    #[arg(long, default_value_t = 100, value_name = "N", allow_negative_numbers = true)]
    max_number: u64,
    /// S: primes each stage holds before it starts the next (at least 1).
    // The range goes in the parser, so that every out-of-range value gets the same message.
    #[arg(long, default_value_t = 3, value_name = "S", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    stage_size: u32,
    /// D: items each queue holds (the original's 10; larger for throughput).
    #[arg(long, default_value_t = 10, value_name = "D", allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=shm_queue::MAX_CAPACITY as i64))]
    queue_depth: u32,
    /// How to run: every stage a process, one process without queues, or a plain sieve.
    #[arg(long, value_enum, default_value_t = Mode::Pipeline)]
    mode: Mode,
    /// Stages whose first prime p has p·p > N forward without testing (same output, less work).
    #[arg(long)]
    sqrt_cutoff: bool,
    /// Check the primes against the reference sieve; a mismatch exits 1.
    #[arg(long)]
    verify: bool,
    /// Print one summary line instead of the primes.
    #[arg(long, conflicts_with = "json")]
    quiet: bool,
    /// Print one JSON object instead of the primes.
    #[arg(long)]
    json: bool,
    /// Print a table of per-stage statistics after the output (`--json` has them already).
    #[arg(long, conflicts_with = "json")]
    stats: bool,
    /// Write an SVG picture of the grown pipeline to FILE.
    #[arg(long, value_name = "FILE")]
    draw: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Every stage its own process, numbers through shared-memory rings.
    Pipeline,
    /// The same stage algorithm in one process, without queues (the speed-up baseline).
    Sequential,
    /// A segmented sieve of Eratosthenes (no stages).
    Reference,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Pipeline => "pipeline",
            Self::Sequential => "sequential",
            Self::Reference => "reference",
        }
    }
}

/// What a run produced.
#[derive(Default)]
struct Outcome {
    primes: Vec<u64>,
    count: usize,
    sum: u128,
    largest: Option<u64>,
    stages: Vec<StageReport>,
    /// The source's and main's queue ends: pipeline mode only.
    ends: Option<RunEnds>,
}

/// A failure, with the exit status it maps to.
struct Failure {
    message: String,
    code: u8,
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        // The reader went away (`sieve | head`): end as quietly as a program that SIGPIPE
        // killed, with the status a shell gives one (the run is still cleaned up).
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Self { message: String::new(), code: 128 + libc::SIGPIPE as u8 };
        }
        Self { message: format!("writing output: {e}"), code: 1 }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sieve: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("sieve: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

/// clap's error in one line: its first, with the valid values and the argument or value it
/// suggests (which clap puts on lines of their own) brought into it.
fn one_line(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = error.to_string();
    let mut line = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_owned();
    // A missing value comes with an empty list of valid values: nothing to add then.
    if let Some(ContextValue::Strings(values)) = error.get(ContextKind::ValidValue) {
        if !values.is_empty() {
            line.push_str(&format!(" (one of: {})", values.join(", ")));
        }
    }
    let suggested = error.get(ContextKind::SuggestedArg).or_else(|| error.get(ContextKind::SuggestedValue));
    match suggested {
        Some(ContextValue::String(argument)) => line.push_str(&format!("; did you mean {argument}?")),
        Some(ContextValue::Strings(arguments)) => line.push_str(&format!("; did you mean {}?", arguments.join(" or "))),
        _ => {}
    }
    line
}

/// The `--draw` file. Opened before the run so that a bad path fails first, but emptied and
/// written only once the run has succeeded: a failed run leaves a file that was there as it
/// was, and removes one it had to create.
struct Picture {
    file: std::fs::File,
    path: std::path::PathBuf,
    created: bool,
    written: bool,
}

impl Picture {
    fn open(path: &std::path::Path) -> io::Result<Self> {
        let created = !path.exists();
        let file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path)?;
        Ok(Self { file, path: path.to_owned(), created, written: false })
    }

    fn write(&mut self, svg: &[u8]) -> Result<(), Failure> {
        self.written = true;
        let failed = |e: io::Error| Failure { message: format!("writing {}: {e}", self.path.display()), code: 1 };
        // Only a regular file has a length to cut: `/dev/null` or a pipe is written as it is.
        if self.file.metadata().map_err(failed)?.is_file() {
            self.file.set_len(0).map_err(failed)?;
        }
        self.file.write_all(svg).map_err(failed)
    }
}

impl Drop for Picture {
    fn drop(&mut self) {
        if self.created && !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The pipeline the command line asks for.
fn pipeline_config(cli: &Cli) -> PipelineConfig {
    PipelineConfig {
        max_number: cli.max_number,
        stage_size: cli.stage_size as usize,
        queue_depth: cli.queue_depth as usize,
        sqrt_cutoff: cli.sqrt_cutoff,
    }
}

fn usage(message: String) -> Failure {
    Failure { message, code: 2 }
}

fn check(cli: &Cli) -> Result<(), Failure> {
    if cli.max_number < 2 {
        return Err(usage(format!("--max-number must be at least 2, got {}", cli.max_number)));
    }
    if cli.draw.is_some() && !matches!(cli.mode, Mode::Pipeline) {
        return Err(usage("--draw pictures the pipeline's processes and queues: use it with --mode pipeline".into()));
    }
    if cli.stats && matches!(cli.mode, Mode::Reference) {
        return Err(usage("--stats tabulates the stages, and the reference sieve has none: use another --mode".into()));
    }
    if cli.max_number == u64::MAX {
        return Err(usage("--max-number must be below 2^64 - 1".into()));
    }
    if matches!(cli.mode, Mode::Pipeline) {
        // The same checks `run_pipeline` makes, here before any output, worded for the flags.
        match preflight(&pipeline_config(cli)) {
            Ok(()) => {}
            Err(PipelineError::Stages(shortfall)) => {
                return Err(usage(format!(
                    "--max-number {} with --stage-size {}: {shortfall}",
                    cli.max_number, cli.stage_size
                )));
            }
            Err(PipelineError::SharedMemory(shortfall)) => {
                return Err(usage(format!("--queue-depth {}: {shortfall}", cli.queue_depth)));
            }
            Err(other) => return Err(usage(other.to_string())),
        }
    }
    Ok(())
}

fn run(cli: &Cli) -> Result<(), Failure> {
    check(cli)?;
    // Open the picture's file first: a bad path is an error before any work, not after.
    let mut picture = match &cli.draw {
        Some(path) => Some(Picture::open(path).map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?),
        None => None,
    };
    let streaming = !cli.quiet && !cli.json;
    let stdout = io::stdout();
    // On a terminal the primes show a line at a time as they come (the original flushes every
    // one); into a file or a pipe they go in 8 KiB writes. A zero-sized buffer hands each write
    // to stdout's own, which flushes at every line break.
    let buffer = if stdout.is_terminal() { 0 } else { 8 * 1024 };
    let mut out = BufWriter::with_capacity(buffer, stdout.lock());
    let started = Instant::now();
    let outcome = execute(cli, streaming.then_some(&mut out))?;
    let wall_s = started.elapsed().as_secs_f64();
    if streaming {
        let stage_primes: Vec<Vec<u64>> = outcome.stages.iter().map(|s| s.primes.clone()).collect();
        write_stage_lines(&mut out, &stage_primes)?;
    }
    let summary = Summary {
        count: outcome.count,
        sum: outcome.sum,
        largest: outcome.largest,
        stages: outcome.stages.len(),
        max_number: cli.max_number,
        stage_size: cli.stage_size as usize,
        queue_depth: cli.queue_depth as usize,
        mode: cli.mode.name().into(),
        wall_s,
        cpu_s: cpu_seconds(),
        tests: outcome.stages.iter().map(|s| s.tests_done).sum(),
        ends: outcome.ends,
    };
    let per_stage: Vec<StageStats> = outcome.stages.iter().map(|s| stage_stats(s, cli.mode)).collect();
    if cli.quiet {
        writeln!(out, "{}", summary.to_quiet_line())?;
    }
    if cli.json {
        writeln!(out, "{}", summary.to_json(&per_stage))?;
    }
    if cli.stats {
        write_stats_table(&mut out, &per_stage, outcome.ends)?;
    }
    out.flush()?;
    if let Some(picture) = picture.as_mut() {
        let drawings: Vec<StageDrawing> = outcome
            .stages
            .iter()
            .map(|s| StageDrawing {
                primes: s.primes.clone(),
                items_in: s.items_in,
                items_out: s.items_out,
                blocked_ns: s.blocked_full_ns + s.blocked_empty_ns,
            })
            .collect();
        // `--draw` is refused outside pipeline mode, the one with ends.
        let ends = outcome.ends.unwrap_or_default();
        picture.write(draw_svg(&drawings, &ends).as_bytes())?;
    }
    if cli.verify {
        let reference = sieve::reference::primes_up_to(cli.max_number);
        if let Some((index, ours, theirs)) = first_difference(&outcome.primes, &reference) {
            return Err(Failure {
                message: format!(
                    "verify: results differ from the reference at prime #{} (1 is the first): {} here, {} in the reference",
                    index + 1,
                    show(ours),
                    show(theirs)
                ),
                code: 1,
            });
        }
    }
    Ok(())
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "nothing".into(), |v| v.to_string())
}

/// Runs the chosen mode; prints primes to `out` as they come if given.
fn execute(cli: &Cli, out: Option<&mut BufWriter<io::StdoutLock<'_>>>) -> Result<Outcome, Failure> {
    let keep_all = cli.verify;
    let mut outcome = Outcome::default();
    let streaming = out.is_some();
    let mut printer = match out {
        Some(out) => Some(PrimePrinter::start(out)?),
        None => None,
    };
    let mut progress = Progress::new(cli.max_number, streaming);
    let mut take = |p: u64, outcome: &mut Outcome| -> io::Result<()> {
        progress.tick(p);
        outcome.count += 1;
        outcome.sum += u128::from(p);
        outcome.largest = Some(p);
        if keep_all {
            outcome.primes.push(p);
        }
        if let Some(printer) = printer.as_mut() {
            printer.push(p)?;
        }
        Ok(())
    };
    match cli.mode {
        Mode::Pipeline => {
            let config = pipeline_config(cli);
            let measured = run_pipeline(&config, |p| take(p, &mut outcome)).map_err(pipeline_failure)?;
            (outcome.stages, outcome.ends) = (measured.stages, Some(measured.ends));
        }
        Mode::Sequential => {
            let result = sieve::sequential::run_sequential_with(
                cli.max_number,
                cli.stage_size as usize,
                cli.sqrt_cutoff,
                |p| take(p, &mut outcome),
            )?;
            outcome.stages = result
                .stages
                .iter()
                .enumerate()
                .map(|(i, primes)| StageReport {
                    index: i as u64,
                    first_prime: primes.first().copied().unwrap_or(0),
                    primes: primes.clone(),
                    tests_done: result.stage_tests.get(i).copied().unwrap_or(0),
                    ..StageReport::default()
                })
                .collect();
        }
        Mode::Reference => sieve::reference::try_for_each_prime_up_to(cli.max_number, |p| take(p, &mut outcome))?,
    }
    if let Some(printer) = printer {
        printer.finish()?;
    }
    Ok(outcome)
}

fn pipeline_failure(e: PipelineError) -> Failure {
    let e = match e {
        PipelineError::Output(e) => return e.into(),
        e => e,
    };
    let code = match &e {
        // A shell's 128 + signal; the value comes from shared memory, so a scribbled one is 1.
        PipelineError::Runtime(runtime::RuntimeError::Interrupted(signal)) => {
            u8::try_from(*signal).ok().filter(|s| (1..128).contains(s)).map_or(1, |s| 128 + s)
        }
        _ => 1,
    };
    Failure { message: e.to_string(), code }
}

/// A stage's statistics; its queues' only in pipeline mode, the only one with queues.
fn stage_stats(s: &StageReport, mode: Mode) -> StageStats {
    let queues = matches!(mode, Mode::Pipeline).then_some(QueueStats {
        items_in: s.items_in,
        items_out: s.items_out,
        blocked_full_ns: s.blocked_full_ns,
        blocked_empty_ns: s.blocked_empty_ns,
        futex_waits: s.futex_waits,
    });
    StageStats {
        index: s.index as usize,
        first_prime: s.first_prime,
        primes_held: s.primes.len(),
        queues,
        tests_done: s.tests_done,
    }
}

fn write_stats_table(out: &mut impl Write, stages: &[StageStats], ends: Option<RunEnds>) -> io::Result<()> {
    writeln!(
        out,
        "\n{:>6} {:>12} {:>5} {:>12} {:>12} {:>14} {:>14} {:>8} {:>14}",
        "stage", "first", "held", "in", "out", "blocked_full", "blocked_empty", "waits", "tests"
    )?;
    // A mode without queues measured none of theirs: "-", not zeros.
    let shown = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    // The run's ends, each on the side of its one queue: the source writes, main reads.
    let end_row = |out: &mut dyn Write, name: &str, end: EndStats, writes: bool| {
        let (items, blocked) = (end.items.to_string(), sieve::draw::format_ns(end.blocked_ns));
        let (items_in, items_out) = if writes { ("-", items.as_str()) } else { (items.as_str(), "-") };
        let (full, empty) = if writes { (blocked.as_str(), "-") } else { ("-", blocked.as_str()) };
        writeln!(
            out,
            "{name:>6} {:>12} {:>5} {items_in:>12} {items_out:>12} {full:>14} {empty:>14} {:>8} {:>14}",
            "-", "-", end.futex_waits, "-"
        )
    };
    if let Some(ends) = ends {
        end_row(out, "source", ends.source, true)?;
    }
    for s in stages {
        let q = s.queues;
        writeln!(
            out,
            "{:>6} {:>12} {:>5} {:>12} {:>12} {:>14} {:>14} {:>8} {:>14}",
            s.index,
            s.first_prime,
            s.primes_held,
            shown(q.map(|q| q.items_in.to_string())),
            shown(q.map(|q| q.items_out.to_string())),
            shown(q.map(|q| sieve::draw::format_ns(q.blocked_full_ns))),
            shown(q.map(|q| sieve::draw::format_ns(q.blocked_empty_ns))),
            shown(q.map(|q| q.futex_waits.to_string())),
            s.tests_done
        )?;
    }
    if let Some(ends) = ends {
        end_row(out, "main", ends.main, false)?;
    }
    Ok(())
}

/// CPU seconds (user + system) of this process and every reaped descendant: the run's stages
/// are reaped by its fork server, which this process reaps.
fn cpu_seconds() -> f64 {
    let seconds = |who| {
        // SAFETY: an all-zero rusage is a valid out-parameter.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: usage is a valid out-pointer.
        unsafe { libc::getrusage(who, &mut usage) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(usage.ru_utime) + tv(usage.ru_stime)
    };
    seconds(libc::RUSAGE_SELF) + seconds(libc::RUSAGE_CHILDREN)
}
