//! Mesos' protobuf-JSON shapes (as stout's `JSON::protobuf` writes them) for the messages that
//! cross the C ABI: `ContainerID`, `ContainerConfig`, `ContainerState` in, and
//! `ContainerLaunchInfo` out. Only the fields we use are declared; every other field, default
//! values and newer Mesos additions are ignored.

use std::path::PathBuf;

use dvdi::container_info::DockerVolume;
use dvdi::{ContainerConfig, ContainerId, ContainerIdError, LaunchInfo};
use serde::Deserialize;
use serde_json::{json, Value};

/// `CLONE_NEWNS`, as Mesos' `ContainerLaunchInfo.clone_namespaces` carries it.
const CLONE_NEWNS: i64 = libc::CLONE_NEWNS as i64;

/// `mesos.ContainerID`: a nested container names its parent.
#[derive(Debug, Deserialize)]
pub struct MesosContainerId {
    pub value: String,
    #[serde(default)]
    pub parent: Option<Box<MesosContainerId>>,
}

impl MesosContainerId {
    /// The library's id: ancestors' values and its own joined with `.`, root first.
    pub fn to_container_id(&self) -> Result<ContainerId, ContainerIdError> {
        match &self.parent {
            None => ContainerId::new(&self.value),
            Some(parent) => parent.to_container_id()?.child(&self.value),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Variable {
    name: String,
    #[serde(default)]
    value: Option<String>,
    /// `VALUE` (default) or `SECRET`; a secret has no plain value for us.
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Environment {
    #[serde(default)]
    variables: Vec<Variable>,
}

#[derive(Debug, Default, Deserialize)]
struct CommandInfo {
    #[serde(default)]
    environment: Option<Environment>,
}

#[derive(Debug, Default, Deserialize)]
struct ExecutorInfo {
    #[serde(default)]
    command: Option<CommandInfo>,
}

/// `mesos.Parameter`.
#[derive(Debug, Default, Deserialize)]
struct Parameter {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Default, Deserialize)]
struct Parameters {
    #[serde(default)]
    parameter: Vec<Parameter>,
}

/// `mesos.Volume.Source.DockerVolume`.
#[derive(Debug, Default, Deserialize)]
struct DockerVolumeSource {
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver_options: Option<Parameters>,
}

/// `mesos.Volume.Source`: only its type and a Docker volume are read.
#[derive(Debug, Default, Deserialize)]
struct VolumeSource {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    docker_volume: Option<DockerVolumeSource>,
}

/// `mesos.Volume`; host paths, images and other sources are not read.
#[derive(Debug, Default, Deserialize)]
struct Volume {
    #[serde(default)]
    container_path: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    source: Option<VolumeSource>,
}

/// `mesos.ContainerInfo`: only its volumes.
#[derive(Debug, Default, Deserialize)]
struct ContainerInfo {
    #[serde(default)]
    volumes: Vec<Volume>,
}

/// `mesos.slave.ContainerConfig`.
#[derive(Debug, Deserialize)]
pub struct MesosContainerConfig {
    #[serde(default)]
    executor_info: Option<ExecutorInfo>,
    #[serde(default)]
    command_info: Option<CommandInfo>,
    directory: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    rootfs: Option<String>,
    /// `DEFAULT` or `DEBUG`; debug containers share their parent's namespaces.
    #[serde(default)]
    container_class: Option<String>,
    /// The container's own `ContainerInfo` — the one Mesos' `docker/volume` isolator reads
    /// (not `executor_info.container` or `task_info.container`, which repeat it for a
    /// command task).
    #[serde(default)]
    container_info: Option<ContainerInfo>,
}

impl MesosContainerConfig {
    /// True for a `DEBUG` container (`mesos task exec`): it joins its parent's mount namespace,
    /// so it gets no volumes of its own.
    pub fn is_debug(&self) -> bool {
        self.container_class.as_deref() == Some("DEBUG")
    }

    /// The library's view; also the names of secret variables that were skipped.
    pub fn to_container_config(&self) -> (ContainerConfig, Vec<String>) {
        let executor_env = self
            .executor_info
            .as_ref()
            .and_then(|e| e.command.as_ref())
            .and_then(|c| c.environment.as_ref())
            .filter(|e| !e.variables.is_empty());
        let env = executor_env.or_else(|| {
            self.command_info
                .as_ref()
                .and_then(|c| c.environment.as_ref())
        });
        let mut pairs = Vec::new();
        let mut secrets = Vec::new();
        for v in env.map(|e| e.variables.as_slice()).unwrap_or_default() {
            match (v.kind.as_deref(), &v.value) {
                (Some("SECRET"), _) => secrets.push(v.name.clone()),
                (_, value) => pairs.push((v.name.clone(), value.clone().unwrap_or_default())),
            }
        }
        let config = ContainerConfig {
            env: pairs,
            sandbox: PathBuf::from(&self.directory),
            user: self.user.clone().filter(|u| !u.is_empty()),
            rootfs: self
                .rootfs
                .as_ref()
                .filter(|r| !r.is_empty())
                .map(PathBuf::from),
            holder: None,
            docker_volumes: self.docker_volumes(),
        };
        (config, secrets)
    }
}

impl MesosContainerConfig {
    /// The `DOCKER_VOLUME` entries of `container_info.volumes`, fields copied as sent (the
    /// library validates them); entries of any other source type are not ours.
    fn docker_volumes(&self) -> Vec<DockerVolume> {
        let volumes = self
            .container_info
            .as_ref()
            .map(|c| c.volumes.as_slice())
            .unwrap_or_default();
        volumes
            .iter()
            .enumerate()
            .filter_map(|(index, v)| {
                let source = v.source.as_ref()?;
                if source.kind.as_deref() != Some("DOCKER_VOLUME") {
                    return None;
                }
                let docker = source.docker_volume.as_ref();
                Some(DockerVolume {
                    index,
                    driver: docker.and_then(|d| d.driver.clone()),
                    name: docker.map(|d| d.name.clone()).unwrap_or_default(),
                    options: docker
                        .and_then(|d| d.driver_options.as_ref())
                        .map(|o| {
                            o.parameter
                                .iter()
                                .map(|p| (p.key.clone(), p.value.clone()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    container_path: v.container_path.clone(),
                    mode: v.mode.clone(),
                })
            })
            .collect()
    }
}

/// `mesos.slave.ContainerState` (only its id matters to recovery).
#[derive(Debug, Deserialize)]
pub struct MesosContainerState {
    pub container_id: MesosContainerId,
}

/// `mesos.slave.ContainerLaunchInfo` for a prepared container.
pub fn launch_info_json(info: &LaunchInfo) -> Value {
    let mounts: Vec<Value> = info
        .mounts
        .iter()
        .map(|m| {
            json!({
                "source": m.source.to_string_lossy(),
                "target": m.target.to_string_lossy(),
                "flags": m.flags.bits() as u32,
            })
        })
        .collect();
    let mut out = json!({ "mounts": mounts });
    if info.clone_newns {
        out["clone_namespaces"] = json!([CLONE_NEWNS]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_ids_join_root_first() {
        let id: MesosContainerId = serde_json::from_value(json!({
            "value": "child", "parent": {"value": "mid", "parent": {"value": "root"}}
        }))
        .unwrap();
        assert_eq!(id.to_container_id().unwrap().as_str(), "root.mid.child");
        let bad: MesosContainerId = serde_json::from_value(json!({"value": "a/b"})).unwrap();
        assert!(bad.to_container_id().is_err());
    }

    #[test]
    fn executor_environment_first_then_command_info() {
        // The shape stout writes, with defaults and unknown fields.
        let cfg: MesosContainerConfig = serde_json::from_value(json!({
            "executor_info": {
                "executor_id": {"value": "e"},
                "command": {"shell": true, "value": "java -jar es.jar", "environment": {"variables": [
                    {"name": "DVDI_VOLUME_NAME", "type": "VALUE", "value": "data"},
                    {"name": "TOKEN", "type": "SECRET", "secret": {"type": "REFERENCE"}}
                ]}}
            },
            "command_info": {"environment": {"variables": [{"name": "X", "value": "1"}]}},
            "directory": "/var/lib/mesos/slaves/s/sandbox",
            "user": "es",
            "container_class": "DEFAULT",
            "resources": [],
            "some_future_field": 1
        }))
        .unwrap();
        let (c, secrets) = cfg.to_container_config();
        assert_eq!(
            c.env,
            [("DVDI_VOLUME_NAME".to_string(), "data".to_string())]
        );
        assert_eq!(secrets, ["TOKEN"]);
        assert_eq!(c.user.as_deref(), Some("es"));
        assert!(!cfg.is_debug());

        let cfg: MesosContainerConfig = serde_json::from_value(json!({
            "command_info": {"environment": {"variables": [{"name": "X", "value": "1"}]}},
            "directory": "/sb", "container_class": "DEBUG"
        }))
        .unwrap();
        assert_eq!(
            cfg.to_container_config().0.env,
            [("X".to_string(), "1".to_string())]
        );
        assert!(cfg.is_debug());
    }

    #[test]
    fn docker_volumes_come_from_container_info_only_with_their_index_among_all_volumes() {
        let dv = |name: &str| {
            json!({"container_path": name, "mode": "RO", "source": {"type": "DOCKER_VOLUME",
                "docker_volume": {"driver": "d", "name": name,
                    "driver_options": {"parameter": [{"key": "k", "value": "v,w"}]}}}})
        };
        let cfg: MesosContainerConfig = serde_json::from_value(json!({
            "directory": "/sb",
            "container_info": {"type": "MESOS", "volumes": [
                {"container_path": "/h", "host_path": "/srv", "mode": "RW"},
                {"container_path": "s", "mode": "RW", "source": {"type": "SANDBOX_PATH",
                    "sandbox_path": {"type": "PARENT", "path": "x"}}},
                dv("one"),
                {"container_path": "n", "mode": "RW", "source": {"type": "DOCKER_VOLUME",
                    "docker_volume": {"name": "nodriver"}}},
            ]},
            // Repeats of it that Mesos' own isolator does not read either.
            "executor_info": {"container": {"volumes": [dv("exec")]}},
            "task_info": {"container": {"volumes": [dv("task")]}},
        }))
        .unwrap();
        let got = cfg.to_container_config().0.docker_volumes;
        assert_eq!(
            got,
            [
                DockerVolume {
                    index: 2,
                    driver: Some("d".into()),
                    name: "one".into(),
                    options: vec![("k".into(), "v,w".into())],
                    container_path: "one".into(),
                    mode: Some("RO".into()),
                },
                DockerVolume {
                    index: 3,
                    driver: None,
                    name: "nodriver".into(),
                    options: Vec::new(),
                    container_path: "n".into(),
                    mode: Some("RW".into()),
                },
            ]
        );
    }

    #[test]
    fn launch_info_has_the_protobuf_field_names() {
        use dvdi::sys::MsFlags;
        let info = LaunchInfo {
            clone_newns: true,
            mounts: vec![dvdi::LaunchMount {
                source: "/var/lib/dvdi/volumes/v/_data".into(),
                target: "/sb/data".into(),
                flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            }],
        };
        let v = launch_info_json(&info);
        assert_eq!(v["clone_namespaces"], json!([0x20000]));
        assert_eq!(v["mounts"][0]["flags"], json!(0x1000 | 0x4000));
        assert_eq!(v["mounts"][0]["target"], "/sb/data");
    }
}
