//! An SVG picture of the pipeline as it ended, in the spirit of the cookbook's "Dynamic Growth
//! of Prime Number Pipeline" figure.
//!
//! Source box → stage boxes (each listing its primes) → main (the sink), with every arrow
//! labelled by the items that crossed it and the time the receiving stage spent blocked. Boxes
//! flow left to right in rows of eight. Long pipelines are summarised (first ten stages, one
//! "… N more stages …" box, last five) so the file stays small and readable. The output is
//! self-contained SVG 1.1 with all text XML-escaped.

use std::fmt::Write as _;

use crate::summary::RunEnds;

/// What the picture needs to know about one stage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StageDrawing {
    /// The stage's primes, first prime first.
    pub primes: Vec<u64>,
    /// Numbers the stage received.
    pub items_in: u64,
    /// Numbers the stage forwarded (to the sink and to its child together).
    pub items_out: u64,
    /// Nanoseconds the stage spent blocked (on either queue).
    pub blocked_ns: u64,
}

/// Above this many stages the middle ones are summarised in one box.
const ELIDE_ABOVE: usize = 40;
/// Stages drawn before the summary box.
const KEEP_HEAD: usize = 10;
/// Stages drawn after the summary box.
const KEEP_TAIL: usize = 5;
/// Boxes per row.
const PER_ROW: usize = 8;
/// A box's width unless its text needs more.
const MIN_BOX_W: usize = 150;
const BOX_H: usize = 88;
/// Horizontal room for an arrow and its labels, unless a label needs more.
const MIN_GAP: usize = 84;
/// Room kept between a box's edge and its text, and at either end of an arrow's label.
const PAD: usize = 6;
/// Advance of one character of a box's 12 px text, in tenths of a pixel (0.6 em: monospace,
/// and wider than the digits and most letters of any sans-serif heading).
const BOX_CHAR_TENTHS: usize = 72;
/// Advance of one character of an arrow's 11 px label, in tenths of a pixel (0.6 em again).
const LABEL_CHAR_TENTHS: usize = 66;
/// Vertical room between rows, for the wrapping arrow and its labels.
const ROW_GAP: usize = 64;
const MARGIN: usize = 20;
const TITLE_H: usize = 36;
const LEGEND_H: usize = 40;
const MIN_WIDTH: usize = 600;
/// Characters of primes per line inside a box (12 px monospace in a 150 px box); a box grows
/// only for a line that cannot be wrapped to it: a single long prime, or a stage's counts
/// (`in 99999998 out 5761454` at N=10^8).
const CHARS_PER_LINE: usize = 19;
/// Primes listed in a box's hover tooltip, at most (a stage may hold millions).
const TOOLTIP_PRIMES: usize = 64;

/// One box of the picture.
enum Node<'a> {
    Source,
    Stage { index: usize, stage: &'a StageDrawing },
    Elided { stages: &'a [StageDrawing] },
    Sink,
}

/// What a box shows.
struct Content {
    heading: String,
    lines: Vec<String>,
    tooltip: String,
    fill: &'static str,
}

/// Sizes shared by every box and arrow, chosen so that the widest text fits: a 20-digit prime,
/// or a count of 10^8 items, would otherwise run over its box's edge.
struct Layout {
    box_w: usize,
    gap: usize,
}

impl Layout {
    fn fitting(contents: &[Content], labels: &[String]) -> Self {
        let box_text = contents
            .iter()
            .flat_map(|c| std::iter::once(&c.heading).chain(&c.lines))
            .map(|t| t.chars().count())
            .max()
            .unwrap_or(0);
        let label = labels.iter().map(|t| t.chars().count()).max().unwrap_or(0);
        Self {
            box_w: (2 * PAD + (box_text * BOX_CHAR_TENTHS).div_ceil(10)).max(MIN_BOX_W),
            gap: (2 * PAD + (label * LABEL_CHAR_TENTHS).div_ceil(10)).max(MIN_GAP),
        }
    }

    /// Top-left corner of the `i`-th box.
    fn position(&self, i: usize) -> (usize, usize) {
        let (row, col) = (i / PER_ROW, i % PER_ROW);
        (MARGIN + col * (self.box_w + self.gap), MARGIN + TITLE_H + row * (BOX_H + ROW_GAP))
    }
}

/// Draws the pipeline: `stages` stage 0 first, and the run's `ends` (the source and main).
pub fn draw_svg(stages: &[StageDrawing], ends: &RunEnds) -> String {
    let sink_items = ends.main.items;
    let mut nodes = vec![Node::Source];
    if stages.len() > ELIDE_ABOVE {
        let tail_start = stages.len() - KEEP_TAIL;
        nodes.extend(stages[..KEEP_HEAD].iter().enumerate().map(|(index, stage)| Node::Stage { index, stage }));
        nodes.push(Node::Elided { stages: &stages[KEEP_HEAD..tail_start] });
        nodes.extend(
            stages[tail_start..].iter().enumerate().map(|(i, stage)| Node::Stage { index: tail_start + i, stage }),
        );
    } else {
        nodes.extend(stages.iter().enumerate().map(|(index, stage)| Node::Stage { index, stage }));
    }
    nodes.push(Node::Sink);

    let contents: Vec<Content> = nodes.iter().map(|node| content(node, ends)).collect();
    // The arrow into each box after the source: items passed, and blocked time for stages.
    let arrows: Vec<(u64, Option<u64>)> = nodes
        .iter()
        .skip(1)
        .map(|node| match node {
            Node::Stage { stage, .. } => (stage.items_in, Some(stage.blocked_ns)),
            Node::Elided { stages } => (stages.first().map_or(0, |s| s.items_in), stages.first().map(|s| s.blocked_ns)),
            Node::Sink => (sink_items, None),
            Node::Source => (0, None),
        })
        .collect();
    let labels: Vec<String> = arrows
        .iter()
        .flat_map(|&(items, blocked)| std::iter::once(items.to_string()).chain(blocked.map(blocked_label)))
        .collect();
    let layout = Layout::fitting(&contents, &labels);

    let cols = nodes.len().min(PER_ROW);
    let rows = nodes.len().div_ceil(PER_ROW);
    // At least wide enough for the title and the legend.
    let width = (2 * MARGIN + cols * (layout.box_w + layout.gap) - layout.gap).max(MIN_WIDTH);
    let height = 2 * MARGIN + TITLE_H + rows * (BOX_H + ROW_GAP) - ROW_GAP + LEGEND_H;

    let mut svg = String::with_capacity(4096 + nodes.len() * 1024);
    // Writing to a String cannot fail: results of `write!` are ignored below.
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>Dynamic Growth of Prime Number Pipeline</title>\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
         markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker></defs>\n\
         <rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n\
         <text x=\"{MARGIN}\" y=\"{}\" font-size=\"18\" font-weight=\"bold\">Dynamic Growth of Prime Number \
         Pipeline</text>\n",
        MARGIN + 20
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">{} stages, {} primes to main</text>",
        width.saturating_sub(MARGIN),
        MARGIN + 20,
        stages.len(),
        sink_items
    );

    for (i, content) in contents.iter().enumerate() {
        draw_box(&mut svg, &layout, content, i);
    }
    for (i, &(items, blocked)) in arrows.iter().enumerate() {
        draw_arrow(&mut svg, &layout, i, i + 1, items, blocked);
    }

    let legend_y = height - MARGIN - LEGEND_H + 20;
    let _ = writeln!(
        svg,
        "<text x=\"{MARGIN}\" y=\"{legend_y}\" font-size=\"11\" fill=\"#555\">Arrows: numbers passed (above), \
         time the receiving stage spent blocked (below); the source's time blocked on a full queue, and main's on \
         an empty sink, in their boxes.</text>\n<text x=\"{MARGIN}\" y=\"{}\" font-size=\"11\" \
         fill=\"#555\">A stage sends straight to main until it spawns its child; \u{201c}out\u{201d} counts both.</text>",
        legend_y + 15
    );
    svg.push_str("</svg>\n");
    svg
}

/// What `node`'s box shows: its heading, its content lines and a hover tooltip.
fn content(node: &Node<'_>, ends: &RunEnds) -> Content {
    let (source, main) = (ends.source, ends.main);
    let (heading, lines, tooltip, fill) = match node {
        Node::Source => {
            let lines = vec![format!("{} numbers", source.items), format!("full {}", format_ns(source.blocked_ns))];
            ("source".to_owned(), lines, String::new(), "#e8f0fe")
        }
        Node::Sink => {
            let lines = vec![format!("{} primes", main.items), format!("empty {}", format_ns(main.blocked_ns))];
            ("main (sink)".to_owned(), lines, String::new(), "#e6f4ea")
        }
        Node::Stage { index, stage } => {
            let mut lines = prime_lines(&stage.primes);
            lines.push(format!("in {} out {}", stage.items_in, stage.items_out));
            (format!("stage {index}"), lines, tooltip_text(&stage.primes), "#fff8e1")
        }
        Node::Elided { stages } => {
            let first = stages.first().and_then(|s| s.primes.first()).copied().unwrap_or(0);
            let last = stages.last().and_then(|s| s.primes.last()).copied().unwrap_or(0);
            let blocked: u64 = stages.iter().map(|s| s.blocked_ns).fold(0, u64::saturating_add);
            let lines = vec![format!("(primes {first}\u{2013}{last})"), format!("blocked {}", format_ns(blocked))];
            (format!("\u{2026} {} more stages \u{2026}", stages.len()), lines, String::new(), "#eeeeee")
        }
    };
    Content { heading, lines, tooltip, fill }
}

/// The `i`-th box.
fn draw_box(svg: &mut String, layout: &Layout, content: &Content, i: usize) {
    let Content { heading, lines, tooltip, fill } = content;
    let (x, y) = layout.position(i);
    let box_w = layout.box_w;
    let _ = write!(svg, "<g>");
    if !tooltip.is_empty() {
        let _ = write!(svg, "<title>{}</title>", escape(tooltip));
    }
    let _ = write!(
        svg,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{box_w}\" height=\"{BOX_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
        x + box_w / 2,
        y + 18,
        escape(heading)
    );
    for (k, line) in lines.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-family=\"monospace\">{}</text>",
            x + box_w / 2,
            y + 38 + k * 16,
            escape(line)
        );
    }
    svg.push_str("</g>\n");
}

/// An arrow's second label: the time the receiving stage spent blocked.
fn blocked_label(ns: u64) -> String {
    format!("blk {}", format_ns(ns))
}

/// The arrow from box `from` to box `to`, labelled with `items` and, for stages, `blocked`.
fn draw_arrow(svg: &mut String, layout: &Layout, from: usize, to: usize, items: u64, blocked: Option<u64>) {
    let (x1, y1) = layout.position(from);
    let (x2, y2) = layout.position(to);
    let box_w = layout.box_w;
    let blocked_label = blocked.map(blocked_label);
    if y1 == y2 {
        let (ax, bx, cy) = (x1 + box_w, x2, y1 + BOX_H / 2);
        let mid = (ax + bx) / 2;
        let _ = write!(
            svg,
            "<line x1=\"{ax}\" y1=\"{cy}\" x2=\"{bx}\" y2=\"{cy}\" stroke=\"#333\" stroke-width=\"1.5\" \
             marker-end=\"url(#arrow)\"/><text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{items}</text>",
            cy - 6
        );
        if let Some(label) = blocked_label {
            let _ = write!(
                svg,
                "<text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#a33\">{}</text>",
                cy + 16,
                escape(&label)
            );
        }
    } else {
        // Down from the last box of a row, back left, down into the first box of the next row.
        let (sx, sy) = (x1 + box_w / 2, y1 + BOX_H);
        let (ex, ey) = (x2 + box_w / 2, y2);
        let my = sy + ROW_GAP / 2;
        let _ = write!(
            svg,
            "<polyline points=\"{sx},{sy} {sx},{my} {ex},{my} {ex},{ey}\" fill=\"none\" stroke=\"#333\" \
             stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" \
             font-size=\"11\">{items}</text>",
            sx - 6,
            my - 6
        );
        if let Some(label) = blocked_label {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\" fill=\"#a33\">{}</text>",
                sx - 6,
                my + 14,
                escape(&label)
            );
        }
    }
    svg.push('\n');
}

/// A stage's primes as at most two lines of text fitting a box, the second ending with
/// `… last` when they do not all fit.
fn prime_lines(primes: &[u64]) -> Vec<String> {
    let words: Vec<String> = primes.iter().map(u64::to_string).collect();
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in &words {
        if !current.is_empty() && current.len() + 1 + word.len() > CHARS_PER_LINE {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() <= 2 {
        return lines;
    }
    // Too many: keep the first line, then as many primes as fit before "… last".
    let last = words.last().map_or("", String::as_str);
    let first_line_words = lines[0].split(' ').count();
    let tail = format!("\u{2026} {last}");
    let mut second = String::new();
    for word in &words[first_line_words..] {
        let extra = usize::from(!second.is_empty());
        if second.len() + extra + word.len() + 1 + tail.chars().count() > CHARS_PER_LINE {
            break;
        }
        if extra == 1 {
            second.push(' ');
        }
        second.push_str(word);
    }
    if !second.is_empty() {
        second.push(' ');
    }
    second.push_str(&tail);
    vec![lines.swap_remove(0), second]
}

/// The tooltip listing a stage's primes (shortened for huge stages).
fn tooltip_text(primes: &[u64]) -> String {
    let shown: Vec<String> = primes.iter().take(TOOLTIP_PRIMES).map(u64::to_string).collect();
    let more = primes.len().saturating_sub(TOOLTIP_PRIMES);
    if more == 0 {
        format!("primes: {}", shown.join(" "))
    } else {
        format!("primes: {} \u{2026} ({more} more)", shown.join(" "))
    }
}

/// A duration in nanoseconds, compactly: `0 ns`, `850 ns`, `12.3 µs`, `4.5 ms`, `1.20 s`.
pub fn format_ns(ns: u64) -> String {
    let f = ns as f64;
    // Each unit up to where one decimal would round to 1000.0 of it.
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 999_950 {
        format!("{:.1} \u{b5}s", f / 1e3)
    } else if ns < 999_950_000 {
        format!("{:.1} ms", f / 1e6)
    } else {
        format!("{:.2} s", f / 1e9)
    }
}

/// Escapes text for XML content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequential::run_sequential;

    /// Ends of a run in which main received `primes`, the source blocked 2.5 ms and main 40 µs.
    fn received(primes: u64) -> RunEnds {
        use crate::summary::EndStats;
        RunEnds {
            source: EndStats { items: 99_998, blocked_ns: 2_500_000, futex_waits: 3 },
            main: EndStats { items: primes, blocked_ns: 40_000, futex_waits: 2 },
        }
    }

    fn drawings(stages: &[Vec<u64>]) -> Vec<StageDrawing> {
        stages
            .iter()
            .enumerate()
            .map(|(i, p)| StageDrawing {
                primes: p.clone(),
                items_in: 100_000 - i as u64,
                items_out: 500,
                blocked_ns: 1_500_000,
            })
            .collect()
    }

    /// Cheap well-formedness check: every element opened is closed, in order.
    fn tags_balance(svg: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else { return false };
            let tag = &rest[start + 1..start + end];
            rest = &rest[start + end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
        stack.is_empty()
    }

    #[test]
    fn small_pipeline() {
        let r = run_sequential(100, 3, false);
        let svg = draw_svg(&drawings(&r.stages), &received(r.primes.len() as u64));
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">2 3 5<"));
        for p in &r.stages[0] {
            assert!(svg.contains(&p.to_string()));
        }
        assert!(svg.contains("stage 8"));
        assert!(svg.contains("main (sink)"));
        assert!(svg.contains("blk 1.5 ms"));
        assert!(svg.contains(">99998 numbers<") && svg.contains(">full 2.5 ms<"), "the source's box");
        assert!(svg.contains(">25 primes<") && svg.contains(">empty 40.0 \u{b5}s<"), "main's box");
        assert!(!svg.contains("more stages"));
        assert!(tags_balance(&svg));
    }

    #[test]
    fn empty_pipeline() {
        let svg = draw_svg(&[], &received(1));
        assert!(svg.starts_with("<svg") && tags_balance(&svg));
    }

    #[test]
    fn huge_pipeline_is_summarised() {
        let stages: Vec<Vec<u64>> = (0..5000u64).map(|i| vec![10 * i + 1, 10 * i + 3, 10 * i + 7]).collect();
        let svg = draw_svg(&drawings(&stages), &received(12345));
        assert!(svg.starts_with("<svg"));
        assert!(svg.len() < 200 * 1024, "{} bytes", svg.len());
        assert!(svg.contains("4985 more stages"));
        assert!(svg.contains("stage 4999"));
        assert!(!svg.contains("stage 10<"));
        assert!(svg.contains("(primes 101\u{2013}49947)"));
        assert!(tags_balance(&svg));
    }

    #[test]
    fn long_prime_lists_are_shortened() {
        let r = run_sequential(20_000, 500, false);
        let lines = prime_lines(&r.stages[0]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.chars().count() <= CHARS_PER_LINE), "{lines:?}");
        assert!(lines[0].starts_with("2 3 5 7"));
        assert!(lines[1].ends_with(&format!("\u{2026} {}", r.stages[0][499])));
        assert_eq!(prime_lines(&[2, 3, 5]), vec!["2 3 5".to_owned()]);
        let svg = draw_svg(&drawings(&r.stages), &received(0));
        assert!(svg.contains("(436 more)"));
    }

    /// `(x, width)` of every `<rect>` but the background, which comes first.
    fn boxes(svg: &str) -> Vec<(usize, usize)> {
        let attribute = |rect: &str, name: &str| -> usize {
            let value = rect.split(&format!(" {name}=\"")).nth(1).and_then(|v| v.split('"').next());
            value.unwrap().parse().unwrap()
        };
        svg.split("<rect").skip(2).map(|r| (attribute(r, "x"), attribute(r, "width"))).collect()
    }

    #[test]
    fn boxes_and_gaps_grow_for_long_numbers() {
        // Small numbers keep the default sizes: every line was wrapped for them.
        let r = run_sequential(100_000, 100, false);
        let svg = draw_svg(&drawings(&r.stages), &received(r.primes.len() as u64));
        assert!(boxes(&svg).iter().all(|&(_, w)| w == MIN_BOX_W), "{:?}", boxes(&svg));
        assert_eq!(boxes(&svg)[1].0 - boxes(&svg)[0].0, MIN_BOX_W + MIN_GAP);

        // The largest primes below 2^64, and counts of 20 digits: no line may run past its
        // box, nor a label past its gap, at 0.6 em a character.
        let big = vec![18_446_744_073_709_551_557u64, 18_446_744_073_709_551_533];
        let stage = StageDrawing { primes: big, items_in: u64::MAX, items_out: u64::MAX, blocked_ns: 1 };
        let lines = content(&Node::Stage { index: 0, stage: &stage }, &RunEnds::default()).lines;
        let widest = lines.iter().map(|l| l.chars().count()).max().unwrap();
        assert!(widest > 2 * 20, "{lines:?}");
        let svg = draw_svg(std::slice::from_ref(&stage), &received(u64::MAX));
        let drawn = boxes(&svg);
        for &(_, w) in &drawn {
            assert!(w * 10 >= widest * BOX_CHAR_TENTHS + 2 * PAD * 10, "box {w} px for {widest} characters");
        }
        let gap = drawn[1].0 - drawn[0].0 - drawn[0].1;
        assert!(gap * 10 >= 20 * LABEL_CHAR_TENTHS + 2 * PAD * 10, "gap {gap} px for a 20-digit label");
        assert!(svg.contains("18446744073709551557"));
        assert!(tags_balance(&svg));
    }

    #[test]
    fn escaping_and_durations() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(format_ns(0), "0 ns");
        assert_eq!(format_ns(12_300), "12.3 \u{b5}s");
        assert_eq!(format_ns(4_500_000), "4.5 ms");
        assert_eq!(format_ns(1_200_000_000), "1.20 s");
        assert_eq!(format_ns(999_949), "999.9 \u{b5}s");
        assert_eq!(format_ns(999_999), "1.0 ms", "not 1000.0 µs");
        assert_eq!(format_ns(999_999_999), "1.00 s");
    }
}
