//! The isolator lifecycle (SPEC §5): `prepare`, `cleanup`, `recover`, `inspect`, and the
//! reaping of dead `dvdcli exec` holders, over the ledger and the volume drivers.
//!
//! The flow of `prepare`: parse the environment ([`crate::grammar`]) → plan (allowed drivers,
//! driver resolution, container paths checked read-only: nothing is touched yet) → the
//! container's intent in the ledger → per distinct volume, under its lock: share an existing
//! mount or Mount through the driver with a mount id recorded first → bind targets made →
//! launch info. Any failure releases what this prepare added. Teardown runs backwards.
//!
//! [`Isolator`] is `Send + Sync`: the C ABI and `dvdcli exec` call it from many threads. Same-
//! volume operations are serialized by the ledger's volume lock, different volumes run in
//! parallel, and a plugin call holds only its own volume's lock.

mod cleanup;
mod error;
mod gauges;
mod inspect;
mod plan;
mod prepare;
mod recover;
mod repair;
mod volume;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub use error::{ChownError, DeviceOptionsRefused, IsolatorError, PathError, PathRule};
pub use inspect::{ContainerView, Inspection, VolumeUseView, VolumeView};
pub use recover::RecoverReport;
pub use repair::ExecRecoverReport;

use crate::config::Settings;
use crate::container_id::ContainerId;
use crate::container_info::DockerVolume;
use crate::grammar::DEFAULT_DRIVER;
use crate::holder::Holder;
use crate::launch::LaunchInfo;
use crate::ledger::Ledger;
use crate::metrics::IsolatorMetrics;
use crate::names::DriverName;
use crate::protected::ProtectedDirs;
use crate::resolver::DriverResolver;
use crate::sys::{Host, RealHost};

/// Where the ledger lives unless configured: a tmpfs, so it does not outlive the mounts it
/// describes (SPEC §5).
pub const DEFAULT_CHECKPOINT_DIR: &str = "/var/run/mesos/isolators/dvdi";

/// How loud a log line is, from the quietest up (`log_level` keeps records at or above it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

impl LogLevel {
    /// The word `log_level` takes for it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }
}

/// Where the library's log lines go: stderr by default; the C ABI bridges it to glog. A
/// logger passes on the records at or above its level ([`Logger::at_level`]); a new one, all.
#[derive(Clone)]
pub struct Logger {
    sink: Arc<LogFn>,
    min: LogLevel,
}

/// The function behind a [`Logger`].
pub type LogFn = dyn Fn(LogLevel, &str) + Send + Sync;

impl Logger {
    pub fn new(f: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        Self {
            sink: Arc::new(f),
            min: LogLevel::Debug,
        }
    }

    /// `dvdi: warning: …` lines on stderr (never stdout: `dvdcli` prints data there).
    pub fn stderr() -> Self {
        Self::new(|level, message| eprintln!("dvdi: {}: {message}", level.as_str()))
    }

    /// The same sink, dropping records below `min`.
    pub fn at_level(&self, min: LogLevel) -> Self {
        Self {
            sink: self.sink.clone(),
            min,
        }
    }

    /// Whether a record at `level` would be passed on (to skip building a costly message).
    pub fn enabled(&self, level: LogLevel) -> bool {
        level >= self.min
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        if self.enabled(level) {
            (self.sink)(level, message)
        }
    }

    pub(crate) fn debug(&self, message: &str) {
        self.log(LogLevel::Debug, message)
    }

    pub(crate) fn info(&self, message: &str) {
        self.log(LogLevel::Info, message)
    }

    pub(crate) fn warn(&self, message: &str) {
        self.log(LogLevel::Warning, message)
    }
}

impl Default for Logger {
    fn default() -> Self {
        Self::stderr()
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Logger(..)")
    }
}

/// How the isolator is set up (module parameters, `dvdcli exec` flags).
#[derive(Debug, Clone)]
pub struct IsolatorConfig {
    /// The ledger's directory (created 0700).
    pub checkpoint_dir: PathBuf,
    /// The driver of a slot without `DVDI_VOLUME_DRIVER`.
    pub default_driver: DriverName,
    /// Plugin directories, deadlines, local-driver root: what [`Isolator::from_config`] builds
    /// its resolver from (a caller of [`Isolator::new`] passes a resolver built from them).
    pub settings: Settings,
    /// Drivers a task may use; `None`: any.
    pub allowed_drivers: Option<BTreeSet<DriverName>>,
    /// Give the volume root (the host mount point) to the task's user on prepare.
    pub chown_volume_root: bool,
    /// Let a task's `DVDI_VOLUME_OPTS` give the `local` driver Docker's device options
    /// (`type=`, `device=`, `o=`). Off by default: they mount any host path or disk
    /// (`type=none,o=bind,device=/etc`, `device=/dev/sda`) as root. An operator's own
    /// `dvdcli create`/`mount` is not affected.
    pub local_device_options: bool,
    /// Serve the `DOCKER_VOLUME` entries of a container's `ContainerInfo.volumes` too (Mesos'
    /// own grammar). Off by default: an agent that still runs the built-in `docker/volume`
    /// isolator mounts them itself, and a volume must never be mounted twice.
    pub docker_volumes: bool,
    /// Host directories an absolute container path may not cover when the container has no
    /// image (its absolute paths are the host's): the system directories by default.
    pub protected_host_dirs: ProtectedDirs,
    /// Records below this level are not logged (`log_level`); [`IsolatorConfig::logger`].
    pub log_level: LogLevel,
    /// Where records go; the isolator logs through [`IsolatorConfig::logger`], which filters
    /// by `log_level`.
    pub log: Logger,
}

impl Default for IsolatorConfig {
    fn default() -> Self {
        Self {
            checkpoint_dir: PathBuf::from(DEFAULT_CHECKPOINT_DIR),
            // A constant; the grammar's unit tests check it is a valid name.
            default_driver: DriverName::new(DEFAULT_DRIVER)
                .expect("DEFAULT_DRIVER is a valid driver name"),
            settings: Settings::default(),
            allowed_drivers: None,
            chown_volume_root: false,
            local_device_options: false,
            docker_volumes: false,
            protected_host_dirs: ProtectedDirs::default(),
            log_level: LogLevel::Info,
            log: Logger::default(),
        }
    }
}

impl IsolatorConfig {
    /// `log` passing on the records at or above `log_level`.
    pub fn logger(&self) -> Logger {
        self.log.at_level(self.log_level)
    }
}

/// What the isolator needs to know about a container being prepared.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerConfig {
    /// The executor's environment, in order (`DVDI_VOLUME_*` are read from it).
    pub env: Vec<(String, String)>,
    /// The task sandbox on the host (absolute): relative container paths live under it.
    pub sandbox: PathBuf,
    /// The task's user, for `chown_volume_root`.
    #[serde(default)]
    pub user: Option<String>,
    /// The container's root filesystem on the host, when it has its own image.
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    /// Set by `dvdcli exec`: the process whose exit releases the container's volumes.
    #[serde(default)]
    pub holder: Option<Holder>,
    /// The `DOCKER_VOLUME` entries of Mesos' `ContainerInfo.volumes` (served only with
    /// [`IsolatorConfig::docker_volumes`]).
    #[serde(default)]
    pub docker_volumes: Vec<DockerVolume>,
}

/// The isolator: one per agent (or per `dvdcli exec`), shared by every thread.
pub struct Isolator {
    config: IsolatorConfig,
    /// Whether the info line saying `DOCKER_VOLUME`s are ignored (`docker_volumes` off) was
    /// logged: once per isolator, debug lines after that.
    docker_volumes_noted: std::sync::atomic::AtomicBool,
    resolver: DriverResolver,
    host: Arc<dyn Host>,
    ledger: Ledger,
    /// Volumes this handle has seen exist (a `Get` found one, a `Create` or `Mount`
    /// succeeded): their next Mount needs no `Get` first (see `volume::Isolator::mount_new`).
    seen: std::sync::Mutex<std::collections::HashSet<crate::ledger::VolumeKey>>,
    /// Counters and timers of prepare, cleanup and recover ([`Isolator::metrics`]).
    metrics: IsolatorMetrics,
}

impl fmt::Debug for Isolator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Isolator")
            .field("config", &self.config)
            .field("ledger", &self.ledger.root())
            .finish_non_exhaustive()
    }
}

impl Isolator {
    /// Opens (creating, mode 0700) the checkpoint directory.
    /// Its log lines go through `config.logger()`: below `config.log_level`, none.
    pub fn new(
        mut config: IsolatorConfig,
        resolver: DriverResolver,
        host: Arc<dyn Host>,
    ) -> Result<Self, IsolatorError> {
        config.log = config.logger();
        let ledger = Ledger::open(&config.checkpoint_dir).map_err(IsolatorError::checkpoint)?;
        config.log.debug(&describe(&config));
        Ok(Self {
            config,
            docker_volumes_noted: Default::default(),
            resolver,
            host,
            ledger,
            seen: Default::default(),
            metrics: IsolatorMetrics::default(),
        })
    }

    /// [`Isolator::new`] with the real host and a resolver over `config.settings`.
    pub fn from_config(config: IsolatorConfig) -> Result<Self, IsolatorError> {
        let host: Arc<dyn Host> = Arc::new(RealHost);
        let resolver = DriverResolver::with_host(config.settings.clone(), host.clone());
        Self::new(config, resolver, host)
    }

    pub fn config(&self) -> &IsolatorConfig {
        &self.config
    }

    /// Mounts the container's volumes and returns how to bind them into it; `Ok(None)` when
    /// its environment asks for no volume (nothing is written then). All or nothing.
    pub fn prepare(
        &self,
        id: &ContainerId,
        cfg: &ContainerConfig,
    ) -> Result<Option<LaunchInfo>, IsolatorError> {
        let started = Instant::now();
        let result = prepare::prepare(self, id, cfg);
        // A container that asks for no volume is not a prepare of ours.
        if !matches!(result, Ok(None)) {
            self.metrics.prepared(started.elapsed(), result.is_ok());
        }
        result
    }

    /// Releases the container's volumes: its references first, then one Unmount per volume
    /// whose last holder it was. A container the ledger does not know is fine.
    pub fn cleanup(&self, id: &ContainerId) -> Result<(), IsolatorError> {
        let started = Instant::now();
        let result = self
            .ledger
            .lock_shared()
            .map_err(IsolatorError::checkpoint)
            .and_then(|_ledger| cleanup::cleanup_locked(self, id, &mut Vec::new()));
        // Counted: a container that held volumes, and any failure; not the cleanup of every
        // container without volumes, which the agent also sends.
        match result {
            Ok(false) => Ok(()),
            Ok(true) => {
                self.metrics.cleaned_up(started.elapsed(), true);
                Ok(())
            }
            Err(e) => {
                self.metrics.cleaned_up(started.elapsed(), false);
                Err(e)
            }
        }
    }

    /// Rebuilds state after an agent restart: `known` (running) and `orphans` (known to the
    /// agent, to be destroyed later) keep their volumes; every other checkpointed container is
    /// cleaned up; unheld mounts are unmounted; failed unmounts are retried. Unreadable
    /// records are moved aside and handled conservatively, never aborting recovery.
    pub fn recover(
        &self,
        known: &[ContainerId],
        orphans: &[ContainerId],
    ) -> Result<RecoverReport, IsolatorError> {
        let result = recover::recover(self, known, orphans);
        self.metrics.recovered(result.is_ok());
        result
    }

    /// Which containers hold which volumes, where, and in what state (read-only).
    pub fn inspect(&self) -> Result<Inspection, IsolatorError> {
        inspect::inspect(self)
    }

    /// Cleans up containers whose `dvdcli exec` holder process is gone — also one whose
    /// record is damaged, when its file name (the exec's id) names a process that is gone —
    /// after deleting stale temp files and rebuilding damaged volume records (see
    /// `lifecycle/repair.rs`). Returns the ids it cleaned up, and the errors of those whose
    /// cleanup failed (they are released all the same: failed unmounts are remembered for
    /// retry).
    pub fn reap_dead_holders(&self) -> Result<ReapReport, IsolatorError> {
        let _ledger = self
            .ledger
            .lock_shared()
            .map_err(IsolatorError::checkpoint)?;
        cleanup::reap_locked(self)
    }

    /// `dvdcli recover`: the isolator's recover for `dvdcli exec` holders only, safe while the
    /// agent runs (ledger lock shared). Reaps dead exec containers, rebuilds or moves aside the
    /// damaged records it can attribute, drops holders that are dead exec containers, unmounts
    /// what nothing holds or claims, retries failed unmounts. Agent containers (records
    /// without a holder) and the volumes they hold are left alone.
    pub fn recover_exec(&self) -> Result<ExecRecoverReport, IsolatorError> {
        let _ledger = self
            .ledger
            .lock_shared()
            .map_err(IsolatorError::checkpoint)?;
        let reaped = cleanup::reap_locked(self)?;
        let mut report = reaped.repair;
        report.reaped_containers = reaped.reaped;
        report
            .errors
            .extend(reaped.errors.iter().map(|e| e.to_string()));
        repair::settle_volumes(self, &mut report)?;
        Ok(report)
    }
}

impl Isolator {
    /// Logs that a container's `DOCKER_VOLUME`s are left to someone else (`docker_volumes` is
    /// off): at info level the first time, so an operator who removed `docker/volume` from
    /// `--isolation` without turning it on sees why, then at debug level.
    fn note_docker_volumes_ignored(&self, id: &ContainerId, count: usize) {
        let first = !self
            .docker_volumes_noted
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        let message = format!(
            "container {id}: ignoring its {count} DOCKER_VOLUME volume(s) of ContainerInfo: \
             module parameter docker_volumes is false (leave them to the agent's docker/volume \
             isolator, or set docker_volumes=true and remove docker/volume from --isolation)"
        );
        if first {
            self.config.log.info(&message)
        } else {
            self.config.log.debug(&message)
        }
    }
}

/// The settings an isolator runs with, in one debug record.
fn describe(c: &IsolatorConfig) -> String {
    let t = &c.settings.client.timeouts;
    let allowed = match &c.allowed_drivers {
        None => "any".to_owned(),
        Some(set) => set
            .iter()
            .map(DriverName::as_str)
            .collect::<Vec<_>>()
            .join(","),
    };
    format!(
        "isolator settings: checkpoint_dir {}, default_driver {}, allowed_drivers {allowed}, \
         plugin_dirs {}, timeouts connect {} create {} mount {} other {}, max_reply_bytes {}, \
         local_root {}, local_max_size {}, chown_volume_root {}, local_device_options {}, \
         docker_volumes {}, log_level {}",
        c.checkpoint_dir.display(),
        c.default_driver.as_str(),
        std::env::join_paths(&c.settings.client.plugin_dirs)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        crate::render::duration(t.connect_window),
        crate::render::duration(t.create),
        crate::render::duration(t.mount),
        crate::render::duration(t.other),
        c.settings.client.max_reply_bytes,
        c.settings.local_root.display(),
        c.settings
            .local_max_size
            .map_or("the free space".to_owned(), |n| format!("{n} bytes")),
        c.chown_volume_root,
        c.local_device_options,
        c.docker_volumes,
        c.log_level.as_str(),
    )
}

/// What [`Isolator::reap_dead_holders`] did.
#[derive(Debug, Default)]
pub struct ReapReport {
    pub reaped: Vec<ContainerId>,
    pub errors: Vec<IsolatorError>,
    /// The repairs it made first (temp files, damaged records), and what it could not do.
    pub repair: ExecRecoverReport,
}
