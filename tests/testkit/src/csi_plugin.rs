//! `CsiTestPlugin`: the workspace's CSI v1 test plugin (`dvdi-csi-test-plugin`) as a child
//! process, driven only through its files, so the testkit stays free of the gRPC stack.
//!
//! ```text
//! DIR/csi.sock                 Identity + Node (+ Controller unless on its own socket)
//! DIR/csi-controller.sock      Identity + Controller, with `separate_controller_socket`
//! DIR/csi-plugin.log           the plugin's stderr, across restarts
//! DIR/state/state.json         volumes, controller publications, stagings, publications
//! DIR/state/volumes/ID/        each volume's directory (what gets bind-mounted)
//! DIR/state/calls.log          one RPC name per line, before the fault check
//! DIR/state/faults.json        faults, read by the plugin on every RPC
//! ```
//!
//! The plugin re-reads `state.json` at the start of every RPC, so [`CsiTestPlugin::add_volume`]
//! takes effect without a restart. Edit it (and the faults) while no RPC is in flight: the
//! plugin rewrites both files, and the last writer wins.
//!
//! Dropping the handle kills the plugin (SIGKILL) and reaps it. It does not unmount what the
//! plugin mounted: staging and target paths belong to the caller under test, which must
//! clean them up (or the test, e.g. with [`crate::buttervolume::unmount_all_under`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::env::{command, workspace_bin};

/// The plugin's binary in the root workspace's target dir.
pub const BINARY: &str = "dvdi-csi-test-plugin";

/// How long [`CsiTestPlugin::start`] and [`CsiTestPlugin::restart`] wait for the sockets.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Choices fixed when the plugin starts (kept across restarts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsiPluginOptions {
    /// GetPluginInfo's name (default `test.csi.dvdi`).
    pub name: Option<String>,
    /// NodeGetInfo's node id (default `node-1`).
    pub node_id: Option<String>,
    /// Serve the Controller service and advertise CONTROLLER_SERVICE (default true).
    pub controller: bool,
    /// Advertise STAGE_UNSTAGE_VOLUME (default true).
    pub stage: bool,
    /// Advertise PUBLISH_UNPUBLISH_VOLUME; node calls then need the volume controller-published
    /// to this node (default true).
    pub controller_publish: bool,
    /// Serve the Controller on `DIR/csi-controller.sock` instead of the node socket (default
    /// false).
    pub separate_controller_socket: bool,
}

impl Default for CsiPluginOptions {
    fn default() -> Self {
        CsiPluginOptions {
            name: None,
            node_id: None,
            controller: true,
            stage: true,
            controller_publish: true,
            separate_controller_socket: false,
        }
    }
}

/// How an RPC misbehaves (see [`CsiTestPlugin::set_fault`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsiFault {
    /// Never answer; other requests are still served.
    Hang,
    /// Answer with the gRPC status `code` (spelled as in the spec: `"NOT_FOUND"`).
    Error { code: String, message: String },
    /// Wait, then handle the call normally.
    Delay(Duration),
    /// The process exits (status 3) without answering; see [`CsiTestPlugin::ensure_running`].
    Exit,
}

impl CsiFault {
    fn to_json(&self, times: Option<u32>) -> Value {
        let mut entry = match self {
            CsiFault::Hang => json!({"action": "hang"}),
            CsiFault::Error { code, message } => {
                json!({"action": "error", "code": code, "message": message})
            }
            CsiFault::Delay(wait) => {
                let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                json!({"action": "delay", "ms": ms})
            }
            CsiFault::Exit => json!({"action": "exit"}),
        };
        if let (Some(times), Some(fields)) = (times, entry.as_object_mut()) {
            fields.insert("times".into(), json!(times));
        }
        entry
    }
}

/// A running `dvdi-csi-test-plugin` and the files it keeps.
pub struct CsiTestPlugin {
    options: CsiPluginOptions,
    socket: PathBuf,
    controller_socket: PathBuf,
    state_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl CsiTestPlugin {
    /// Starts the plugin with the default options in `dir` (laid out as the module says) and
    /// returns once its socket accepts connections.
    pub fn start(dir: &Path) -> io::Result<Self> {
        Self::start_with(dir, CsiPluginOptions::default())
    }

    pub fn start_with(dir: &Path, options: CsiPluginOptions) -> io::Result<Self> {
        let state_dir = dir.join("state");
        fs::create_dir_all(&state_dir).map_err(|e| with_path(e, "create", &state_dir))?;
        let socket = dir.join("csi.sock");
        let controller_socket = if options.separate_controller_socket && options.controller {
            dir.join("csi-controller.sock")
        } else {
            socket.clone()
        };
        let mut plugin = CsiTestPlugin {
            options,
            socket,
            controller_socket,
            state_dir,
            log: dir.join("csi-plugin.log"),
            child: None,
        };
        plugin.spawn()?;
        Ok(plugin)
    }

    /// The socket of Identity and Node (and Controller unless it has its own).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The socket of the Controller: [`Self::socket`] unless `separate_controller_socket`.
    pub fn controller_socket(&self) -> &Path {
        &self.controller_socket
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Kills the plugin (SIGKILL: no chance to tidy up) and starts it again with the same
    /// options and state, as a crashing plugin restarted by its supervisor would be.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Restarts the plugin if it exited (after an [`CsiFault::Exit`]); otherwise does nothing.
    pub fn ensure_running(&mut self) -> io::Result<()> {
        let running = match self.child.as_mut() {
            Some(child) => child.try_wait()?.is_none(),
            None => false,
        };
        if running {
            Ok(())
        } else {
            self.restart()
        }
    }

    /// Whether the plugin process is still alive (false after an [`CsiFault::Exit`] fired).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sets `fault` on `rpc` (its CSI name: `"NodeStageVolume"`), replacing one already set
    /// there and keeping the others, for the next `times` calls (`None`: every call).
    ///
    /// Panics when `faults.json` cannot be written: the test would silently test nothing.
    pub fn set_fault(&self, rpc: &str, fault: CsiFault, times: Option<u32>) {
        let path = self.faults_file();
        let mut table = read_object(&path);
        table.insert(rpc.to_string(), fault.to_json(times));
        if let Err(e) = write_json(&path, &Value::Object(table)) {
            panic!("cannot set the {rpc} fault: {e}");
        }
    }

    pub fn clear_faults(&self) {
        let path = self.faults_file();
        if let Err(e) = remove_if_present(&path) {
            panic!("cannot clear the faults: {e}");
        }
    }

    /// Every RPC the plugin received so far (faulted ones included), in order, by name.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.calls_file())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// How many times `rpc` was called.
    pub fn count(&self, rpc: &str) -> usize {
        self.calls().iter().filter(|c| *c == rpc).count()
    }

    pub fn clear_calls(&self) {
        if let Err(e) = remove_if_present(&self.calls_file()) {
            panic!("cannot clear the call log: {e}");
        }
    }

    /// The ids of the plugin's volumes, sorted.
    pub fn volumes(&self) -> Vec<String> {
        let state = self.state();
        let mut ids: Vec<String> = state
            .get("volumes")
            .and_then(Value::as_object)
            .map(|volumes| volumes.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// `(volume id, staging path)` of every staged volume.
    pub fn staged(&self) -> Vec<(String, PathBuf)> {
        self.records("staged", "path")
            .into_iter()
            .map(|(id, path)| (id, PathBuf::from(path)))
            .collect()
    }

    /// `(volume id, target path)` of every published volume.
    pub fn published(&self) -> Vec<(String, PathBuf)> {
        self.records("published", "target_path")
            .into_iter()
            .map(|(id, path)| (id, PathBuf::from(path)))
            .collect()
    }

    /// `(volume id, node id)` of every controller publication.
    pub fn controller_published(&self) -> Vec<(String, String)> {
        self.records("controller_published", "node_id")
    }

    /// The directory that backs `volume_id` (what staging bind-mounts).
    pub fn volume_dir(&self, volume_id: &str) -> PathBuf {
        self.state_dir.join("volumes").join(volume_id)
    }

    /// Provisions `volume_id` without CreateVolume (for node-only plugins): makes its
    /// directory and records it in `state.json`, which the plugin reads on its next RPC.
    pub fn add_volume(&self, volume_id: &str) -> io::Result<()> {
        let dir = self.volume_dir(volume_id);
        fs::create_dir_all(&dir).map_err(|e| with_path(e, "create", &dir))?;
        let path = self.state_file();
        let mut state = read_object(&path);
        let volumes = state
            .entry("volumes")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(volumes) = volumes.as_object_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: \"volumes\" is not an object", path.display()),
            ));
        };
        let name = volume_id.strip_prefix("vol-").unwrap_or(volume_id);
        volumes.insert(
            volume_id.to_string(),
            json!({"name": name, "capacity_bytes": 0, "parameters": {}}),
        );
        write_json(&path, &Value::Object(state))
    }

    /// What the plugin wrote to stderr so far, across restarts.
    /// Writes the operator's file for this plugin at `path` (`<csi_config_dir>/<driver>.json`):
    /// its node socket, its controller socket when `controller`, `root`, the plugin name it
    /// answers, and `extra` JSON members (`,"key":value`) appended as they are.
    pub fn write_operator_file(&self, path: &Path, root: &Path, controller: bool, extra: &str) {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).unwrap();
        }
        let controller = if controller {
            format!(
                r#","controller_endpoint":"unix://{}""#,
                self.controller_socket().display()
            )
        } else {
            String::new()
        };
        fs::write(
            path,
            format!(
                r#"{{"node_endpoint":"unix://{}"{controller},"root":"{}","plugin_name":"{}"{extra}}}"#,
                self.socket().display(),
                root.display(),
                self.options.name.as_deref().unwrap_or("test.csi.dvdi"),
            ),
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn state_file(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }

    fn faults_file(&self) -> PathBuf {
        self.state_dir.join("faults.json")
    }

    fn calls_file(&self) -> PathBuf {
        self.state_dir.join("calls.log")
    }

    fn state(&self) -> Map<String, Value> {
        read_object(&self.state_file())
    }

    /// `(volume_id, other)` of each entry of the list `list` in `state.json`.
    fn records(&self, list: &str, other: &str) -> Vec<(String, String)> {
        let state = self.state();
        let Some(entries) = state.get(list).and_then(Value::as_array) else {
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|entry| {
                let id = entry.get("volume_id")?.as_str()?;
                let other = entry.get(other)?.as_str()?;
                Some((id.to_string(), other.to_string()))
            })
            .collect()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| with_path(e, "open", &self.log))?;
        let mut cmd = command(&workspace_bin(BINARY));
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state_dir);
        if self.controller_socket != self.socket {
            cmd.arg("--controller-socket").arg(&self.controller_socket);
        }
        if let Some(name) = &self.options.name {
            cmd.arg("--name").arg(name);
        }
        if let Some(node_id) = &self.options.node_id {
            cmd.arg("--node-id").arg(node_id);
        }
        for (on, flag) in [
            (self.options.controller, "--no-controller"),
            (self.options.stage, "--no-stage"),
            (self.options.controller_publish, "--no-controller-publish"),
        ] {
            if !on {
                cmd.arg(flag);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {BINARY}: {e}")))?;
        self.child = Some(child);
        self.wait_for_sockets()
    }

    fn wait_for_sockets(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        let sockets = [self.socket.clone(), self.controller_socket.clone()];
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(io::Error::other(format!(
                        "{BINARY} exited ({status}) before serving {}; its log:\n{}",
                        self.socket.display(),
                        self.log()
                    )));
                }
            }
            if sockets.iter().all(|s| UnixStream::connect(s).is_ok()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{BINARY} did not accept connections on {} within {START_DEADLINE:?}; its log:\n{}",
                        self.socket.display(),
                        self.log()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for CsiTestPlugin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The JSON object in `path`; empty when the file is missing or not an object.
fn read_object(path: &Path) -> Map<String, Value> {
    fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|value| match value {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default()
}

/// Writes `value` to a temporary file next to `path`, then renames it over `path`, so the
/// plugin never reads half a file.
fn write_json(path: &Path, value: &Value) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("json");
    let temp = path.with_file_name(format!(".{name}.harness-{}.tmp", std::process::id()));
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let mut file = File::create(&temp).map_err(|e| with_path(e, "create", &temp))?;
    file.write_all(&bytes)
        .map_err(|e| with_path(e, "write", &temp))?;
    fs::rename(&temp, path).map_err(|e| with_path(e, "rename onto", path))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(with_path(e, "remove", path)),
        _ => Ok(()),
    }
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_written_as_the_plugin_reads_them() {
        assert_eq!(CsiFault::Hang.to_json(None), json!({"action": "hang"}));
        assert_eq!(
            CsiFault::Delay(Duration::from_millis(250)).to_json(Some(2)),
            json!({"action": "delay", "ms": 250, "times": 2})
        );
        assert_eq!(
            CsiFault::Error {
                code: "NOT_FOUND".into(),
                message: "gone".into()
            }
            .to_json(None),
            json!({"action": "error", "code": "NOT_FOUND", "message": "gone"})
        );
        assert_eq!(
            CsiFault::Exit.to_json(Some(1)),
            json!({"action": "exit", "times": 1})
        );
    }

    #[test]
    fn the_harness_reads_and_edits_the_plugin_files() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = CsiTestPlugin {
            options: CsiPluginOptions::default(),
            socket: dir.path().join("csi.sock"),
            controller_socket: dir.path().join("csi.sock"),
            state_dir: dir.path().to_path_buf(),
            log: dir.path().join("log"),
            child: None,
        };
        plugin.add_volume("vol-a").unwrap();
        assert!(plugin.volume_dir("vol-a").is_dir());
        assert_eq!(plugin.volumes(), ["vol-a"]);
        fs::write(
            plugin.state_file(),
            r#"{"volumes": {}, "staged": [{"volume_id": "v", "path": "/s"}],
                "published": [{"volume_id": "v", "target_path": "/t", "readonly": false}],
                "controller_published": [{"volume_id": "v", "node_id": "n"}]}"#,
        )
        .unwrap();
        assert_eq!(plugin.staged(), [("v".to_string(), PathBuf::from("/s"))]);
        assert_eq!(plugin.published(), [("v".to_string(), PathBuf::from("/t"))]);
        assert_eq!(
            plugin.controller_published(),
            [("v".to_string(), "n".to_string())]
        );

        plugin.set_fault("Probe", CsiFault::Hang, None);
        plugin.set_fault("NodeGetInfo", CsiFault::Exit, Some(1));
        let faults = read_object(&plugin.faults_file());
        assert_eq!(faults.len(), 2);
        plugin.clear_faults();
        assert!(read_object(&plugin.faults_file()).is_empty());

        fs::write(plugin.calls_file(), "Probe\nNodeGetInfo\nProbe\n").unwrap();
        assert_eq!(plugin.count("Probe"), 2);
        plugin.clear_calls();
        assert!(plugin.calls().is_empty());
    }
}
