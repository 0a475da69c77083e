//! Machine- and human-readable run summaries, and the comparison used by `--verify`.
//!
//! Benchmarks scrape one JSON object per run, so it is written by hand here (no serde in the
//! dependency set) with proper string escaping and `null` for non-finite floats, which JSON
//! cannot express.

use std::fmt::Write as _;

/// Counters of one pipeline stage at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageStats {
    /// Position in the chain, 0 for the stage started with 2.
    pub index: usize,
    /// The prime the stage was created with.
    pub first_prime: u64,
    /// How many primes the stage held at the end.
    pub primes_held: usize,
    /// The stage's queues, measured in pipeline mode only (`None` in the other modes, which
    /// have no queues: JSON `null`, not a zero that looks measured).
    pub queues: Option<QueueStats>,
    /// Divisibility tests the stage did (the original's `%` evaluations).
    pub tests_done: u64,
}

/// What one pipeline stage's queues saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Numbers the stage received (sentinel excluded).
    pub items_in: u64,
    /// Numbers the stage forwarded, to the sink and to its child together.
    pub items_out: u64,
    /// Nanoseconds spent blocked pushing into a full output queue.
    pub blocked_full_ns: u64,
    /// Nanoseconds spent blocked popping from an empty input queue.
    pub blocked_empty_ns: u64,
    /// FUTEX_WAIT calls made by the stage.
    pub futex_waits: u64,
}

/// What one end of a pipeline run saw: the source writing `3..=N` into stage 0's queue, or
/// main reading the sink. Read from the queues' own counters in shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndStats {
    /// Numbers the source wrote, or primes main received (the 2 it put first included).
    pub items: u64,
    /// Nanoseconds blocked: the source on a full queue, main on an empty sink.
    pub blocked_ns: u64,
    /// FUTEX_WAIT calls made by that end.
    pub futex_waits: u64,
}

/// A pipeline run's two ends, besides its stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunEnds {
    /// The source.
    pub source: EndStats,
    /// Main, the sink's reader.
    pub main: EndStats,
}

/// The headline numbers of a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Primes received by the sink, including the initial 2.
    pub count: usize,
    /// Their sum (u128 so that no limit can overflow it).
    pub sum: u128,
    /// The largest prime received, if any.
    pub largest: Option<u64>,
    /// Number of pipeline stages created.
    pub stages: usize,
    /// The `max_number` (N) of the run.
    pub max_number: u64,
    /// The `stage_size` (S) of the run.
    pub stage_size: usize,
    /// Capacity of each queue (`MAX_QUEUE_DEPTH` of the original).
    pub queue_depth: usize,
    /// How the run was executed, e.g. `pipeline` or `sequential`.
    pub mode: String,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds, all processes together.
    pub cpu_s: f64,
    /// Divisibility tests done by all stages together (0 for the reference sieve).
    pub tests: u64,
    /// The source's and main's queue ends, in pipeline mode only (JSON `null` otherwise).
    pub ends: Option<RunEnds>,
}

impl Summary {
    /// One JSON object on a single line (no trailing newline), with `per_stage` as the
    /// `"per_stage"` array.
    pub fn to_json(&self, per_stage: &[StageStats]) -> String {
        let mut s = String::with_capacity(256 + per_stage.len() * 192);
        s.push('{');
        // `write!` into a String cannot fail, so its results are ignored throughout.
        let _ = write!(
            s,
            "\"count\":{},\"sum\":{},\"largest\":{},\"stages\":{},\"max_number\":{},\"stage_size\":{},\
             \"queue_depth\":{},\"mode\":{},\"wall_s\":{},\"cpu_s\":{},\"tests\":{},",
            self.count,
            self.sum,
            self.largest.map_or_else(|| "null".to_owned(), |l| l.to_string()),
            self.stages,
            self.max_number,
            self.stage_size,
            self.queue_depth,
            json_string(&self.mode),
            json_f64(self.wall_s),
            json_f64(self.cpu_s),
            self.tests,
        );
        let ends = self.ends;
        let _ = write!(
            s,
            "\"source\":{},\"main\":{},\"per_stage\":[",
            ends.map_or_else(
                || "null".to_owned(),
                |e| format!(
                    "{{\"items_out\":{},\"blocked_full_ns\":{},\"futex_waits\":{}}}",
                    e.source.items, e.source.blocked_ns, e.source.futex_waits
                )
            ),
            ends.map_or_else(
                || "null".to_owned(),
                |e| format!(
                    "{{\"items_in\":{},\"blocked_empty_ns\":{},\"futex_waits\":{}}}",
                    e.main.items, e.main.blocked_ns, e.main.futex_waits
                )
            ),
        );
        for (i, st) in per_stage.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"index\":{},\"first_prime\":{},\"primes_held\":{},\"items_in\":{},\"items_out\":{},\
                 \"blocked_full_ns\":{},\"blocked_empty_ns\":{},\"futex_waits\":{},\"tests_done\":{}}}",
                st.index,
                st.first_prime,
                st.primes_held,
                json_opt(st.queues.map(|q| q.items_in)),
                json_opt(st.queues.map(|q| q.items_out)),
                json_opt(st.queues.map(|q| q.blocked_full_ns)),
                json_opt(st.queues.map(|q| q.blocked_empty_ns)),
                json_opt(st.queues.map(|q| q.futex_waits)),
                st.tests_done,
            );
        }
        s.push_str("]}");
        s
    }

    /// One human line, e.g. `count=25 sum=1060 largest=97 stages=9 wall=0.003s`.
    pub fn to_quiet_line(&self) -> String {
        let largest = self.largest.map_or_else(|| "-".to_owned(), |l| l.to_string());
        format!(
            "count={} sum={} largest={} stages={} wall={:.3}s",
            self.count, self.sum, largest, self.stages, self.wall_s
        )
    }
}

/// A JSON string literal for `s`, quotes included (RFC 8259 escaping).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Other control characters have no short form.
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number, or `null` when there is none.
fn json_opt(v: Option<u64>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

/// A JSON number for `x`; `null` for NaN and infinities, which JSON lacks.
fn json_f64(x: f64) -> String {
    if x.is_finite() {
        // Rust prints the shortest round-tripping decimal without an exponent: valid JSON.
        format!("{x}")
    } else {
        "null".to_owned()
    }
}

/// Where two prime lists first differ: `(index, a[index], b[index])`, with `None` for the
/// list that ended there; `None` if the lists are equal.
pub fn first_difference(a: &[u64], b: &[u64]) -> Option<(usize, Option<u64>, Option<u64>)> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    match common {
        Some(i) => Some((i, a.get(i).copied(), b.get(i).copied())),
        None if a.len() == b.len() => None,
        None => {
            let i = a.len().min(b.len());
            Some((i, a.get(i).copied(), b.get(i).copied()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Summary {
        Summary {
            count: 25,
            sum: 1060,
            largest: Some(97),
            stages: 9,
            max_number: 100,
            stage_size: 3,
            queue_depth: 10,
            mode: "pipeline".to_owned(),
            wall_s: 0.0031,
            cpu_s: 0.25,
            tests: 293,
            ends: Some(RunEnds {
                source: EndStats { items: 98, blocked_ns: 4, futex_waits: 5 },
                main: EndStats { items: 25, blocked_ns: 6, futex_waits: 1 },
            }),
        }
    }

    #[test]
    fn json_is_one_exact_line() {
        let queues =
            QueueStats { items_in: 98, items_out: 50, blocked_full_ns: 7, blocked_empty_ns: 8, futex_waits: 9 };
        let st = StageStats { index: 0, first_prime: 2, primes_held: 3, queues: Some(queues), tests_done: 11 };
        // A stage of a mode without queues: null, not zeros that look measured.
        let json = example().to_json(&[st, StageStats { index: 1, first_prime: 7, ..StageStats::default() }]);
        assert_eq!(
            json,
            "{\"count\":25,\"sum\":1060,\"largest\":97,\"stages\":9,\"max_number\":100,\"stage_size\":3,\
             \"queue_depth\":10,\"mode\":\"pipeline\",\"wall_s\":0.0031,\"cpu_s\":0.25,\"tests\":293,\
             \"source\":{\"items_out\":98,\"blocked_full_ns\":4,\"futex_waits\":5},\
             \"main\":{\"items_in\":25,\"blocked_empty_ns\":6,\"futex_waits\":1},\"per_stage\":[\
             {\"index\":0,\"first_prime\":2,\"primes_held\":3,\"items_in\":98,\"items_out\":50,\
             \"blocked_full_ns\":7,\"blocked_empty_ns\":8,\"futex_waits\":9,\"tests_done\":11},\
             {\"index\":1,\"first_prime\":7,\"primes_held\":0,\"items_in\":null,\"items_out\":null,\
             \"blocked_full_ns\":null,\"blocked_empty_ns\":null,\"futex_waits\":null,\"tests_done\":0}]}"
        );
        assert!(!json.contains('\n'));
    }

    #[test]
    fn json_edge_values() {
        let s = Summary { largest: None, mode: "a\"b\\c\nd\u{1}é".to_owned(), wall_s: f64::NAN, ..example() };
        let json = s.to_json(&[]);
        assert!(json.contains("\"largest\":null"));
        let without_queues = Summary { ends: None, ..example() }.to_json(&[]);
        assert!(without_queues.contains("\"source\":null,\"main\":null,"), "{without_queues}");
        assert!(json.contains("\"mode\":\"a\\\"b\\\\c\\nd\\u0001é\""));
        assert!(json.contains("\"wall_s\":null"));
        assert!(json.ends_with("\"per_stage\":[]}"));
        assert_eq!(json_f64(1.0), "1");
        assert_eq!(json_f64(1e-7), "0.0000001");
    }

    #[test]
    fn quiet_line() {
        assert_eq!(example().to_quiet_line(), "count=25 sum=1060 largest=97 stages=9 wall=0.003s");
    }

    #[test]
    fn differences() {
        assert_eq!(first_difference(&[2, 3, 5], &[2, 3, 5]), None);
        assert_eq!(first_difference(&[], &[]), None);
        assert_eq!(first_difference(&[2, 3, 5], &[2, 3, 7]), Some((2, Some(5), Some(7))));
        assert_eq!(first_difference(&[2, 3], &[2, 3, 5]), Some((2, None, Some(5))));
        assert_eq!(first_difference(&[2, 3, 5], &[2]), Some((1, Some(3), None)));
        assert_eq!(first_difference(&[], &[2]), Some((0, None, Some(2))));
    }
}
