//! The arrival schedule: when each request is due, which route it hits and for which user.
//!
//! A schedule is a pure function of its parameters and seed, so the same command line sends
//! the same requests at the same offsets, and every target of one run sees the identical
//! sequence.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::api::Route;

/// Relative weights of the routes, e.g. `report=2,user=1`: routes not named get weight 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 3],
}

impl Mix {
    /// The weight of `route`.
    pub fn weight(&self, route: Route) -> u32 {
        self.weights[route as usize]
    }

    fn total(&self) -> u64 {
        self.weights.iter().map(|&w| u64::from(w)).sum()
    }

    fn pick(&self, draw: u64) -> Route {
        let mut left = draw;
        for route in Route::ALL {
            let w = u64::from(self.weight(route));
            if left < w {
                return route;
            }
            left -= w;
        }
        // Unreachable for draw < total(); the last route with weight is a safe answer.
        Route::ALL
            .into_iter()
            .rev()
            .find(|&r| self.weight(r) > 0)
            .unwrap_or(Route::User)
    }
}

impl Default for Mix {
    fn default() -> Self {
        Mix { weights: [1, 1, 0] }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Route::ALL
            .iter()
            .map(|&r| format!("{r}={}", self.weight(r)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut weights = [0u32; 3];
        let mut seen = [false; 3];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not ROUTE=WEIGHT (e.g. report=2,user=1)"))?;
            let route: Route = name.trim().parse()?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                format!("weight of {route} must be a whole number ≥ 0, not {weight:?}")
            })?;
            if std::mem::replace(&mut seen[route as usize], true) {
                return Err(format!("route {route} is named twice"));
            }
            weights[route as usize] = weight;
        }
        let mix = Mix { weights };
        if mix.total() == 0 {
            return Err("at least one route needs a weight above 0".to_string());
        }
        Ok(mix)
    }
}

/// How arrivals are spaced.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Evenly spaced, exactly 1/rate apart.
    Constant,
    /// A Poisson process: exponential gaps with mean 1/rate (bursty, like independent users).
    #[default]
    Poisson,
}

/// One scheduled request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Intended send time, as an offset from the start of the run.
    pub at: Duration,
    /// Which route it hits.
    pub route: Route,
    /// Which user it is for.
    pub user_id: u64,
    /// Only used by [`Route::Order`].
    pub amount_cents: u64,
}

/// An endless, reproducible sequence of arrivals; the caller stops at its duration.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrivals: Arrivals,
    rate: f64,
    mix: Mix,
    users: u64,
    rng: StdRng,
    index: u64,
    /// Poisson: the offset of the next arrival, in seconds.
    next_secs: f64,
}

impl Schedule {
    /// `rate` is in requests per second and must be positive and finite; `users` ≥ 1.
    pub fn new(arrivals: Arrivals, rate: f64, mix: Mix, users: u64, seed: u64) -> Self {
        debug_assert!(rate.is_finite() && rate > 0.0 && users >= 1);
        Schedule {
            arrivals,
            rate,
            mix,
            users: users.max(1),
            rng: StdRng::seed_from_u64(seed),
            index: 0,
            next_secs: 0.0,
        }
    }
}

impl Iterator for Schedule {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        let secs = match self.arrivals {
            // Computed from the index, not accumulated, so rounding never drifts.
            Arrivals::Constant => self.index as f64 / self.rate,
            Arrivals::Poisson => {
                // 1 - U is in (0, 1], so the logarithm is finite.
                let u: f64 = self.rng.random();
                self.next_secs += -(1.0 - u).ln() / self.rate;
                self.next_secs
            }
        };
        self.index += 1;
        let route = self.mix.pick(self.rng.random_range(0..self.mix.total()));
        let user_id = self.rng.random_range(1..=self.users);
        let amount_cents = self.rng.random_range(100..=100_000);
        Some(Arrival {
            at: Duration::from_secs_f64(secs),
            route,
            user_id,
            amount_cents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(s: &str) -> Mix {
        s.parse().unwrap()
    }

    #[test]
    fn parses_mixes_and_rejects_bad_ones() {
        let m = mix("report=2,user=1");
        assert_eq!(
            (
                m.weight(Route::Report),
                m.weight(Route::User),
                m.weight(Route::Order)
            ),
            (2, 1, 0)
        );
        assert_eq!(m.to_string(), "user=1,report=2,order=0");
        for bad in [
            "",
            "user=0",
            "user",
            "fast=1",
            "user=-1",
            "user=x",
            "user=1,user=2",
        ] {
            assert!(bad.parse::<Mix>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let s = Schedule::new(Arrivals::Constant, 200.0, Mix::default(), 10, 1);
        let due: Vec<_> = s
            .take_while(|a| a.at < Duration::from_secs(1))
            .map(|a| a.at)
            .collect();
        assert_eq!(due.len(), 200);
        assert_eq!(due[1], Duration::from_millis(5));
        assert_eq!(due[199], Duration::from_millis(995));
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let run = |seed| -> Vec<Arrival> {
            Schedule::new(
                Arrivals::Poisson,
                1000.0,
                mix("user=1,report=1,order=1"),
                1000,
                seed,
            )
            .take(500)
            .collect()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn poisson_keeps_the_rate_and_mix_keeps_the_weights() {
        let arrivals: Vec<_> =
            Schedule::new(Arrivals::Poisson, 500.0, mix("report=3,user=1"), 5, 42)
                .take_while(|a| a.at < Duration::from_secs(100))
                .collect();
        // 50,000 expected; a Poisson count's standard deviation is ~224.
        assert!(
            (48_000..52_000).contains(&arrivals.len()),
            "{}",
            arrivals.len()
        );
        assert!(arrivals.windows(2).all(|w| w[0].at <= w[1].at));
        let reports = arrivals.iter().filter(|a| a.route == Route::Report).count();
        let share = reports as f64 / arrivals.len() as f64;
        assert!((0.73..0.77).contains(&share), "{share}");
        assert!(arrivals.iter().all(|a| a.route != Route::Order));
        assert!(arrivals.iter().all(|a| (1..=5).contains(&a.user_id)));
        assert!((1..=5).all(|id| arrivals.iter().any(|a| a.user_id == id)));
    }
}
