//! The async dispatcher: a tokio runtime whose threads run request tasks with the async
//! driver. Each task is wrapped in [`Instrumented`] (the phase split) and tokio-metrics'
//! `TaskMonitor` (the cross-check).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio_metrics::TaskMonitor;

use crate::observe::measure::Instrumented;
use crate::observe::metrics::Metrics;
use crate::serve::db::{Backend, Clients};
use crate::serve::dispatch::{Done, Job};

/// The tokio runtime that runs async-mode handlers.
pub(crate) struct AsyncRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pub(crate) monitor: TaskMonitor,
    in_flight: Arc<AtomicUsize>,
}

impl AsyncRuntime {
    pub(crate) fn new(threads: usize) -> Result<AsyncRuntime, String> {
        let runtime = crate::process::runtime("reclaimd-async", Some(threads))?;
        Ok(AsyncRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            monitor: TaskMonitor::new(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Request tasks spawned and not yet finished.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Runs `job` as a task on this runtime.
    pub(crate) fn spawn(
        &self,
        job: Job,
        clients: Arc<Clients>,
        metrics: Arc<Metrics>,
    ) -> tokio::task::JoinHandle<Done> {
        struct InFlight(Arc<AtomicUsize>);
        impl Drop for InFlight {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self.in_flight.clone());
        let tracker = job.tracker.clone();
        let request = async move {
            let _guard = guard;
            job.run(Backend::Async(&clients.async_), &metrics).await
        };
        self.handle
            .spawn(self.monitor.instrument(Instrumented::new(request, tracker)))
    }
}

impl Drop for AsyncRuntime {
    fn drop(&mut self) {
        // Dropping a runtime from inside another runtime's thread would panic.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
