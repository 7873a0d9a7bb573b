//! `recover`: rebuild a consistent state from the ledger after an agent restart (or crash).
//!
//! Rules (SPEC §5), with the ledger lock held exclusive:
//! - A container is *alive* when the agent lists it (`known` or `orphans`), or, for a
//!   `dvdcli exec` container, when its holder process still runs. Alive containers that hold
//!   references keep them and their mounts — never unmount under a live task or a known
//!   orphan. Every other container record (unknown to the agent, dead holder, or `cleaning`)
//!   is cleaned up.
//! - Each volume's holders are rebuilt from the container records (the holders set is a
//!   cache). A mount with no holder left is unmounted with its recorded id — whether it was
//!   `mounted` (crash inside cleanup), `mounting` (the plugin may have mounted) or
//!   `unmounting`. Failed unmounts are retried.
//! - Unreadable records are logged, moved aside (`*.corrupt`) and handled conservatively:
//!   a corrupt container record's file name still gives its id; if the agent knows that id,
//!   every mount no valid record explains is attributed to it (kept until its cleanup);
//!   otherwise those mounts are released. A lost volume record is rebuilt from the mount id
//!   its containers copied. Nothing here aborts recovery.

use std::collections::{BTreeMap, BTreeSet};

use super::{Isolator, IsolatorError};
use crate::container_id::ContainerId;
use crate::fault;
use crate::ledger::encode;
use crate::ledger::{ContainerRecord, MountRecord, MountState, VolumeKey, VolumeRecord};

/// What `recover` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoverReport {
    /// Containers whose references were kept (alive, incl. ones with unreadable records).
    pub kept_containers: usize,
    /// Container records cleaned up (unknown to the agent, dead holder, or mid-cleanup).
    pub cleaned_containers: usize,
    /// Volumes unmounted because nothing held them any more.
    pub unmounted_volumes: usize,
    /// Earlier failed unmounts that succeeded on retry.
    pub retried_unmounts: usize,
    /// Unmounts that failed (remembered for the next retry).
    pub failed_unmounts: usize,
    /// Unreadable records moved aside.
    pub corrupt_records: usize,
    /// One line per notable thing, for the agent's log.
    pub messages: Vec<String>,
}

impl RecoverReport {
    fn note(&mut self, iso: &Isolator, message: String) {
        iso.config.log.warn(&message);
        self.messages.push(message);
    }
}

/// The container records, sorted by what recover does with them.
#[derive(Default)]
struct Containers {
    /// Alive and holding references.
    kept: BTreeMap<ContainerId, ContainerRecord>,
    /// Valid records to clean up.
    released: BTreeMap<ContainerId, ContainerRecord>,
    /// Alive ids whose records were unreadable.
    corrupt_alive: BTreeSet<ContainerId>,
    /// Per volume, the kept containers holding it (an index of `kept`, so each volume's
    /// repair costs its own holders, not a scan of every container).
    holders: BTreeMap<VolumeKey, BTreeSet<ContainerId>>,
    /// Every volume some valid record names.
    named: BTreeSet<VolumeKey>,
}

impl Containers {
    fn valid(&self) -> impl Iterator<Item = &ContainerRecord> {
        self.kept.values().chain(self.released.values())
    }

    /// Builds the per-volume indexes once every record is sorted.
    fn index(&mut self) {
        for c in self.kept.values() {
            for u in &c.volumes {
                if c.holds(&u.key()) {
                    self.holders
                        .entry(u.key())
                        .or_default()
                        .insert(c.container_id.clone());
                }
            }
        }
        let named: BTreeSet<VolumeKey> = self
            .valid()
            .flat_map(|c| c.volumes.iter().map(|u| u.key()))
            .collect();
        self.named = named;
    }

    fn has_valid(&self, id: &ContainerId) -> bool {
        self.kept.contains_key(id) || self.released.contains_key(id)
    }

    /// A volume record rebuilt from the mount id its containers copied (holders' first).
    fn rebuild(&self, key: &VolumeKey) -> VolumeRecord {
        let mut record = VolumeRecord::new(key);
        let used = self
            .valid()
            .flat_map(|c| &c.volumes)
            .find(|u| u.key() == *key && u.mount_id.is_some());
        if let Some(u) = used {
            record.mount = Some(MountRecord {
                id: u.mount_id.clone().unwrap_or_default(),
                state: MountState::Mounted,
                mountpoint: u.mountpoint.clone(),
                identity: None,
            });
        }
        record
    }
}

pub(super) fn recover(
    iso: &Isolator,
    known: &[ContainerId],
    orphans: &[ContainerId],
) -> Result<RecoverReport, IsolatorError> {
    let _ledger = iso
        .ledger
        .lock_exclusive()
        .map_err(IsolatorError::checkpoint)?;
    let mut report = RecoverReport::default();
    let agent: BTreeSet<ContainerId> = known.iter().chain(orphans).cloned().collect();

    match iso.ledger.remove_stale_temp_files() {
        Ok(0) => {}
        Ok(n) => report.note(iso, format!("removed {n} temp file(s) left by a crash")),
        Err(e) => report.note(iso, format!("cannot remove stale temp files: {e}")),
    }

    let containers = sort_containers(iso, &agent, &mut report)?;
    let volumes = load_volumes(iso, &containers, &mut report)?;

    for (key, (record, loaded)) in volumes {
        repair_volume(iso, &containers, key, record, loaded, &mut report);
    }

    for (i, (id, record)) in containers.released.iter().enumerate() {
        if i > 0 {
            fault::point("recover.between_released");
        }
        match iso.ledger.remove_container(id) {
            Ok(()) => {
                report.cleaned_containers += 1;
                let why = if record.state.holds_references() {
                    "is not known to the agent (or its holder process is gone)"
                } else {
                    "was being cleaned up"
                };
                report.note(iso, format!("container {id} {why}: cleaned up"));
            }
            Err(e) => report.note(
                iso,
                format!("container {id}: cannot remove its record: {e}"),
            ),
        }
    }
    report.kept_containers = containers.kept.len() + containers.corrupt_alive.len();
    iso.config.log.info(&format!(
        "recovered: {} container(s) kept, {} cleaned up, {} volume(s) unmounted, {} unmount(s) retried, {} failed, {} unreadable record(s)",
        report.kept_containers,
        report.cleaned_containers,
        report.unmounted_volumes,
        report.retried_unmounts,
        report.failed_unmounts,
        report.corrupt_records
    ));
    Ok(report)
}

fn sort_containers(
    iso: &Isolator,
    agent: &BTreeSet<ContainerId>,
    report: &mut RecoverReport,
) -> Result<Containers, IsolatorError> {
    let mut sorted = Containers::default();
    for listed in iso
        .ledger
        .list_containers()
        .map_err(IsolatorError::checkpoint)?
    {
        match listed.record {
            Ok(record) => {
                let alive = match record.holder {
                    Some(holder) => holder.is_alive(),
                    None => agent.contains(&record.container_id),
                };
                let id = record.container_id.clone();
                if alive && record.state.holds_references() {
                    sorted.kept.insert(id, record);
                } else {
                    sorted.released.insert(id, record);
                }
            }
            Err(e) => {
                report.corrupt_records += 1;
                let aside = match iso.ledger.move_aside(&listed.path) {
                    Ok(p) => format!("moved to {}", p.display()),
                    Err(e) => format!("could not be moved aside: {e}"),
                };
                // The file name is the id (or its hash): match it against the agent's ids.
                let id = agent
                    .iter()
                    .find(|id| encode::encode(id.as_str()) == listed.stem)
                    .cloned()
                    .or_else(|| {
                        encode::decode(&listed.stem).and_then(|s| ContainerId::new(&s).ok())
                    });
                let verdict = match id {
                    Some(id) if agent.contains(&id) => {
                        let v = format!("container {id} is known to the agent: mounts no valid record explains are kept for it");
                        sorted.corrupt_alive.insert(id);
                        v
                    }
                    Some(id) => format!("container {id} is not known to the agent: mounts no valid record explains are released"),
                    None => "its container is unknown: mounts no valid record explains are released".into(),
                };
                report.note(iso, format!("{e} ({aside}); {verdict}"));
            }
        }
    }
    sorted.index();
    Ok(sorted)
}

fn load_volumes(
    iso: &Isolator,
    containers: &Containers,
    report: &mut RecoverReport,
) -> Result<BTreeMap<VolumeKey, (VolumeRecord, bool)>, IsolatorError> {
    let mut volumes = BTreeMap::new();
    for listed in iso
        .ledger
        .list_volumes()
        .map_err(IsolatorError::checkpoint)?
    {
        let entry = listed.entry;
        match entry.record {
            Ok(record) => {
                volumes.insert(record.key(), (record, true));
            }
            Err(e) => {
                report.corrupt_records += 1;
                let aside = match iso.ledger.move_aside(&entry.path) {
                    Ok(p) => format!("moved to {}", p.display()),
                    Err(e) => format!("could not be moved aside: {e}"),
                };
                let key = listed
                    .name
                    .map(|name| VolumeKey::new(listed.driver.clone(), name))
                    .or_else(|| {
                        containers
                            .valid()
                            .flat_map(|c| &c.volumes)
                            .map(|u| u.key())
                            .find(|k| {
                                k.driver == listed.driver
                                    && encode::encode(k.name.as_str()) == entry.stem
                            })
                    });
                let Some(key) = key else {
                    report.note(iso, format!("{e} ({aside}); no container record names this volume, so its mount (if any) cannot be released with its id"));
                    continue;
                };
                let rebuilt = containers.rebuild(&key);
                let how = match &rebuilt.mount {
                    Some(m) => format!("rebuilt with mount id {} from its containers", m.id),
                    None => "no container record knows its mount id; if the driver still has it mounted, unmount it by hand".into(),
                };
                report.note(iso, format!("{e} ({aside}); {key}: {how}"));
                volumes.insert(key, (rebuilt, false));
            }
        }
    }
    // A volume a live container mounted must have a record; if it vanished, rebuild it.
    for record in containers.kept.values() {
        for used in &record.volumes {
            let key = used.key();
            if used.mount_id.is_some() && !volumes.contains_key(&key) {
                let rebuilt = containers.rebuild(&key);
                report.note(
                    iso,
                    format!(
                        "{key}: its record is missing though container {} holds it; rebuilt from the container record",
                        record.container_id
                    ),
                );
                volumes.insert(key, (rebuilt, false));
            }
        }
    }
    Ok(volumes)
}

fn repair_volume(
    iso: &Isolator,
    containers: &Containers,
    key: VolumeKey,
    mut record: VolumeRecord,
    loaded: bool,
    report: &mut RecoverReport,
) {
    // As read from disk (`None`: rebuilt), so an unchanged record is not written again.
    let stored = loaded.then(|| record.clone());
    // Holders: the live containers whose records say so …
    let mut holders: BTreeSet<ContainerId> =
        containers.holders.get(&key).cloned().unwrap_or_default();
    // … plus cached holders the agent knows but whose record is lost or unreadable …
    for h in &record.holders {
        if !containers.has_valid(h) && containers.corrupt_alive.contains(h) {
            holders.insert(h.clone());
        }
    }
    // … plus, for a mount no valid record explains, every live container with a lost record.
    let explained = containers.named.contains(&key);
    if !explained && holders.is_empty() && record.mount.is_some() {
        holders.extend(containers.corrupt_alive.iter().cloned());
    }
    let dropped: Vec<&ContainerId> = record.holders.difference(&holders).collect();
    if !dropped.is_empty() {
        let dropped: Vec<&str> = dropped.iter().map(|c| c.as_str()).collect();
        report.note(
            iso,
            format!("{key}: no longer held by {}", dropped.join(", ")),
        );
    }
    let added: Vec<&str> = holders
        .difference(&record.holders)
        .map(|c| c.as_str())
        .collect();
    if !added.is_empty() {
        report.note(
            iso,
            format!(
                "{key}: held by {} (from the container records)",
                added.join(", ")
            ),
        );
    }
    record.holders = holders;

    if let Some(mount) = record.mount.take() {
        if record.holders.is_empty() || mount.state == MountState::Unmounting {
            let (id, state) = (mount.id.clone(), mount.state);
            fault::point("recover.before_unheld_unmount");
            let result = iso.unmount_resolving(&mut record, mount);
            fault::point("recover.after_unheld_unmount");
            match result {
                Ok(()) => {
                    report.unmounted_volumes += 1;
                    report.note(
                        iso,
                        format!("{key}: unmounted mount id {id} (it was {state:?} with no holder)"),
                    );
                }
                Err(e) => {
                    report.failed_unmounts += 1;
                    report.note(iso, e.to_string());
                }
            }
        } else {
            record.mount = Some(mount);
        }
    }
    if !record.failed_unmounts.is_empty() {
        match &iso.resolver.resolve(&key.driver) {
            Ok(d) => {
                let (done, still) = iso.retry_failed_unmounts(&mut record, d.as_ref());
                report.retried_unmounts += done;
                report.failed_unmounts += still.len();
                report.messages.extend(still);
            }
            Err(e) => {
                report.failed_unmounts += record.failed_unmounts.len();
                report.note(iso, format!("{key}: cannot retry failed unmounts: {e}"));
            }
        }
    }
    // Unchanged and on disk already: nothing to write (an idle one is still deleted).
    if stored.as_ref() == Some(&record) && !record.is_idle() {
        return;
    }
    if let Err(e) = iso.ledger.write_volume(&record) {
        report.note(iso, format!("{key}: cannot write its record: {e}"));
    }
}
