//! Unit tests of the lifecycle logic: a recording host and an in-memory driver, a real ledger
//! in a temp dir, real directories (and planted symlinks) for container paths.
//!
//! This file holds the shared fixture ([`Fixture`], [`prepared`], small helpers); the tests
//! are in one file per part: `prepare`, `paths` (container paths), `recover`, `holders`
//! (holders, inspection, concurrency), `policy`, `stale`, `repair`; `fake` is the driver.

mod docker_volumes;
mod fake;
mod holders;
mod metrics;
mod paths;
mod policy;
mod prepare;
mod recover;
mod repair;
mod stale;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake::{Failure, FakeDriver};

use super::*;
use crate::driver::Operation;
use crate::launch::LaunchMount;
use crate::ledger::{ContainerState, MountState, VolumeKey, VolumeState};
use crate::names::VolumeName;
use crate::sys::{HostCall, MsFlags, RecordingHost};

struct Fixture {
    tmp: tempfile::TempDir,
    host: Arc<RecordingHost>,
    driver: Arc<FakeDriver>,
    logs: Arc<Mutex<Vec<String>>>,
    iso: Isolator,
}

fn cid(id: &str) -> ContainerId {
    ContainerId::new(id).unwrap()
}

fn key(name: &str) -> VolumeKey {
    VolumeKey::new(
        DriverName::new("fake").unwrap(),
        VolumeName::new(name).unwrap(),
    )
}

impl Fixture {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut IsolatorConfig)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let host = Arc::new(RecordingHost::new());
        let driver = Arc::new(FakeDriver::new("fake"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut config = IsolatorConfig {
            checkpoint_dir: tmp.path().join("checkpoint"),
            default_driver: DriverName::new("fake").unwrap(),
            ..IsolatorConfig::default()
        };
        let sink = logs.clone();
        config.log = Logger::new(move |_, m| sink.lock().unwrap().push(m.to_owned()));
        tweak(&mut config);
        let iso = Self::isolator(&config, &host, &driver);
        Self {
            tmp,
            host,
            driver,
            logs,
            iso,
        }
    }

    fn isolator(
        config: &IsolatorConfig,
        host: &Arc<RecordingHost>,
        driver: &Arc<FakeDriver>,
    ) -> Isolator {
        let resolver = DriverResolver::with_host(Settings::default(), host.clone())
            .with_driver(driver.clone());
        Isolator::new(config.clone(), resolver, host.clone()).unwrap()
    }

    /// A second isolator over the same checkpoint and the same "plugin": an agent restart.
    fn restart(&self) -> Isolator {
        Self::isolator(self.iso.config(), &self.host, &self.driver)
    }

    fn sandbox(&self, id: &str) -> PathBuf {
        let dir = self.tmp.path().join("sandboxes").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(&self, id: &str, env: &[(&str, &str)]) -> ContainerConfig {
        ContainerConfig {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sandbox: self.sandbox(id),
            ..ContainerConfig::default()
        }
    }

    fn prepare(&self, id: &str, env: &[(&str, &str)]) -> Result<Option<LaunchInfo>, IsolatorError> {
        self.iso.prepare(&cid(id), &self.config(id, env))
    }

    fn checkpoint(&self) -> PathBuf {
        self.tmp.path().join("checkpoint")
    }

    fn container_files(&self) -> Vec<String> {
        files(&self.checkpoint().join("containers"))
    }

    fn volume_files(&self) -> Vec<String> {
        files(&self.checkpoint().join("volumes/fake"))
    }

    fn volume(&self, name: &str) -> Option<crate::ledger::VolumeRecord> {
        crate::ledger::Ledger::open(self.checkpoint())
            .unwrap()
            .read_volume(&key(name))
            .unwrap()
    }

    fn logged(&self, needle: &str) -> bool {
        self.logs.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

/// The files of a ledger directory but the temp files the ledger keeps for reuse.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(crate::ledger::durable::TEMP_PREFIX))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn mount_id_of(call: &str) -> String {
    call.rsplit(' ').next().unwrap().to_owned()
}

const ONE: &[(&str, &str)] = &[
    ("DVDI_VOLUME_NAME", "data"),
    ("DVDI_VOLUME_CONTAINERPATH", "data"),
];

/// c1 prepared with `data` (and `other` with no path); then the agent restarts.
fn prepared() -> (Fixture, String) {
    let f = Fixture::new();
    f.prepare(
        "c1",
        &[
            ("DVDI_VOLUME_NAME", "data"),
            ("DVDI_VOLUME_CONTAINERPATH", "data"),
            ("DVDI_VOLUME_NAME1", "other"),
        ],
    )
    .unwrap();
    let id = mount_id_of(&f.driver.calls_of("Mount data")[0]);
    (f, id)
}
