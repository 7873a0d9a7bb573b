//! One volume's part of prepare and cleanup, under the volume's lock: join (share the
//! current mount or Mount anew, the mount id on disk before the driver call) and release
//! (drop a holder; after the last one, Unmount with the mount's id, a failure remembered for
//! retry without pinning the volume).

use std::path::{Path, PathBuf};

use super::{Isolator, IsolatorError};
use crate::container_id::ContainerId;
use crate::driver::{DriverError, Operation, VolumeDriver};
use crate::fault;
use crate::ledger::records::now_ms;
use crate::ledger::{MountRecord, MountState, VolumeKey, VolumeRecord};
use crate::ops::{self, OpsError};

/// How a prepare came to hold a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Joined {
    /// It was already mounted (for another container): a holder was added, no Mount.
    Shared,
    /// This prepare mounted it.
    Mounted,
}

/// A volume a prepare holds.
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub key: VolumeKey,
    pub mount_id: String,
    pub mountpoint: PathBuf,
    pub joined: Joined,
}

/// A fresh mount id: random, so two agents or two `dvdcli exec` never reuse one.
pub(super) fn new_mount_id() -> Result<String, IsolatorError> {
    let mut bytes = [0u8; 16];
    crate::sys::fill_random(&mut bytes).map_err(IsolatorError::MountId)?;
    Ok(mount_id_from(bytes))
}

/// `dvdi-` and the 16 bytes in order as 32 hex digits, formatted in one pass (not one
/// `format!` per byte: a prepare's most frequent allocation).
fn mount_id_from(bytes: [u8; 16]) -> String {
    format!("dvdi-{:032x}", u128::from_be_bytes(bytes))
}

/// Whether a failed mount flow may have left the volume mounted: only a Mount that got no
/// usable answer ([`DriverError::may_have_acted`]: a timeout, a cut reply, a refused mount
/// point whose undo failed). A refusal, an unreachable driver, an undone Mount, or a failure
/// before Mount did not mount.
fn maybe_mounted(e: &OpsError) -> bool {
    match e {
        OpsError::Driver(d) => d.operation() == Operation::Mount && d.may_have_acted(),
        _ => false,
    }
}

impl Isolator {
    /// Wraps a ledger failure about `key`'s record.
    pub(super) fn volume_ledger_error(
        key: &VolumeKey,
    ) -> impl Fn(crate::ledger::LedgerError) -> IsolatorError + Copy + '_ {
        move |source| IsolatorError::VolumeLedger {
            volume: key.clone(),
            cause: Box::new(source),
        }
    }

    fn write_volume(&self, record: &VolumeRecord) -> Result<(), IsolatorError> {
        self.ledger
            .write_volume(record)
            .map_err(|e| Self::volume_ledger_error(&record.key())(e))
    }

    /// Retries the Unmounts that failed earlier (same ids). Failures stay remembered.
    pub(super) fn retry_failed_unmounts(
        &self,
        record: &mut VolumeRecord,
        driver: &dyn VolumeDriver,
    ) -> (usize, Vec<String>) {
        let mut done = 0;
        let mut still = Vec::new();
        for mut failed in std::mem::take(&mut record.failed_unmounts) {
            match driver.unmount(&record.name, &failed.mount_id) {
                Err(e)
                    if failed.uncertain
                        && e.is_not_held()
                        && !failed.mount_may_still_land(now_ms()) =>
                {
                    done += 1;
                    self.config.log.warn(&format!(
                        "{}: mount id {} (an earlier call with it got no answer) is not held by the driver ({e}); forgotten",
                        record.key(),
                        failed.mount_id
                    ));
                }
                Ok(()) => {
                    done += 1;
                    self.config.log.info(&format!(
                        "{}: retried unmount (id {}) succeeded",
                        record.key(),
                        failed.mount_id
                    ));
                }
                Err(e) => {
                    failed.uncertain |= e.may_have_acted();
                    failed.attempts += 1;
                    failed.last_error = e.to_string();
                    still.push(format!(
                        "{}: retried unmount (id {}) failed again (attempt {}): {e}",
                        record.key(),
                        failed.mount_id,
                        failed.attempts
                    ));
                    record.failed_unmounts.push(failed);
                }
            }
        }
        for message in &still {
            self.config.log.warn(message);
        }
        (done, still)
    }

    /// Unmounts `mount` (already taken out of `record`): state `unmounting` on disk before the
    /// call; on failure the mount goes to `failed_unmounts`. Writes the outcome.
    ///
    /// A mount an interrupted operation left `mounting` (its Mount may never have been sent)
    /// or `unmounting` (its Unmount may already have succeeded) is uncertain: when the driver
    /// answers that it does not hold that id, the mount is forgotten with a warning instead of
    /// being retried forever (found by the crash matrix, `tests/crash`).
    pub(super) fn unmount_now(
        &self,
        record: &mut VolumeRecord,
        mount: MountRecord,
        driver: Result<&dyn VolumeDriver, DriverError>,
    ) -> Result<(), IsolatorError> {
        self.unmount_with(record, mount, driver, false)
    }

    /// [`Isolator::unmount_now`], or, with `in_flight`, right after a Mount of this process
    /// that got no answer: that Mount may still be running in the plugin, so a refusal now
    /// proves nothing and the Unmount is remembered (`uncertain`) for a later retry.
    fn unmount_with(
        &self,
        record: &mut VolumeRecord,
        mut mount: MountRecord,
        driver: Result<&dyn VolumeDriver, DriverError>,
        in_flight: bool,
    ) -> Result<(), IsolatorError> {
        let key = record.key();
        // `mounting`/`unmounting` read from the ledger: left by a process that died mid-way.
        let interrupted = (!in_flight && mount.state != MountState::Mounted).then_some(mount.state);
        mount.state = MountState::Unmounting;
        record.mount = Some(mount.clone());
        self.write_volume(record)?;
        record.mount = None;
        fault::point("unmount.before_call");
        let result = driver.and_then(|d| d.unmount(&record.name, &mount.id));
        fault::point("unmount.returned");
        match result {
            Ok(()) => {
                self.write_volume(record)?;
                Ok(())
            }
            Err(source) if interrupted.is_some() && source.is_not_held() => {
                self.config.log.warn(&format!(
                    "{key}: mount id {} was left {:?} by an interrupted operation and the driver does not hold it ({source}); forgotten",
                    mount.id,
                    interrupted.unwrap_or(MountState::Mounting)
                ));
                self.write_volume(record)?;
                Ok(())
            }
            Err(source) => {
                record.remember_failed_unmount(&mount, source.to_string());
                // A Mount that got no answer may still land in the plugin, after this refusal
                // and after a quick retry's too (the model test saw both): a refusal proves
                // nothing until the Mount has had twice its deadline more to finish.
                let may_land_until = in_flight.then(|| {
                    let grace = self.config.settings.client.timeouts.mount.saturating_mul(2);
                    now_ms().saturating_add(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX))
                });
                if in_flight || source.may_have_acted() {
                    for f in &mut record.failed_unmounts {
                        if f.mount_id == mount.id {
                            f.uncertain = true;
                            f.mount_may_land_until_ms =
                                f.mount_may_land_until_ms.or(may_land_until);
                        }
                    }
                }
                self.write_volume(record)?;
                Err(IsolatorError::Unmount {
                    volume: key,
                    mount_id: mount.id,
                    cause: Box::new(source),
                })
            }
        }
    }

    /// Why the recorded mount is not at its mount point any more, if it is not (one `statx`).
    /// A record without a mount point or identity (older versions) is checked for a directory.
    fn mount_gone(&self, mount: &MountRecord) -> Option<String> {
        let mountpoint = mount.mountpoint.as_deref()?;
        let now = self.host.mount_identity(mountpoint);
        let then = mount.identity.unwrap_or(crate::mountinfo::MountIdentity {
            mnt_id: None,
            mnt_ns: None,
            mount_root: false,
            is_dir: true,
        });
        then.gone_since(&now)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<VolumeKey>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mounts a volume nobody holds, with mount id `id`: `Get` (is it there?), `Create` when
    /// it is missing (or the error, with explicit creation), `Mount` — as `dvdcli mount` does.
    ///
    /// A volume this handle has already seen exist, for a container that does not ask for
    /// explicit creation, is mounted straight away, as Docker mounts a volume it knows: the
    /// `Get` could only say "it is there". Should it have been removed since, the plugin
    /// refuses the Mount — a refusal mounts nothing, so the full sequence then runs with the
    /// same id. A container asking for explicit creation always gets its `Get`: that check
    /// is the point of the flag.
    fn mount_new(
        &self,
        driver: &dyn VolumeDriver,
        key: &VolumeKey,
        opts: &crate::opts::VolumeOpts,
        explicit_create: bool,
        id: &str,
    ) -> Result<PathBuf, OpsError> {
        if !explicit_create && self.seen().contains(key) {
            driver.activate()?;
            match driver.mount(&key.name, id) {
                Ok(mountpoint) => return Ok(mountpoint),
                Err(e) if e.is_refusal() => {
                    self.seen().remove(key);
                    self.config.log.info(&format!(
                        "{key}: Mount (id {id}) refused ({e}); checking the volume and mounting again"
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mountpoint = ops::mount(driver, &key.name, opts, explicit_create, id)?;
        self.seen().insert(key.clone());
        Ok(mountpoint)
    }

    /// Makes `container` a holder of the volume: shares its current mount, or mounts it.
    pub(super) fn join(
        &self,
        container: &ContainerId,
        key: &VolumeKey,
        driver: &dyn VolumeDriver,
        opts: &crate::opts::VolumeOpts,
        explicit_create: bool,
    ) -> Result<Held, IsolatorError> {
        let _lock = self
            .ledger
            .lock_volume(key)
            .map_err(Self::volume_ledger_error(key))?;
        let mut record = self
            .ledger
            .read_volume(key)
            .map_err(Self::volume_ledger_error(key))?
            .unwrap_or_else(|| VolumeRecord::new(key));

        // A mount left mid-operation by a crashed process (we hold the lock, so nobody is in
        // the middle of it now): its Mount may have happened; unmount it with its id.
        if let Some(stale) = record.mount.take_if(|m| m.state != MountState::Mounted) {
            self.config.log.warn(&format!(
                "{key}: mount id {} was left {:?} by an interrupted operation; unmounting it before mounting anew",
                stale.id, stale.state
            ));
            // A failure is remembered for retry by unmount_now; mounting anew goes ahead.
            if let Err(e) = self.unmount_now(&mut record, stale, Ok(driver)) {
                self.config.log.warn(&e.to_string());
            }
        }
        if !record.failed_unmounts.is_empty() {
            self.retry_failed_unmounts(&mut record, driver);
        }

        // A mount the record says is there may have gone behind the ledger's back (an
        // operator's unmount, a plugin restart, a lazy unmount): sharing it would bind the
        // bare mount-point directory, and the task's writes would land on the host's disk.
        if let Some(why) = record
            .mount
            .as_ref()
            .filter(|m| m.state == MountState::Mounted)
            .and_then(|m| self.mount_gone(m))
        {
            if let Some(mut gone) = record.mount.take() {
                self.config.log.warn(&format!(
                    "{key}: mount id {} at {} is gone ({why}); unmounting it and mounting anew",
                    gone.id,
                    gone.mountpoint
                        .as_deref()
                        .unwrap_or(Path::new("?"))
                        .display()
                ));
                // Known gone: the driver answering that it does not hold the id proves that
                // (as for an interrupted operation's mount), so it is forgotten, not retried.
                gone.state = MountState::Unmounting;
                if let Err(e) = self.unmount_now(&mut record, gone, Ok(driver)) {
                    self.config.log.warn(&e.to_string());
                }
            }
        }

        if let Some(mount) = record
            .mount
            .as_ref()
            .filter(|m| m.state == MountState::Mounted)
        {
            let held = Held {
                key: key.clone(),
                mount_id: mount.id.clone(),
                mountpoint: mount.mountpoint.clone().unwrap_or_default(),
                joined: Joined::Shared,
            };
            record.holders.insert(container.clone());
            self.write_volume(&record)?;
            fault::point("join.holder_added");
            return Ok(held);
        }

        let mount_id = new_mount_id()?;
        record.mount = Some(MountRecord {
            id: mount_id.clone(),
            state: MountState::Mounting,
            mountpoint: None,
            identity: None,
        });
        record.holders.insert(container.clone());
        self.write_volume(&record)?;
        fault::point("join.mount_id_written");

        match self.mount_new(driver, key, opts, explicit_create, &mount_id) {
            Ok(mountpoint) => {
                fault::point("join.mount_returned");
                record.mount = Some(MountRecord {
                    id: mount_id.clone(),
                    state: MountState::Mounted,
                    identity: self.host.mount_identity(&mountpoint).ok(),
                    mountpoint: Some(mountpoint.clone()),
                });
                let held = Held {
                    key: key.clone(),
                    mount_id,
                    mountpoint,
                    joined: Joined::Mounted,
                };
                if let Err(e) = self.write_volume(&record) {
                    // Mounted but not recorded as such: undo now, under the lock this join
                    // holds, rather than leave it to recover.
                    let rollback = self.undo_unrecorded_mount(&mut record, container, driver);
                    return Err(IsolatorError::with_rollback(
                        e,
                        rollback.into_iter().collect(),
                    ));
                }
                fault::point("join.mount_recorded");
                Ok(held)
            }
            Err(source) => {
                // The mount id was never used by a holder: if the driver may have mounted,
                // unmount with it now (whoever else the record lists), else just forget it.
                let uncertain = maybe_mounted(&source);
                let primary = IsolatorError::Mount {
                    container: container.clone(),
                    volume: key.clone(),
                    mount_id: mount_id.clone(),
                    cause: Box::new(source),
                };
                record.holders.remove(container);
                let rollback = match record.mount.take() {
                    Some(mount) if uncertain => self
                        .unmount_with(&mut record, mount, Ok(driver), true)
                        .err(),
                    _ => self.write_volume(&record).err(),
                };
                Err(IsolatorError::with_rollback(
                    primary,
                    rollback.into_iter().collect(),
                ))
            }
        }
    }

    /// Undoes the Mount a join just made (the volume's lock held) when its `mounted` record
    /// could not be written. The record on disk still says `mounting` with the mount's id,
    /// which already covers an Unmount (the next join, release or recover sends one for a
    /// `mounting` mount), so the Unmount goes out without writing `unmounting` first — a write
    /// that would most likely fail again (a full or failing checkpoint disk). Then the record
    /// is written without the holder and the mount; when that write fails too, the disk keeps
    /// saying `mounting`, and the later Unmount of the same id, which the driver refuses, is
    /// the safe direction. Returns the first error of the undo.
    fn undo_unrecorded_mount(
        &self,
        record: &mut VolumeRecord,
        container: &ContainerId,
        driver: &dyn VolumeDriver,
    ) -> Option<IsolatorError> {
        record.holders.remove(container);
        if !record.holders.is_empty() {
            // Others hold this mount (not a case a join creates, but never unmount under them).
            return self.write_volume(record).err();
        }
        let mount = record.mount.take()?;
        let unmounted = driver.unmount(&record.name, &mount.id);
        let error = unmounted.as_ref().err().map(ToString::to_string);
        if let Some(reason) = &error {
            record.remember_failed_unmount(&mount, reason.clone());
        }
        let written = self.write_volume(record).err();
        match unmounted {
            Ok(()) => written,
            Err(source) => Some(IsolatorError::Unmount {
                volume: record.key(),
                mount_id: mount.id,
                cause: Box::new(source),
            }),
        }
    }

    /// Drops `container` as a holder of the volume; when it was the last holder, Unmounts with
    /// the mount's id. `driver`: the driver if the caller has it (else it is resolved).
    pub(super) fn release(
        &self,
        container: &ContainerId,
        key: &VolumeKey,
        driver: Option<&dyn VolumeDriver>,
    ) -> Result<(), IsolatorError> {
        let _lock = self
            .ledger
            .lock_volume(key)
            .map_err(Self::volume_ledger_error(key))?;
        let Some(mut record) = self
            .ledger
            .read_volume(key)
            .map_err(Self::volume_ledger_error(key))?
        else {
            return Ok(());
        };
        let was_holder = record.holders.remove(container);
        if !record.holders.is_empty() || record.mount.is_none() {
            if was_holder {
                self.write_volume(&record)?;
                fault::point("release.holder_dropped");
            }
            return Ok(());
        }
        let Some(mount) = record.mount.take() else {
            return Ok(());
        };
        match driver {
            Some(d) => self.unmount_now(&mut record, mount, Ok(d)),
            None => self.unmount_resolving(&mut record, mount),
        }
    }

    /// [`Isolator::unmount_now`] through the volume's driver, resolved now; a driver that
    /// cannot be resolved counts as a failed unmount (remembered for retry).
    pub(super) fn unmount_resolving(
        &self,
        record: &mut VolumeRecord,
        mount: MountRecord,
    ) -> Result<(), IsolatorError> {
        match self.resolver.resolve(&record.driver) {
            Ok(d) => self.unmount_now(record, mount, Ok(d.as_ref())),
            Err(e) => self.unmount_now(record, mount, Err(e)),
        }
    }
}

#[cfg(test)]
mod mount_id_tests {
    #[test]
    fn a_mount_id_is_its_bytes_in_order_in_hex() {
        let bytes: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            super::mount_id_from(bytes),
            "dvdi-000102030405060708090a0b0c0d0e0f"
        );
        assert_eq!(
            super::mount_id_from([0; 16]),
            format!("dvdi-{}", "0".repeat(32))
        );
        assert_eq!(
            super::mount_id_from([0xab; 16]),
            format!("dvdi-{}", "ab".repeat(16))
        );
        let (a, b) = (
            super::new_mount_id().unwrap(),
            super::new_mount_id().unwrap(),
        );
        assert_ne!(a, b);
        assert!(
            a.len() == 37
                && a[5..]
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
