//! [`Isolator::metrics`]: the counters and timers the isolator keeps, with the gauges of the
//! ledger counted from its volume records at that moment.
//!
//! The gauges are counted, not kept: a record is the truth about a volume whichever process
//! (the agent's isolator, a `dvdcli exec`) or crash last changed it, and `recover` rewrites
//! records wholesale. Counting reads one small file per volume that is mounted, held or
//! waiting for an unmount retry (idle volumes have no record), takes no lock and so never
//! waits for a prepare, a cleanup or a recover; each record is read whole (records are
//! replaced by rename), the set of them may be caught between two operations.

use super::Isolator;
use crate::ledger::{LedgerError, MountState, VolumeRecord};
use crate::metrics::{MetricsSnapshot, VolumeGauges};

impl Isolator {
    /// Every figure now (see [`MetricsSnapshot`]).
    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.metrics;
        let volumes = match self.ledger.list_volumes() {
            Ok(listed) => Some(count(listed.into_iter().map(|l| l.entry.record))),
            Err(e) => {
                self.config
                    .log
                    .debug(&format!("metrics: cannot list the volume records: {e}"));
                None
            }
        };
        MetricsSnapshot {
            prepares: m.prepares.get(),
            prepare_failures: m.prepare_failures.get(),
            cleanups: m.cleanups.get(),
            cleanup_failures: m.cleanup_failures.get(),
            recovers: m.recovers.get(),
            recover_failures: m.recover_failures.get(),
            plugin_timeouts: self.resolver.plugin_timeouts(),
            volumes,
            prepare_time: m.prepare_time.snapshot(),
            cleanup_time: m.cleanup_time.snapshot(),
        }
    }
}

/// The gauges of a listing of volume records.
fn count(records: impl Iterator<Item = Result<VolumeRecord, LedgerError>>) -> VolumeGauges {
    let mut g = VolumeGauges::default();
    for record in records {
        match record {
            Ok(r) => {
                if r.mount
                    .as_ref()
                    .is_some_and(|m| m.state == MountState::Mounted)
                {
                    g.mounted += 1;
                }
                g.unmounts_pending_retry += r.failed_unmounts.len() as u64;
            }
            Err(_) => g.unreadable_records += 1,
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{MountRecord, VolumeKey};
    use crate::names::{DriverName, VolumeName};

    fn record(name: &str, mount: Option<MountState>, failed: usize) -> VolumeRecord {
        let key = VolumeKey::new(
            DriverName::new("d").unwrap(),
            VolumeName::new(name).unwrap(),
        );
        let mut r = VolumeRecord::new(&key);
        r.mount = mount.map(|state| MountRecord {
            id: format!("{name}-now"),
            state,
            mountpoint: None,
            identity: None,
        });
        for i in 0..failed {
            let old = MountRecord {
                id: format!("{name}-{i}"),
                state: MountState::Unmounting,
                mountpoint: None,
                identity: None,
            };
            r.remember_failed_unmount(&old, "busy".into());
        }
        r
    }

    #[test]
    fn only_mounted_mounts_count_as_mounted_and_every_failed_unmount_waits() {
        let records = vec![
            Ok(record("a", Some(MountState::Mounted), 0)),
            Ok(record("b", Some(MountState::Mounting), 0)),
            Ok(record("c", Some(MountState::Unmounting), 1)),
            Ok(record("d", None, 2)),
            Ok(record("e", Some(MountState::Mounted), 1)),
            Err(LedgerError::Corrupt {
                path: "/x".into(),
                reason: "garbage".into(),
            }),
        ];
        assert_eq!(
            count(records.into_iter()),
            VolumeGauges {
                mounted: 2,
                unmounts_pending_retry: 4,
                unreadable_records: 1,
            }
        );
    }

    #[test]
    fn no_records_no_volumes() {
        assert_eq!(count(std::iter::empty()), VolumeGauges::default());
    }
}
