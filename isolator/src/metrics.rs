//! The isolator's own figures, for an agent's `/metrics/snapshot` (the C ABI hands them to
//! the Mesos module, which publishes them under `dvdi/`): counters and timers kept with
//! lock-free atomics, so that counting costs a prepare or cleanup a few atomic adds and one
//! `Instant::now` pair, and their snapshot values.
//!
//! The gauges that describe the ledger (volumes mounted, unmounts waiting for retry) are not
//! kept here: the isolator counts them from its volume records when a snapshot is taken
//! (`Isolator::metrics`), so they are right whatever process or crash changed the records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A number that only goes up. Shared (`Arc`) by the parts that count into it.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn increment(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How many of the latest durations a [`Timer`] keeps for its minimum, maximum and
/// percentiles (libprocess keeps 1000 values in a timer's window).
pub const TIMER_WINDOW: usize = 1024;

/// Durations of an operation: how many, their sum and the last one over the whole life of
/// the isolator, and the latest [`TIMER_WINDOW`] of them (microseconds, in a ring written
/// with one atomic store each) for the window's statistics.
#[derive(Debug)]
pub struct Timer {
    count: AtomicU64,
    total_us: AtomicU64,
    last_us: AtomicU64,
    ring: Box<[AtomicU64; TIMER_WINDOW]>,
}

impl Default for Timer {
    fn default() -> Self {
        Self {
            count: AtomicU64::new(0),
            total_us: AtomicU64::new(0),
            last_us: AtomicU64::new(0),
            ring: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Timer {
    /// Adds one duration. No lock, no allocation.
    pub fn record(&self, took: Duration) {
        let us = micros(took);
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        // The index is taken from the counter, so concurrent records use different slots.
        self.ring[(n % TIMER_WINDOW as u64) as usize].store(us, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.last_us.store(us, Ordering::Relaxed);
    }

    /// The figures now. A duration recorded while the snapshot is taken may be counted but
    /// not yet in the window (or the other way round): figures, not a transaction.
    pub fn snapshot(&self) -> TimerSnapshot {
        let count = self.count.load(Ordering::Relaxed);
        let filled = usize::try_from(count).map_or(TIMER_WINDOW, |c| c.min(TIMER_WINDOW));
        let mut window: Vec<u64> = self.ring[..filled]
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .collect();
        window.sort_unstable();
        let rank = |p: u32| nearest_rank(&window, p);
        TimerSnapshot {
            count,
            total: Duration::from_micros(self.total_us.load(Ordering::Relaxed)),
            last: Duration::from_micros(self.last_us.load(Ordering::Relaxed)),
            window: window.len() as u64,
            min: Duration::from_micros(window.first().copied().unwrap_or(0)),
            max: Duration::from_micros(window.last().copied().unwrap_or(0)),
            p50: rank(500),
            p90: rank(900),
            p95: rank(950),
            p99: rank(990),
        }
    }
}

/// The nearest-rank percentile `per_mille`/1000 of sorted `values` (zero when empty): the
/// smallest value at least that share of the values is not above.
fn nearest_rank(sorted: &[u64], per_mille: u32) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let n = sorted.len() as u64;
    // ceil(n * p / 1000), at least 1.
    let rank = (n * u64::from(per_mille)).div_ceil(1000).max(1);
    let index = usize::try_from(rank - 1)
        .unwrap_or(usize::MAX)
        .min(sorted.len() - 1);
    Duration::from_micros(sorted[index])
}

/// A [`Timer`]'s figures. `count`, `total` and `last` cover the isolator's whole life; `min`,
/// `max` and the percentiles the latest `window` durations (at most [`TIMER_WINDOW`]). All
/// zero before the first duration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TimerSnapshot {
    pub count: u64,
    pub total: Duration,
    pub last: Duration,
    pub window: u64,
    pub min: Duration,
    pub max: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

/// The counters and timers an isolator keeps.
#[derive(Debug, Default)]
pub struct IsolatorMetrics {
    pub prepares: Counter,
    pub prepare_failures: Counter,
    pub cleanups: Counter,
    pub cleanup_failures: Counter,
    pub recovers: Counter,
    pub recover_failures: Counter,
    pub prepare_time: Timer,
    pub cleanup_time: Timer,
}

impl IsolatorMetrics {
    /// One prepare that asked for volumes (or failed before that was known), and how long it
    /// took.
    pub fn prepared(&self, took: Duration, ok: bool) {
        self.prepares.increment();
        if !ok {
            self.prepare_failures.increment();
        }
        self.prepare_time.record(took);
    }

    /// One cleanup of a container that held volumes (or that failed), and how long it took.
    pub fn cleaned_up(&self, took: Duration, ok: bool) {
        self.cleanups.increment();
        if !ok {
            self.cleanup_failures.increment();
        }
        self.cleanup_time.record(took);
    }

    pub fn recovered(&self, ok: bool) {
        self.recovers.increment();
        if !ok {
            self.recover_failures.increment();
        }
    }
}

/// What the ledger's volume records say, counted when a snapshot is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct VolumeGauges {
    /// Volumes whose record holds a mount in state `mounted` (each one driver Mount, however
    /// many containers share it).
    pub mounted: u64,
    /// Unmounts that failed and wait in a record's `failed_unmounts` for their retry.
    pub unmounts_pending_retry: u64,
    /// Volume records that could not be read (corrupt, untrusted, vanished while listed):
    /// not counted in the two figures above.
    pub unreadable_records: u64,
}

/// [`crate::Isolator::metrics`]: every figure at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    /// Prepares of containers that asked for volumes (env or `DOCKER_VOLUME`s), successful or not
    /// (a container without `DVDI_VOLUME_*` variables is not counted).
    pub prepares: u64,
    pub prepare_failures: u64,
    /// Cleanups of containers the ledger knew (that held volumes), successful or not; a
    /// cleanup that failed is counted even when the container was unknown.
    pub cleanups: u64,
    pub cleanup_failures: u64,
    pub recovers: u64,
    pub recover_failures: u64,
    /// Plugin calls whose deadline passed (any endpoint; connection attempts that ran out of
    /// their window included), one per call.
    pub plugin_timeouts: u64,
    /// `None` when the ledger's volume records could not be listed.
    pub volumes: Option<VolumeGauges>,
    pub prepare_time: TimerSnapshot,
    pub cleanup_time: TimerSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_unused_timer_says_zero_everywhere() {
        assert_eq!(Timer::default().snapshot(), TimerSnapshot::default());
    }

    #[test]
    fn a_timer_counts_sums_and_ranks_its_durations() {
        let t = Timer::default();
        for n in [30, 10, 20, 40] {
            t.record(ms(n));
        }
        let s = t.snapshot();
        assert_eq!((s.count, s.window), (4, 4));
        assert_eq!((s.total, s.last), (ms(100), ms(40)));
        assert_eq!((s.min, s.max), (ms(10), ms(40)));
        // Nearest rank of 4 values: p50 is the 2nd, p90/p95/p99 the 4th.
        assert_eq!(
            (s.p50, s.p90, s.p95, s.p99),
            (ms(20), ms(40), ms(40), ms(40))
        );
    }

    #[test]
    fn percentiles_of_a_hundred_values_are_their_ranks() {
        let t = Timer::default();
        for n in (1..=100).rev() {
            t.record(ms(n));
        }
        let s = t.snapshot();
        assert_eq!(
            (s.p50, s.p90, s.p95, s.p99),
            (ms(50), ms(90), ms(95), ms(99))
        );
        assert_eq!((s.min, s.max, s.last), (ms(1), ms(100), ms(1)));
    }

    #[test]
    fn the_window_keeps_the_latest_durations_and_the_totals_keep_all() {
        let t = Timer::default();
        // One long duration, then a full window of short ones: it leaves the window.
        t.record(ms(1000));
        for _ in 0..TIMER_WINDOW {
            t.record(ms(1));
        }
        let s = t.snapshot();
        assert_eq!(s.count, TIMER_WINDOW as u64 + 1);
        assert_eq!(s.window, TIMER_WINDOW as u64);
        assert_eq!(s.max, ms(1));
        assert_eq!(s.total, ms(1000 + TIMER_WINDOW as u64));
    }

    #[test]
    fn durations_are_kept_in_microseconds() {
        let t = Timer::default();
        t.record(Duration::from_nanos(1_500));
        t.record(Duration::from_nanos(999));
        let s = t.snapshot();
        assert_eq!(s.total, Duration::from_micros(1));
        assert_eq!(s.max, Duration::from_micros(1));
    }

    #[test]
    fn failures_are_counted_with_the_operations() {
        let m = IsolatorMetrics::default();
        m.prepared(ms(5), true);
        m.prepared(ms(7), false);
        m.cleaned_up(ms(1), false);
        m.recovered(true);
        m.recovered(false);
        m.recovered(false);
        assert_eq!((m.prepares.get(), m.prepare_failures.get()), (2, 1));
        assert_eq!((m.cleanups.get(), m.cleanup_failures.get()), (1, 1));
        assert_eq!((m.recovers.get(), m.recover_failures.get()), (3, 2));
        assert_eq!(m.prepare_time.snapshot().total, ms(12));
        assert_eq!(m.cleanup_time.snapshot().count, 1);
    }

    #[test]
    fn threads_counting_at_once_lose_nothing() {
        let m = IsolatorMetrics::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        m.prepared(ms(2), true);
                    }
                });
            }
        });
        let t = m.prepare_time.snapshot();
        assert_eq!((m.prepares.get(), t.count, t.total), (4000, 4000, ms(8000)));
        assert_eq!((t.min, t.max), (ms(2), ms(2)));
    }
}
