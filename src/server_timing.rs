//! The `Server-Timing` header (W3C Server Timing) that carries a request's phase split.
//!
//! The daemon writes one on every app response; `reclaimd load` and `reclaimd scenario` read
//! it back. Durations are in milliseconds, as the W3C spec requires:
//!
//! ```text
//! Server-Timing: queue;dur=0.012, compute;dur=2.104, db;dur=40.551, sched;dur=0.003, total;dur=42.790, reclaimed;dur=1.630, mode;desc="async"
//! ```
//!
//! `total` is the handler's total time, arrival to response; `queue + compute + db + sched`
//! adds up to it. `reclaimed` is the part of `compute` that ran while at least one other
//! request of the same mode was waiting on MongoDB (the request's own share of
//! `reclaimd_reclaimed_seconds_total`): Σ reclaimed ÷ Σ compute over responses is the
//! headline, the share of compute done inside other requests' DB waits.

use std::fmt;
use std::time::Duration;

use crate::api::Mode;

/// One request's time split, as carried by the header.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServerTiming {
    /// Waiting for a worker (sync) or first poll (async).
    pub queue: Duration,
    /// The request's own code on a CPU.
    pub compute: Duration,
    /// Waiting on MongoDB.
    pub db: Duration,
    /// Runnable, waiting for the thread.
    pub sched: Duration,
    /// Arrival to response.
    pub total: Duration,
    /// The part of `compute` that ran while another request of the same mode waited on
    /// MongoDB; `None` when the header has no `reclaimed` entry (an older daemon).
    pub reclaimed: Option<Duration>,
    /// The mode the request was served in, if the header named one.
    pub mode: Option<Mode>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl fmt::Display for ServerTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "queue;dur={:.3}, compute;dur={:.3}, db;dur={:.3}, sched;dur={:.3}, total;dur={:.3}",
            ms(self.queue),
            ms(self.compute),
            ms(self.db),
            ms(self.sched),
            ms(self.total)
        )?;
        if let Some(reclaimed) = self.reclaimed {
            write!(f, ", reclaimed;dur={:.3}", ms(reclaimed))?;
        }
        if let Some(mode) = self.mode {
            write!(f, ", mode;desc=\"{mode}\"")?;
        }
        Ok(())
    }
}

impl ServerTiming {
    /// Parses a header value. Unknown metrics are ignored, as the spec asks; a known metric
    /// with an unparsable duration is an error.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut timing = ServerTiming::default();
        for metric in value.split(',') {
            let mut params = metric.split(';').map(str::trim);
            let name = params.next().unwrap_or_default();
            let mut dur = None;
            let mut desc = None;
            for param in params {
                if let Some(v) = param.strip_prefix("dur=") {
                    let v: f64 = v
                        .parse()
                        .map_err(|_| format!("bad duration {v:?} for {name:?}"))?;
                    if !v.is_finite() || v < 0.0 {
                        return Err(format!("bad duration {v} for {name:?}"));
                    }
                    dur = Some(Duration::from_secs_f64(v / 1e3));
                } else if let Some(v) = param.strip_prefix("desc=") {
                    desc = Some(v.trim_matches('"'));
                }
            }
            let slot = match name {
                "queue" => &mut timing.queue,
                "compute" => &mut timing.compute,
                "db" => &mut timing.db,
                "sched" => &mut timing.sched,
                "total" => &mut timing.total,
                "reclaimed" => {
                    timing.reclaimed = Some(dur.ok_or_else(|| format!("{name:?} has no dur"))?);
                    continue;
                }
                "mode" => {
                    timing.mode = desc.map(str::parse).transpose()?;
                    continue;
                }
                _ => continue,
            };
            *slot = dur.ok_or_else(|| format!("{name:?} has no dur"))?;
        }
        Ok(timing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = ServerTiming {
            queue: Duration::from_micros(12),
            compute: Duration::from_micros(2104),
            db: Duration::from_micros(40551),
            sched: Duration::from_micros(3),
            total: Duration::from_micros(42790),
            reclaimed: Some(Duration::from_micros(1630)),
            mode: Some(Mode::Async),
        };
        let header = t.to_string();
        assert_eq!(
            header,
            "queue;dur=0.012, compute;dur=2.104, db;dur=40.551, sched;dur=0.003, total;dur=42.790, reclaimed;dur=1.630, mode;desc=\"async\""
        );
        assert_eq!(ServerTiming::parse(&header).unwrap(), t);
    }

    #[test]
    fn a_header_without_reclaimed_parses_as_unknown_not_zero() {
        let t = ServerTiming::parse("compute;dur=2, total;dur=3").unwrap();
        assert_eq!(t.reclaimed, None);
        let t = ServerTiming::parse("compute;dur=2, reclaimed;dur=0").unwrap();
        assert_eq!(t.reclaimed, Some(Duration::ZERO));
        assert!(ServerTiming::parse("reclaimed").is_err());
    }

    #[test]
    fn ignores_unknown_metrics_and_rejects_bad_durations() {
        let t = ServerTiming::parse("cdn;dur=5, db;dur=1.5").unwrap();
        assert_eq!(t.db, Duration::from_micros(1500));
        assert!(ServerTiming::parse("db;dur=abc").is_err());
        assert!(ServerTiming::parse("db;dur=-1").is_err());
        assert!(ServerTiming::parse("mode;desc=\"fast\"").is_err());
    }
}
