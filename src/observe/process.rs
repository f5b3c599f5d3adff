//! The daemon's `process_*` metrics, with a CPU counter that has sub-second resolution.
//!
//! The prometheus crate's `ProcessCollector` exports `process_cpu_seconds_total` as an
//! *integer* counter: whole seconds. A daemon that uses 7 % of a core reads 0 or 1 s more at
//! each 5 s scrape, so `rate()` jumps between 0 and 13 %. [`ProcessCollector`] keeps the
//! crate's other families (threads, RSS, file descriptors, start time, virtual memory) and
//! replaces that one, under the same standard name, with a float counter of user + system CPU
//! time read from `/proc/self/stat`, whose resolution is one clock tick (1/`CLK_TCK`, 10 ms
//! on Linux).

use std::time::Duration;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Opts};

use crate::observe::prom::advance_to;

/// The standard name, as every Prometheus client library exports it.
const CPU_SECONDS: &str = "process_cpu_seconds_total";

/// `process_*` metrics of this process; see the module docs.
pub(crate) struct ProcessCollector {
    inner: prometheus::process_collector::ProcessCollector,
    cpu: Counter,
    descs: Vec<Desc>,
    /// Serialises scrapes: the counter is advanced by the difference since the last one.
    scrape: Mutex<()>,
}

impl ProcessCollector {
    /// The collector of the calling process.
    pub(crate) fn for_self() -> prometheus::Result<ProcessCollector> {
        let inner = prometheus::process_collector::ProcessCollector::for_self();
        let cpu = Counter::with_opts(Opts::new(
            CPU_SECONDS,
            "Total user and system CPU time spent in seconds, from /proc/self/stat \
             (resolution one clock tick, 10 ms).",
        ))?;
        let mut descs: Vec<Desc> = inner
            .desc()
            .into_iter()
            .filter(|d| d.fq_name != CPU_SECONDS)
            .cloned()
            .collect();
        descs.extend(cpu.desc().into_iter().cloned());
        Ok(ProcessCollector {
            inner,
            cpu,
            descs,
            scrape: Mutex::new(()),
        })
    }
}

/// User + system CPU time of this process so far (all its threads, live and exited).
pub(crate) fn cpu_time() -> Option<Duration> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    let ticks = u128::from(stat.utime) + u128::from(stat.stime);
    let per_second = u128::from(procfs::ticks_per_second());
    let nanos = (ticks * 1_000_000_000).checked_div(per_second)?;
    Some(Duration::from_nanos(u64::try_from(nanos).ok()?))
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families: Vec<MetricFamily> = self
            .inner
            .collect()
            .into_iter()
            .filter(|f| f.name() != CPU_SECONDS)
            .collect();
        {
            let _one_at_a_time = self.scrape.lock();
            if let Some(cpu) = cpu_time() {
                advance_to(&self.cpu, cpu);
            }
        }
        families.extend(self.cpu.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scraped_cpu(c: &ProcessCollector) -> f64 {
        let families = c.collect();
        let cpu: Vec<&MetricFamily> = families
            .iter()
            .filter(|f| f.name() == CPU_SECONDS)
            .collect();
        assert_eq!(cpu.len(), 1, "exactly one {CPU_SECONDS} family");
        cpu[0].get_metric()[0].get_counter().value()
    }

    /// Burns CPU on this thread for about `d` of CPU time (not wall time).
    fn burn(d: Duration) {
        let start = cpu_time().unwrap();
        let mut x = 0u64;
        while cpu_time().unwrap() < start + d {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
    }

    #[test]
    fn cpu_seconds_move_in_steps_far_below_a_second() {
        let c = ProcessCollector::for_self().unwrap();
        let names: Vec<String> = c.collect().iter().map(|f| f.name().to_string()).collect();
        for standard in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_threads",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                names.iter().any(|n| n == standard),
                "{standard} in {names:?}"
            );
        }
        // Watch the counter while burning CPU: every step it takes is a fraction of a second
        // (the crate's integer counter can only step by whole seconds).
        let mut last = scraped_cpu(&c);
        let mut steps = 0;
        for _ in 0..20 {
            burn(Duration::from_millis(30));
            let now = scraped_cpu(&c);
            assert!(now >= last, "a counter never goes down: {last} → {now}");
            if now > last {
                steps += 1;
                assert!(
                    now - last < 0.5,
                    "one step of {} s for ~30 ms of CPU: whole-second resolution?",
                    now - last
                );
            }
            last = now;
        }
        assert!(
            steps >= 10,
            "the counter moved in only {steps} of 20 scrapes"
        );
    }
}
