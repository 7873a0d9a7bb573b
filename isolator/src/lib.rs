//! dvdi: the core of dvdi-rs.
//!
//! Every rule lives here; `dvdcli` and the C ABI are adapters. The flow (SPEC §1):
//! environment → volume requests → plan → ledger intent → driver calls → ledger update →
//! launch info, and backwards for teardown.
//!
//! - [`names`], `opts`: validated driver/volume names and option lists.
//! - [`grammar`]: the `DVDI_VOLUME_*` environment grammar → volume requests;
//!   [`container_info`]: Mesos' `DOCKER_VOLUME`s of `ContainerInfo` → the same requests, merged
//!   with the environment's.
//! - [`config`]: the client settings and deadlines; [`settings`]: the one table of every
//!   setting (module parameter and `DVDI_` variable) and its one parser.
//! - [`discovery`], [`http`], [`plugin`]: finding and calling Docker volume plugins.
//! - [`local`]: the embedded `local` driver.
//! - [`driver`]: the `VolumeDriver` trait over both, and its error, which says what happened.
//! - [`resolver`]: which driver serves a name (`local`, a registered one, or a plugin).
//! - [`ops`]: the `dvdcli` operations (mount with implicit create, path, …).
//! - [`render`]: text from outside escaped, and durations, as every message prints them.
//! - [`sys`], [`mountinfo`]: host calls behind a trait, and the mount table.
//! - [`lifecycle`]: the isolator (prepare / cleanup / recover / inspect) over [`ledger`], the
//!   durable record of containers and mounts; [`launch`] carries out its launch info.
//! - [`metrics`]: the counters and timers an agent's `/metrics/snapshot` shows.
//! - [`fault`]: crash points for the crash tests (inert unless the `fault-points` feature).
//! - `protected`: the host directories image-less containers may not mount over.
//! - `container_id`, [`holder`]: Mesos container ids, and `dvdcli exec` holder processes.
//! - [`date`]: calendar dates of Unix times (shared with `dvdcli`'s build script).

pub mod config;
pub(crate) mod container_id;
pub mod container_info;
pub mod date;
pub mod discovery;
pub mod driver;
pub mod fault;
pub mod grammar;
pub mod holder;
pub mod http;
pub mod launch;
pub mod ledger;
pub mod lifecycle;
pub mod local;
pub mod metrics;
pub mod mountinfo;
pub mod names;
pub mod ops;
pub(crate) mod opts;
pub mod plugin;
pub(crate) mod protected;
pub mod render;
pub mod resolver;
pub mod settings;
pub mod sys;
// Last: with one codegen unit, code is laid out roughly in module order, and CSI's (run by
// few hosts) then does not sit between the pages every `dvdcli mount` touches.
#[cfg(feature = "csi")]
pub mod csi;

/// Whether this build serves CSI drivers (the `csi` feature; `dvdcli` as shipped does not).
pub const CSI_BUILT_IN: bool = cfg!(feature = "csi");

pub use config::{ClientConfig, Settings, Timeouts};
pub use container_id::{ContainerId, ContainerIdError};
pub use driver::{DriverError, Operation, Outcome, Scope, VolumeDriver, VolumeInfo};
pub use launch::{LaunchInfo, LaunchMount};
pub use lifecycle::{
    ContainerConfig, ExecRecoverReport, Inspection, Isolator, IsolatorConfig, IsolatorError,
    LogLevel, Logger, RecoverReport,
};
pub use metrics::{MetricsSnapshot, TimerSnapshot, VolumeGauges};
pub use names::{DriverName, NameError, VolumeName};
pub use opts::{OptsError, VolumeOpts};
pub use resolver::DriverResolver;
pub use settings::{SettingError, SETTINGS};
