//! An in-memory volume driver for the lifecycle's unit tests: it keeps volumes and the set of
//! mount ids each one is mounted for, records every call, and fails calls on request.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::driver::{DriverError, Scope, VolumeDriver, VolumeInfo};
use crate::names::{DriverName, VolumeName};
use crate::opts::VolumeOpts;
use crate::plugin::{Endpoint, PluginError};

/// How a call should fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The plugin answers with an error.
    Refuse,
    /// No answer in time: the call may or may not have taken effect (it does not, here).
    Timeout,
}

#[derive(Debug, Default)]
struct State {
    /// Existing volumes → mount ids they are mounted for.
    volumes: BTreeMap<String, BTreeSet<String>>,
    calls: Vec<String>,
    /// (endpoint, volume) → how to fail, and how many more times (`None`: always).
    failures: Vec<(Endpoint, String, Failure, Option<usize>)>,
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

    /// Fails `endpoint` on `volume` `times` times (`None`: always).
    pub fn fail(&self, endpoint: Endpoint, volume: &str, how: Failure, times: Option<usize>) {
        self.lock()
            .failures
            .push((endpoint, volume.to_owned(), how, times));
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

    fn call(&self, endpoint: Endpoint, volume: &str, text: String) -> Result<(), DriverError> {
        let mut s = self.lock();
        s.calls.push(text);
        let hit = s
            .failures
            .iter_mut()
            .find(|(e, v, _, times)| *e == endpoint && v == volume && *times != Some(0));
        let Some((_, _, how, times)) = hit else {
            return Ok(());
        };
        if let Some(n) = times {
            *n -= 1;
        }
        let driver = self.name.to_string();
        Err(DriverError::Plugin(match how {
            Failure::Refuse => PluginError::Refused {
                driver,
                endpoint,
                status: 500,
                message: format!("fake {endpoint} of {volume} refused"),
            },
            Failure::Timeout => PluginError::Timeout {
                driver,
                endpoint,
                limit: Duration::from_secs(1),
            },
        }))
    }
}

impl VolumeDriver for FakeDriver {
    fn name(&self) -> &DriverName {
        &self.name
    }

    fn activate(&self) -> Result<(), DriverError> {
        self.call(Endpoint::Activate, "", "Activate".into())
    }

    fn create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), DriverError> {
        let v = volume.as_str();
        let opts: Vec<String> = opts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.call(
            Endpoint::Create,
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
        self.call(Endpoint::Remove, v, format!("Remove {v}"))?;
        self.lock().volumes.remove(v);
        Ok(())
    }

    fn mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, DriverError> {
        let v = volume.as_str();
        self.call(Endpoint::Mount, v, format!("Mount {v} {id}"))?;
        // Like Docker's drivers: no Mount of a volume that does not exist.
        let mut s = self.lock();
        let Some(ids) = s.volumes.get_mut(v) else {
            return Err(DriverError::Plugin(PluginError::Refused {
                driver: self.name.to_string(),
                endpoint: Endpoint::Mount,
                status: 500,
                message: format!("no such volume: {v}"),
            }));
        };
        ids.insert(id.to_owned());
        Ok(Self::mountpoint(v))
    }

    fn unmount(&self, volume: &VolumeName, id: &str) -> Result<(), DriverError> {
        let v = volume.as_str();
        self.call(Endpoint::Unmount, v, format!("Unmount {v} {id}"))?;
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
        self.call(Endpoint::Get, v, format!("Get {v}"))?;
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
}
