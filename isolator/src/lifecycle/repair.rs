//! Repairs a `dvdcli` makes while the agent may be running (ledger lock shared): records a
//! dead `dvdcli exec` left damaged, and `dvdcli recover` — the isolator's recover for
//! `dvdcli exec` holders only.
//!
//! Every `dvdcli exec` and `dvdcli inspect` runs the reap first ([`Isolator::reap_dead_holders`]):
//! - temp files of writers that are gone are deleted;
//! - a **damaged volume record** (empty, truncated, not JSON, another format, a symlink, …)
//!   whose volume its file name or a container record names is rebuilt: holders from the valid
//!   container records that hold it, the mount id and mount point they copied; for a driver
//!   with a fixed mount point (`local`'s `_data`: `VolumeDriver::fixed_mountpoint`) the mount
//!   table says whether it is still mounted when no record knows the id
//!   (that mount cannot be released by id, and is reported). The damaged file is moved aside
//!   (`<file>.corrupt`). It is done here, not in `join`, so a damaged record is repaired once,
//!   under its volume's lock, before any exec uses the volume; the agent (which runs no reap)
//!   repairs through its own `recover`;
//! - a **damaged container record** whose file name is a `dvdcli exec` id
//!   (`dvdcli-exec-<pid>-<start time>`, see [`crate::holder`]) of a process that is gone is
//!   reaped like any dead holder: moved aside, and every volume record naming it as a holder
//!   released. Any other damaged container record is left alone (its container may be alive).
//!
//! [`Isolator::recover_exec`] (`dvdcli recover`) does the reap, then, per volume record: drops
//! holders that are dead `dvdcli exec` containers without a record, unmounts a mount nobody
//! holds and no container record claims, and retries failed unmounts. An agent container (a
//! record without a holder) and the volumes it holds are never touched; while a damaged
//! container record nobody can attribute exists, no unheld mount is unmounted either (it may
//! be that container's).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{Isolator, IsolatorError};
use crate::container_id::ContainerId;
use crate::holder::Holder;
use crate::ledger::{
    encode, ContainerRecord, LedgerError, Listed, MountRecord, MountState, VolumeKey, VolumeRecord,
};

/// What [`Isolator::recover_exec`] (`dvdcli recover`) found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExecRecoverReport {
    /// Dead `dvdcli exec` containers whose volumes were released.
    pub reaped_containers: Vec<ContainerId>,
    /// Damaged records moved aside (`<file>.corrupt`), each with what replaced it.
    pub moved_aside: Vec<PathBuf>,
    /// Damaged volume records rebuilt from the container records.
    pub rebuilt_volume_records: usize,
    /// Holders dropped because they are dead `dvdcli exec` containers without a record.
    pub dropped_holders: usize,
    /// Mounts released because nothing held them any more.
    pub unmounted_volumes: usize,
    /// Earlier failed unmounts that succeeded on retry.
    pub retried_unmounts: usize,
    /// Unmounts that failed (remembered for the next retry).
    pub failed_unmounts: usize,
    /// Temp files of writers that are gone, deleted.
    pub removed_temp_files: usize,
    /// Agent containers (no holder): never touched.
    pub agent_containers: usize,
    /// `dvdcli exec` containers whose process still runs: never touched.
    pub live_exec_containers: usize,
    /// Damaged records nobody can attribute, left where they are.
    pub unattributed_records: Vec<PathBuf>,
    /// One line per notable thing.
    pub messages: Vec<String>,
    /// What failed.
    pub errors: Vec<String>,
}

impl ExecRecoverReport {
    fn note(&mut self, iso: &Isolator, message: String) {
        iso.config.log.warn(&message);
        self.messages.push(message);
    }

    /// Whether everything it tried was done.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.failed_unmounts == 0
    }
}

/// Whether a ledger error means the record is damaged (as opposed to an I/O failure).
pub(super) fn is_damage(e: &LedgerError) -> bool {
    matches!(
        e,
        LedgerError::Corrupt { .. } | LedgerError::Untrusted { .. }
    )
}

/// The `dvdcli exec` container a record's file name (`stem`) names, when its process is gone.
pub(super) fn dead_exec(stem: &str) -> Option<ContainerId> {
    let id = encode::decode(stem)?;
    let holder = Holder::of_exec_container_id(&id)?;
    if holder.is_alive() {
        return None;
    }
    ContainerId::new(&id).ok()
}

/// Rebuilds the damaged volume records (ledger lock held, shared or exclusive), from the valid
/// container records `containers`.
pub(super) fn rebuild_damaged_volumes(
    iso: &Isolator,
    containers: &[ContainerRecord],
    report: &mut ExecRecoverReport,
) -> Result<(), IsolatorError> {
    for listed in iso
        .ledger
        .list_volumes()
        .map_err(IsolatorError::checkpoint)?
    {
        let entry = listed.entry;
        let Err(damage) = &entry.record else { continue };
        if !is_damage(damage) {
            report.errors.push(damage.to_string());
            continue;
        }
        let key = listed
            .name
            .map(|name| VolumeKey::new(listed.driver.clone(), name))
            .or_else(|| {
                containers
                    .iter()
                    .flat_map(|c| &c.volumes)
                    .map(|u| u.key())
                    .find(|k| {
                        k.driver == listed.driver && encode::encode(k.name.as_str()) == entry.stem
                    })
            });
        let Some(key) = key else {
            report.note(
                iso,
                format!("{damage}; no container record names its volume: left as it is"),
            );
            report.unattributed_records.push(entry.path);
            continue;
        };
        if let Err(e) = rebuild_volume(iso, containers, &key, report) {
            report.errors.push(e.to_string());
        }
    }
    Ok(())
}

/// Rebuilds one damaged volume record under its lock (if it is still damaged).
fn rebuild_volume(
    iso: &Isolator,
    containers: &[ContainerRecord],
    key: &VolumeKey,
    report: &mut ExecRecoverReport,
) -> Result<(), IsolatorError> {
    let ledger_err = Isolator::volume_ledger_error(key);
    let _lock = iso.ledger.lock_volume(key).map_err(ledger_err)?;
    let path = iso.ledger.volume_path(key);
    let damage = match iso.ledger.read_volume(key) {
        // A directory others could write is not ours to repair in (nor to write a record in).
        Err(LedgerError::Untrusted { path: p, reason }) if p != path => {
            return Err(ledger_err(LedgerError::Untrusted { path: p, reason }))
        }
        Err(e) if is_damage(&e) => e,
        // Repaired or replaced meanwhile: nothing to do.
        _ => return Ok(()),
    };
    let mut record = VolumeRecord::new(key);
    record.holders = containers
        .iter()
        .filter(|c| c.holds(key))
        .map(|c| c.container_id.clone())
        .collect();
    // The mount its holders joined first (they all joined the same one), else any record's.
    let used = containers
        .iter()
        .filter(|c| c.holds(key))
        .chain(containers.iter())
        .flat_map(|c| &c.volumes)
        .find(|u| u.key() == *key && u.mount_id.is_some());
    let how = match used {
        Some(u) => {
            let id = u.mount_id.clone().unwrap_or_default();
            record.mount = Some(MountRecord {
                id: id.clone(),
                state: MountState::Mounted,
                mountpoint: u.mountpoint.clone(),
                identity: None,
            });
            format!("rebuilt with mount id {id} from its container records")
        }
        None => match left_mounted(iso, key) {
            Some(data) => format!(
                "rebuilt without a mount: {} is mounted but no record knows its mount id; release it by hand",
                data.display()
            ),
            None => "rebuilt without a mount (no record knows one)".into(),
        },
    };
    let aside = iso.ledger.move_aside(&path).map_err(ledger_err)?;
    iso.ledger.write_volume(&record).map_err(ledger_err)?;
    report.rebuilt_volume_records += 1;
    report.note(
        iso,
        format!("{damage} (moved to {}); {key}: {how}", aside.display()),
    );
    report.moved_aside.push(aside);
    Ok(())
}

/// The volume's fixed mount point ([`crate::driver::VolumeDriver::fixed_mountpoint`], the
/// `local` driver's `_data`) when the mount table shows it mounted (unknown: mounted).
fn left_mounted(iso: &Isolator, key: &VolumeKey) -> Option<PathBuf> {
    iso.resolver
        .fixed_mountpoint(&key.driver, &key.name)
        .filter(|data| iso.host.is_mountpoint(data).unwrap_or(true))
}

/// Per volume record (ledger lock held, shared): drops dead exec holders without a record,
/// unmounts what nothing holds or claims, retries failed unmounts.
pub(super) fn settle_volumes(
    iso: &Isolator,
    report: &mut ExecRecoverReport,
) -> Result<(), IsolatorError> {
    let mut claimed: BTreeSet<VolumeKey> = BTreeSet::new();
    let mut unattributed = false;
    let mut exec_records: BTreeSet<ContainerId> = BTreeSet::new();
    for listed in iso
        .ledger
        .list_containers()
        .map_err(IsolatorError::checkpoint)?
    {
        let Listed { path, record, .. } = listed;
        match record {
            Ok(c) => {
                match c.holder {
                    None => report.agent_containers += 1,
                    Some(h) if h.is_alive() => report.live_exec_containers += 1,
                    Some(_) => {}
                }
                if c.holder.is_some() {
                    exec_records.insert(c.container_id.clone());
                }
                if c.state.holds_references() {
                    claimed.extend(c.volumes.iter().map(|u| u.key()));
                }
            }
            Err(e) => {
                unattributed = true;
                report.note(
                    iso,
                    format!("{e}; not a dvdcli exec that is gone: left as it is"),
                );
                report.unattributed_records.push(path);
            }
        }
    }
    for listed in iso
        .ledger
        .list_volumes()
        .map_err(IsolatorError::checkpoint)?
    {
        let Ok(record) = listed.entry.record else {
            continue;
        };
        let key = record.key();
        let guard = Guard {
            claimed: claimed.contains(&key),
            unattributed,
            exec_records: &exec_records,
        };
        if let Err(e) = settle_volume(iso, &key, &guard, report) {
            report.errors.push(e.to_string());
        }
    }
    Ok(())
}

/// What a volume's settling must respect.
struct Guard<'a> {
    /// A container record holding references names the volume.
    claimed: bool,
    /// Some damaged container record could be any container's.
    unattributed: bool,
    /// `dvdcli exec` containers that have a record (their holders are theirs to drop).
    exec_records: &'a BTreeSet<ContainerId>,
}

fn settle_volume(
    iso: &Isolator,
    key: &VolumeKey,
    guard: &Guard<'_>,
    report: &mut ExecRecoverReport,
) -> Result<(), IsolatorError> {
    let ledger_err = Isolator::volume_ledger_error(key);
    let _lock = iso.ledger.lock_volume(key).map_err(ledger_err)?;
    let Some(mut record) = iso.ledger.read_volume(key).map_err(ledger_err)? else {
        return Ok(());
    };
    let stored = record.clone();
    let dead: Vec<ContainerId> = record
        .holders
        .iter()
        .filter(|h| !guard.exec_records.contains(*h))
        .filter(|h| Holder::of_exec_container_id(h.as_str()).is_some_and(|p| !p.is_alive()))
        .cloned()
        .collect();
    for h in &dead {
        record.holders.remove(h);
        report.dropped_holders += 1;
        report.note(
            iso,
            format!("{key}: no longer held by {h} (a dvdcli exec that is gone, without a record)"),
        );
    }
    let unheld = record.holders.is_empty() && !guard.claimed;
    if record.mount.is_some() && unheld && guard.unattributed {
        report.note(
            iso,
            format!("{key}: nothing holds its mount, but a damaged container record could be its holder's: left mounted"),
        );
    } else if unheld && !guard.unattributed {
        if let Some(mount) = record.mount.take() {
            let id = mount.id.clone();
            match iso.unmount_resolving(&mut record, mount) {
                Ok(()) => {
                    report.unmounted_volumes += 1;
                    report.note(
                        iso,
                        format!("{key}: unmounted mount id {id} (nothing held it)"),
                    );
                }
                Err(e) => {
                    report.failed_unmounts += 1;
                    report.errors.push(e.to_string());
                }
            }
        }
    }
    if !record.failed_unmounts.is_empty() {
        match iso.resolver.resolve(&key.driver) {
            Ok(d) => {
                let (done, still) = iso.retry_failed_unmounts(&mut record, d.as_ref());
                report.retried_unmounts += done;
                report.failed_unmounts += still.len();
                report.errors.extend(still);
            }
            Err(e) => {
                report.failed_unmounts += record.failed_unmounts.len();
                report
                    .errors
                    .push(format!("{key}: cannot retry failed unmounts: {e}"));
            }
        }
    }
    if record != stored {
        iso.ledger.write_volume(&record).map_err(ledger_err)?;
    }
    Ok(())
}
