//! One operation's CSI calls over a current-thread runtime: connecting (with back-off over the
//! connect window), each call under its own deadline with one more attempt on a new connection
//! when it got no answer, and the operations as sequences of calls.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use bpfman_csi::v1 as csi;
use csi::controller_client::ControllerClient;
use csi::identity_client::IdentityClient;
use csi::node_client::NodeClient;
use tokio::time::Instant;
use tonic::transport::Channel;

use dvdi::csi::wire::{CallError, Done, Endpoint, ErrorKind, Op, Request};

/// Which service a call goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Node,
    Controller,
}

/// What the capability calls said.
#[derive(Default)]
struct Caps {
    controller: bool,
    create_delete: bool,
    controller_publish: bool,
    stage: bool,
}

pub struct Session {
    request: Request,
    node: Option<Channel>,
    controller: Option<Channel>,
    /// Every call sent, retries included.
    pub sent: Vec<String>,
}

/// A call's failure before it is known whether it acted.
struct Failed {
    error: CallError,
    /// The call may have acted (it was sent and got no answer).
    may_have_acted: bool,
}

type Call<T> = Result<T, Failed>;

fn to_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The canonical name of a gRPC status code (`NOT_FOUND`), as the CSI spec writes them.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

async fn connect_once(endpoint: &Endpoint) -> Result<Channel, tonic::transport::Error> {
    match endpoint {
        Endpoint::Unix(path) => {
            let path = path.clone();
            // The URI is required by the builder and unused: the connector dials the socket.
            tonic::transport::Endpoint::from_static("http://[::]:50051")
                .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                    tokio::net::UnixStream::connect(path.clone())
                }))
                .await
        }
        Endpoint::Tcp(hostport) => {
            tonic::transport::Endpoint::from_shared(format!("http://{hostport}"))?
                .connect()
                .await
        }
    }
}

fn capability(request: &Request) -> csi::VolumeCapability {
    use csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
    let c = &request.capability;
    csi::VolumeCapability {
        access_mode: Some(AccessMode {
            mode: if c.read_only {
                Mode::MultiNodeReaderOnly
            } else {
                Mode::SingleNodeWriter
            } as i32,
        }),
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: c.fs_type.clone().unwrap_or_default(),
            mount_flags: c.mount_flags.clone(),
            ..Default::default()
        })),
    }
}

fn path_text(p: &Option<std::path::PathBuf>) -> String {
    p.as_deref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Session {
    pub fn new(request: Request) -> Self {
        Self {
            request,
            node: None,
            controller: None,
            sent: Vec::new(),
        }
    }

    fn endpoint(&self, side: Side) -> Endpoint {
        match (side, &self.request.controller) {
            (Side::Controller, Some(c)) => c.clone(),
            _ => self.request.node.clone(),
        }
    }

    /// A connection to `side`, made now (retried with back-off over the connect window) if
    /// there is none.
    async fn channel(&mut self, side: Side) -> Result<Channel, String> {
        let kept = match side {
            Side::Node => &self.node,
            Side::Controller => &self.controller,
        };
        if let Some(c) = kept {
            return Ok(c.clone());
        }
        let endpoint = self.endpoint(side);
        let window = Duration::from_millis(self.request.deadlines.connect_ms);
        let deadline = Instant::now() + window;
        let mut pause = Duration::from_millis(20);
        let channel = loop {
            // Each attempt may take what is left of the window (at least a moment, so the
            // last one, at the window's end, is still made).
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10));
            let last = match tokio::time::timeout(left, connect_once(&endpoint)).await {
                Ok(Ok(c)) => break c,
                Ok(Err(e)) => chain(&e),
                Err(_) => "no connection within the window".to_owned(),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "{endpoint}: {last} (tried for {} ms)",
                    window.as_millis()
                ));
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        };
        match side {
            Side::Node => self.node = Some(channel.clone()),
            Side::Controller => self.controller = Some(channel.clone()),
        }
        Ok(channel)
    }

    fn forget(&mut self, side: Side) {
        match side {
            Side::Node => self.node = None,
            Side::Controller => self.controller = None,
        }
    }

    /// Sends `name` with deadline `limit_ms`; a call that got no answer is sent again, on a
    /// new connection, up to `retries` more times.
    async fn call<T, F, Fut>(
        &mut self,
        name: &str,
        side: Side,
        limit_ms: u64,
        mut send: F,
    ) -> Call<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let attempts = 1 + self.request.retries;
        let mut unanswered = false;
        let mut last: Option<(ErrorKind, String)> = None;
        for attempt in 1..=attempts {
            let channel = match self.channel(side).await {
                Ok(c) => c,
                Err(message) => {
                    // Nothing listening: no point in another attempt; the connect window
                    // already waited for a restarting plugin.
                    let kind = if unanswered {
                        ErrorKind::NoAnswer
                    } else {
                        ErrorKind::Unreachable
                    };
                    let message = match last {
                        Some((_, earlier)) => format!("{earlier}; then {message}"),
                        None => message,
                    };
                    return Err(self.failed(name, kind, None, message, None, attempt, unanswered));
                }
            };
            self.sent.push(name.to_owned());
            match tokio::time::timeout(Duration::from_millis(limit_ms), send(channel)).await {
                Ok(Ok(reply)) => return Ok(reply.into_inner()),
                Ok(Err(status)) => {
                    let transport = std::error::Error::source(&status).is_some();
                    if transport || status.code() == tonic::Code::Unavailable {
                        // A broken connection (or a plugin saying it is unavailable): it may
                        // have acted; send again on a new connection.
                        unanswered = true;
                        self.forget(side);
                        let text = if transport {
                            chain(&status)
                        } else {
                            status.message().to_owned()
                        };
                        last = Some((
                            ErrorKind::NoAnswer,
                            format!("{}: {text}", code_name(status.code())),
                        ));
                        if attempt < attempts {
                            // A plugin that just died may still hold its socket for a moment:
                            // reconnecting at once would reach the dying process again. After
                            // the pause, a refused connection is retried over the connect
                            // window, which waits for a restarting plugin.
                            let window = self.request.deadlines.connect_ms;
                            tokio::time::sleep(Duration::from_millis((window / 2).min(200))).await;
                        }
                        continue;
                    }
                    return Err(self.failed(
                        name,
                        ErrorKind::Status,
                        Some(code_name(status.code())),
                        status.message().to_owned(),
                        None,
                        attempt,
                        unanswered,
                    ));
                }
                Err(_) => {
                    unanswered = true;
                    self.forget(side);
                    last = Some((ErrorKind::Timeout, String::new()));
                }
            }
        }
        let (kind, message) = last.expect("every attempt failed");
        Err(self.failed(
            name,
            kind,
            None,
            message,
            (kind == ErrorKind::Timeout).then_some(limit_ms),
            attempts,
            unanswered,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn failed(
        &self,
        call: &str,
        kind: ErrorKind,
        code: Option<&str>,
        message: String,
        limit_ms: Option<u64>,
        attempts: u32,
        may_have_acted: bool,
    ) -> Failed {
        Failed {
            error: CallError {
                call: call.to_owned(),
                kind,
                code: code.map(str::to_owned),
                message,
                limit_ms,
                attempts,
                undone: true,
            },
            may_have_acted,
        }
    }

    /// A read-only call's failure: nothing to undo.
    fn plain(f: Failed) -> CallError {
        f.error
    }

    /// The identity calls: the plugin's name (checked against the configuration), that it is
    /// ready, and whether it has a controller service.
    async fn identity(&mut self) -> Result<(csi::GetPluginInfoResponse, bool), CallError> {
        let other = self.request.deadlines.other_ms;
        let info = self
            .call("GetPluginInfo", Side::Node, other, |ch| async move {
                IdentityClient::new(ch)
                    .get_plugin_info(csi::GetPluginInfoRequest {})
                    .await
            })
            .await
            .map_err(Self::plain)?;
        if let Some(want) = &self.request.plugin_name {
            if &info.name != want {
                return Err(self.refused(
                    "GetPluginInfo",
                    format!(
                        "the plugin at {} is {:?}, not {want:?} as its configuration says",
                        self.request.node, info.name
                    ),
                ));
            }
        }
        let probe = self
            .call("Probe", Side::Node, other, |ch| async move {
                IdentityClient::new(ch).probe(csi::ProbeRequest {}).await
            })
            .await
            .map_err(Self::plain)?;
        if probe.ready == Some(false) {
            return Err(self.refused("Probe", format!("plugin {:?} is not ready", info.name)));
        }
        let caps = self
            .call(
                "GetPluginCapabilities",
                Side::Node,
                other,
                |ch| async move {
                    IdentityClient::new(ch)
                        .get_plugin_capabilities(csi::GetPluginCapabilitiesRequest {})
                        .await
                },
            )
            .await
            .map_err(Self::plain)?;
        use csi::plugin_capability::{service::Type, Type as Cap};
        let controller = caps.capabilities.iter().any(|c| {
            matches!(&c.r#type, Some(Cap::Service(s)) if s.r#type == Type::ControllerService as i32)
        });
        Ok((info, controller))
    }

    fn refused(&self, call: &str, message: String) -> CallError {
        CallError {
            call: call.to_owned(),
            kind: ErrorKind::Refused,
            code: None,
            message,
            limit_ms: None,
            attempts: 1,
            undone: true,
        }
    }

    /// The controller's capabilities (when the operator named a controller endpoint and the
    /// plugin has the service) and, for `publish`/`unpublish`, the node's.
    async fn caps(&mut self, has_controller: bool, node: bool) -> Result<Caps, CallError> {
        let other = self.request.deadlines.other_ms;
        let mut caps = Caps::default();
        if has_controller && self.request.controller.is_some() {
            caps.controller = true;
            let reply = self
                .call(
                    "ControllerGetCapabilities",
                    Side::Controller,
                    other,
                    |ch| async move {
                        ControllerClient::new(ch)
                            .controller_get_capabilities(csi::ControllerGetCapabilitiesRequest {})
                            .await
                    },
                )
                .await
                .map_err(Self::plain)?;
            use csi::controller_service_capability::{rpc::Type, Type as Cap};
            for c in &reply.capabilities {
                if let Some(Cap::Rpc(rpc)) = &c.r#type {
                    caps.create_delete |= rpc.r#type == Type::CreateDeleteVolume as i32;
                    caps.controller_publish |= rpc.r#type == Type::PublishUnpublishVolume as i32;
                }
            }
        }
        if node {
            let reply = self
                .call("NodeGetCapabilities", Side::Node, other, |ch| async move {
                    NodeClient::new(ch)
                        .node_get_capabilities(csi::NodeGetCapabilitiesRequest {})
                        .await
                })
                .await
                .map_err(Self::plain)?;
            use csi::node_service_capability::{rpc::Type, Type as Cap};
            caps.stage = reply.capabilities.iter().any(|c| {
                matches!(&c.r#type, Some(Cap::Rpc(rpc)) if rpc.r#type == Type::StageUnstageVolume as i32)
            });
        }
        Ok(caps)
    }

    async fn node_id(&mut self) -> Result<String, CallError> {
        let other = self.request.deadlines.other_ms;
        let info = self
            .call("NodeGetInfo", Side::Node, other, |ch| async move {
                NodeClient::new(ch)
                    .node_get_info(csi::NodeGetInfoRequest {})
                    .await
            })
            .await
            .map_err(Self::plain)?;
        Ok(info.node_id)
    }

    pub async fn operation(&mut self) -> Result<Done, CallError> {
        let (info, has_controller) = self.identity().await?;
        match self.request.op {
            Op::Probe => Ok(Done {
                plugin: Some(info.name),
                plugin_version: Some(info.vendor_version),
                creates_volumes: has_controller && self.request.controller.is_some(),
                ..Done::default()
            }),
            Op::Create => self.create(has_controller).await,
            Op::Delete => self.delete(has_controller).await,
            Op::Publish => self.publish(has_controller).await,
            Op::Unpublish => self.unpublish(has_controller).await,
        }
    }

    /// A mutating call's failure outside `publish`: left in doubt if it got no answer.
    fn acted(f: Failed) -> CallError {
        let mut e = f.error;
        e.undone = !f.may_have_acted;
        e
    }

    async fn create(&mut self, has_controller: bool) -> Result<Done, CallError> {
        let caps = self.caps(has_controller, false).await?;
        if !caps.create_delete {
            // Node-only (or no CREATE_DELETE_VOLUME): volumes are pre-provisioned, the name
            // is the id.
            return Ok(Done {
                volume_id: Some(self.request.volume.clone()),
                ..Done::default()
            });
        }
        let r = &self.request;
        let body = csi::CreateVolumeRequest {
            name: r.volume.clone(),
            capacity_range: r.capacity.map(|b| csi::CapacityRange {
                required_bytes: b.min(i64::MAX as u64) as i64,
                limit_bytes: 0,
            }),
            volume_capabilities: vec![capability(r)],
            parameters: to_map(&r.parameters),
            secrets: to_map(&r.controller_secrets),
            ..Default::default()
        };
        let limit = r.deadlines.create_ms;
        let reply = self
            .call("CreateVolume", Side::Controller, limit, |ch| {
                let body = body.clone();
                async move { ControllerClient::new(ch).create_volume(body).await }
            })
            .await
            .map_err(Self::acted)?;
        let Some(volume) = reply.volume.filter(|v| !v.volume_id.is_empty()) else {
            return Err(CallError {
                call: "CreateVolume".into(),
                kind: ErrorKind::NoAnswer,
                code: None,
                message: "the reply has no volume id".into(),
                limit_ms: None,
                attempts: 1,
                undone: false,
            });
        };
        Ok(Done {
            volume_id: Some(volume.volume_id),
            capacity: u64::try_from(volume.capacity_bytes).ok().filter(|c| *c > 0),
            volume_context: volume.volume_context.into_iter().collect(),
            creates_volumes: true,
            ..Done::default()
        })
    }

    fn volume_id(&self) -> String {
        self.request
            .volume_id
            .clone()
            .unwrap_or_else(|| self.request.volume.clone())
    }

    async fn delete(&mut self, has_controller: bool) -> Result<Done, CallError> {
        let caps = self.caps(has_controller, false).await?;
        if !caps.create_delete {
            return Ok(Done::default());
        }
        let body = csi::DeleteVolumeRequest {
            volume_id: self.volume_id(),
            secrets: to_map(&self.request.controller_secrets),
        };
        let limit = self.request.deadlines.create_ms;
        self.call("DeleteVolume", Side::Controller, limit, |ch| {
            let body = body.clone();
            async move { ControllerClient::new(ch).delete_volume(body).await }
        })
        .await
        .map_err(Self::acted)?;
        Ok(Done::default())
    }

    async fn controller_publish(&mut self, node_id: &str) -> Call<HashMap<String, String>> {
        let r = &self.request;
        let body = csi::ControllerPublishVolumeRequest {
            volume_id: self.volume_id(),
            node_id: node_id.to_owned(),
            volume_capability: Some(capability(r)),
            readonly: r.capability.read_only,
            secrets: to_map(&r.controller_secrets),
            volume_context: to_map(&r.volume_context),
        };
        let limit = r.deadlines.mount_ms;
        let reply = self
            .call("ControllerPublishVolume", Side::Controller, limit, |ch| {
                let body = body.clone();
                async move {
                    ControllerClient::new(ch)
                        .controller_publish_volume(body)
                        .await
                }
            })
            .await?;
        Ok(reply.publish_context)
    }

    async fn controller_unpublish(&mut self, node_id: &str) -> Call<()> {
        let body = csi::ControllerUnpublishVolumeRequest {
            volume_id: self.volume_id(),
            node_id: node_id.to_owned(),
            secrets: to_map(&self.request.controller_secrets),
        };
        let limit = self.request.deadlines.mount_ms;
        self.call("ControllerUnpublishVolume", Side::Controller, limit, |ch| {
            let body = body.clone();
            async move {
                ControllerClient::new(ch)
                    .controller_unpublish_volume(body)
                    .await
            }
        })
        .await
        .map(|_| ())
    }

    async fn stage(&mut self, publish_context: &HashMap<String, String>) -> Call<()> {
        let r = &self.request;
        let body = csi::NodeStageVolumeRequest {
            volume_id: self.volume_id(),
            publish_context: publish_context.clone(),
            staging_target_path: path_text(&r.staging_path),
            volume_capability: Some(capability(r)),
            secrets: to_map(&r.node_secrets),
            volume_context: to_map(&r.volume_context),
        };
        let limit = r.deadlines.mount_ms;
        self.call("NodeStageVolume", Side::Node, limit, |ch| {
            let body = body.clone();
            async move { NodeClient::new(ch).node_stage_volume(body).await }
        })
        .await
        .map(|_| ())
    }

    async fn unstage(&mut self) -> Call<()> {
        let body = csi::NodeUnstageVolumeRequest {
            volume_id: self.volume_id(),
            staging_target_path: path_text(&self.request.staging_path),
        };
        let limit = self.request.deadlines.mount_ms;
        self.call("NodeUnstageVolume", Side::Node, limit, |ch| {
            let body = body.clone();
            async move { NodeClient::new(ch).node_unstage_volume(body).await }
        })
        .await
        .map(|_| ())
    }

    async fn node_publish(
        &mut self,
        staged: bool,
        publish_context: &HashMap<String, String>,
    ) -> Call<()> {
        let r = &self.request;
        let body = csi::NodePublishVolumeRequest {
            volume_id: self.volume_id(),
            publish_context: publish_context.clone(),
            staging_target_path: if staged {
                path_text(&r.staging_path)
            } else {
                String::new()
            },
            target_path: path_text(&r.target_path),
            volume_capability: Some(capability(r)),
            readonly: r.capability.read_only,
            secrets: to_map(&r.node_secrets),
            volume_context: to_map(&r.volume_context),
        };
        let limit = r.deadlines.mount_ms;
        self.call("NodePublishVolume", Side::Node, limit, |ch| {
            let body = body.clone();
            async move { NodeClient::new(ch).node_publish_volume(body).await }
        })
        .await
        .map(|_| ())
    }

    async fn node_unpublish(&mut self) -> Call<()> {
        let body = csi::NodeUnpublishVolumeRequest {
            volume_id: self.volume_id(),
            target_path: path_text(&self.request.target_path),
        };
        let limit = self.request.deadlines.mount_ms;
        self.call("NodeUnpublishVolume", Side::Node, limit, |ch| {
            let body = body.clone();
            async move { NodeClient::new(ch).node_unpublish_volume(body).await }
        })
        .await
        .map(|_| ())
    }

    /// `ControllerPublishVolume` (with the node id), `NodeStageVolume`, `NodePublishVolume`, as
    /// the capabilities ask. A failure undoes, in reverse order, the calls that succeeded —
    /// and the failed call itself when it got no answer (it may have acted).
    async fn publish(&mut self, has_controller: bool) -> Result<Done, CallError> {
        let caps = self.caps(has_controller, true).await?;
        let mut node_id = None;
        let mut context = HashMap::new();
        // What to undo, in the order done.
        let mut done: Vec<&'static str> = Vec::new();
        let failure = 'steps: {
            if caps.controller_publish {
                let id = self.node_id().await?;
                done.push("controller");
                match self.controller_publish(&id).await {
                    Ok(c) => context = c,
                    Err(f) => break 'steps Some(f),
                }
                node_id = Some(id);
            }
            if caps.stage {
                done.push("stage");
                if let Err(f) = self.stage(&context).await {
                    break 'steps Some(f);
                }
            }
            done.push("publish");
            if let Err(f) = self.node_publish(caps.stage, &context).await {
                break 'steps Some(f);
            }
            None
        };
        let Some(failed) = failure else {
            return Ok(Done::default());
        };
        // The failed call was answered: it did nothing, so it needs no undo.
        if !failed.may_have_acted {
            done.pop();
        }
        let mut error = failed.error;
        let node_id = node_id.unwrap_or_default();
        for step in done.into_iter().rev() {
            let undone = match step {
                "publish" => self.node_unpublish().await,
                "stage" => self.unstage().await,
                _ => self.controller_unpublish(&node_id).await,
            };
            if let Err(u) = undone {
                error.undone = false;
                error.message = format!(
                    "{}; undoing it, {} failed too: {}",
                    error.message, u.error.call, u.error.message
                );
                break;
            }
        }
        Err(error)
    }

    /// `NodeUnpublishVolume`, `NodeUnstageVolume`, `ControllerUnpublishVolume`, as the
    /// capabilities ask; the first failure ends it (the whole sequence is sent again by the
    /// retry of the unmount).
    async fn unpublish(&mut self, has_controller: bool) -> Result<Done, CallError> {
        let caps = self.caps(has_controller, true).await?;
        self.node_unpublish().await.map_err(Self::acted)?;
        if caps.stage {
            self.unstage().await.map_err(Self::acted)?;
        }
        if caps.controller_publish {
            let id = self.node_id().await?;
            self.controller_unpublish(&id).await.map_err(Self::acted)?;
        }
        Ok(Done::default())
    }
}
