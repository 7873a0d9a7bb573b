//! `prepare`: plan, intent, join each volume, make the bind targets, launch info. All or
//! nothing: on any failure the volumes this prepare joined are released (the ones it mounted
//! are unmounted, shared ones just lose this holder) and the intent is removed.

use std::path::PathBuf;

use super::error::ChownError;
use super::plan::{self, PlannedVolume};
use super::volume::{Held, Joined};
use super::{ContainerConfig, Isolator, IsolatorError};
use crate::container_id::ContainerId;
use crate::fault;
use crate::holder::EXEC_ID_PREFIX;
use crate::launch::{LaunchInfo, LaunchMount};
use crate::ledger::{ContainerRecord, ContainerState, VolumeUse};
use crate::sys::MsFlags;

pub(super) fn prepare(
    iso: &Isolator,
    id: &ContainerId,
    cfg: &ContainerConfig,
) -> Result<Option<LaunchInfo>, IsolatorError> {
    // The next `dvdcli` reaps an exec container whose id names a dead process, even when its
    // record is unreadable: no agent container may look like one.
    if cfg.holder.is_none() && id.as_str().starts_with(EXEC_ID_PREFIX) {
        return Err(IsolatorError::ReservedId {
            container: id.clone(),
            prefix: EXEC_ID_PREFIX,
        });
    }
    let Some(planned) = plan::plan(iso, id, cfg)? else {
        return Ok(None);
    };
    fault::point("prepare.validated");
    let _ledger = iso
        .ledger
        .lock_shared()
        .map_err(IsolatorError::checkpoint)?;
    let ledger_err = |source| IsolatorError::Ledger {
        container: id.clone(),
        cause: Box::new(source),
    };
    if iso.config.log.enabled(crate::lifecycle::LogLevel::Debug) {
        let volumes: Vec<String> = planned
            .iter()
            .map(|p| {
                format!(
                    "{}{}",
                    p.key,
                    if p.request.readonly {
                        " (read-only)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        iso.config.log.debug(&format!(
            "container {id}: prepare planned {} volume(s): {}",
            planned.len(),
            volumes.join(", ")
        ));
    }
    let _container = iso.ledger.lock_container(id).map_err(ledger_err)?;
    if iso.ledger.read_container(id).map_err(ledger_err)?.is_some() {
        return Err(IsolatorError::AlreadyPrepared {
            container: id.clone(),
            record: iso.ledger.container_path(id),
        });
    }

    let mut record = ContainerRecord::new(
        id.clone(),
        planned
            .iter()
            .map(|p| VolumeUse {
                driver: p.key.driver.clone(),
                name: p.key.name.clone(),
                container_path: p.target.as_ref().map(|t| t.container_path.clone()),
                target: p.target.as_ref().map(|t| t.path()),
                readonly: p.request.readonly,
                mount_id: None,
                mountpoint: None,
            })
            .collect(),
        cfg.holder,
    );
    // A `dvdcli exec` container's intent is written first: no agent recover follows its
    // crash, and the next `dvdcli` finds what it left only through its record. An agent
    // container's is not: until its record is written below, the holder entries its joins put
    // in the volume records are its only trace, and the agent's recover, which follows any
    // crash of the agent, drops holders no container record explains (and unmounts what they
    // alone held) — the same outcome an intent record would have had.
    let intent = record.holder.is_some();
    if intent {
        iso.ledger.write_container(&record).map_err(ledger_err)?;
    }

    let mut held: Vec<Held> = Vec::with_capacity(planned.len());
    let outcome = join_all(iso, id, cfg, &planned, &mut held).and_then(|launch| {
        fault::point("prepare.before_prepared_write");
        record.state = ContainerState::Prepared;
        for (used, h) in record.volumes.iter_mut().zip(&held) {
            used.mount_id = Some(h.mount_id.clone());
            used.mountpoint = Some(h.mountpoint.clone());
        }
        iso.ledger.write_container(&record).map_err(ledger_err)?;
        Ok(launch)
    });
    match outcome {
        Ok(launch) => Ok(Some(launch)),
        Err(primary) => Err(roll_back(
            iso,
            &mut record,
            intent,
            &planned,
            &held,
            primary,
        )),
    }
}

/// Joins every volume, makes the targets, and builds the launch info.
fn join_all(
    iso: &Isolator,
    id: &ContainerId,
    cfg: &ContainerConfig,
    planned: &[PlannedVolume],
    held: &mut Vec<Held>,
) -> Result<LaunchInfo, IsolatorError> {
    for (i, p) in planned.iter().enumerate() {
        if i > 0 {
            fault::point("prepare.between_volumes");
        }
        let h = iso.join(
            id,
            &p.key,
            p.driver.as_ref(),
            &p.request.opts,
            p.request.explicit_create,
        )?;
        let mountpoint = h.mountpoint.clone();
        let how = match h.joined {
            Joined::Mounted => "mounted",
            Joined::Shared => "shared (already mounted)",
        };
        iso.config.log.info(&format!(
            "container {id}: {}: {how} at {} (mount id {})",
            h.key,
            mountpoint.display(),
            h.mount_id
        ));
        held.push(h);
        if iso.config.chown_volume_root && !p.request.readonly {
            if let Some(user) = &cfg.user {
                chown_root(iso, id, p, &mountpoint, user)?;
            }
        }
    }

    // Where each volume is bound: its container path's target or, for a read-only volume
    // without one, its own host mount point (the task uses that path; binding it onto itself
    // read-only in the container's namespace leaves the host's mount writable).
    let mut binds: Vec<(usize, PathBuf)> = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        match &p.target {
            Some(target) => {
                if i > 0 {
                    fault::point("prepare.between_targets");
                }
                target
                    .make(iso.host.as_ref())
                    .map_err(|source| IsolatorError::ContainerPath {
                        container: id.clone(),
                        volume: p.key.clone(),
                        origin: p.request.origin,
                        cause: Box::new(source),
                    })?;
                binds.push((i, target.path()));
            }
            None if p.request.readonly => binds.push((i, held[i].mountpoint.clone())),
            None => {}
        }
    }
    // Shallow targets first, so a volume at `a/b` is bound after (on top of) one at `a`.
    binds.sort_by_key(|(_, target)| target.components().count());
    let mut mounts = Vec::new();
    for (i, target) in binds {
        let source = held[i].mountpoint.clone();
        mounts.push(LaunchMount {
            source: source.clone(),
            target: target.clone(),
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
        });
        if planned[i].request.readonly {
            // The kernel ignores MS_RDONLY when it creates a bind mount; only a remount of
            // the bind makes it read-only (see `launch`).
            mounts.push(LaunchMount {
                source,
                target,
                flags: MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            });
        }
    }
    Ok(LaunchInfo {
        clone_newns: true,
        mounts,
    })
}

fn chown_root(
    iso: &Isolator,
    id: &ContainerId,
    p: &PlannedVolume,
    mountpoint: &std::path::Path,
    user: &str,
) -> Result<(), IsolatorError> {
    let bad = |reason: String| IsolatorError::Chown {
        container: id.clone(),
        volume: p.key.clone(),
        cause: Box::new(ChownError {
            path: mountpoint.to_path_buf(),
            user: user.to_owned(),
            reason,
        }),
    };
    let entry = nix::unistd::User::from_name(user)
        .map_err(|e| bad(format!("cannot look the user up: {e}")))?
        .ok_or_else(|| bad("no such user on this host".into()))?;
    iso.host
        .lchown(mountpoint, entry.uid.as_raw(), entry.gid.as_raw())
        .map_err(|e| bad(e.to_string()))
}

/// Releases what a failed prepare joined, newest first, and removes its record (`intent`:
/// one was written before the joins). Returns the primary error, with the rollback's own
/// failures if any.
fn roll_back(
    iso: &Isolator,
    record: &mut ContainerRecord,
    intent: bool,
    planned: &[PlannedVolume],
    held: &[Held],
    primary: IsolatorError,
) -> IsolatorError {
    let id = &record.container_id.clone();
    let mut errors = Vec::new();
    // As in cleanup: the references go first, durably, so a crash mid-rollback is finished
    // by recover whatever the agent still knows. (Without an intent record there is nothing
    // to write: the final record was not written, or its write failed.)
    if intent {
        record.state = ContainerState::Cleaning;
        if let Err(source) = iso.ledger.write_container(record) {
            errors.push(IsolatorError::Ledger {
                container: id.clone(),
                cause: Box::new(source),
            });
        }
    }
    for (p, h) in planned.iter().zip(held).rev() {
        if let Err(e) = iso.release(id, &h.key, Some(p.driver.as_ref())) {
            errors.push(e);
        }
    }
    match iso.ledger.remove_container(id) {
        Ok(()) => {}
        Err(source) => errors.push(IsolatorError::Ledger {
            container: id.clone(),
            cause: Box::new(source),
        }),
    }
    let err = IsolatorError::with_rollback(primary, errors);
    iso.config.log.warn(&format!(
        "container {id}: prepare failed and was rolled back: {err}"
    ));
    err
}
