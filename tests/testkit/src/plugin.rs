//! `TestPlugin`: a real Docker volume plugin served over a real Unix socket, with volumes in
//! memory, every call recorded, and faults a test can inject while it runs.
//!
//! ```no_run
//! use dvdi_testkit::plugin::{Fault, TestPlugin};
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let plugin = TestPlugin::start(&dir.path().join("p.sock"), &dir.path().join("mnt"))?;
//! plugin.set_fault("VolumeDriver.Mount", Fault::Hang, Some(1));
//! // ... run the client under test against dir/p.sock ...
//! assert_eq!(plugin.count("VolumeDriver.Mount"), 1);
//! # Ok(()) }
//! ```

mod fault;
mod record;
mod server;
mod volumes;
mod wire;
mod workers;

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{Map, Value};

pub use fault::{Fault, ANY_ENDPOINT};
pub use record::Call;
pub use volumes::MountEvent;

use record::Recorder;
use server::{accept_loop, Shared, State};
use volumes::{Behaviour, Volumes};

/// How long `Drop` waits for connection threads after shutting their sockets down.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Choices fixed when the plugin starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginOptions {
    /// Mount/Unmount without a non-empty `ID` get HTTP 400 with a JSON `Err` (default true).
    pub require_id: bool,
    /// Get of a missing volume answers `{"Err":"volume X not found"}` instead of
    /// `{"Volume":null,"Err":""}` (default false).
    pub get_missing_as_error: bool,
    /// Every reply uses chunked encoding (default false; see [`TestPlugin::set_chunked`]).
    pub chunked: bool,
    /// Added before every answer (default zero).
    pub delay: Duration,
    /// Append one JSON line per call to this file, before answering it (default none).
    pub record_file: Option<PathBuf>,
    /// Keep calls in memory for [`TestPlugin::calls`] (default true; off for long runs).
    pub keep_calls: bool,
}

impl Default for PluginOptions {
    fn default() -> Self {
        PluginOptions {
            require_id: true,
            get_missing_as_error: false,
            chunked: false,
            delay: Duration::ZERO,
            record_file: None,
            keep_calls: true,
        }
    }
}

/// A running plugin; dropping it stops the server, closes every connection (hanging ones
/// included) and removes its socket.
#[derive(Debug)]
pub struct TestPlugin {
    shared: Arc<Shared>,
    listener: UnixListener,
    accept: Option<JoinHandle<()>>,
    socket_path: PathBuf,
    /// (device, inode) of the socket file we created, so we never remove someone else's.
    socket_id: (u64, u64),
    mount_root: PathBuf,
}

impl TestPlugin {
    /// Starts a plugin with default [`PluginOptions`].
    pub fn start(socket_path: &Path, mount_root: &Path) -> io::Result<TestPlugin> {
        TestPlugin::start_with(socket_path, mount_root, PluginOptions::default())
    }

    /// Listens on `socket_path` (replacing a stale socket nobody answers on) and creates
    /// `mount_root`, under which each mounted volume gets a directory named after it.
    pub fn start_with(
        socket_path: &Path,
        mount_root: &Path,
        options: PluginOptions,
    ) -> io::Result<TestPlugin> {
        std::fs::create_dir_all(mount_root)?;
        remove_stale_socket(socket_path)?;
        let listener = UnixListener::bind(socket_path)?;
        let meta = std::fs::metadata(socket_path)?;
        let state = State {
            volumes: Volumes::new(mount_root),
            faults: Default::default(),
            recorder: Recorder::new(options.keep_calls, options.record_file.as_deref())?,
        };
        let behaviour = Behaviour {
            require_id: options.require_id,
            get_missing_as_error: options.get_missing_as_error,
        };
        let shared = Arc::new(Shared::new(
            state,
            behaviour,
            options.delay,
            options.chunked,
        ));
        let accept_listener = listener.try_clone()?;
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("test-plugin-accept".into())
            .spawn(move || accept_loop(accept_listener, accept_shared))?;
        Ok(TestPlugin {
            shared,
            listener,
            accept: Some(accept),
            socket_path: socket_path.to_path_buf(),
            socket_id: (meta.dev(), meta.ino()),
            mount_root: mount_root.to_path_buf(),
        })
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    pub fn mount_root(&self) -> &Path {
        &self.mount_root
    }

    /// How many connections the plugin has accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted()
    }

    /// Closes every open connection, as a plugin server closing idle connections does, and
    /// waits (up to a second) for their threads to finish. The plugin keeps listening.
    pub fn close_idle_connections(&self) {
        self.shared.close_connections(Duration::from_secs(1));
    }

    /// Injects `fault` into the next `times` requests on `endpoint` (`None`: all of them),
    /// replacing a fault already set there. `endpoint` is `"VolumeDriver.Mount"` (a leading
    /// `/` is allowed) or [`ANY_ENDPOINT`], which an endpoint's own fault overrides.
    pub fn set_fault(&self, endpoint: &str, fault: Fault, times: Option<usize>) {
        self.shared.state().faults.set(endpoint, fault, times);
    }

    pub fn clear_faults(&self) {
        self.shared.state().faults.clear();
    }

    /// Answers every later reply with chunked encoding (or stops doing so).
    pub fn set_chunked(&self, on: bool) {
        self.shared.set_chunked(on);
    }

    /// Every well-formed request so far, in arrival order (empty when `keep_calls` is off).
    pub fn calls(&self) -> Vec<Call> {
        self.shared.state().recorder.calls().to_vec()
    }

    /// How many requests reached `endpoint` (e.g. `"VolumeDriver.Mount"`), faulted ones
    /// included (0 when `keep_calls` is off).
    pub fn count(&self, endpoint: &str) -> usize {
        let endpoint = fault::normalize_endpoint(endpoint);
        let state = self.shared.state();
        state
            .recorder
            .calls()
            .iter()
            .filter(|c| c.endpoint == endpoint)
            .count()
    }

    /// The IDs `volume` is currently mounted with, sorted (empty when unknown).
    pub fn mount_ids(&self, volume: &str) -> Vec<String> {
        self.shared.state().volumes.mount_ids(volume)
    }

    /// Every Mount and Unmount that took effect so far, in order: what a test checks
    /// pairing against (each id mounted once, unmounted at most once, after its Mount).
    pub fn mount_events(&self) -> Vec<MountEvent> {
        self.shared.state().volumes.events().to_vec()
    }

    /// [`Self::mount_events`] as `(volume, mounted)`, in order: which volumes were mounted and
    /// unmounted, whatever the ids.
    pub fn mount_changes(&self) -> Vec<(String, bool)> {
        self.mount_events()
            .into_iter()
            .map(|e| (e.volume, e.mounted))
            .collect()
    }

    /// The names of the existing volumes, sorted.
    pub fn volumes(&self) -> Vec<String> {
        self.shared.state().volumes.names()
    }

    /// Creates a volume without a request, as if `VolumeDriver.Create` had been called.
    pub fn add_volume(&self, name: &str, opts: &[(&str, &str)]) {
        let opts: Map<String, Value> = opts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        self.shared.state().volumes.add(name, opts);
    }
}

impl Drop for TestPlugin {
    fn drop(&mut self) {
        self.shared.stop();
        // Wakes the accept loop even if the socket path is gone; if that fails, a connection
        // to the path does it.
        if crate::sys::shut_down_listener(&self.listener).is_err() {
            let _ = UnixStream::connect(&self.socket_path);
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.shared.close_connections(CLOSE_GRACE);
        if let Ok(meta) = std::fs::symlink_metadata(&self.socket_path) {
            if (meta.dev(), meta.ino()) == self.socket_id {
                let _ = std::fs::remove_file(&self.socket_path);
            }
        }
    }
}

/// Removes a socket file left by a plugin that died; refuses to replace one that answers.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("a plugin already listens on {}", path.display()),
            )),
            Err(_) => std::fs::remove_file(path),
        },
        _ => Ok(()),
    }
}
