//! A progress line on stderr for long runs, only when stderr is a terminal.
//!
//! Progress is measured by the primes reaching the root: the largest so far against N. Nothing
//! is drawn for the first second (short runs stay quiet), when stderr is a file or a pipe, nor
//! when the primes themselves are being printed to the terminal (the line would break into
//! them). It is erased when the run ends, however it ends.

use std::io::Write;
use std::time::{Duration, Instant};

/// Draws `[#####     ] 45%  4500000/10000000` on stderr, at most ten times a second.
#[derive(Debug)]
pub struct Progress {
    max_number: u64,
    started: Instant,
    last_draw: Option<Instant>,
    enabled: bool,
    calls: u32,
}

const QUIET_FOR: Duration = Duration::from_secs(1);
const EVERY: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

impl Progress {
    /// A progress line towards `max_number`, drawn only if stderr is a terminal and the
    /// primes are not printed to one (`primes_on_stdout`: the run prints them on stdout).
    pub fn new(max_number: u64, primes_on_stdout: bool) -> Self {
        // SAFETY: isatty only inspects the descriptor.
        let tty = |fd| unsafe { libc::isatty(fd) } == 1;
        Self::with_terminal(max_number, draws(tty(libc::STDERR_FILENO), tty(libc::STDOUT_FILENO), primes_on_stdout))
    }

    /// A progress line that is never drawn.
    pub fn off() -> Self {
        Self::with_terminal(0, false)
    }

    fn with_terminal(max_number: u64, enabled: bool) -> Self {
        Self { max_number, started: Instant::now(), last_draw: None, enabled, calls: 0 }
    }

    /// Notes that `value` (a prime) has reached the root.
    #[inline]
    pub fn tick(&mut self, value: u64) {
        if !self.enabled {
            return;
        }
        // Look at the clock once every 1024 primes: ticks come at memory speed.
        self.calls = self.calls.wrapping_add(1);
        if !self.calls.is_multiple_of(1024) {
            return;
        }
        let now = Instant::now();
        if now - self.started < QUIET_FOR || self.last_draw.is_some_and(|t| now - t < EVERY) {
            return;
        }
        self.last_draw = Some(now);
        let _ = std::io::stderr().write_all(self.line(value).as_bytes());
    }

    fn line(&self, value: u64) -> String {
        let fraction = if self.max_number == 0 { 1.0 } else { (value as f64 / self.max_number as f64).min(1.0) };
        let filled = (fraction * WIDTH as f64) as usize;
        format!(
            "\r[{}{}] {:>3}%  {value}/{}",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            (fraction * 100.0) as u32,
            self.max_number
        )
    }

    /// Erases the line, if one was drawn.
    pub fn finish(&mut self) {
        if self.last_draw.take().is_some() {
            let _ = std::io::stderr().write_all(format!("\r{}\r", " ".repeat(WIDTH + 50)).as_bytes());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A run that fails must not leave a half line for its error message to follow.
        self.finish();
    }
}

/// Whether to draw: on a terminal, unless the primes are going to a terminal too.
fn draws(stderr_tty: bool, stdout_tty: bool, primes_on_stdout: bool) -> bool {
    stderr_tty && !(primes_on_stdout && stdout_tty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_the_fraction_done() {
        let p = Progress::with_terminal(1000, true);
        assert_eq!(p.line(450), format!("\r[{}{}]  45%  450/1000", "#".repeat(13), " ".repeat(17)));
        assert!(p.line(2000).contains("100%"), "never past the end");
    }

    #[test]
    fn drawn_only_on_a_terminal_that_the_primes_do_not_go_to() {
        assert!(draws(true, false, true), "primes to a file or pipe");
        assert!(draws(true, true, false), "--quiet or --json");
        assert!(!draws(true, true, true), "primes on the terminal");
        assert!(!draws(false, false, false), "stderr is not a terminal");
    }

    #[test]
    fn nothing_is_drawn_without_a_terminal() {
        let mut p = Progress::with_terminal(10, false);
        for v in 0..10_000 {
            p.tick(v);
        }
        assert!(p.last_draw.is_none());
    }
}
