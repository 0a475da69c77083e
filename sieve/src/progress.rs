//! A progress bar on stderr for long runs, only when stderr is a terminal.
//!
//! Progress is measured by the primes reaching the root: the largest so far against N. Nothing
//! is drawn for the first second (short runs stay quiet), when stderr is a file or a pipe, nor
//! when the primes themselves are being printed to the terminal (the bar would break into
//! them). It is erased when the run ends, however it ends. `indicatif` draws it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws `[#####     ]  45%  4500000/10000000` on stderr once a run has lasted a second.
///
/// The bar itself is made at its first draw, once the run has started, and never runs in the
/// processes the runtime forks (they carry only a copy of where it would draw).
#[derive(Debug)]
pub struct Progress {
    max_number: u64,
    started: Instant,
    /// Where a bar would be drawn; `None` once it is made, or if it is never to be drawn.
    target: Option<ProgressDrawTarget>,
    bar: Option<ProgressBar>,
    calls: u32,
}

const QUIET_FOR: Duration = Duration::from_secs(1);
const TEMPLATE: &str = "[{bar:30}] {percent:>3}%  {pos}/{len}";

impl Progress {
    /// A progress bar towards `max_number`, drawn only if stderr is a terminal and the primes
    /// are not printed to one (`primes_on_stdout`: the run prints them on stdout).
    pub fn new(max_number: u64, primes_on_stdout: bool) -> Self {
        let drawn = draws(std::io::stderr().is_terminal(), std::io::stdout().is_terminal(), primes_on_stdout);
        Self::drawing_to(max_number, drawn.then(ProgressDrawTarget::stderr), Instant::now())
    }

    fn drawing_to(max_number: u64, target: Option<ProgressDrawTarget>, started: Instant) -> Self {
        Self { max_number, started, target, bar: None, calls: 0 }
    }

    /// Notes that `value` (a prime) has reached the root.
    #[inline]
    pub fn tick(&mut self, value: u64) {
        if self.target.is_none() && self.bar.is_none() {
            return;
        }
        // Look at the clock once every 1024 primes: ticks come at memory speed. The bar
        // limits its own redraws (20 a second).
        self.calls = self.calls.wrapping_add(1);
        if !self.calls.is_multiple_of(1024) {
            return;
        }
        if self.bar.is_none() {
            if self.started.elapsed() < QUIET_FOR {
                return;
            }
            let Some(target) = self.target.take() else { return };
            self.bar = Some(self.make_bar(target));
        }
        if let Some(bar) = &self.bar {
            bar.set_position(value.min(self.max_number));
        }
    }

    fn make_bar(&self, target: ProgressDrawTarget) -> ProgressBar {
        // TEMPLATE is a constant that the tests draw: it cannot fail to parse.
        let style = ProgressStyle::with_template(TEMPLATE)
            .map_or_else(|_| ProgressStyle::default_bar(), |s| s.progress_chars("# "));
        ProgressBar::with_draw_target(Some(self.max_number), target).with_style(style)
    }

    /// Erases the bar, if one was drawn.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
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
    use std::io;
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    /// A terminal that records what is written to it; `|` marks a cleared line.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl Screen {
        fn text(&self) -> String {
            self.0.lock().unwrap().clone()
        }
        fn put(&self, s: &str) -> io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.put(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.put(s)
        }
        fn clear_line(&self) -> io::Result<()> {
            self.put("|")
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn on_screen(max_number: u64, started: Instant) -> (Progress, Screen) {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        (Progress::drawing_to(max_number, Some(target), started), screen)
    }

    /// A run that has lasted more than the quiet second.
    fn long_ago() -> Instant {
        Instant::now() - Duration::from_secs(2)
    }

    /// A run that has not lasted a second however slowly the test goes: the time since an
    /// instant yet to come reads as zero.
    fn just_now() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn tick_a_batch(p: &mut Progress, value: u64) {
        for _ in 0..1024 {
            p.tick(value);
        }
    }

    #[test]
    fn the_bar_shows_the_fraction_done_and_is_erased_at_the_end() {
        let (mut p, screen) = on_screen(1000, long_ago());
        tick_a_batch(&mut p, 450);
        let bar = format!("[{}{}]  45%  450/1000", "#".repeat(13), " ".repeat(17));
        assert!(screen.text().contains(&bar), "{:?}", screen.text());
        p.finish();
        assert!(screen.text().ends_with('|'), "the bar's line is cleared: {:?}", screen.text());
    }

    #[test]
    fn never_past_the_end() {
        let (mut p, screen) = on_screen(1000, long_ago());
        tick_a_batch(&mut p, 2000);
        assert!(screen.text().contains("100%  1000/1000"), "{:?}", screen.text());
    }

    #[test]
    fn a_run_that_ends_within_a_second_draws_nothing() {
        let (mut p, screen) = on_screen(1000, just_now());
        tick_a_batch(&mut p, 450);
        drop(p);
        assert_eq!(screen.text(), "");
    }

    #[test]
    fn dropping_a_drawn_bar_erases_it() {
        let (mut p, screen) = on_screen(1000, long_ago());
        tick_a_batch(&mut p, 450);
        drop(p);
        assert!(screen.text().ends_with('|'), "{:?}", screen.text());
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
        let mut p = Progress::drawing_to(10, None, long_ago());
        for v in 0..10_000 {
            p.tick(v);
        }
        assert!(p.bar.is_none());
    }
}
