//! `inspect`: the ledger as an operator wants to read it — which containers hold which
//! volumes, where they are mounted and bound, and what is stuck. Read-only.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{Isolator, IsolatorError};
use crate::container_id::ContainerId;
use crate::holder::Holder;
use crate::ledger::{ContainerState, FailedUnmount, VolumeState};
use crate::names::{DriverName, VolumeName};

/// A snapshot of the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Inspection {
    pub checkpoint_dir: PathBuf,
    pub containers: Vec<ContainerView>,
    pub volumes: Vec<VolumeView>,
    /// Unreadable records and disagreements between records (recover repairs them).
    pub problems: Vec<String>,
}

/// One container and the volumes it uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerView {
    pub id: ContainerId,
    pub state: ContainerState,
    /// For `dvdcli exec` containers: the holder process and whether it still runs.
    pub holder: Option<Holder>,
    pub holder_alive: Option<bool>,
    pub volumes: Vec<VolumeUseView>,
}

/// A volume as one container uses it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeUseView {
    pub driver: DriverName,
    pub name: VolumeName,
    pub container_path: Option<String>,
    /// The host-visible bind target.
    pub target: Option<PathBuf>,
    pub readonly: bool,
    pub mountpoint: Option<PathBuf>,
}

/// One volume's mount and holders.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VolumeView {
    pub driver: DriverName,
    pub name: VolumeName,
    pub state: VolumeState,
    pub mount_id: Option<String>,
    pub mountpoint: Option<PathBuf>,
    pub holders: Vec<ContainerId>,
    pub failed_unmounts: Vec<FailedUnmount>,
}

pub(super) fn inspect(iso: &Isolator) -> Result<Inspection, IsolatorError> {
    let _ledger = iso
        .ledger
        .lock_shared()
        .map_err(IsolatorError::checkpoint)?;
    let mut out = Inspection {
        checkpoint_dir: iso.ledger.root().to_path_buf(),
        ..Inspection::default()
    };
    let mut records = Vec::new();
    for listed in iso
        .ledger
        .list_containers()
        .map_err(IsolatorError::checkpoint)?
    {
        match listed.record {
            Ok(r) => records.push(r),
            Err(e) => out.problems.push(e.to_string()),
        }
    }
    for listed in iso
        .ledger
        .list_volumes()
        .map_err(IsolatorError::checkpoint)?
    {
        let record = match listed.entry.record {
            Ok(r) => r,
            Err(e) => {
                out.problems.push(e.to_string());
                continue;
            }
        };
        let key = record.key();
        let derived: BTreeSet<&ContainerId> = records
            .iter()
            .filter(|c| c.holds(&key))
            .map(|c| &c.container_id)
            .collect();
        let cached: BTreeSet<&ContainerId> = record.holders.iter().collect();
        if derived != cached {
            let show = |s: &BTreeSet<&ContainerId>| {
                s.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            };
            out.problems.push(format!(
                "{key}: the volume record lists holders [{}] but the container records say [{}]",
                show(&cached),
                show(&derived)
            ));
        }
        out.volumes.push(VolumeView {
            state: record.state(),
            mount_id: record.mount.as_ref().map(|m| m.id.clone()),
            mountpoint: record.mount.as_ref().and_then(|m| m.mountpoint.clone()),
            holders: record.holders.iter().cloned().collect(),
            failed_unmounts: record.failed_unmounts,
            driver: record.driver,
            name: record.name,
        });
    }
    out.containers = records
        .into_iter()
        .map(|r| ContainerView {
            holder_alive: r.holder.map(|h| h.is_alive()),
            holder: r.holder,
            state: r.state,
            volumes: r
                .volumes
                .into_iter()
                .map(|u| VolumeUseView {
                    driver: u.driver,
                    name: u.name,
                    container_path: u.container_path,
                    target: u.target,
                    readonly: u.readonly,
                    mountpoint: u.mountpoint,
                })
                .collect(),
            id: r.container_id,
        })
        .collect();
    Ok(out)
}
