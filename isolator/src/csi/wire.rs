//! What the library and the `dvdi-csi` program say to each other: one [`Request`] as JSON on
//! the program's stdin, one [`Reply`] as JSON on its stdout. Both sides use these types, so
//! the two cannot drift; the library still treats a reply as untrusted input (it relays a
//! plugin's words) and checks it before use.
//!
//! The program runs one *operation* — the CSI calls of one `create`, `delete`, `publish` or
//! `unpublish`, in the order the CSI spec gives them — and exits. It keeps nothing: what the
//! host holds is in the library's records, and every CSI call is idempotent, so running an
//! operation again after a crash or a timeout is always safe.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The format of [`Request`] and [`Reply`]; a program that reads another refuses it.
pub const WIRE_VERSION: u32 = 1;

/// The most bytes of reply the library reads from the program.
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// One operation for the `dvdi-csi` program.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub version: u32,
    pub op: Op,
    /// The operator's name for the plugin (the driver name): used in every error.
    pub driver: String,
    /// The name `GetPluginInfo` must answer, when the operator set one.
    pub plugin_name: Option<String>,
    pub node: Endpoint,
    /// The controller service's address, when the operator gave one.
    pub controller: Option<Endpoint>,
    /// The DVDI volume name: the `name` of `CreateVolume`, and the volume id of a node-only
    /// plugin. Empty for [`Op::Probe`], which is about no volume.
    pub volume: String,
    /// The volume id the plugin gave (`CreateVolume`); the name for a node-only plugin.
    pub volume_id: Option<String>,
    /// The plugin's `volume_context` for the volume, passed back on stage and publish.
    #[serde(default)]
    pub volume_context: BTreeMap<String, String>,
    pub capability: Capability,
    /// `CreateVolume`'s `capacity_range.required_bytes`.
    pub capacity: Option<u64>,
    /// `CreateVolume`'s `parameters`.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// `staging_target_path`: a directory the library made (used when the plugin stages).
    pub staging_path: Option<PathBuf>,
    /// `target_path`: its parent exists; the plugin makes the path itself (CSI spec).
    pub target_path: Option<PathBuf>,
    /// The operator's secrets for controller calls and for node calls. Never logged, never
    /// echoed in a reply.
    #[serde(default)]
    pub controller_secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub node_secrets: BTreeMap<String, String>,
    pub deadlines: Deadlines,
    /// How many more times a call that got no answer (its deadline passed, or the plugin was
    /// unavailable) is sent again, on a new connection, before the operation gives up.
    pub retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `CreateVolume` (controller plugins with `CREATE_DELETE_VOLUME`); the volume id.
    Create,
    /// `DeleteVolume` (same plugins).
    Delete,
    /// `ControllerPublishVolume`, `NodeStageVolume`, `NodePublishVolume`, as the plugin's
    /// capabilities ask; a failure undoes the calls that succeeded.
    Publish,
    /// `NodeUnpublishVolume`, `NodeUnstageVolume`, `ControllerUnpublishVolume`.
    Unpublish,
    /// The identity calls alone: is the plugin there, ready, and which one.
    Probe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(h) => write!(f, "tcp://{h}"),
        }
    }
}

/// The `VolumeCapability` of every call: a mounted filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    pub fs_type: Option<String>,
    #[serde(default)]
    pub mount_flags: Vec<String>,
    /// `MULTI_NODE_READER_ONLY` and `readonly` on publish; otherwise `SINGLE_NODE_WRITER`.
    pub read_only: bool,
}

/// Each call's own deadline, in milliseconds (from the settings table's timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// Connecting to an endpoint.
    pub connect_ms: u64,
    /// `CreateVolume`, `DeleteVolume`.
    pub create_ms: u64,
    /// `Controller(Un)Publish`, `Node(Un)Stage`, `Node(Un)Publish`.
    pub mount_ms: u64,
    /// The identity calls, the capability calls, `NodeGetInfo`.
    pub other_ms: u64,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub version: u32,
    /// Every call sent, in order, retries included (for the log and the tests).
    pub calls: Vec<String>,
    pub result: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok(Done),
    Error(CallError),
}

/// A successful operation's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// `create`: the plugin's id for the volume (its name for a node-only plugin).
    pub volume_id: Option<String>,
    pub capacity: Option<u64>,
    #[serde(default)]
    pub volume_context: BTreeMap<String, String>,
    /// `probe`: what `GetPluginInfo` said.
    pub plugin: Option<String>,
    pub plugin_version: Option<String>,
    /// Whether the plugin offers a controller service with `CREATE_DELETE_VOLUME`.
    pub creates_volumes: bool,
}

/// A failed operation: which call, how, and whether the calls made before it were undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    /// The CSI call (`NodeStageVolume`), or `connect`.
    pub call: String,
    pub kind: ErrorKind,
    /// The gRPC status code's name (`NOT_FOUND`), for [`ErrorKind::Status`].
    pub code: Option<String>,
    /// The plugin's message or the transport's error (untrusted text: escape to print).
    pub message: String,
    /// The deadline of one attempt, for [`ErrorKind::Timeout`].
    pub limit_ms: Option<u64>,
    pub attempts: u32,
    /// Nothing the operation did is left in doubt: the failed call was answered (or never
    /// reached the plugin) and, for `publish`, the calls that succeeded before it were undone;
    /// or a `publish` call got no answer and undoing the whole publish succeeded. `false`: the
    /// plugin may have acted.
    pub undone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No connection could be made: the call never reached the plugin.
    Unreachable,
    /// The call's deadline passed on every attempt.
    Timeout,
    /// The plugin answered with an error status.
    Status,
    /// The connection broke mid-call, or the answer made no sense: the plugin may have acted.
    NoAnswer,
    /// The plugin is not the one configured, or is not ready (`Probe`).
    Refused,
}
