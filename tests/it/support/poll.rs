//! `eventually()`: wait for something to happen, up to a deadline, instead of sleeping for a
//! guessed time. Standalone (no other harness module), so `tests/telemetry_spans.rs` can
//! include it on its own.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// What a check returns: whether it happened yet, and what it gave.
pub trait Outcome {
    /// What `eventually` returns once the check succeeds.
    type Output;
    /// `Ok` once it happened; otherwise the latest observation, for the failure message.
    fn happened(self) -> Result<Self::Output, Option<String>>;
}

impl Outcome for bool {
    type Output = ();
    fn happened(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

impl<T> Outcome for Option<T> {
    type Output = T;
    fn happened(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

/// `Err(observation)` means "not yet"; the last observation is shown if it never happens.
impl<T, E: Debug> Outcome for Result<T, E> {
    type Output = T;
    fn happened(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(format!("{e:?}")))
    }
}

/// Runs `check` until it reports success (`true`, `Some(v)` or `Ok(v)`) and returns what it
/// gave, polling every 5 ms at first and backing off to every 100 ms. Panics if it has not
/// happened `within` the given time, with a message naming `what` never happened (and the
/// last observation, for a check that returns `Err(observation)`). A check may itself panic
/// to stop early, e.g. when the process it waits on has exited.
#[track_caller]
pub fn eventually<R: Outcome>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> R,
) -> R::Output {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let last = match check().happened() {
            Ok(v) => return v,
            Err(last) => last,
        };
        if start.elapsed() >= within {
            match last {
                Some(last) => panic!("{what}: did not happen within {within:?}; last: {last}"),
                None => panic!("{what}: did not happen within {within:?}"),
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
