//! The Docker volume plugin client (SPEC §2): endpoints, request and reply shapes, error
//! mapping, deadlines, and the checks of what a reply may carry across the trust line (SPEC §9:
//! mount points absolute, normal, printable and, after a Mount, an existing directory; text
//! shown escaped).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::config::ClientConfig;
use crate::discovery::{self, DiscoveryError, PluginAddr, PluginLocation};
use crate::driver::{DriverError, Operation, Outcome, Scope, VolumeDriver, VolumeInfo};
use crate::http::{self, HttpError, Limits};
use crate::metrics::Counter;
use crate::names::{DriverName, VolumeName};
use crate::opts::VolumeOpts;
use crate::render;
use std::sync::Arc;

/// A protocol endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Activate,
    Create,
    Remove,
    Mount,
    Unmount,
    Path,
    Get,
    List,
    Capabilities,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Activate => "Plugin.Activate",
            Endpoint::Create => "VolumeDriver.Create",
            Endpoint::Remove => "VolumeDriver.Remove",
            Endpoint::Mount => "VolumeDriver.Mount",
            Endpoint::Unmount => "VolumeDriver.Unmount",
            Endpoint::Path => "VolumeDriver.Path",
            Endpoint::Get => "VolumeDriver.Get",
            Endpoint::List => "VolumeDriver.List",
            Endpoint::Capabilities => "VolumeDriver.Capabilities",
        }
    }
}

impl From<Endpoint> for Operation {
    fn from(endpoint: Endpoint) -> Self {
        match endpoint {
            Endpoint::Activate => Operation::Activate,
            Endpoint::Create => Operation::Create,
            Endpoint::Remove => Operation::Remove,
            Endpoint::Mount => Operation::Mount,
            Endpoint::Unmount => Operation::Unmount,
            Endpoint::Path => Operation::Path,
            Endpoint::Get => Operation::Get,
            Endpoint::List => Operation::List,
            Endpoint::Capabilities => Operation::Capabilities,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plugin call that failed. Every variant names the driver; call failures name the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("plugin {driver:?}: {endpoint}: {cause}")]
    Connect {
        driver: String,
        endpoint: Endpoint,
        cause: HttpError,
    },
    #[error("plugin {driver:?}: {endpoint} timed out after {}", render::duration(*.limit))]
    Timeout {
        driver: String,
        endpoint: Endpoint,
        limit: Duration,
    },
    #[error("plugin {driver:?}: {endpoint}: {cause}")]
    Transport {
        driver: String,
        endpoint: Endpoint,
        cause: HttpError,
    },
    #[error("plugin {driver:?}: {endpoint}: reply larger than {limit} bytes")]
    TooLarge {
        driver: String,
        endpoint: Endpoint,
        limit: usize,
    },
    #[error("plugin {driver:?}: {endpoint}: unreadable reply: {}", render::escape(.reason))]
    BadReply {
        driver: String,
        endpoint: Endpoint,
        reason: String,
    },
    /// The plugin answered with an error. `message` is Docker's error text (SPEC §2), as the
    /// plugin sent it; the message shows it escaped ([`render::escape`]).
    #[error("plugin {driver:?}: {endpoint} failed: {}", render::escape(.message))]
    Refused {
        driver: String,
        endpoint: Endpoint,
        status: u16,
        message: String,
    },
    #[error("plugin {driver} does not implement VolumeDriver")]
    NotVolumeDriver { driver: String },
    /// A reply's `Mountpoint` that cannot be used as one (see [`check_mountpoint`]); after a
    /// `Mount`, also one that is not an existing directory ([`check_mounted_directory`]). A
    /// `Mount` answered so is undone with `Unmount` and the same id before this is returned.
    #[error(
        "plugin {driver:?}: {endpoint}{}: mount point {mountpoint:?} {problem}{undo}",
        .volume.as_ref().map(|v| format!(" of volume {v:?}")).unwrap_or_default()
    )]
    BadMountpoint {
        driver: String,
        endpoint: Endpoint,
        volume: Option<String>,
        /// As the plugin sent it (shown escaped).
        mountpoint: String,
        problem: MountpointProblem,
        undo: Undo,
    },
}

/// What is wrong with a mount point a plugin sent.
#[derive(Debug, thiserror::Error)]
pub enum MountpointProblem {
    #[error("is missing or empty")]
    Missing,
    #[error("has control or non-printable characters")]
    Unprintable,
    #[error("is not an absolute path")]
    NotAbsolute,
    #[error("is not in normal form (no '.' or '..' components, no '//', no trailing '/')")]
    NotNormal,
    #[error("does not exist")]
    DoesNotExist,
    #[error("is a symbolic link, which is never followed")]
    Symlink,
    #[error("is not a directory")]
    NotDirectory,
    #[error("cannot be examined: {0}")]
    Unreadable(std::io::Error),
}

/// Whether a `Mount` whose reply was refused was undone.
#[derive(Debug)]
pub enum Undo {
    /// Not a `Mount`: nothing to undo.
    NotNeeded,
    /// `Unmount` with the Mount's id succeeded: the plugin holds nothing for it.
    Done,
    /// `Unmount` failed: the plugin may still hold the volume for that id.
    Failed(Box<PluginError>),
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undo::NotNeeded => Ok(()),
            Undo::Done => f.write_str("; the mount was undone with VolumeDriver.Unmount"),
            Undo::Failed(e) => write!(
                f,
                "; undoing the mount with VolumeDriver.Unmount also failed: {e}"
            ),
        }
    }
}

/// A mount point as a plugin sent it, checked for use as a host path: absolute, in normal form
/// (no `.` or `..` component, no `//`, no trailing `/` but for `/` itself — refused rather than
/// normalized, so the path used is always the one the plugin said), and printable
/// ([`render::is_printable`]: no line break can reach `dvdcli mount`'s stdout, no escape
/// sequence a terminal). A relative path would be resolved wherever the caller happens to be —
/// inside a task's sandbox, where the task decides what it names.
pub fn check_mountpoint(raw: &str) -> Result<PathBuf, MountpointProblem> {
    if raw.is_empty() {
        return Err(MountpointProblem::Missing);
    }
    if !render::is_printable(raw) {
        return Err(MountpointProblem::Unprintable);
    }
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(MountpointProblem::NotAbsolute);
    };
    let normal = rest.is_empty()
        || rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !normal {
        return Err(MountpointProblem::NotNormal);
    }
    Ok(PathBuf::from(raw))
}

/// After a `Mount`: the mount point must be an existing directory, itself, not through a
/// symbolic link in its last component (`lstat`). Only then is it bound into a container or
/// printed for Mesos.
pub fn check_mounted_directory(path: &Path) -> Result<(), MountpointProblem> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) if m.file_type().is_symlink() => Err(MountpointProblem::Symlink),
        Ok(_) => Err(MountpointProblem::NotDirectory),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(MountpointProblem::DoesNotExist),
        Err(e) => Err(MountpointProblem::Unreadable(e)),
    }
}

impl PluginError {
    /// The plugin was reached and said no.
    pub fn is_refusal(&self) -> bool {
        matches!(self, PluginError::Refused { .. })
    }

    /// The endpoint of a call failure.
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self {
            PluginError::Connect { endpoint, .. }
            | PluginError::Timeout { endpoint, .. }
            | PluginError::Transport { endpoint, .. }
            | PluginError::TooLarge { endpoint, .. }
            | PluginError::BadReply { endpoint, .. }
            | PluginError::Refused { endpoint, .. } => Some(*endpoint),
            PluginError::BadMountpoint { endpoint, .. } => Some(*endpoint),
            PluginError::Discovery(_) | PluginError::NotVolumeDriver { .. } => None,
        }
    }
}

impl PluginError {
    /// What happened to the call, for the callers above the trait:
    ///
    /// - `Refused` (an error reply) → [`Outcome::Refused`]; to `Unmount`, [`Outcome::NotHeld`]
    ///   (a plugin's refusal cannot say why, and an `Unmount` of an id it does not hold is
    ///   the refusal that matters).
    /// - `Discovery`, `Connect` (no connection was made), `NotVolumeDriver` (what answered is
    ///   no volume driver) → [`Outcome::Unreachable`]: the request never reached a driver.
    /// - `Timeout`, `Transport`, `TooLarge`, `BadReply`, a `BadMountpoint` of `Get`/`Path`,
    ///   and a `BadMountpoint` of `Mount` whose undo failed → [`Outcome::NoAnswer`].
    /// - A `BadMountpoint` of `Mount` undone by `Unmount` → [`Outcome::Failed`].
    pub fn outcome(&self) -> Outcome {
        match self {
            PluginError::Refused {
                endpoint: Endpoint::Unmount,
                ..
            } => Outcome::NotHeld,
            PluginError::Refused { .. } => Outcome::Refused,
            PluginError::Discovery(_)
            | PluginError::Connect { .. }
            | PluginError::NotVolumeDriver { .. } => Outcome::Unreachable,
            PluginError::Timeout { .. }
            | PluginError::Transport { .. }
            | PluginError::TooLarge { .. }
            | PluginError::BadReply { .. } => Outcome::NoAnswer,
            PluginError::BadMountpoint { undo, .. } => match undo {
                Undo::Done => Outcome::Failed,
                Undo::NotNeeded | Undo::Failed(_) => Outcome::NoAnswer,
            },
        }
    }

    /// The driver's name, as every variant carries it.
    fn driver(&self) -> &str {
        match self {
            PluginError::Discovery(e) => e.driver(),
            PluginError::Connect { driver, .. }
            | PluginError::Timeout { driver, .. }
            | PluginError::Transport { driver, .. }
            | PluginError::TooLarge { driver, .. }
            | PluginError::BadReply { driver, .. }
            | PluginError::Refused { driver, .. }
            | PluginError::NotVolumeDriver { driver }
            | PluginError::BadMountpoint { driver, .. } => driver,
        }
    }
}

/// A plugin failure as the trait says it: its [`PluginError::outcome`], the driver, the
/// operation (discovery is [`Operation::Resolve`]; the handshake's verdict is `Activate`), and
/// the `PluginError` itself as the cause.
impl From<PluginError> for DriverError {
    fn from(e: PluginError) -> Self {
        let operation = match (&e, e.endpoint()) {
            (_, Some(endpoint)) => endpoint.into(),
            (PluginError::NotVolumeDriver { .. }, None) => Operation::Activate,
            (_, None) => Operation::Resolve,
        };
        DriverError::new(e.outcome(), e.driver().to_owned(), operation, e)
    }
}

/// Longest plain-text error body we quote.
const MAX_QUOTED_BODY: usize = 512;

/// Docker's error text for a reply: status 200 + `Err` → the `Err` text; any other status →
/// `VolumeDriver.X: <Err or body>`. `None` when the reply is a success.
pub fn error_text(endpoint: Endpoint, status: u16, body: &[u8]) -> Option<String> {
    let err_field = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("Err").and_then(|e| e.as_str()).map(str::to_owned))
        .filter(|e| !e.is_empty());
    if status == 200 {
        return err_field;
    }
    let detail = err_field.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let mut cut = text.len().min(MAX_QUOTED_BODY);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if text.is_empty() {
            format!("HTTP status {status}")
        } else {
            text[..cut].to_owned()
        }
    });
    Some(format!("{endpoint}: {detail}"))
}

/// Talks to one plugin.
#[derive(Debug, Clone)]
pub struct PluginClient {
    driver: DriverName,
    location: PluginLocation,
    config: ClientConfig,
    /// Connections kept for the next call (see `http`'s *Kept connections*); shared by
    /// clones. `None`: a new connection per call.
    idle: Option<Arc<http::Idle>>,
    /// Counts the calls whose deadline passed ([`PluginClient::counting_timeouts`]).
    timeouts: Option<Arc<Counter>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ActivateReply {
    #[serde(default)]
    implements: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MountpointReply {
    #[serde(default)]
    mountpoint: Option<String>,
}

/// A mount point a reply carried that [`check_mountpoint`] refused: the text as sent, and why.
type RefusedMountpoint = (String, MountpointProblem);

/// Checks a reply's optional mount point; an empty one is none.
fn checked(mountpoint: Option<String>) -> Result<Option<PathBuf>, RefusedMountpoint> {
    match mountpoint.filter(|m| !m.is_empty()) {
        None => Ok(None),
        Some(m) => match check_mountpoint(&m) {
            Ok(p) => Ok(Some(p)),
            Err(problem) => Err((m, problem)),
        },
    }
}

impl MountpointReply {
    /// The mount point, checked; `Ok(None)` when there is none.
    fn into_path(self) -> Result<Option<PathBuf>, RefusedMountpoint> {
        checked(self.mountpoint)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireVolume {
    name: String,
    #[serde(default)]
    mountpoint: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    status: Option<serde_json::Value>,
}

impl WireVolume {
    /// The volume as `Get` describes it: its name escaped ([`render::escape`]: a name is
    /// printed one a line by `dvdcli get` and `list`, so a line break in it must not become
    /// two), its mount point checked.
    fn into_info(self) -> Result<VolumeInfo, RefusedMountpoint> {
        Ok(VolumeInfo {
            name: render::escape(&self.name).to_string(),
            mountpoint: checked(self.mountpoint)?,
            created_at: self.created_at,
            status: self.status,
        })
    }

    /// The volume as `List` describes it: as [`WireVolume::into_info`], but a mount point that
    /// fails the check is left out rather than failing the whole list (nothing uses a listed
    /// mount point as a path).
    fn into_listed(self) -> VolumeInfo {
        let mountpoint = checked(self.mountpoint).ok().flatten();
        VolumeInfo {
            name: render::escape(&self.name).to_string(),
            mountpoint,
            created_at: self.created_at,
            status: self.status,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetReply {
    #[serde(default)]
    volume: Option<WireVolume>,
}

impl GetReply {
    /// `None`: no such volume.
    fn into_volume(self) -> Result<Option<VolumeInfo>, RefusedMountpoint> {
        self.volume.map(WireVolume::into_info).transpose()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListReply {
    #[serde(default)]
    volumes: Option<Vec<WireVolume>>,
}

impl ListReply {
    /// A missing or null list is an empty one.
    fn into_volumes(self) -> Vec<VolumeInfo> {
        self.volumes
            .unwrap_or_default()
            .into_iter()
            .map(WireVolume::into_listed)
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CapabilitiesReply {
    #[serde(default)]
    capabilities: Option<CapabilitiesInner>,
}

/// The scope a `Capabilities` call declares. The endpoint is optional: any failure means
/// "local".
fn scope_of(reply: Result<CapabilitiesReply, PluginError>) -> Scope {
    let scope = reply
        .ok()
        .and_then(|r| r.capabilities)
        .and_then(|c| c.scope);
    match scope.as_deref() {
        Some("global") => Scope::Global,
        _ => Scope::Local,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CapabilitiesInner {
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct Ignored {}

/// An `Activate` reply is a success only when the plugin implements `VolumeDriver`.
fn check_implements(driver: &DriverName, reply: ActivateReply) -> Result<(), PluginError> {
    if reply.implements.iter().any(|i| i == "VolumeDriver") {
        Ok(())
    } else {
        Err(PluginError::NotVolumeDriver {
            driver: driver.to_string(),
        })
    }
}

/// Turns a reply into the endpoint's reply shape `T`: Docker's error text first (a
/// [`PluginError::Refused`]), then the JSON body (empty or whitespace reads as `{}`).
fn decode<T: DeserializeOwned>(
    driver: &DriverName,
    endpoint: Endpoint,
    status: u16,
    body: &[u8],
) -> Result<T, PluginError> {
    if let Some(message) = error_text(endpoint, status, body) {
        return Err(PluginError::Refused {
            driver: driver.to_string(),
            endpoint,
            status,
            message,
        });
    }
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text).map_err(|e| PluginError::BadReply {
        driver: driver.to_string(),
        endpoint,
        reason: e.to_string(),
    })
}

/// What a reply means, as the [`PluginClient`] method for its endpoint reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `Plugin.Activate`: the plugin implements `VolumeDriver`.
    Activated,
    /// `Create`, `Remove`, `Unmount`: success, no data.
    Done,
    /// `Mount`, `Path`: the non-empty `Mountpoint`, if any (`mount` refuses a reply without
    /// one, naming the volume).
    Mountpoint(Option<PathBuf>),
    /// `Get`: the volume, or `None` for no such volume.
    Volume(Option<VolumeInfo>),
    /// `List`.
    Volumes(Vec<VolumeInfo>),
    /// `Capabilities` (any failure is `Local`).
    Scope(Scope),
}

/// The error for a mount point `refused` in a reply to `endpoint` about `volume`.
fn bad_mountpoint(
    driver: &DriverName,
    endpoint: Endpoint,
    volume: Option<&VolumeName>,
    (mountpoint, problem): RefusedMountpoint,
    undo: Undo,
) -> PluginError {
    PluginError::BadMountpoint {
        driver: driver.to_string(),
        endpoint,
        volume: volume.map(VolumeName::to_string),
        mountpoint,
        problem,
        undo,
    }
}

/// Decodes the reply (`status`, de-framed `body`) of a call to `endpoint` on `driver` with the
/// same code as the client's calls: error mapping, JSON shape, and the endpoint's checks (of
/// the mount point's form; the client's `mount` also checks the directory and undoes a
/// refused Mount, which needs I/O). A public entry point for tests and fuzzing; it does no
/// I/O.
pub fn decode_reply(
    driver: &DriverName,
    endpoint: Endpoint,
    status: u16,
    body: &[u8],
) -> Result<Reply, PluginError> {
    let bad = |refused| bad_mountpoint(driver, endpoint, None, refused, Undo::NotNeeded);
    Ok(match endpoint {
        Endpoint::Activate => {
            check_implements(driver, decode(driver, endpoint, status, body)?)?;
            Reply::Activated
        }
        Endpoint::Create | Endpoint::Remove | Endpoint::Unmount => {
            let Ignored {} = decode(driver, endpoint, status, body)?;
            Reply::Done
        }
        Endpoint::Mount | Endpoint::Path => Reply::Mountpoint(
            decode::<MountpointReply>(driver, endpoint, status, body)?
                .into_path()
                .map_err(bad)?,
        ),
        Endpoint::Get => Reply::Volume(
            decode::<GetReply>(driver, endpoint, status, body)?
                .into_volume()
                .map_err(bad)?,
        ),
        Endpoint::List => {
            Reply::Volumes(decode::<ListReply>(driver, endpoint, status, body)?.into_volumes())
        }
        Endpoint::Capabilities => Reply::Scope(scope_of(decode(driver, endpoint, status, body))),
    })
}

impl PluginClient {
    /// Finds the plugin for `driver` in the configured directories.
    pub fn discover(driver: DriverName, config: &ClientConfig) -> Result<Self, PluginError> {
        let location = discovery::discover(&driver, &config.plugin_dirs)?;
        Ok(Self {
            driver,
            location,
            config: config.clone(),
            idle: Some(Arc::default()),
            timeouts: None,
        })
    }

    /// A client for a known address (tests, benchmarks).
    pub fn at(driver: DriverName, addr: PluginAddr, config: &ClientConfig) -> Self {
        let found_at = match &addr {
            PluginAddr::Unix(p) => p.clone(),
            PluginAddr::Tcp(_) => PathBuf::new(),
        };
        Self {
            driver,
            location: PluginLocation { addr, found_at },
            config: config.clone(),
            idle: Some(Arc::default()),
            timeouts: None,
        }
    }

    /// This client, adding one to `counter` for every call whose deadline passes (every
    /// endpoint, the undo `Unmount` of a refused mount point included) — the isolator's
    /// `plugin_timeouts`.
    pub fn counting_timeouts(mut self, counter: Arc<Counter>) -> Self {
        self.timeouts = Some(counter);
        self
    }

    /// This client, making a new connection for every call (benchmark references, tests).
    pub fn without_kept_connections(mut self) -> Self {
        self.idle = None;
        self
    }

    /// How many connections are kept for the next call now.
    pub fn kept_connections(&self) -> usize {
        self.idle.as_ref().map_or(0, |i| i.len())
    }

    pub fn location(&self) -> &PluginLocation {
        &self.location
    }

    fn limit(&self, endpoint: Endpoint) -> Duration {
        let t = &self.config.timeouts;
        match endpoint {
            Endpoint::Create => t.create,
            Endpoint::Mount => t.mount,
            _ => t.other,
        }
    }

    /// One call: POST, map transport errors, [`decode`] the reply.
    fn call<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        body: Option<serde_json::Value>,
    ) -> Result<T, PluginError> {
        let driver = || self.driver.to_string();
        let limit = self.limit(endpoint);
        let now = Instant::now();
        let limits = Limits {
            connect_until: now + self.config.timeouts.connect_window,
            deadline: now + limit,
            max_body: self.config.max_reply_bytes,
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let path = format!("/{}", endpoint.as_str());
        let reply = http::post(
            self.idle.as_deref(),
            &self.location.addr,
            &path,
            body.as_bytes(),
            &limits,
        )
        .map_err(|e| match e {
            HttpError::Timeout => {
                if let Some(counter) = &self.timeouts {
                    counter.increment();
                }
                PluginError::Timeout {
                    driver: driver(),
                    endpoint,
                    limit,
                }
            }
            HttpError::TooLarge(limit) => PluginError::TooLarge {
                driver: driver(),
                endpoint,
                limit,
            },
            e @ HttpError::Connect { .. } => PluginError::Connect {
                driver: driver(),
                endpoint,
                cause: e,
            },
            e => PluginError::Transport {
                driver: driver(),
                endpoint,
                cause: e,
            },
        })?;
        decode(&self.driver, endpoint, reply.status, &reply.body)
    }

    fn call_volume<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        body: serde_json::Value,
    ) -> Result<T, PluginError> {
        self.call(endpoint, Some(body))
    }
}

impl VolumeDriver for PluginClient {
    fn name(&self) -> &DriverName {
        &self.driver
    }

    fn activate(&self) -> Result<(), DriverError> {
        let reply: ActivateReply = self.call(Endpoint::Activate, None)?;
        Ok(check_implements(&self.driver, reply)?)
    }

    fn create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), DriverError> {
        let _: Ignored =
            self.call_volume(Endpoint::Create, json!({"Name": volume, "Opts": opts}))?;
        Ok(())
    }

    fn remove(&self, volume: &VolumeName) -> Result<(), DriverError> {
        let _: Ignored = self.call_volume(Endpoint::Remove, json!({"Name": volume}))?;
        Ok(())
    }

    /// `Mount`, and the checks of its answer: the mount point must pass [`check_mountpoint`]
    /// and [`check_mounted_directory`]. Every path that mounts a plugin volume (`dvdcli
    /// mount`, the isolator's prepare, `dvdcli exec`) comes through here. A Mount whose mount
    /// point is refused is undone at once with `Unmount` and the same id (the plugin did
    /// mount: it answered without an error), and the error says whether that worked.
    fn mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, DriverError> {
        let reply: MountpointReply =
            self.call_volume(Endpoint::Mount, json!({"Name": volume, "ID": id}))?;
        let raw = reply.mountpoint.clone().unwrap_or_default();
        let refused = match reply.into_path() {
            Ok(Some(path)) => match check_mounted_directory(&path) {
                Ok(()) => return Ok(path),
                Err(problem) => (raw, problem),
            },
            Ok(None) => (raw, MountpointProblem::Missing),
            Err(refused) => refused,
        };
        let undo = match self
            .call_volume::<Ignored>(Endpoint::Unmount, json!({"Name": volume, "ID": id}))
        {
            Ok(_) => Undo::Done,
            Err(e) => Undo::Failed(Box::new(e)),
        };
        Err(bad_mountpoint(&self.driver, Endpoint::Mount, Some(volume), refused, undo).into())
    }

    fn unmount(&self, volume: &VolumeName, id: &str) -> Result<(), DriverError> {
        let _: Ignored = self.call_volume(Endpoint::Unmount, json!({"Name": volume, "ID": id}))?;
        Ok(())
    }

    fn path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, DriverError> {
        let reply: MountpointReply = self.call_volume(Endpoint::Path, json!({"Name": volume}))?;
        reply.into_path().map_err(|refused| {
            bad_mountpoint(
                &self.driver,
                Endpoint::Path,
                Some(volume),
                refused,
                Undo::NotNeeded,
            )
            .into()
        })
    }

    fn get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, DriverError> {
        let reply: GetReply = self.call_volume(Endpoint::Get, json!({"Name": volume}))?;
        reply.into_volume().map_err(|refused| {
            bad_mountpoint(
                &self.driver,
                Endpoint::Get,
                Some(volume),
                refused,
                Undo::NotNeeded,
            )
            .into()
        })
    }

    fn list(&self) -> Result<Vec<VolumeInfo>, DriverError> {
        let reply: ListReply = self.call(Endpoint::List, Some(json!({})))?;
        Ok(reply.into_volumes())
    }

    fn capabilities(&self) -> Result<Scope, DriverError> {
        Ok(scope_of(self.call(Endpoint::Capabilities, Some(json!({})))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_follow_docker() {
        let ep = Endpoint::Mount;
        assert_eq!(
            error_text(ep, 200, br#"{"Mountpoint":"/m","Err":""}"#),
            None
        );
        assert_eq!(error_text(ep, 200, br#"{"Mountpoint":"/m"}"#), None);
        assert_eq!(error_text(ep, 200, b""), None);
        assert_eq!(
            error_text(ep, 200, br#"{"Err":"no such volume"}"#).unwrap(),
            "no such volume"
        );
        assert_eq!(
            error_text(ep, 500, br#"{"Err":"backend down"}"#).unwrap(),
            "VolumeDriver.Mount: backend down"
        );
        assert_eq!(
            error_text(ep, 404, b"<html><body>404 page not found</body></html>\n").unwrap(),
            "VolumeDriver.Mount: <html><body>404 page not found</body></html>"
        );
        assert_eq!(
            error_text(ep, 503, b"").unwrap(),
            "VolumeDriver.Mount: HTTP status 503"
        );
        let long = "é".repeat(1000);
        let t = error_text(ep, 500, long.as_bytes()).unwrap();
        assert!(t.len() <= MAX_QUOTED_BODY + 20);
    }

    #[test]
    fn decode_reply_reads_each_endpoint_as_its_method_does() {
        let d = DriverName::new("rexray").unwrap();
        let dec = |ep, status, body: &str| decode_reply(&d, ep, status, body.as_bytes());
        assert_eq!(
            dec(
                Endpoint::Activate,
                200,
                r#"{"Implements":["VolumeDriver"]}"#
            )
            .unwrap(),
            Reply::Activated
        );
        assert!(matches!(
            dec(
                Endpoint::Activate,
                200,
                r#"{"Implements":["NetworkDriver"]}"#
            ),
            Err(PluginError::NotVolumeDriver { .. })
        ));
        assert_eq!(dec(Endpoint::Create, 200, " \n").unwrap(), Reply::Done);
        assert_eq!(
            dec(Endpoint::Mount, 200, r#"{"Mountpoint":"","Err":""}"#).unwrap(),
            Reply::Mountpoint(None)
        );
        assert_eq!(
            dec(Endpoint::Path, 200, r#"{"Mountpoint":"/m"}"#).unwrap(),
            Reply::Mountpoint(Some("/m".into()))
        );
        assert_eq!(
            dec(Endpoint::Get, 200, r#"{"Volume":null}"#).unwrap(),
            Reply::Volume(None)
        );
        match dec(
            Endpoint::List,
            200,
            r#"{"Volumes":[{"Name":"a","Extra":1}]}"#,
        ) {
            Ok(Reply::Volumes(v)) => assert_eq!(v[0].name, "a"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            dec(Endpoint::Capabilities, 404, "404 page not found").unwrap(),
            Reply::Scope(Scope::Local)
        );
        assert_eq!(
            dec(
                Endpoint::Capabilities,
                200,
                r#"{"Capabilities":{"Scope":"global"}}"#
            )
            .unwrap(),
            Reply::Scope(Scope::Global)
        );
        assert!(matches!(
            dec(Endpoint::Unmount, 200, r#"{"Err":"busy"}"#),
            Err(PluginError::Refused { status: 200, .. })
        ));
        assert!(matches!(
            dec(Endpoint::Get, 200, "<html>"),
            Err(PluginError::BadReply { .. })
        ));
    }

    #[test]
    fn mount_points_must_be_absolute_normal_and_printable() {
        for good in [
            "/",
            "/m",
            "/var/lib/docker-volumes/v/_data",
            "/a b/é",
            "/.hidden/x.y",
        ] {
            assert_eq!(
                check_mountpoint(good).unwrap(),
                PathBuf::from(good),
                "{good}"
            );
        }
        for (bad, want) in [
            ("", "missing"),
            ("foo", "absolute"),
            ("foo/bar", "absolute"),
            ("./m", "absolute"),
            ("/m/", "normal form"),
            ("//m", "normal form"),
            ("/a//b", "normal form"),
            ("/a/./b", "normal form"),
            ("/a/../etc", "normal form"),
            ("/..", "normal form"),
            ("/m\n/evil", "control"),
            ("/m\u{1b}[2J", "control"),
            ("/m\0", "control"),
            ("/m\u{202e}", "control"),
        ] {
            let problem = check_mountpoint(bad).unwrap_err().to_string();
            assert!(problem.contains(want), "{bad:?}: {problem}");
        }
    }

    #[test]
    fn a_mounted_directory_is_checked_without_following_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(d.path().join("file"), "").unwrap();
        std::os::unix::fs::symlink(&dir, d.path().join("link")).unwrap();
        assert!(check_mounted_directory(&dir).is_ok());
        assert!(matches!(
            check_mounted_directory(&d.path().join("link")),
            Err(MountpointProblem::Symlink)
        ));
        assert!(matches!(
            check_mounted_directory(&d.path().join("file")),
            Err(MountpointProblem::NotDirectory)
        ));
        assert!(matches!(
            check_mounted_directory(&d.path().join("none")),
            Err(MountpointProblem::DoesNotExist)
        ));
    }

    #[test]
    fn replies_are_checked_where_they_enter() {
        let d = DriverName::new("p").unwrap();
        let dec = |ep, body: &str| decode_reply(&d, ep, 200, body.as_bytes());
        for (ep, body) in [
            (Endpoint::Mount, r#"{"Mountpoint":"foo"}"#),
            (Endpoint::Path, r#"{"Mountpoint":"/m\n/x"}"#),
            (
                Endpoint::Get,
                r#"{"Volume":{"Name":"v","Mountpoint":"/a/../b"}}"#,
            ),
        ] {
            let e = dec(ep, body).unwrap_err();
            assert!(
                matches!(e, PluginError::BadMountpoint { endpoint, .. } if endpoint == ep),
                "{ep}: {e}"
            );
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        // A List is not failed by one entry's mount point; names come escaped, one line each.
        match dec(
            Endpoint::List,
            r#"{"Volumes":[{"Name":"a\nb","Mountpoint":"rel"},{"Name":"c","Mountpoint":"/c"}]}"#,
        ) {
            Ok(Reply::Volumes(v)) => {
                assert_eq!(v[0].name, "a\\nb");
                assert_eq!(v[0].mountpoint, None);
                assert_eq!(v[1].mountpoint, Some(PathBuf::from("/c")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plugin_text_is_escaped_in_messages() {
        let refused = PluginError::Refused {
            driver: "p".into(),
            endpoint: Endpoint::Mount,
            status: 200,
            message: "\u{1b}[31mred\nsecond line".into(),
        };
        assert_eq!(
            refused.to_string(),
            "plugin \"p\": VolumeDriver.Mount failed: \\u{1b}[31mred\\nsecond line"
        );
        let bad = PluginError::BadMountpoint {
            driver: "p".into(),
            endpoint: Endpoint::Mount,
            volume: Some("v".into()),
            mountpoint: "/m\n/x".into(),
            problem: MountpointProblem::Unprintable,
            undo: Undo::Failed(Box::new(refused)),
        };
        let text = bad.to_string();
        assert!(
            text.starts_with(
                r#"plugin "p": VolumeDriver.Mount of volume "v": mount point "/m\n/x" has control"#
            ) && text.contains("undoing the mount with VolumeDriver.Unmount also failed")
                && !text.contains(['\n', '\u{1b}']),
            "{text}"
        );
    }

    #[test]
    fn refusal_names_driver_and_endpoint() {
        let e = PluginError::Refused {
            driver: "rexray".into(),
            endpoint: Endpoint::Unmount,
            status: 200,
            message: "busy".into(),
        };
        let s = e.to_string();
        assert!(
            s.contains("\"rexray\"") && s.contains("VolumeDriver.Unmount") && s.contains("busy"),
            "{s}"
        );
        assert!(e.is_refusal());
    }

    #[test]
    fn each_failure_says_what_happened_to_the_call() {
        let driver = || "rexray".to_owned();
        let refused = |endpoint| PluginError::Refused {
            driver: driver(),
            endpoint,
            status: 500,
            message: "no".into(),
        };
        let bad_mount = |undo| PluginError::BadMountpoint {
            driver: driver(),
            endpoint: Endpoint::Mount,
            volume: Some("v".into()),
            mountpoint: "rel".into(),
            problem: MountpointProblem::NotAbsolute,
            undo,
        };
        let cases = [
            (refused(Endpoint::Get), Outcome::Refused, Operation::Get),
            (refused(Endpoint::Mount), Outcome::Refused, Operation::Mount),
            (
                refused(Endpoint::Unmount),
                Outcome::NotHeld,
                Operation::Unmount,
            ),
            (
                PluginError::Connect {
                    driver: driver(),
                    endpoint: Endpoint::Mount,
                    cause: HttpError::Connect {
                        addr: "unix:///x.sock".into(),
                        waited: Duration::from_millis(10),
                        cause: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                    },
                },
                Outcome::Unreachable,
                Operation::Mount,
            ),
            (
                PluginError::Discovery(DiscoveryError::NotFound {
                    driver: driver(),
                    searched: Vec::new(),
                }),
                Outcome::Unreachable,
                Operation::Resolve,
            ),
            (
                PluginError::NotVolumeDriver { driver: driver() },
                Outcome::Unreachable,
                Operation::Activate,
            ),
            (
                PluginError::Timeout {
                    driver: driver(),
                    endpoint: Endpoint::Mount,
                    limit: Duration::from_secs(1),
                },
                Outcome::NoAnswer,
                Operation::Mount,
            ),
            (
                PluginError::Transport {
                    driver: driver(),
                    endpoint: Endpoint::Unmount,
                    cause: HttpError::Malformed("x".into()),
                },
                Outcome::NoAnswer,
                Operation::Unmount,
            ),
            (
                PluginError::TooLarge {
                    driver: driver(),
                    endpoint: Endpoint::List,
                    limit: 10,
                },
                Outcome::NoAnswer,
                Operation::List,
            ),
            (
                PluginError::BadReply {
                    driver: driver(),
                    endpoint: Endpoint::Get,
                    reason: "x".into(),
                },
                Outcome::NoAnswer,
                Operation::Get,
            ),
            (bad_mount(Undo::Done), Outcome::Failed, Operation::Mount),
            (
                bad_mount(Undo::Failed(Box::new(refused(Endpoint::Unmount)))),
                Outcome::NoAnswer,
                Operation::Mount,
            ),
        ];
        for (plugin_error, outcome, operation) in cases {
            let text = plugin_error.to_string();
            let e = DriverError::from(plugin_error);
            assert_eq!((e.outcome(), e.operation()), (outcome, operation), "{text}");
            assert_eq!(e.driver(), "rexray");
            assert_eq!(
                e.to_string(),
                text,
                "the message is the plugin's, said once"
            );
            assert!(e.into_cause().downcast::<PluginError>().is_ok());
        }
    }
}
