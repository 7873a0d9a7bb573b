//! `cleanup` and the reaping of dead `dvdcli exec` holders.
//!
//! Cleanup drops the container's references first, durably (its record is deleted, or, for a
//! `dvdcli exec` container, goes to `cleaning`), then releases each volume: the holder is removed and, after the last one, the volume is
//! unmounted with the id of its Mount. A failed Unmount is reported and remembered for retry
//! in the volume record, which keeps no holder: it never pins the volume (MESOS-10126).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{repair, Isolator, IsolatorError, ReapReport};
use crate::container_id::ContainerId;
use crate::fault;
use crate::ledger::{ContainerRecord, ContainerState, LedgerError, VolumeKey};

/// Cleanup with the ledger lock already held (shared or exclusive). An unreadable record is
/// moved aside first; `aside` gets its new path. `Ok(true)`: the container held volumes (by its
/// record, or, when that is unreadable, by volume records naming it as a holder).
pub(super) fn cleanup_locked(
    iso: &Isolator,
    id: &ContainerId,
    aside: &mut Vec<PathBuf>,
) -> Result<bool, IsolatorError> {
    let ledger_err = |source| IsolatorError::Ledger {
        container: id.clone(),
        cause: Box::new(source),
    };
    let _container = iso.ledger.lock_container(id).map_err(ledger_err)?;
    let mut errors = Vec::new();

    // What the container holds: its record's uses or, when its record is lost or unreadable,
    // every volume record naming it as a holder (recover attributes the mounts no valid record
    // explains to such a container; a container with a valid record is only ever a holder of
    // the volumes its record lists, so it needs no scan of every volume record).
    let mut volumes: BTreeSet<VolumeKey> = BTreeSet::new();
    // Whether the container's record is deleted already (an agent container's goes first).
    let mut record_gone = false;
    let record = match iso.ledger.read_container(id) {
        Ok(record) => record,
        Err(e @ (LedgerError::Corrupt { .. } | LedgerError::Untrusted { .. })) => {
            // Kept for the operator, and out of every later listing's way.
            let moved = match iso.ledger.move_aside(&iso.ledger.container_path(id)) {
                Ok(p) => {
                    let text = format!("moved to {}", p.display());
                    aside.push(p);
                    text
                }
                Err(e) => format!("could not be moved aside: {e}"),
            };
            iso.config.log.warn(&format!(
                "container {id}: {e} ({moved}); releasing the volumes that name it as a holder"
            ));
            None
        }
        Err(e) => return Err(ledger_err(e)),
    };
    if let Some(mut record) = record {
        volumes.extend(record.volumes.iter().map(|u| u.key()));
        // The references go first, durably. An agent container's record is simply deleted:
        // after a crash from here on, the agent's recover drops the holder entries no record
        // explains and unmounts what they alone held. A `dvdcli exec` container's is marked
        // `cleaning` and deleted last: the next `dvdcli` finishes the job through it.
        if record.holder.is_none() {
            iso.ledger.remove_container(id).map_err(ledger_err)?;
            record_gone = true;
            fault::point("cleanup.references_dropped");
        } else if record.state != ContainerState::Cleaning {
            record.state = ContainerState::Cleaning;
            iso.ledger.write_container(&record).map_err(ledger_err)?;
        }
    } else {
        match iso.ledger.list_volumes() {
            Ok(listed) => volumes.extend(listed.into_iter().filter_map(|v| {
                v.entry
                    .record
                    .ok()
                    .filter(|r| r.holders.contains(id))
                    .map(|r| r.key())
            })),
            Err(e) => errors.push(IsolatorError::checkpoint(e)),
        }
    }

    for key in &volumes {
        if let Err(e) = iso.release(id, key, None) {
            iso.config.log.warn(&format!("container {id}: {e}"));
            errors.push(e);
        }
    }
    // Whatever failed above is remembered in the volume records; the container is gone.
    fault::point("cleanup.before_record_delete");
    if !record_gone {
        if let Err(e) = iso.ledger.remove_container(id) {
            errors.push(ledger_err(e));
        }
    }
    if errors.is_empty() {
        Ok(!volumes.is_empty())
    } else {
        Err(IsolatorError::Cleanup {
            container: id.clone(),
            errors,
        })
    }
}

/// Cleans up the containers whose holder process is gone (ledger lock held): first deletes
/// the temp files of writers that are gone and rebuilds damaged volume records, then cleans up
/// every `dvdcli exec` container whose process is gone — a valid record's holder, or the id in
/// the file name of a damaged record (see [`super::repair`]).
pub(super) fn reap_locked(iso: &Isolator) -> Result<ReapReport, IsolatorError> {
    let mut report = ReapReport::default();
    match iso.ledger.remove_stale_temp_files() {
        Ok(n) => report.repair.removed_temp_files = n,
        Err(e) => report.repair.errors.push(e.to_string()),
    }
    let listed = iso
        .ledger
        .list_containers()
        .map_err(IsolatorError::checkpoint)?;
    let valid: Vec<ContainerRecord> = listed
        .iter()
        .filter_map(|l| l.record.as_ref().ok().cloned())
        .collect();
    // A listing that fails is reported, never a reason to leave dead execs unreaped.
    if let Err(e) = repair::rebuild_damaged_volumes(iso, &valid, &mut report.repair) {
        report.repair.errors.push(e.to_string());
    }
    for listed in listed {
        let id = match listed.record {
            Ok(record) => match record.holder {
                Some(holder) if !holder.is_alive() => {
                    iso.config.log.info(&format!(
                        "container {}: its holder process {} is gone; cleaning up",
                        record.container_id, holder.pid
                    ));
                    record.container_id
                }
                _ => continue,
            },
            Err(e) if repair::is_damage(&e) => match repair::dead_exec(&listed.stem) {
                Some(id) => {
                    iso.config.log.info(&format!(
                        "container {id}: its record is damaged and its dvdcli exec is gone; cleaning up"
                    ));
                    id
                }
                None => continue,
            },
            Err(_) => continue,
        };
        if let Err(e) = cleanup_locked(iso, &id, &mut report.repair.moved_aside) {
            report.errors.push(e);
        }
        report.reaped.push(id);
    }
    Ok(report)
}
