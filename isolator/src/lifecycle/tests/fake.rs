//! An in-memory volume driver for the lifecycle's unit tests: it keeps volumes and the set of
//! mount ids each one is mounted for, records every call, and fails calls on request — with
//! the trait's outcomes, as any driver kind does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::driver::{DriverError, Operation, Outcome, Scope, VolumeDriver, VolumeInfo};
use crate::names::{DriverName, VolumeName};
use crate::opts::VolumeOpts;

/// How a call should fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The driver answers no ([`Outcome::Refused`]; to `Unmount`, [`Outcome::NotHeld`], as
    /// a plugin's refusal of it is).
    Refuse,
    /// No answer in time ([`Outcome::NoAnswer`]): the call may or may not have taken effect
    /// (it does not, here).
    Timeout,
    /// The call never reached the driver ([`Outcome::Unreachable`]).
    Unreachable,
}

/// The fake's own failure text: what a driver's cause says.
#[derive(Debug, thiserror::Error)]
#[error("fake driver {driver:?}: {operation} of {volume:?} {what}")]
struct FakeFailure {
    driver: String,
    operation: Operation,
    volume: String,
    what: &'static str,
}

#[derive(Debug, Default)]
struct State {
    /// Existing volumes → mount ids they are mounted for.
    volumes: BTreeMap<String, BTreeSet<String>>,
    calls: Vec<String>,
    /// (operation, volume) → how to fail, and how many more times (`None`: always).
    failures: Vec<(Operation, String, Failure, Option<usize>)>,
}

pub struct FakeDriver {
    name: DriverName,
    state: Mutex<State>,
}

impl FakeDriver {
    pub fn new(name: &str) -> Self {
        Self {
            name: DriverName::new(name).unwrap(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails `operation` on `volume` `times` times (`None`: always).
    pub fn fail(&self, operation: Operation, volume: &str, how: Failure, times: Option<usize>) {
        self.lock()
            .failures
            .push((operation, volume.to_owned(), how, times));
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Calls starting with `prefix` (e.g. `"Mount data"`).
    pub fn calls_of(&self, prefix: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .collect()
    }

    /// The mount ids `volume` is mounted for.
    pub fn mounted_ids(&self, volume: &str) -> BTreeSet<String> {
        self.lock().volumes.get(volume).cloned().unwrap_or_default()
    }

    pub fn add_volume(&self, volume: &str) {
        self.lock().volumes.entry(volume.to_owned()).or_default();
    }

    pub fn mountpoint(volume: &str) -> PathBuf {
        PathBuf::from("/fake/volumes").join(volume)
    }

    fn error(
        &self,
        outcome: Outcome,
        operation: Operation,
        volume: &str,
        what: &'static str,
    ) -> DriverError {
        let driver = self.name.to_string();
        let cause = FakeFailure {
            driver: driver.clone(),
            operation,
            volume: volume.to_owned(),
            what,
        };
        DriverError::new(outcome, driver, operation, cause)
    }

    fn call(&self, operation: Operation, volume: &str, text: String) -> Result<(), DriverError> {
        let mut s = self.lock();
        s.calls.push(text);
        let hit = s
            .failures
            .iter_mut()
            .find(|(o, v, _, times)| *o == operation && v == volume && *times != Some(0));
        let Some((_, _, how, times)) = hit else {
            return Ok(());
        };
        if let Some(n) = times {
            *n -= 1;
        }
        let how = *how;
        drop(s);
        Err(match (how, operation) {
            (Failure::Refuse, Operation::Unmount) => {
                self.error(Outcome::NotHeld, operation, volume, "refused")
            }
            (Failure::Refuse, _) => self.error(Outcome::Refused, operation, volume, "refused"),
            (Failure::Timeout, _) => self.error(Outcome::NoAnswer, operation, volume, "timed out"),
            (Failure::Unreachable, _) => {
                self.error(Outcome::Unreachable, operation, volume, "never reached")
            }
        })
    }
}

impl VolumeDriver for FakeDriver {
    fn name(&self) -> &DriverName {
        &self.name
    }

    fn activate(&self) -> Result<(), DriverError> {
        self.call(Operation::Activate, "", "Activate".into())
    }

    fn create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), DriverError> {
        let v = volume.as_str();
        let opts: Vec<String> = opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.call(
            Operation::Create,
            v,
            format!("Create {v} {}", opts.join(","))
                .trim_end()
                .to_owned(),
        )?;
        self.add_volume(v);
        Ok(())
    }

    fn remove(&self, volume: &VolumeName) -> Result<(), DriverError> {
        let v = volume.as_str();
        self.call(Operation::Remove, v, format!("Remove {v}"))?;
        self.lock().volumes.remove(v);
        Ok(())
    }

    fn mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, DriverError> {
        let v = volume.as_str();
        self.call(Operation::Mount, v, format!("Mount {v} {id}"))?;
        // Like Docker's drivers: no Mount of a volume that does not exist.
        let mut s = self.lock();
        let Some(ids) = s.volumes.get_mut(v) else {
            return Err(self.error(
                Outcome::NoSuchVolume,
                Operation::Mount,
                v,
                "refused: no such volume",
            ));
        };
        ids.insert(id.to_owned());
        Ok(Self::mountpoint(v))
    }

    fn unmount(&self, volume: &VolumeName, id: &str) -> Result<(), DriverError> {
        let v = volume.as_str();
        self.call(Operation::Unmount, v, format!("Unmount {v} {id}"))?;
        if let Some(ids) = self.lock().volumes.get_mut(v) {
            ids.remove(id);
        }
        Ok(())
    }

    fn path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, DriverError> {
        Ok(Some(Self::mountpoint(volume.as_str())))
    }

    fn get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, DriverError> {
        let v = volume.as_str();
        self.call(Operation::Get, v, format!("Get {v}"))?;
        Ok(self.lock().volumes.contains_key(v).then(|| VolumeInfo {
            name: v.to_owned(),
            mountpoint: None,
            created_at: None,
            status: None,
        }))
    }

    fn list(&self) -> Result<Vec<VolumeInfo>, DriverError> {
        Ok(Vec::new())
    }

    fn capabilities(&self) -> Result<Scope, DriverError> {
        Ok(Scope::Local)
    }

    /// Standing in for `local` (the policy tests), the fake names the options `local` would.
    fn device_options(&self, opts: &VolumeOpts) -> Vec<String> {
        if self.name.is_local() {
            crate::local::device_options(opts)
        } else {
            Vec::new()
        }
    }
}
