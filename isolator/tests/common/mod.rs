//! Shared pieces of the isolator's privileged integration tests: the root check, a temp
//! world (checkpoint dir, `local` driver root, sandboxes) that unmounts and detaches whatever
//! it left, test drivers wrapping the real `local` driver, and a *second process*: the test
//! binary re-executed in child mode, which prepares, recovers or carries out a launch info.

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dvdi::driver::{DriverError, Scope, VolumeDriver, VolumeInfo};
use dvdi::ledger::{Ledger, VolumeState};
use dvdi::local::LocalDriver;
use dvdi::sys::{Host, RealHost};
use dvdi::{
    ContainerConfig, ContainerId, DriverName, DriverResolver, Isolator, IsolatorConfig, LaunchInfo,
    Settings, VolumeName, VolumeOpts,
};

pub use dvdi_testkit::env::require_root;

pub fn cid(id: &str) -> ContainerId {
    ContainerId::new(id).unwrap()
}

/// A temp directory holding a checkpoint dir, a `local` root and sandboxes; on drop it
/// lazily unmounts everything below it (and below `extra_dirs`) and detaches its loops.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub extra_dirs: Vec<PathBuf>,
}

impl World {
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().unwrap(),
            extra_dirs: Vec::new(),
        }
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.tmp.path().join("checkpoint")
    }

    pub fn local_root(&self) -> PathBuf {
        self.tmp.path().join("volumes")
    }

    pub fn sandbox(&self, id: &str) -> PathBuf {
        let dir = self.tmp.path().join("sandboxes").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A directory under `/tmp` that is unique to this world (for absolute container paths).
    pub fn unique_tmp(&mut self) -> PathBuf {
        let name = self
            .tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let dir = PathBuf::from("/tmp").join(format!("dvdi-it-{name}"));
        self.extra_dirs.push(dir.clone());
        dir
    }

    pub fn config(&self, id: &str, env: &[(&str, &str)]) -> ContainerConfig {
        ContainerConfig {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sandbox: self.sandbox(id),
            ..ContainerConfig::default()
        }
    }

    pub fn isolator(&self) -> Isolator {
        isolator(&self.checkpoint(), &self.local_root(), &Drivers::default())
    }

    pub fn isolator_with(&self, drivers: &Drivers) -> Isolator {
        isolator(&self.checkpoint(), &self.local_root(), drivers)
    }

    /// Mount points at or below the local root.
    pub fn volume_mounts(&self) -> Vec<PathBuf> {
        mounts_under(&self.local_root())
    }

    /// The mount ids the `local` driver holds for `volume` (its `users.json`): one per driver
    /// Mount that was not yet matched by an Unmount.
    pub fn driver_mount_ids(&self, volume: &str) -> Vec<String> {
        let path = self.local_root().join(volume).join("users.json");
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect()
    }

    /// The mount id the ledger recorded for `volume`.
    pub fn ledger_mount_id(&self, driver: &str, volume: &str) -> Option<String> {
        let ledger = Ledger::open(self.checkpoint()).unwrap();
        let key = dvdi::ledger::VolumeKey::new(
            DriverName::new(driver).unwrap(),
            VolumeName::new(volume).unwrap(),
        );
        ledger.read_volume(&key).unwrap()?.mount.map(|m| m.id)
    }

    /// Loop devices backed by images in the local root.
    pub fn loops(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.local_root()) else {
            return found;
        };
        for entry in entries.flatten() {
            let image = entry.path().join("disk.img");
            if image.exists() {
                found.extend(RealHost.loops_backed_by(&image).unwrap());
            }
        }
        found
    }

    /// [`World::loops`], once the detaches the kernel deferred are done.
    #[allow(dead_code)]
    pub fn loops_settled(&self) -> Vec<PathBuf> {
        dvdi_testkit::loops::settled(|| self.loops())
    }

    /// The mount table and the ledger agree: every mount under the local root belongs to a
    /// `mounted` volume record with that mount point, and every such record's mount exists.
    pub fn assert_ledger_matches_mounts(&self) {
        let ledger = Ledger::open(self.checkpoint()).unwrap();
        let mut recorded = Vec::new();
        for v in ledger.list_volumes().unwrap() {
            let record = v.entry.record.unwrap();
            assert_eq!(record.state(), VolumeState::Mounted, "{record:?}");
            assert!(!record.holders.is_empty(), "{record:?}");
            recorded.push(record.mount.unwrap().mountpoint.unwrap());
        }
        recorded.sort();
        let mut mounted = self.volume_mounts();
        mounted.sort();
        assert_eq!(mounted, recorded, "mount table vs ledger");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let mut dirs = vec![self.tmp.path().to_path_buf()];
        dirs.extend(self.extra_dirs.iter().cloned());
        for dir in &dirs {
            let mut mounts = mounts_under(dir);
            mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
            for m in mounts {
                let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for dev in self.loops() {
            let _ = RealHost.loop_detach(&dev);
        }
        for dir in &self.extra_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    dvdi::mountinfo::read_self()
        .unwrap()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// Test drivers registered next to `local`, all backed by a real `LocalDriver`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Drivers {
    /// `flaky`: its first N Unmounts fail (after doing nothing).
    pub flaky_unmounts: usize,
    /// `hang`: its Mount mounts, then never returns (the process is killed there).
    pub hang_after_mount: bool,
}

pub fn isolator(checkpoint: &Path, local_root: &Path, drivers: &Drivers) -> Isolator {
    let host: Arc<dyn Host> = Arc::new(RealHost);
    let settings = Settings {
        local_root: local_root.to_path_buf(),
        ..Settings::default()
    };
    let local = || Arc::new(LocalDriver::new(local_root.to_path_buf(), host.clone()));
    let resolver = DriverResolver::with_host(settings.clone(), host.clone())
        .with_driver(Arc::new(Wrapped {
            name: DriverName::new("flaky").unwrap(),
            inner: local(),
            fail_unmounts: AtomicUsize::new(drivers.flaky_unmounts),
            hang_after_mount: false,
        }))
        .with_driver(Arc::new(Wrapped {
            name: DriverName::new("hang").unwrap(),
            inner: local(),
            fail_unmounts: AtomicUsize::new(0),
            hang_after_mount: drivers.hang_after_mount,
        }));
    let config = IsolatorConfig {
        checkpoint_dir: checkpoint.to_path_buf(),
        default_driver: DriverName::new("local").unwrap(),
        settings,
        ..IsolatorConfig::default()
    };
    Isolator::new(config, resolver, host).unwrap()
}

/// The `local` driver under another name, failing or hanging on request.
struct Wrapped {
    name: DriverName,
    inner: Arc<LocalDriver>,
    fail_unmounts: AtomicUsize,
    hang_after_mount: bool,
}

impl VolumeDriver for Wrapped {
    fn name(&self) -> &DriverName {
        &self.name
    }
    fn activate(&self) -> Result<(), DriverError> {
        self.inner.activate()
    }
    fn create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), DriverError> {
        self.inner.create(volume, opts)
    }
    fn remove(&self, volume: &VolumeName) -> Result<(), DriverError> {
        self.inner.remove(volume)
    }
    fn mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, DriverError> {
        let path = self.inner.mount(volume, id)?;
        if self.hang_after_mount {
            println!("\n{HUNG_MARK}");
            loop {
                std::thread::park();
            }
        }
        Ok(path)
    }
    fn unmount(&self, volume: &VolumeName, id: &str) -> Result<(), DriverError> {
        let left = self.fail_unmounts.load(Ordering::SeqCst);
        if left > 0 {
            self.fail_unmounts.store(left - 1, Ordering::SeqCst);
            return Err(DriverError::from(dvdi::plugin::PluginError::Refused {
                driver: self.name.to_string(),
                endpoint: dvdi::plugin::Endpoint::Unmount,
                status: 500,
                message: "device is busy (test)".into(),
            }));
        }
        self.inner.unmount(volume, id)
    }
    fn path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, DriverError> {
        self.inner.path(volume)
    }
    fn get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, DriverError> {
        self.inner.get(volume)
    }
    fn list(&self) -> Result<Vec<VolumeInfo>, DriverError> {
        self.inner.list()
    }
    fn capabilities(&self) -> Result<Scope, DriverError> {
        Ok(Scope::Local)
    }
}

// ---- the second process ----

const CHILD_VAR: &str = "DVDI_IT_CHILD";
const RESULT_MARK: &str = "DVDI-IT-RESULT:";
pub const HUNG_MARK: &str = "DVDI-IT-HUNG";

/// What the child process does, in order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// `launch::carry_out`: private mount namespace, `/` rslave, the binds.
    Launch(LaunchInfo),
    Write {
        path: PathBuf,
        content: String,
    },
    Read {
        path: PathBuf,
    },
    Prepare {
        id: String,
        config: ContainerConfig,
    },
    Recover {
        known: Vec<String>,
        orphans: Vec<String>,
    },
    Cleanup {
        id: String,
    },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChildTask {
    pub checkpoint: PathBuf,
    pub local_root: PathBuf,
    pub drivers: Drivers,
    pub steps: Vec<Step>,
}

/// One step's outcome: a JSON value, or an error with its errno when it had one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    Ok(serde_json::Value),
    Err { message: String, errno: Option<i32> },
}

impl Outcome {
    pub fn ok(&self) -> &serde_json::Value {
        match self {
            Outcome::Ok(v) => v,
            Outcome::Err { message, .. } => panic!("child step failed: {message}"),
        }
    }
}

impl World {
    pub fn child_task(&self, drivers: Drivers, steps: Vec<Step>) -> ChildTask {
        ChildTask {
            checkpoint: self.checkpoint(),
            local_root: self.local_root(),
            drivers,
            steps,
        }
    }
}

/// The test binary, re-executed to run only `child_entry`, in child mode.
pub fn child_command(task: &ChildTask) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, serde_json::to_string(task).unwrap());
    cmd
}

/// Runs `task` in a second process and returns each step's outcome (stops at the first
/// failure, like the child does).
pub fn run_child(task: &ChildTask) -> Vec<Outcome> {
    let out = child_command(task).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(RESULT_MARK).map(|(_, json)| json))
        .unwrap_or_else(|| {
            panic!(
                "child gave no result ({}):\nstdout: {stdout}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap()
}

/// The body of each test binary's `child_entry` test. In child mode it runs the task and
/// exits; otherwise it checks that the round trip through a second process works at all.
pub fn child_entry() {
    if let Ok(task) = std::env::var(CHILD_VAR) {
        let task: ChildTask = serde_json::from_str(&task).unwrap();
        let outcomes = run_steps(&task);
        println!(
            "\n{RESULT_MARK}{}",
            serde_json::to_string(&outcomes).unwrap()
        );
        std::process::exit(0);
    }
    let world = World::new();
    let path = world.tmp.path().join("f");
    let got = run_child(&world.child_task(
        Drivers::default(),
        vec![
            Step::Write {
                path: path.clone(),
                content: "hello".into(),
            },
            Step::Read { path },
        ],
    ));
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].ok(), "hello");
}

fn run_steps(task: &ChildTask) -> Vec<Outcome> {
    let iso = isolator(&task.checkpoint, &task.local_root, &task.drivers);
    let ids = |v: &[String]| v.iter().map(|s| cid(s)).collect::<Vec<_>>();
    let mut outcomes = Vec::new();
    for step in &task.steps {
        let outcome = match step {
            Step::Launch(info) => dvdi::launch::carry_out(info, &RealHost)
                .map(|()| serde_json::Value::Null)
                .map_err(|e| (e.to_string(), None)),
            Step::Write { path, content } => std::fs::write(path, content)
                .map(|()| serde_json::Value::Null)
                .map_err(|e| (e.to_string(), e.raw_os_error())),
            Step::Read { path } => std::fs::read_to_string(path)
                .map(serde_json::Value::String)
                .map_err(|e| (e.to_string(), e.raw_os_error())),
            Step::Prepare { id, config } => iso
                .prepare(&cid(id), config)
                .map(|info| serde_json::to_value(info).unwrap())
                .map_err(|e| (e.to_string(), None)),
            Step::Recover { known, orphans } => iso
                .recover(&ids(known), &ids(orphans))
                .map(|r| serde_json::to_value(r).unwrap())
                .map_err(|e| (e.to_string(), None)),
            Step::Cleanup { id } => iso
                .cleanup(&cid(id))
                .map(|()| serde_json::Value::Null)
                .map_err(|e| (e.to_string(), None)),
        };
        let failed = outcome.is_err();
        outcomes.push(match outcome {
            Ok(v) => Outcome::Ok(v),
            Err((message, errno)) => Outcome::Err { message, errno },
        });
        if failed {
            break;
        }
    }
    outcomes
}
