//! `dvdi_metrics` of dvdi.h: the isolator's figures ([`dvdi::MetricsSnapshot`]) as a plain C
//! struct the host passes in, filled up to the size it says it has.
//!
//! A struct rather than JSON: the Mesos module reads it once per published figure, each time
//! a `/metrics/snapshot` is taken, so it should cost no allocation and no parsing; and its
//! layout is checked by the C compiler against the library's own description ([`FIELDS`],
//! rendered into `dvdi_abi_check.h`). It grows only at its end: `size` says how much of it
//! the library filled, so a host built with a newer header can tell which fields an older
//! library left alone, and an older host's smaller struct is filled up to its size.

use std::mem::{offset_of, size_of};
use std::time::Duration;

use dvdi::{MetricsSnapshot, TimerSnapshot};

/// `DVDI_METRICS_VERSION`: the layout of [`CMetrics`] this library fills.
pub const METRICS_VERSION: u32 = 1;

/// `DVDI_METRICS_SIZE_V1`: the size of the first layout, the smallest `out_size` accepted.
pub const METRICS_SIZE_V1: usize = 256;

/// `dvdi_timer_metrics`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CTimerMetrics {
    pub count: u64,
    pub total_us: u64,
    pub last_us: u64,
    pub window: u64,
    pub min_us: u64,
    pub max_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
}

/// `dvdi_metrics`. Every field is 8 bytes but the first two, which share 8: no padding, so
/// its bytes can be copied out as they are.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CMetrics {
    pub size: u32,
    pub version: u32,
    pub prepares: u64,
    pub prepare_failures: u64,
    pub cleanups: u64,
    pub cleanup_failures: u64,
    pub recovers: u64,
    pub recover_failures: u64,
    pub plugin_timeouts: u64,
    pub volumes_known: u64,
    pub volumes_mounted: u64,
    pub unmounts_pending_retry: u64,
    pub unreadable_volume_records: u64,
    pub prepare_time: CTimerMetrics,
    pub cleanup_time: CTimerMetrics,
}

const _: () = assert!(size_of::<CTimerMetrics>() == 10 * 8);
const _: () = assert!(size_of::<CMetrics>() == 8 + 11 * 8 + 2 * size_of::<CTimerMetrics>());
const _: () = assert!(size_of::<CMetrics>() == METRICS_SIZE_V1);

/// One field of a struct of dvdi.h: the C struct, the field, its C type, offset and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub strukt: &'static str,
    pub name: &'static str,
    pub c_type: &'static str,
    pub offset: usize,
    pub size: usize,
}

macro_rules! fields {
    ($c:literal, $t:ty: $($f:ident: $ct:literal $ft:ty),* $(,)?) => {
        [$(Field {
            strukt: $c,
            name: stringify!($f),
            c_type: $ct,
            offset: offset_of!($t, $f),
            // The listed type is the field's, or this does not compile.
            size: {
                const fn of(_: fn(&$t) -> &$ft) -> usize {
                    size_of::<$ft>()
                }
                of(|s| &s.$f)
            },
        }),*]
    };
}

/// Every field of `dvdi_timer_metrics`, in order.
pub const TIMER_FIELDS: [Field; 10] = fields!("dvdi_timer_metrics", CTimerMetrics:
    count: "uint64_t" u64,
    total_us: "uint64_t" u64,
    last_us: "uint64_t" u64,
    window: "uint64_t" u64,
    min_us: "uint64_t" u64,
    max_us: "uint64_t" u64,
    p50_us: "uint64_t" u64,
    p90_us: "uint64_t" u64,
    p95_us: "uint64_t" u64,
    p99_us: "uint64_t" u64,
);

/// Every field of `dvdi_metrics`, in order.
pub const FIELDS: [Field; 15] = fields!("dvdi_metrics", CMetrics:
    size: "uint32_t" u32,
    version: "uint32_t" u32,
    prepares: "uint64_t" u64,
    prepare_failures: "uint64_t" u64,
    cleanups: "uint64_t" u64,
    cleanup_failures: "uint64_t" u64,
    recovers: "uint64_t" u64,
    recover_failures: "uint64_t" u64,
    plugin_timeouts: "uint64_t" u64,
    volumes_known: "uint64_t" u64,
    volumes_mounted: "uint64_t" u64,
    unmounts_pending_retry: "uint64_t" u64,
    unreadable_volume_records: "uint64_t" u64,
    prepare_time: "dvdi_timer_metrics" CTimerMetrics,
    cleanup_time: "dvdi_timer_metrics" CTimerMetrics,
);

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl From<&TimerSnapshot> for CTimerMetrics {
    fn from(t: &TimerSnapshot) -> Self {
        Self {
            count: t.count,
            total_us: us(t.total),
            last_us: us(t.last),
            window: t.window,
            min_us: us(t.min),
            max_us: us(t.max),
            p50_us: us(t.p50),
            p90_us: us(t.p90),
            p95_us: us(t.p95),
            p99_us: us(t.p99),
        }
    }
}

impl From<&MetricsSnapshot> for CMetrics {
    fn from(m: &MetricsSnapshot) -> Self {
        let volumes = m.volumes.unwrap_or_default();
        Self {
            size: METRICS_SIZE_V1 as u32,
            version: METRICS_VERSION,
            prepares: m.prepares,
            prepare_failures: m.prepare_failures,
            cleanups: m.cleanups,
            cleanup_failures: m.cleanup_failures,
            recovers: m.recovers,
            recover_failures: m.recover_failures,
            plugin_timeouts: m.plugin_timeouts,
            volumes_known: u64::from(m.volumes.is_some()),
            volumes_mounted: volumes.mounted,
            unmounts_pending_retry: volumes.unmounts_pending_retry,
            unreadable_volume_records: volumes.unreadable_records,
            prepare_time: (&m.prepare_time).into(),
            cleanup_time: (&m.cleanup_time).into(),
        }
    }
}

impl CMetrics {
    /// Copies the first `room` bytes of `self` (all of it when `room` is larger) to `out`,
    /// with `size` saying how many that was.
    ///
    /// # Safety
    /// `out` points to at least `min(room, size_of::<CMetrics>())` writable bytes.
    pub unsafe fn write_to(mut self, out: *mut u8, room: usize) {
        let n = room.min(size_of::<CMetrics>());
        self.size = n as u32;
        // SAFETY: `self` has no padding (asserted above), so all its bytes are initialized;
        // `out` has room for `n` bytes per the contract, and cannot overlap a local.
        unsafe { std::ptr::copy_nonoverlapping((&self as *const CMetrics).cast::<u8>(), out, n) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_lists_cover_every_byte_in_order() {
        for (fields, size) in [
            (&TIMER_FIELDS[..], size_of::<CTimerMetrics>()),
            (&FIELDS[..], size_of::<CMetrics>()),
        ] {
            let mut next = 0;
            for f in fields {
                assert_eq!(
                    f.offset, next,
                    "{}.{} is not where it should be",
                    f.strukt, f.name
                );
                next += f.size;
            }
            assert_eq!(next, size, "{} has bytes no field covers", fields[0].strukt);
        }
    }

    #[test]
    fn a_snapshot_becomes_microseconds_and_flags() {
        let snap = MetricsSnapshot {
            prepares: 3,
            plugin_timeouts: 2,
            volumes: Some(dvdi::VolumeGauges {
                mounted: 4,
                unmounts_pending_retry: 1,
                unreadable_records: 0,
            }),
            prepare_time: TimerSnapshot {
                count: 3,
                total: Duration::from_millis(1500),
                p99: Duration::from_micros(7),
                ..TimerSnapshot::default()
            },
            ..MetricsSnapshot::default()
        };
        let c = CMetrics::from(&snap);
        assert_eq!((c.size as usize, c.version), (METRICS_SIZE_V1, 1));
        assert_eq!((c.prepares, c.plugin_timeouts), (3, 2));
        assert_eq!(
            (c.volumes_known, c.volumes_mounted, c.unmounts_pending_retry),
            (1, 4, 1)
        );
        assert_eq!(
            (
                c.prepare_time.count,
                c.prepare_time.total_us,
                c.prepare_time.p99_us
            ),
            (3, 1_500_000, 7)
        );
        let unknown = CMetrics::from(&MetricsSnapshot::default());
        assert_eq!((unknown.volumes_known, unknown.volumes_mounted), (0, 0));
    }

    #[test]
    fn a_smaller_struct_is_filled_up_to_its_size_and_says_so() {
        let full = CMetrics {
            prepares: 7,
            cleanups: 9,
            ..CMetrics::from(&MetricsSnapshot::default())
        };
        let mut buf = [0xAAu8; 300];
        // An older host's struct ending after `prepare_failures` (24 bytes).
        unsafe { full.write_to(buf.as_mut_ptr(), 24) };
        assert_eq!(u32::from_ne_bytes(buf[0..4].try_into().unwrap()), 24);
        assert_eq!(u64::from_ne_bytes(buf[8..16].try_into().unwrap()), 7);
        assert!(
            buf[24..].iter().all(|&b| b == 0xAA),
            "wrote past the room given"
        );
        // A newer host's larger struct: the library fills what it knows and says how much.
        let mut buf = [0xAAu8; 300];
        unsafe { full.write_to(buf.as_mut_ptr(), 300) };
        assert_eq!(
            u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize,
            METRICS_SIZE_V1
        );
        assert!(buf[METRICS_SIZE_V1..].iter().all(|&b| b == 0xAA));
    }
}
