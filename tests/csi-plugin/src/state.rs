//! What the plugin knows, persisted in `<state-dir>/state.json`: its volumes, which nodes they
//! are controller-published to, where they are staged and published. The rules of the CSI
//! calls that only touch this record (idempotency, preconditions) live here, apart from the
//! mounts, so they are unit-tested without root.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tonic::Status;

/// The volume id of the volume created with `name`: deterministic, so a CO retrying a
/// CreateVolume after a lost answer gets the same volume.
pub fn volume_id_for(name: &str) -> String {
    format!("vol-{name}")
}

/// One volume, as CreateVolume recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    #[serde(default)]
    pub capacity_bytes: i64,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// A volume controller-published to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerPublication {
    pub volume_id: String,
    pub node_id: String,
}

/// A volume staged (bind-mounted) at a staging path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staging {
    pub volume_id: String,
    pub path: PathBuf,
}

/// A volume published (bind-mounted) at a target path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub volume_id: String,
    pub target_path: PathBuf,
    pub readonly: bool,
    /// The staging path it was published from (none for a plugin that does not stage): only
    /// that staging path is pinned by it — another host's staging of the volume is not.
    #[serde(default)]
    pub staging_path: Option<PathBuf>,
}

/// The whole `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub volumes: BTreeMap<String, VolumeRecord>,
    #[serde(default)]
    pub controller_published: Vec<ControllerPublication>,
    #[serde(default)]
    pub staged: Vec<Staging>,
    #[serde(default)]
    pub published: Vec<Publication>,
}

/// What CreateVolume should do for a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Creation {
    /// A volume of that name and size exists: answer with it again.
    Exists(String),
    /// Make the volume with this id.
    New(String),
}

impl State {
    /// Reads `path`; a missing file is an empty state (a fresh plugin).
    pub fn load(path: &Path) -> io::Result<State> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a plugin state: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            )),
        }
    }

    /// Writes `path` atomically (temporary file, then rename), so a plugin killed mid-write
    /// leaves the previous state, never half of one.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        write_atomically(path, &json)
    }

    /// The CreateVolume rule: a name maps to one volume; asking again with the same required
    /// size is the same volume, with another size is ALREADY_EXISTS.
    pub fn plan_creation(&self, name: &str, required_bytes: i64) -> Result<Creation, Status> {
        if name.is_empty() {
            return Err(Status::invalid_argument("CreateVolume: name is missing"));
        }
        let id = volume_id_for(name);
        match self.volumes.get(&id) {
            Some(existing) if existing.capacity_bytes == required_bytes => Ok(Creation::Exists(id)),
            Some(existing) => Err(Status::already_exists(format!(
                "volume {name:?} exists with {} bytes, not the {required_bytes} asked for",
                existing.capacity_bytes
            ))),
            None => Ok(Creation::New(id)),
        }
    }

    /// The volume `id`, or NOT_FOUND naming it.
    pub fn volume(&self, id: &str) -> Result<&VolumeRecord, Status> {
        self.volumes
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no volume {id:?}")))
    }

    /// The DeleteVolume precondition: a volume still in use anywhere stays.
    pub fn check_deletable(&self, id: &str) -> Result<(), Status> {
        if let Some(p) = self.controller_published.iter().find(|p| p.volume_id == id) {
            return Err(Status::failed_precondition(format!(
                "volume {id:?} is still controller-published to node {:?}",
                p.node_id
            )));
        }
        if let Some(s) = self.staged.iter().find(|s| s.volume_id == id) {
            return Err(Status::failed_precondition(format!(
                "volume {id:?} is still staged at {}",
                s.path.display()
            )));
        }
        if let Some(p) = self.published.iter().find(|p| p.volume_id == id) {
            return Err(Status::failed_precondition(format!(
                "volume {id:?} is still published at {}",
                p.target_path.display()
            )));
        }
        Ok(())
    }

    /// Forgets volume `id` and everything recorded about it.
    pub fn remove_volume(&mut self, id: &str) {
        self.volumes.remove(id);
    }

    pub fn is_controller_published(&self, id: &str, node: &str) -> bool {
        self.controller_published
            .iter()
            .any(|p| p.volume_id == id && p.node_id == node)
    }

    pub fn add_controller_publication(&mut self, id: &str, node: &str) {
        if !self.is_controller_published(id, node) {
            self.controller_published.push(ControllerPublication {
                volume_id: id.to_string(),
                node_id: node.to_string(),
            });
        }
    }

    /// Removes the publication to `node`, or to every node when `node` is empty (as the spec
    /// says of an empty node_id in ControllerUnpublishVolume).
    pub fn remove_controller_publication(&mut self, id: &str, node: &str) {
        self.controller_published
            .retain(|p| !(p.volume_id == id && (node.is_empty() || p.node_id == node)));
    }

    pub fn is_staged_at(&self, id: &str, path: &Path) -> bool {
        self.staged
            .iter()
            .any(|s| s.volume_id == id && s.path == path)
    }

    pub fn add_staging(&mut self, id: &str, path: &Path) {
        if !self.is_staged_at(id, path) {
            self.staged.push(Staging {
                volume_id: id.to_string(),
                path: path.to_path_buf(),
            });
        }
    }

    pub fn remove_staging(&mut self, id: &str, path: &Path) {
        self.staged
            .retain(|s| !(s.volume_id == id && s.path == path));
    }

    pub fn publication_at(&self, id: &str, target: &Path) -> Option<&Publication> {
        self.published
            .iter()
            .find(|p| p.volume_id == id && p.target_path == target)
    }

    /// The NodeUnstageVolume precondition: a staging path still published from is not
    /// unstaged under its publication.
    pub fn check_unstageable(&self, id: &str, staging: &Path) -> Result<(), Status> {
        match self
            .published
            .iter()
            .find(|p| p.volume_id == id && p.staging_path.as_deref().is_none_or(|s| s == staging))
        {
            Some(p) => Err(Status::failed_precondition(format!(
                "volume {id:?} is still published at {}",
                p.target_path.display()
            ))),
            None => Ok(()),
        }
    }

    pub fn add_publication(
        &mut self,
        id: &str,
        target: &Path,
        readonly: bool,
        staging: Option<&Path>,
    ) {
        if self.publication_at(id, target).is_none() {
            self.published.push(Publication {
                volume_id: id.to_string(),
                target_path: target.to_path_buf(),
                readonly,
                staging_path: staging.map(Path::to_path_buf),
            });
        }
    }

    pub fn remove_publication(&mut self, id: &str, target: &Path) {
        self.published
            .retain(|p| !(p.volume_id == id && p.target_path == target));
    }
}

/// Writes `bytes` to a temporary file next to `path` and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let named = |e: io::Error, what: &str, p: &Path| {
        io::Error::new(e.kind(), format!("cannot {what} {}: {e}", p.display()))
    };
    let mut file = fs::File::create(&temp).map_err(|e| named(e, "create", &temp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| named(e, "write", &temp))?;
    fs::rename(&temp, path).map_err(|e| named(e, "rename onto", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn with_volume(name: &str, bytes: i64) -> State {
        let mut state = State::default();
        state.volumes.insert(
            volume_id_for(name),
            VolumeRecord {
                name: name.into(),
                capacity_bytes: bytes,
                parameters: BTreeMap::new(),
            },
        );
        state
    }

    #[test]
    fn create_is_idempotent_by_name_and_size() {
        let state = with_volume("data", 1024);
        assert_eq!(
            state.plan_creation("data", 1024).unwrap(),
            Creation::Exists("vol-data".into())
        );
        assert_eq!(
            state.plan_creation("other", 1024).unwrap(),
            Creation::New("vol-other".into())
        );
        let err = state.plan_creation("data", 2048).unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);
        assert_eq!(
            state.plan_creation("", 0).unwrap_err().code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn a_volume_in_use_is_not_deletable() {
        let mut state = with_volume("data", 0);
        state.check_deletable("vol-data").unwrap();
        state.add_controller_publication("vol-data", "node-1");
        let err = state.check_deletable("vol-data").unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().contains("node-1"));
        state.remove_controller_publication("vol-data", "node-1");
        state.add_staging("vol-data", Path::new("/s"));
        assert_eq!(
            state.check_deletable("vol-data").unwrap_err().code(),
            Code::FailedPrecondition
        );
        state.remove_staging("vol-data", Path::new("/s"));
        state.add_publication("vol-data", Path::new("/t"), false, Some(Path::new("/s")));
        assert_eq!(
            state.check_deletable("vol-data").unwrap_err().code(),
            Code::FailedPrecondition
        );
        assert_eq!(
            state
                .check_unstageable("vol-data", Path::new("/s"))
                .unwrap_err()
                .code(),
            Code::FailedPrecondition
        );
        // Another host's staging of the volume is not pinned by this publication.
        state
            .check_unstageable("vol-data", Path::new("/other"))
            .unwrap();
        state.remove_publication("vol-data", Path::new("/t"));
        state.check_deletable("vol-data").unwrap();
        state
            .check_unstageable("vol-data", Path::new("/s"))
            .unwrap();
    }

    #[test]
    fn records_are_not_duplicated() {
        let mut state = with_volume("data", 0);
        state.add_controller_publication("vol-data", "n");
        state.add_controller_publication("vol-data", "n");
        state.add_staging("vol-data", Path::new("/s"));
        state.add_staging("vol-data", Path::new("/s"));
        state.add_publication("vol-data", Path::new("/t"), true, None);
        state.add_publication("vol-data", Path::new("/t"), true, None);
        assert_eq!(state.controller_published.len(), 1);
        assert_eq!(state.staged.len(), 1);
        assert_eq!(state.published.len(), 1);
    }

    #[test]
    fn empty_node_unpublishes_from_every_node() {
        let mut state = with_volume("data", 0);
        state.add_controller_publication("vol-data", "a");
        state.add_controller_publication("vol-data", "b");
        state.remove_controller_publication("vol-data", "");
        assert!(state.controller_published.is_empty());
    }

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("csi-state-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        assert_eq!(State::load(&path).unwrap(), State::default());
        let mut state = with_volume("data", 7);
        state.add_staging("vol-data", Path::new("/s"));
        state.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), state);
        fs::remove_dir_all(&dir).unwrap();
    }
}
