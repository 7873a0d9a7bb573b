//! The CSI Identity, Controller and Node services. Every RPC first logs its name to
//! `calls.log` and applies the fault `faults.json` sets on it, then works on the state
//! re-read from `state.json` under one lock, so the harness may edit that file between calls
//! and a restarted process carries on where the last one stopped.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bpfman_csi::v1 as csi;
use bpfman_csi::v1::controller_server::Controller;
use bpfman_csi::v1::identity_server::Identity;
use bpfman_csi::v1::node_server::Node;
use tonic::{Request, Response, Status};

use crate::faults::{self, Action, FaultTable};
use crate::mounts;
use crate::state::{write_atomically, Creation, State, VolumeRecord};

/// What the command line chose.
#[derive(Debug, Clone)]
pub struct Config {
    pub socket: PathBuf,
    pub controller_socket: Option<PathBuf>,
    /// Absolute, so the `backing` publish context names the volume from anywhere.
    pub state_dir: PathBuf,
    pub name: String,
    pub node_id: String,
    pub controller: bool,
    pub stage: bool,
    pub controller_publish: bool,
}

impl Config {
    /// Whether the node calls must find the volume controller-published to this node first.
    fn requires_controller_publish(&self) -> bool {
        self.controller && self.controller_publish
    }
}

/// The plugin: its configuration and the locks that serialise the files it rewrites.
pub struct Plugin {
    config: Config,
    state_lock: Mutex<()>,
    faults_lock: Mutex<()>,
}

/// The handle each gRPC service holds.
#[derive(Clone)]
pub struct Service(Arc<Plugin>);

type Answer<T> = Result<Response<T>, Status>;

/// What GetPluginInfo reports, fixed so tests can compare it.
pub const VENDOR_VERSION: &str = "0.1.0";

impl Service {
    pub fn new(config: Config) -> Service {
        Service(Arc::new(Plugin {
            config,
            state_lock: Mutex::new(()),
            faults_lock: Mutex::new(()),
        }))
    }

    fn config(&self) -> &Config {
        &self.0.config
    }

    fn state_file(&self) -> PathBuf {
        self.config().state_dir.join("state.json")
    }

    fn volume_dir(&self, id: &str) -> PathBuf {
        self.config().state_dir.join("volumes").join(id)
    }

    /// Logs the call, then applies its fault, if any: may sleep, never return, or exit.
    async fn enter(&self, rpc: &str) -> Result<(), Status> {
        if let Err(e) = self.log_call(rpc) {
            eprintln!("dvdi-csi-test-plugin: {e}");
        }
        let action = self.take_fault(rpc)?;
        match action {
            None => Ok(()),
            Some(Action::Hang) => std::future::pending().await,
            Some(Action::Error { code, message }) => Err(Status::new(code, message)),
            Some(Action::Delay(wait)) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Some(Action::Exit) => {
                eprintln!("dvdi-csi-test-plugin: exiting in {rpc}, as faults.json asks");
                std::process::exit(3)
            }
        }
    }

    fn log_call(&self, rpc: &str) -> io::Result<()> {
        let path = self.config().state_dir.join("calls.log");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
            })?;
        file.write_all(format!("{rpc}\n").as_bytes())
    }

    /// The fault set on `rpc` in `faults.json`, its count of `times` written back.
    fn take_fault(&self, rpc: &str) -> Result<Option<Action>, Status> {
        let path = self.config().state_dir.join("faults.json");
        let _guard = self.0.faults_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut table: FaultTable = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Status::internal(format!("{} is not a fault table: {e}", path.display()))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Status::internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let (spec, changed) = faults::take(&mut table, rpc);
        if changed {
            let json =
                serde_json::to_vec_pretty(&table).map_err(|e| Status::internal(e.to_string()))?;
            write_atomically(&path, &json).map_err(|e| Status::internal(e.to_string()))?;
        }
        match spec {
            None => Ok(None),
            Some(spec) => spec.action().map(Some).map_err(Status::internal),
        }
    }

    /// Runs `work` on the state read from `state.json`, and writes it back if it changed.
    fn with_state<T>(
        &self,
        work: impl FnOnce(&mut State) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let _guard = self.0.state_lock.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.state_file();
        let mut state = State::load(&path).map_err(|e| Status::internal(e.to_string()))?;
        let before = state.clone();
        let result = work(&mut state);
        if state != before {
            state
                .save(&path)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        result
    }
}

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not implemented by the test plugin"))
}

fn required<'a>(value: &'a str, field: &str, rpc: &str) -> Result<&'a str, Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!(
            "{rpc}: {field} is missing"
        )))
    } else {
        Ok(value)
    }
}

fn volume_of(id: &str, record: &VolumeRecord) -> csi::Volume {
    csi::Volume {
        volume_id: id.to_string(),
        capacity_bytes: record.capacity_bytes,
        volume_context: HashMap::from([("name".to_string(), record.name.clone())]),
        ..Default::default()
    }
}

fn io_status(e: io::Error, what: &str, path: &Path) -> Status {
    Status::internal(format!("cannot {what} {}: {e}", path.display()))
}

#[tonic::async_trait]
impl Identity for Service {
    async fn get_plugin_info(
        &self,
        _: Request<csi::GetPluginInfoRequest>,
    ) -> Answer<csi::GetPluginInfoResponse> {
        self.enter("GetPluginInfo").await?;
        Ok(Response::new(csi::GetPluginInfoResponse {
            name: self.config().name.clone(),
            vendor_version: VENDOR_VERSION.to_string(),
            manifest: HashMap::new(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<csi::GetPluginCapabilitiesRequest>,
    ) -> Answer<csi::GetPluginCapabilitiesResponse> {
        use csi::plugin_capability::{service, Service as Svc, Type};
        self.enter("GetPluginCapabilities").await?;
        let mut capabilities = Vec::new();
        if self.config().controller {
            capabilities.push(csi::PluginCapability {
                r#type: Some(Type::Service(Svc {
                    r#type: service::Type::ControllerService as i32,
                })),
            });
        }
        Ok(Response::new(csi::GetPluginCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn probe(&self, _: Request<csi::ProbeRequest>) -> Answer<csi::ProbeResponse> {
        self.enter("Probe").await?;
        Ok(Response::new(csi::ProbeResponse { ready: Some(true) }))
    }
}

#[tonic::async_trait]
impl Controller for Service {
    async fn create_volume(
        &self,
        request: Request<csi::CreateVolumeRequest>,
    ) -> Answer<csi::CreateVolumeResponse> {
        self.enter("CreateVolume").await?;
        let request = request.into_inner();
        let required_bytes = request
            .capacity_range
            .map(|c| c.required_bytes)
            .unwrap_or(0);
        let volume = self.with_state(|state| {
            let id = match state.plan_creation(&request.name, required_bytes)? {
                Creation::Exists(id) => id,
                Creation::New(id) => {
                    let dir = self.volume_dir(&id);
                    fs::create_dir_all(&dir).map_err(|e| io_status(e, "create", &dir))?;
                    let record = VolumeRecord {
                        name: request.name.clone(),
                        capacity_bytes: required_bytes,
                        parameters: request.parameters.into_iter().collect(),
                    };
                    state.volumes.insert(id.clone(), record);
                    id
                }
            };
            Ok(volume_of(&id, state.volume(&id)?))
        })?;
        Ok(Response::new(csi::CreateVolumeResponse {
            volume: Some(volume),
        }))
    }

    async fn delete_volume(
        &self,
        request: Request<csi::DeleteVolumeRequest>,
    ) -> Answer<csi::DeleteVolumeResponse> {
        self.enter("DeleteVolume").await?;
        let request = request.into_inner();
        let id = required(&request.volume_id, "volume_id", "DeleteVolume")?;
        self.with_state(|state| {
            if !state.volumes.contains_key(id) {
                return Ok(());
            }
            state.check_deletable(id)?;
            let dir = self.volume_dir(id);
            match fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_status(e, "remove", &dir)),
            }
            state.remove_volume(id);
            Ok(())
        })?;
        Ok(Response::new(csi::DeleteVolumeResponse {}))
    }

    async fn controller_publish_volume(
        &self,
        request: Request<csi::ControllerPublishVolumeRequest>,
    ) -> Answer<csi::ControllerPublishVolumeResponse> {
        self.enter("ControllerPublishVolume").await?;
        if !self.config().controller_publish {
            return Err(unimplemented("ControllerPublishVolume"));
        }
        let request = request.into_inner();
        let id = required(&request.volume_id, "volume_id", "ControllerPublishVolume")?;
        let node = required(&request.node_id, "node_id", "ControllerPublishVolume")?;
        self.with_state(|state| {
            state.volume(id)?;
            state.add_controller_publication(id, node);
            Ok(())
        })?;
        let backing = self.volume_dir(id).to_string_lossy().into_owned();
        Ok(Response::new(csi::ControllerPublishVolumeResponse {
            publish_context: HashMap::from([("backing".to_string(), backing)]),
        }))
    }

    async fn controller_unpublish_volume(
        &self,
        request: Request<csi::ControllerUnpublishVolumeRequest>,
    ) -> Answer<csi::ControllerUnpublishVolumeResponse> {
        self.enter("ControllerUnpublishVolume").await?;
        if !self.config().controller_publish {
            return Err(unimplemented("ControllerUnpublishVolume"));
        }
        let request = request.into_inner();
        let id = required(&request.volume_id, "volume_id", "ControllerUnpublishVolume")?;
        self.with_state(|state| {
            state.remove_controller_publication(id, &request.node_id);
            Ok(())
        })?;
        Ok(Response::new(csi::ControllerUnpublishVolumeResponse {}))
    }

    async fn validate_volume_capabilities(
        &self,
        _: Request<csi::ValidateVolumeCapabilitiesRequest>,
    ) -> Answer<csi::ValidateVolumeCapabilitiesResponse> {
        self.enter("ValidateVolumeCapabilities").await?;
        Err(unimplemented("ValidateVolumeCapabilities"))
    }

    async fn list_volumes(
        &self,
        _: Request<csi::ListVolumesRequest>,
    ) -> Answer<csi::ListVolumesResponse> {
        self.enter("ListVolumes").await?;
        let entries = self.with_state(|state| {
            Ok(state
                .volumes
                .iter()
                .map(|(id, record)| csi::list_volumes_response::Entry {
                    volume: Some(volume_of(id, record)),
                    status: None,
                })
                .collect())
        })?;
        Ok(Response::new(csi::ListVolumesResponse {
            entries,
            next_token: String::new(),
        }))
    }

    async fn get_capacity(
        &self,
        _: Request<csi::GetCapacityRequest>,
    ) -> Answer<csi::GetCapacityResponse> {
        self.enter("GetCapacity").await?;
        Err(unimplemented("GetCapacity"))
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<csi::ControllerGetCapabilitiesRequest>,
    ) -> Answer<csi::ControllerGetCapabilitiesResponse> {
        use csi::controller_service_capability::{rpc, Rpc, Type};
        self.enter("ControllerGetCapabilities").await?;
        let mut kinds = vec![rpc::Type::CreateDeleteVolume];
        if self.config().controller_publish {
            kinds.push(rpc::Type::PublishUnpublishVolume);
        }
        kinds.push(rpc::Type::ListVolumes);
        let capabilities = kinds
            .into_iter()
            .map(|kind| csi::ControllerServiceCapability {
                r#type: Some(Type::Rpc(Rpc {
                    r#type: kind as i32,
                })),
            })
            .collect();
        Ok(Response::new(csi::ControllerGetCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn create_snapshot(
        &self,
        _: Request<csi::CreateSnapshotRequest>,
    ) -> Answer<csi::CreateSnapshotResponse> {
        self.enter("CreateSnapshot").await?;
        Err(unimplemented("CreateSnapshot"))
    }

    async fn delete_snapshot(
        &self,
        _: Request<csi::DeleteSnapshotRequest>,
    ) -> Answer<csi::DeleteSnapshotResponse> {
        self.enter("DeleteSnapshot").await?;
        Err(unimplemented("DeleteSnapshot"))
    }

    async fn list_snapshots(
        &self,
        _: Request<csi::ListSnapshotsRequest>,
    ) -> Answer<csi::ListSnapshotsResponse> {
        self.enter("ListSnapshots").await?;
        Err(unimplemented("ListSnapshots"))
    }

    async fn controller_expand_volume(
        &self,
        _: Request<csi::ControllerExpandVolumeRequest>,
    ) -> Answer<csi::ControllerExpandVolumeResponse> {
        self.enter("ControllerExpandVolume").await?;
        Err(unimplemented("ControllerExpandVolume"))
    }

    async fn controller_get_volume(
        &self,
        _: Request<csi::ControllerGetVolumeRequest>,
    ) -> Answer<csi::ControllerGetVolumeResponse> {
        self.enter("ControllerGetVolume").await?;
        Err(unimplemented("ControllerGetVolume"))
    }

    async fn controller_modify_volume(
        &self,
        _: Request<csi::ControllerModifyVolumeRequest>,
    ) -> Answer<csi::ControllerModifyVolumeResponse> {
        self.enter("ControllerModifyVolume").await?;
        Err(unimplemented("ControllerModifyVolume"))
    }
}

#[tonic::async_trait]
impl Node for Service {
    async fn node_stage_volume(
        &self,
        request: Request<csi::NodeStageVolumeRequest>,
    ) -> Answer<csi::NodeStageVolumeResponse> {
        const RPC: &str = "NodeStageVolume";
        self.enter(RPC).await?;
        if !self.config().stage {
            return Err(unimplemented(RPC));
        }
        let request = request.into_inner();
        let id = required(&request.volume_id, "volume_id", RPC)?;
        let staging = Path::new(required(
            &request.staging_target_path,
            "staging_target_path",
            RPC,
        )?);
        self.with_state(|state| {
            state.volume(id)?;
            if !staging.is_dir() {
                return Err(Status::invalid_argument(format!(
                    "{RPC}: staging_target_path {} does not exist",
                    staging.display()
                )));
            }
            if state.is_staged_at(id, staging) {
                return Ok(());
            }
            let node = &self.config().node_id;
            if self.config().requires_controller_publish()
                && !state.is_controller_published(id, node)
            {
                return Err(Status::failed_precondition(format!(
                    "volume {id:?} is not controller-published to node {node:?}"
                )));
            }
            mounts::bind(&self.volume_dir(id), staging, false)?;
            state.add_staging(id, staging);
            Ok(())
        })?;
        Ok(Response::new(csi::NodeStageVolumeResponse {}))
    }

    async fn node_unstage_volume(
        &self,
        request: Request<csi::NodeUnstageVolumeRequest>,
    ) -> Answer<csi::NodeUnstageVolumeResponse> {
        const RPC: &str = "NodeUnstageVolume";
        self.enter(RPC).await?;
        if !self.config().stage {
            return Err(unimplemented(RPC));
        }
        let request = request.into_inner();
        let id = required(&request.volume_id, "volume_id", RPC)?;
        let staging = Path::new(required(
            &request.staging_target_path,
            "staging_target_path",
            RPC,
        )?);
        self.with_state(|state| {
            if !state.is_staged_at(id, staging) {
                return Ok(());
            }
            state.check_unstageable(id, staging)?;
            mounts::unmount_if_mounted(staging)?;
            state.remove_staging(id, staging);
            Ok(())
        })?;
        Ok(Response::new(csi::NodeUnstageVolumeResponse {}))
    }

    async fn node_publish_volume(
        &self,
        request: Request<csi::NodePublishVolumeRequest>,
    ) -> Answer<csi::NodePublishVolumeResponse> {
        const RPC: &str = "NodePublishVolume";
        self.enter(RPC).await?;
        let request = request.into_inner();
        let id = required(&request.volume_id, "volume_id", RPC)?;
        let target = Path::new(required(&request.target_path, "target_path", RPC)?);
        let staging = Path::new(&request.staging_target_path);
        let readonly = request.readonly;
        self.with_state(|state| {
            state.volume(id)?;
            if let Some(existing) = state.publication_at(id, target) {
                if existing.readonly == readonly {
                    return Ok(());
                }
                return Err(Status::already_exists(format!(
                    "volume {id:?} is already published at {} with readonly={}",
                    target.display(),
                    existing.readonly
                )));
            }
            let source = if self.config().stage {
                if !state.is_staged_at(id, staging) {
                    return Err(Status::failed_precondition(format!(
                        "volume {id:?} is not staged at {:?}",
                        request.staging_target_path
                    )));
                }
                staging.to_path_buf()
            } else {
                let node = &self.config().node_id;
                if self.config().requires_controller_publish()
                    && !state.is_controller_published(id, node)
                {
                    return Err(Status::failed_precondition(format!(
                        "volume {id:?} is not controller-published to node {node:?}"
                    )));
                }
                self.volume_dir(id)
            };
            let created = if target.exists() {
                false
            } else {
                match target.parent() {
                    Some(parent) if parent.is_dir() => {}
                    _ => {
                        return Err(Status::invalid_argument(format!(
                            "{RPC}: the parent of target_path {} does not exist",
                            target.display()
                        )))
                    }
                }
                fs::create_dir(target).map_err(|e| io_status(e, "create", target))?;
                true
            };
            if let Err(e) = mounts::bind(&source, target, readonly) {
                if created {
                    let _ = fs::remove_dir(target);
                }
                return Err(e);
            }
            let from = self.config().stage.then_some(staging);
            state.add_publication(id, target, readonly, from);
            Ok(())
        })?;
        Ok(Response::new(csi::NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        request: Request<csi::NodeUnpublishVolumeRequest>,
    ) -> Answer<csi::NodeUnpublishVolumeResponse> {
        const RPC: &str = "NodeUnpublishVolume";
        self.enter(RPC).await?;
        let request = request.into_inner();
        let id = required(&request.volume_id, "volume_id", RPC)?;
        let target = Path::new(required(&request.target_path, "target_path", RPC)?);
        self.with_state(|state| {
            if state.publication_at(id, target).is_none() {
                return Ok(());
            }
            mounts::unmount_if_mounted(target)?;
            match fs::remove_dir(target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_status(e, "remove", target)),
            }
            state.remove_publication(id, target);
            Ok(())
        })?;
        Ok(Response::new(csi::NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_volume_stats(
        &self,
        _: Request<csi::NodeGetVolumeStatsRequest>,
    ) -> Answer<csi::NodeGetVolumeStatsResponse> {
        self.enter("NodeGetVolumeStats").await?;
        Err(unimplemented("NodeGetVolumeStats"))
    }

    async fn node_expand_volume(
        &self,
        _: Request<csi::NodeExpandVolumeRequest>,
    ) -> Answer<csi::NodeExpandVolumeResponse> {
        self.enter("NodeExpandVolume").await?;
        Err(unimplemented("NodeExpandVolume"))
    }

    async fn node_get_capabilities(
        &self,
        _: Request<csi::NodeGetCapabilitiesRequest>,
    ) -> Answer<csi::NodeGetCapabilitiesResponse> {
        use csi::node_service_capability::{rpc, Rpc, Type};
        self.enter("NodeGetCapabilities").await?;
        let mut capabilities = Vec::new();
        if self.config().stage {
            capabilities.push(csi::NodeServiceCapability {
                r#type: Some(Type::Rpc(Rpc {
                    r#type: rpc::Type::StageUnstageVolume as i32,
                })),
            });
        }
        Ok(Response::new(csi::NodeGetCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn node_get_info(
        &self,
        _: Request<csi::NodeGetInfoRequest>,
    ) -> Answer<csi::NodeGetInfoResponse> {
        self.enter("NodeGetInfo").await?;
        Ok(Response::new(csi::NodeGetInfoResponse {
            node_id: self.config().node_id.clone(),
            ..Default::default()
        }))
    }
}
