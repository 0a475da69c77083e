//! The original program's text output, byte for byte.
//!
//! The Python example prints `Prime numbers:`, then each prime as `f'{prime} '` without a
//! newline, breaking the line once the characters printed on it exceed 80, then a final
//! newline; then every stage prints `\nprimes in pipeline stage are [2, 3, 5]` (a Python list
//! repr) when it shuts down, deepest stage first because each stage joins its child before
//! printing.
//!
//! One thing is deliberately fixed here that the original leaves to chance: its stages print
//! from other processes while main may still be draining the sink queue, so in real runs the
//! last stage's line can land before main's final newline, or even in the middle of the prime
//! list. This module always produces the causal order: all of main's output, then the stage
//! lines, deepest first.

use std::io::{self, Write};

/// The heading main prints before the primes (without its newline).
pub const HEADER: &str = "Prime numbers:";

/// A line is broken once this many characters have been printed on it and one more arrives.
const WRAP_AFTER: usize = 80;

/// Prints primes as they arrive, wrapping lines exactly as the original main does.
///
/// No flushing per prime (the original flushes each one): wrap a locked stdout in a
/// `BufWriter` for throughput, or call [`PrimePrinter::flush`] when interactivity matters.
#[derive(Debug)]
pub struct PrimePrinter<W: Write> {
    /// Destination.
    out: W,
    /// The original's `count`: characters printed on the current line.
    column: usize,
}

impl<W: Write> PrimePrinter<W> {
    /// Writes the `Prime numbers:` line and returns a printer ready for the primes.
    ///
    /// # Errors
    /// Any error writing to `out`.
    pub fn start(mut out: W) -> io::Result<Self> {
        out.write_all(HEADER.as_bytes())?;
        out.write_all(b"\n")?;
        Ok(Self { out, column: 0 })
    }

    /// Prints one prime followed by a space, then a newline if the line is now over 80 chars.
    ///
    /// # Errors
    /// Any error writing to the destination.
    pub fn push(&mut self, prime: u64) -> io::Result<()> {
        let mut buf = [0u8; 21];
        let text = decimal_with_space(prime, &mut buf);
        self.out.write_all(text)?;
        self.column += text.len();
        if self.column > WRAP_AFTER {
            self.column = 0;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Flushes the destination.
    ///
    /// # Errors
    /// Any error flushing it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Prints the final newline (always, even right after a wrap, as the original does),
    /// flushes, and gives the destination back.
    ///
    /// # Errors
    /// Any error writing to or flushing the destination.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// `f'{n} '` into `buf`, without going through the formatting machinery (this runs once per
/// prime, possibly tens of millions of times).
fn decimal_with_space(mut n: u64, buf: &mut [u8; 21]) -> &[u8] {
    // u64::MAX has 20 digits; the space takes the 21st byte.
    let mut start = buf.len() - 1;
    buf[start] = b' ';
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Writes main's whole output: the heading, the wrapped primes and the final newline.
///
/// # Errors
/// Any error writing to `out`.
pub fn write_primes_line_wrapped(out: &mut impl Write, primes: &[u64]) -> io::Result<()> {
    let mut printer = PrimePrinter::start(out)?;
    for &p in primes {
        printer.push(p)?;
    }
    printer.finish().map(|_| ())
}

/// The Python `repr` of a list of ints: `[2, 3, 5]`, `[]` when empty.
pub fn python_list(primes: &[u64]) -> String {
    let items: Vec<String> = primes.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Writes what one stage prints at shutdown: `\nprimes in pipeline stage are [..]\n`.
///
/// # Errors
/// Any error writing to `out`.
pub fn write_stage_line(out: &mut impl Write, primes: &[u64]) -> io::Result<()> {
    writeln!(out, "\nprimes in pipeline stage are {}", python_list(primes))
}

/// Writes every stage's line in the original's order: `stages` is given stage 0 first, and the
/// deepest (last created) stage prints first.
///
/// # Errors
/// Any error writing to `out`.
pub fn write_stage_lines(out: &mut impl Write, stages: &[Vec<u64>]) -> io::Result<()> {
    for stage in stages.iter().rev() {
        write_stage_line(out, stage)?;
    }
    Ok(())
}

/// The whole output of the original for a run, as one string: main's part, then the stages'.
pub fn render_output(primes: &[u64], stages: &[Vec<u64>]) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_primes_line_wrapped(&mut out, primes).and_then(|()| write_stage_lines(&mut out, stages));
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequential::run_sequential;

    /// Generated by running the original's logic in Python (N = 100, stage_size = 3), with the
    /// stage lines after main's final newline.
    const EXPECTED_N100_S3: &str = "Prime numbers:\n\
        2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97 \n\
        \nprimes in pipeline stage are [97]\n\
        \nprimes in pipeline stage are [79, 83, 89]\n\
        \nprimes in pipeline stage are [67, 71, 73]\n\
        \nprimes in pipeline stage are [53, 59, 61]\n\
        \nprimes in pipeline stage are [41, 43, 47]\n\
        \nprimes in pipeline stage are [29, 31, 37]\n\
        \nprimes in pipeline stage are [17, 19, 23]\n\
        \nprimes in pipeline stage are [7, 11, 13]\n\
        \nprimes in pipeline stage are [2, 3, 5]\n";

    /// N = 107, stage_size = 3: the last prime overflows the line, so a wrap newline is
    /// followed by the final newline (an empty line).
    const EXPECTED_N107_S3: &str = "Prime numbers:\n\
        2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97 101 103 107 \n\
        \n\
        \nprimes in pipeline stage are [107]\n\
        \nprimes in pipeline stage are [97, 101, 103]\n\
        \nprimes in pipeline stage are [79, 83, 89]\n\
        \nprimes in pipeline stage are [67, 71, 73]\n\
        \nprimes in pipeline stage are [53, 59, 61]\n\
        \nprimes in pipeline stage are [41, 43, 47]\n\
        \nprimes in pipeline stage are [29, 31, 37]\n\
        \nprimes in pipeline stage are [17, 19, 23]\n\
        \nprimes in pipeline stage are [7, 11, 13]\n\
        \nprimes in pipeline stage are [2, 3, 5]\n";

    /// Main's part for N = 1000 (any stage size): several wrapped lines.
    const EXPECTED_PRIMES_N1000: &str = "Prime numbers:\n\
        2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97 101 103 107 \n\
        109 113 127 131 137 139 149 151 157 163 167 173 179 181 191 193 197 199 211 223 227 \n\
        229 233 239 241 251 257 263 269 271 277 281 283 293 307 311 313 317 331 337 347 349 \n\
        353 359 367 373 379 383 389 397 401 409 419 421 431 433 439 443 449 457 461 463 467 \n\
        479 487 491 499 503 509 521 523 541 547 557 563 569 571 577 587 593 599 601 607 613 \n\
        617 619 631 641 643 647 653 659 661 673 677 683 691 701 709 719 727 733 739 743 751 \n\
        757 761 769 773 787 797 809 811 821 823 827 829 839 853 857 859 863 877 881 883 887 \n\
        907 911 919 929 937 941 947 953 967 971 977 983 991 997 \n";

    #[test]
    fn full_output_n100_s3_is_byte_exact() {
        let r = run_sequential(100, 3, false);
        assert_eq!(render_output(&r.primes, &r.stages), EXPECTED_N100_S3);
    }

    #[test]
    fn full_output_n107_s3_wraps_on_the_last_prime() {
        let r = run_sequential(107, 3, false);
        assert_eq!(render_output(&r.primes, &r.stages), EXPECTED_N107_S3);
    }

    #[test]
    fn streaming_printer_matches_for_n1000() {
        let r = run_sequential(1000, 10, false);
        let mut printer = PrimePrinter::start(Vec::new()).expect("Vec write");
        for &p in &r.primes {
            printer.push(p).expect("Vec write");
        }
        let bytes = printer.finish().expect("Vec write");
        assert_eq!(String::from_utf8(bytes).expect("ASCII"), EXPECTED_PRIMES_N1000);
    }

    #[test]
    fn only_two() {
        let r = run_sequential(2, 3, false);
        assert_eq!(render_output(&r.primes, &r.stages), "Prime numbers:\n2 \n\nprimes in pipeline stage are [2]\n");
    }

    #[test]
    fn list_repr_and_decimal() {
        assert_eq!(python_list(&[]), "[]");
        assert_eq!(python_list(&[7]), "[7]");
        assert_eq!(python_list(&[2, 3, 5]), "[2, 3, 5]");
        let mut buf = [0u8; 21];
        assert_eq!(decimal_with_space(0, &mut buf), b"0 ");
        assert_eq!(decimal_with_space(u64::MAX, &mut buf), b"18446744073709551615 ");
        let mut out = Vec::new();
        write_stage_line(&mut out, &[2, 3]).expect("Vec write");
        assert_eq!(out, b"\nprimes in pipeline stage are [2, 3]\n");
    }
}
