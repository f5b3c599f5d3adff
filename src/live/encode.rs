//! The stream's messages: compact JSON, one per Server-Sent Event (`data: {...}\n\n`).
//!
//! Times are microseconds. A frame's `t` is its time since the process's live-view epoch;
//! every other time in it is relative to `t` (mostly negative: it happened before the frame).
//!
//! - `{"type":"hello","h":ID,...}`: once per instance when a stream opens: its name, lanes,
//!   whether `PUT /admin/mode` is enabled (a token is configured), the tick.
//! - `{"type":"frame","h":ID,"seq":N,"t":T,"mode":"sync","q":[QS,QA],"f":[FS,FA],
//!   "lanes":[[G,I,[T0,C,D,ID,N,...]],...],"req":[ID,M,FROM,T0,T1,TO,...],"rdrop":K,
//!   "gap":US,"s":{...}}` every tick (100 ms): the mode new requests get; queue depth and
//!   requests in flight per mode; per lane (group `G`: 0 sync pool, 1 async runtime; index
//!   `I`) entries of 5 numbers: from `T0`, `C` µs computing and `D` µs blocked in a DB call,
//!   by request `ID` (the longest of the `N` segments merged into the entry); sampled
//!   requests' phase changes as 6 numbers: request, mode (0 sync, 1 async), phase left
//!   (0 queue, 1 compute, 2 db, 3 sched, 9 = arrival), its start and end, phase entered
//!   (9 = finished); request events left out to stay within the budget (`rdrop`); one request
//!   is sampled per `gap` µs at most; and once a second `s`, the last second's counts.
//! - `{"type":"lost","frames":N}`: this stream dropped `N` frames so far because the viewer
//!   read too slowly.

use std::fmt::Write as _;

use crate::api::Mode;
use crate::live::recorder::{quantile, Entry, Group, ReqEvent};
use crate::live::Second;

/// The bytes a lane entry takes at most (five numbers and commas).
const ENTRY_MAX: usize = 56;

/// Merges entries that start in the same `width`-µs bin (consecutive ones).
pub(crate) fn coarsen(entries: &[Entry], width: u64) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        let bin = e.t0 - e.t0 % width.max(1);
        match out.last_mut() {
            Some(last) if last.t0 == bin => last.merge(e),
            _ => out.push(Entry { t0: bin, ..*e }),
        }
    }
    out
}

/// Merges all entries into one, at the earliest start.
fn collapse(entries: &[Entry]) -> Vec<Entry> {
    let mut it = entries.iter();
    let Some(first) = it.next() else {
        return Vec::new();
    };
    let mut all = *first;
    for e in it {
        all.t0 = all.t0.min(e.t0);
        all.merge(e);
    }
    vec![all]
}

fn rel(at: u64, t: u64) -> i64 {
    i64::try_from(at).unwrap_or(i64::MAX) - i64::try_from(t).unwrap_or(i64::MAX)
}

/// Writes `,"lanes":[...]` for the lanes with entries.
fn write_lanes(out: &mut String, t: u64, lanes: &[Vec<Vec<Entry>>; 2]) {
    out.push_str(",\"lanes\":[");
    let mut first_lane = true;
    for g in Group::ALL {
        for (i, entries) in lanes[g as usize].iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            if !first_lane {
                out.push(',');
            }
            first_lane = false;
            let _ = write!(out, "[{},{i},[", g as u8);
            for (k, e) in entries.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{},{},{},{},{}", rel(e.t0, t), e.c, e.d, e.id, e.n);
            }
            out.push_str("]]");
        }
    }
    out.push(']');
}

fn estimate(lanes: &[Vec<Vec<Entry>>; 2]) -> usize {
    lanes
        .iter()
        .flatten()
        .map(|l| 12 + l.len() * ENTRY_MAX)
        .sum()
}

/// Coarsens the lanes until their estimated size is within `max` bytes: bins twice as wide
/// each round, up to one entry per lane. Time in each state is never lost.
pub(crate) fn fit_lanes(lanes: &mut [Vec<Vec<Entry>>; 2], max: usize, start_width: u64) {
    let mut width = start_width.max(1);
    while estimate(lanes) > max && width < 10_000_000 {
        for lane in lanes.iter_mut().flatten() {
            *lane = coarsen(lane, width);
        }
        width *= 2;
    }
    if estimate(lanes) > max {
        for lane in lanes.iter_mut().flatten() {
            *lane = collapse(lane);
        }
    }
}

fn mode_index(m: Mode) -> u8 {
    match m {
        Mode::Sync => 0,
        Mode::Async => 1,
    }
}

fn write_event(out: &mut String, t: u64, e: &ReqEvent) {
    let _ = write!(
        out,
        "{},{},{},{},{},{}",
        e.id,
        mode_index(e.mode),
        e.from,
        rel(e.t0, t),
        rel(e.t1, t),
        e.to
    );
}

fn write_second(out: &mut String, s: &Second) {
    let _ = write!(out, ",\"s\":{{\"dt\":{}", s.elapsed_us);
    for mode in [Mode::Sync, Mode::Async] {
        let m = &s.modes[mode_index(mode) as usize];
        let g = &s.groups[mode_index(mode) as usize];
        let _ = write!(
            out,
            ",\"{mode}\":{{\"served\":{},\"refused\":{},\"compute\":{},\"reclaimed\":{},\
             \"busy\":{},\"blocked\":{},\"threads\":{},\"queue\":{},\"inflight\":{}",
            m.served,
            m.refused,
            m.compute_us,
            m.reclaimed_us,
            g.busy_us,
            g.blocked_us,
            g.threads,
            m.queue,
            m.in_flight
        );
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            if let Some(v) = quantile(&m.latency, q) {
                let _ = write!(out, ",\"{name}\":{v}");
            }
        }
        out.push('}');
    }
    out.push('}');
}

/// What goes into one frame.
pub(crate) struct FrameIn<'a> {
    pub(crate) hub: u64,
    pub(crate) seq: u64,
    pub(crate) t: u64,
    pub(crate) mode: Mode,
    pub(crate) queue: [i64; 2],
    pub(crate) in_flight: [i64; 2],
    pub(crate) lanes: [Vec<Vec<Entry>>; 2],
    pub(crate) events: &'a [ReqEvent],
    /// Request events already dropped before encoding (a full queue).
    pub(crate) dropped: u64,
    pub(crate) gap_us: u64,
    pub(crate) second: Option<&'a Second>,
}

/// An encoded frame and what it took.
#[derive(Debug)]
pub(crate) struct FrameOut {
    /// The whole Server-Sent Event.
    pub(crate) text: String,
    /// Bytes of request events.
    pub(crate) req_bytes: usize,
    /// Request events left out to stay within the budget.
    pub(crate) left_out: usize,
}

/// Encodes a frame within `budget` bytes: lanes first (coarsened into 60% of it if need
/// be; never dropped), then the counts, then as many request events as fit.
pub(crate) fn frame(mut input: FrameIn<'_>, budget: usize, bin_us: u64) -> FrameOut {
    fit_lanes(&mut input.lanes, budget * 6 / 10, bin_us);
    let mut out = String::with_capacity(budget.min(1 << 16) + 256);
    out.push_str("data: ");
    let _ = write!(
        out,
        "{{\"type\":\"frame\",\"h\":{},\"seq\":{},\"t\":{},\"mode\":\"{}\",\"q\":[{},{}],\"f\":[{},{}],\"gap\":{}",
        input.hub,
        input.seq,
        input.t,
        input.mode,
        input.queue[0],
        input.queue[1],
        input.in_flight[0],
        input.in_flight[1],
        input.gap_us
    );
    write_lanes(&mut out, input.t, &input.lanes);
    if let Some(s) = input.second {
        write_second(&mut out, s);
    }
    out.push_str(",\"req\":[");
    let before = out.len();
    let mut sent = 0;
    let mut item = String::with_capacity(64);
    // Room for the closing `],"rdrop":N}\n\n`.
    let limit = budget.saturating_sub(40);
    for e in input.events {
        item.clear();
        if sent > 0 {
            item.push(',');
        }
        write_event(&mut item, input.t, e);
        if out.len() + item.len() > limit {
            break;
        }
        out.push_str(&item);
        sent += 1;
    }
    let req_bytes = out.len() - before;
    let left_out = input.events.len() - sent;
    let _ = write!(out, "],\"rdrop\":{}}}\n\n", input.dropped + left_out as u64);
    FrameOut {
        text: out,
        req_bytes,
        left_out,
    }
}

/// A JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::recorder::{ARRIVE, DONE};

    fn entry(t0: u64, c: u64, d: u64, id: u64) -> Entry {
        Entry {
            t0,
            c,
            d,
            id,
            n: 1,
            best: c + d,
        }
    }

    fn parse(text: &str) -> serde_json::Value {
        let json = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .expect("one SSE data line");
        assert!(!json.contains('\n'));
        serde_json::from_str(json).expect("valid JSON")
    }

    fn input<'a>(lanes: [Vec<Vec<Entry>>; 2], events: &'a [ReqEvent]) -> FrameIn<'a> {
        FrameIn {
            hub: 3,
            seq: 9,
            t: 5_000_000,
            mode: Mode::Async,
            queue: [4, 0],
            in_flight: [5, 2],
            lanes,
            events,
            dropped: 0,
            gap_us: 5000,
            second: None,
        }
    }

    #[test]
    fn a_frame_is_one_sse_event_of_valid_json_with_relative_times() {
        let lanes = [
            vec![vec![
                entry(4_900_000, 2000, 0, 7),
                entry(4_902_000, 0, 20_000, 7),
            ]],
            vec![vec![]],
        ];
        let events = [
            ReqEvent {
                id: 7,
                mode: Mode::Sync,
                from: ARRIVE,
                t0: 4_899_000,
                t1: 4_899_000,
                to: 0,
            },
            ReqEvent {
                id: 7,
                mode: Mode::Sync,
                from: 2,
                t0: 4_902_000,
                t1: 4_922_000,
                to: DONE,
            },
        ];
        let out = frame(input(lanes, &events), 20_000, 2000);
        let v = parse(&out.text);
        assert_eq!(v["type"], "frame");
        assert_eq!(v["h"], 3);
        assert_eq!(v["t"], 5_000_000);
        assert_eq!(v["mode"], "async");
        assert_eq!(v["q"], serde_json::json!([4, 0]));
        assert_eq!(
            v["lanes"],
            serde_json::json!([[0, 0, [-100000, 2000, 0, 7, 1, -98000, 0, 20000, 7, 1]]])
        );
        assert_eq!(
            v["req"],
            serde_json::json!([7, 0, 9, -101000, -101000, 0, 7, 0, 2, -98000, -78000, 9])
        );
        assert_eq!(v["rdrop"], 0);
        assert_eq!(out.left_out, 0);
    }

    #[test]
    fn request_events_stop_at_the_budget_and_are_counted() {
        let events: Vec<ReqEvent> = (0..10_000)
            .map(|id| ReqEvent {
                id,
                mode: Mode::Async,
                from: 1,
                t0: 4_000_000,
                t1: 4_000_100,
                to: 2,
            })
            .collect();
        let out = frame(input([vec![], vec![]], &events), 4000, 2000);
        assert!(out.text.len() <= 4000, "{}", out.text.len());
        let v = parse(&out.text);
        let sent = v["req"].as_array().unwrap().len() / 6;
        assert!(sent > 50, "{sent}");
        assert_eq!(v["rdrop"], (10_000 - sent) as u64);
        assert_eq!(out.left_out, 10_000 - sent);
    }

    #[test]
    fn lanes_are_coarsened_to_fit_without_losing_time() {
        // 64 busy lanes of 1000 entries each: far over a 20 kB frame.
        let lane: Vec<Entry> = (0..1000)
            .map(|k| entry(4_900_000 + k * 100, 60, 40, k))
            .collect();
        let lanes = [vec![lane.clone(); 32], vec![lane; 32]];
        let out = frame(input(lanes, &[]), 20_000, 2000);
        assert!(out.text.len() <= 20_000, "{}", out.text.len());
        let v = parse(&out.text);
        let lanes = v["lanes"].as_array().unwrap();
        assert_eq!(lanes.len(), 64);
        for l in lanes {
            let nums: Vec<i64> = l[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_i64().unwrap())
                .collect();
            let (c, d, n) = nums
                .chunks(5)
                .fold((0, 0, 0), |(c, d, n), e| (c + e[1], d + e[2], n + e[4]));
            assert_eq!((c, d, n), (60_000, 40_000, 1000));
        }
    }

    #[test]
    fn coarsen_merges_by_start_bin_and_keeps_the_longest_request() {
        let merged = coarsen(
            &[
                entry(1000, 10, 0, 1),
                entry(1500, 30, 0, 2),
                entry(2100, 5, 0, 3),
            ],
            1000,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(
            (merged[0].t0, merged[0].c, merged[0].id, merged[0].n),
            (1000, 40, 2, 2)
        );
        assert_eq!((merged[1].t0, merged[1].c, merged[1].id), (2000, 5, 3));
    }
}
