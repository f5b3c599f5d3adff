//! The hook through which the live view follows requests as they go: a [`Watcher`] installed
//! on a mode's `ModeStats` is called by the measurement core on every arrival and phase
//! transition while its [`Watch`] is switched on. Off, a transition pays one relaxed load.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::observe::measure::Phase;

/// Follows requests' phase changes as they happen (the live view). Called on the thread
/// that makes the change (a sync pool worker, an async runtime thread inside `poll`, or
/// whichever thread drops an unfinished request), with the request's tracker locked: it must
/// be quick and must never block.
pub trait Watcher: Send + Sync {
    /// Request `id` arrived at `at`; it is queued from then on.
    fn arrived(&self, id: u64, at: Instant);
    /// Request `change.id` left one phase for the next.
    fn changed(&self, change: &Change);
}

/// One transition, as a [`Watcher`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Change {
    /// The request (unique in the process).
    pub id: u64,
    /// When it arrived.
    pub arrival: Instant,
    /// The phase it left...
    pub from: Phase,
    /// ... which it entered at `since`...
    pub since: Instant,
    /// ... and of which `spent` was credited to `from` (the rest, if any, to `sched`).
    pub spent: Duration,
    /// The phase it entered at `at`; `None`: it finished.
    pub to: Option<Phase>,
    /// When.
    pub at: Instant,
}

/// A mode's [`Watcher`] slot and the switch every transition checks.
#[derive(Default)]
pub struct Watch {
    on: AtomicBool,
    watcher: OnceLock<Arc<dyn Watcher>>,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("on", &self.on.load(Ordering::Relaxed))
            .field("installed", &self.watcher.get().is_some())
            .finish()
    }
}

impl Watch {
    /// Installs the watcher (once; a second one is refused and returned).
    pub fn install(&self, watcher: Arc<dyn Watcher>) -> Result<(), Arc<dyn Watcher>> {
        self.watcher.set(watcher)
    }

    /// Switches the calls to the watcher on or off.
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn get(&self) -> Option<&dyn Watcher> {
        if self.on.load(Ordering::Relaxed) {
            self.watcher.get().map(|w| &**w)
        } else {
            None
        }
    }
}
