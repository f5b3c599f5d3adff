//! A text Gantt chart of requests' phases on a shared time axis.

use std::fmt::Write as _;
use std::time::Duration;

use crate::observe::measure::Phase;

/// The glyph of a stretch of a request's life: a phase of the daemon's split, or `None`
/// for time outside the handler (network, HTTP parsing, the client).
pub fn glyph(phase: Option<Phase>) -> char {
    match phase {
        Some(Phase::Queue) => '.',
        Some(Phase::Db) => '~',
        Some(Phase::Compute) => '#',
        Some(Phase::Sched) => ':',
        None => '-',
    }
}

/// The legend for [`render`]'s glyphs.
pub const LEGEND: &str =
    ". queue   ~ db wait   # compute   : sched (runnable, not running)   - network/HTTP";

/// One bar: it starts at `start` on the shared axis and runs through `segments` in order.
#[derive(Debug, Clone, PartialEq)]
pub struct GanttRow {
    /// Text left of the bar.
    pub label: String,
    /// Where the bar starts on the shared axis.
    pub start: Duration,
    /// The bar's stretches in order: a phase (`None`: outside the handler) and its length.
    pub segments: Vec<(Option<Phase>, Duration)>,
    /// Printed after the bar.
    pub note: String,
}

/// Renders rows over an axis from 0 to `span`, `width` columns wide.
///
/// Each segment is scaled to whole columns; a segment of at least a quarter column gets one,
/// so a short compute burst stays visible next to long waits (later segments shift right by
/// the rounding).
pub fn render(rows: &[GanttRow], span: Duration, width: usize) -> String {
    let width = width.max(10);
    let span_s = span.as_secs_f64().max(1e-9);
    let col = span_s / width as f64;
    let label_w = rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let end_label = format!("{:.0}ms", span_s * 1e3);
    let _ = writeln!(
        out,
        "{:label_w$}  0ms{:>w$}",
        "",
        end_label,
        w = (width + 1).saturating_sub(3)
    );
    for row in rows {
        let mut bar = String::new();
        let mut cursor = (row.start.as_secs_f64() / col).round() as usize;
        bar.extend(std::iter::repeat_n(' ', cursor));
        for &(phase, d) in &row.segments {
            let exact = d.as_secs_f64() / col;
            let mut n = exact.round() as usize;
            if n == 0 && exact >= 0.25 {
                n = 1;
            }
            bar.extend(std::iter::repeat_n(glyph(phase), n));
            cursor += n;
        }
        if cursor < width {
            bar.extend(std::iter::repeat_n(' ', width - cursor));
        }
        let line = format!("{:label_w$} |{bar}| {}", row.label, row.note);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn scales_phases_onto_a_shared_axis() {
        let rows = vec![
            GanttRow {
                label: "1 report".into(),
                start: ms(0),
                segments: vec![(Some(Phase::Db), ms(40)), (Some(Phase::Compute), ms(10))],
                note: "50ms".into(),
            },
            GanttRow {
                label: "3 user".into(),
                start: ms(10),
                segments: vec![
                    (Some(Phase::Queue), ms(50)),
                    (Some(Phase::Db), ms(20)),
                    (Some(Phase::Compute), ms(5)),
                    (Some(Phase::Sched), ms(0)),
                    (None, ms(15)),
                ],
                note: "90ms (natural 25ms, 3.6x)".into(),
            },
        ];
        // 100 ms over 20 columns: 5 ms per column.
        let chart = render(&rows, ms(100), 20);
        let expected = concat!(
            "          0ms             100ms\n",
            "1 report |~~~~~~~~##          | 50ms\n",
            "3 user   |  ..........~~~~#---| 90ms (natural 25ms, 3.6x)\n",
        );
        assert_eq!(chart, expected);
    }

    #[test]
    fn short_segments_stay_visible_and_zero_ones_do_not_draw() {
        let rows = vec![GanttRow {
            label: "r".into(),
            start: ms(0),
            // 2 ms is 0.4 of a 5 ms column: drawn as one; 0 ms: not drawn.
            segments: vec![
                (Some(Phase::Compute), ms(2)),
                (Some(Phase::Queue), ms(0)),
                (Some(Phase::Db), ms(10)),
            ],
            note: String::new(),
        }];
        let chart = render(&rows, ms(50), 10);
        assert_eq!(chart.lines().nth(1), Some("r |#~~       |"));
    }
}
