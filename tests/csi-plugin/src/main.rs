//! `dvdi-csi-test-plugin`: a CSI v1 plugin for tests. Identity and Node (and Controller) over
//! a Unix socket, volumes as directories under `<state-dir>/volumes/`, real bind mounts, and
//! faults read from `<state-dir>/faults.json` on every call. The `dvdi_testkit::csi_plugin`
//! harness starts it and reads its files.

// Every handler answers `Result<_, tonic::Status>`, the type the generated traits fix; boxing
// it in the helpers would only move the conversion around.
#![allow(clippy::result_large_err)]

mod faults;
mod mounts;
mod service;
mod state;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bpfman_csi::v1::controller_server::ControllerServer;
use bpfman_csi::v1::identity_server::IdentityServer;
use bpfman_csi::v1::node_server::NodeServer;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use service::{Config, Service};

const USAGE: &str = "usage: dvdi-csi-test-plugin --socket PATH --state-dir DIR \
[--controller-socket PATH] [--name NAME] [--node-id ID] [--no-controller] [--no-stage] \
[--no-controller-publish]";

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("dvdi-csi-test-plugin: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dvdi-csi-test-plugin: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The command line as a [`Config`]; the state directory is made absolute here.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut socket = None;
    let mut controller_socket = None;
    let mut state_dir = None;
    let mut name = "test.csi.dvdi".to_string();
    let mut node_id = "node-1".to_string();
    let (mut controller, mut stage, mut controller_publish) = (true, true, true);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--socket" => socket = Some(PathBuf::from(value()?)),
            "--controller-socket" => controller_socket = Some(PathBuf::from(value()?)),
            "--state-dir" => state_dir = Some(PathBuf::from(value()?)),
            "--name" => name = value()?,
            "--node-id" => node_id = value()?,
            "--no-controller" => controller = false,
            "--no-stage" => stage = false,
            "--no-controller-publish" => controller_publish = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let socket = socket.ok_or("--socket is required")?;
    let state_dir = state_dir.ok_or("--state-dir is required")?;
    let state_dir = std::path::absolute(&state_dir)
        .map_err(|e| format!("cannot make {} absolute: {e}", state_dir.display()))?;
    Ok(Config {
        socket,
        controller_socket,
        state_dir,
        name,
        node_id,
        controller,
        stage,
        controller_publish,
    })
}

fn run(config: Config) -> Result<(), String> {
    let volumes = config.state_dir.join("volumes");
    std::fs::create_dir_all(&volumes)
        .map_err(|e| format!("cannot create {}: {e}", volumes.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), String> {
    let service = Service::new(config.clone());
    let main = listen(&config.socket)?;
    let mut sockets = vec![config.socket.clone()];
    let mut router = Server::builder()
        .add_service(IdentityServer::new(service.clone()))
        .add_service(NodeServer::new(service.clone()));
    let separate = match (&config.controller_socket, config.controller) {
        (Some(path), true) => {
            sockets.push(path.clone());
            let listener = listen(path)?;
            let router = Server::builder()
                .add_service(IdentityServer::new(service.clone()))
                .add_service(ControllerServer::new(service.clone()));
            Some((path.clone(), router, listener))
        }
        (None, true) => {
            router = router.add_service(ControllerServer::new(service.clone()));
            None
        }
        (_, false) => None,
    };
    tokio::spawn(exit_on_sigterm(sockets));
    let main_socket = config.socket.clone();
    let main_server = async move {
        router
            .serve_with_incoming(UnixListenerStream::new(main))
            .await
            .map_err(|e| format!("serving {}: {e}", main_socket.display()))
    };
    match separate {
        None => main_server.await,
        Some((path, router, listener)) => {
            let controller_server = async move {
                router
                    .serve_with_incoming(UnixListenerStream::new(listener))
                    .await
                    .map_err(|e| format!("serving {}: {e}", path.display()))
            };
            tokio::try_join!(main_server, controller_server).map(|_| ())
        }
    }
}

/// Binds `path`, removing the socket a killed plugin left there first.
fn listen(path: &Path) -> Result<UnixListener, String> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot remove the stale socket {}: {e}",
                path.display()
            ))
        }
    }
    UnixListener::bind(path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))
}

/// On SIGTERM, removes the sockets and exits 0 at once: a graceful shutdown would wait for
/// requests a `hang` fault keeps open forever. Mounts stay: unmounting is the CO's call.
async fn exit_on_sigterm(sockets: Vec<PathBuf>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terms = match signal(SignalKind::terminate()) {
        Ok(terms) => terms,
        Err(e) => {
            eprintln!("dvdi-csi-test-plugin: cannot watch for SIGTERM: {e}");
            return;
        }
    };
    terms.recv().await;
    for socket in &sockets {
        let _ = std::fs::remove_file(socket);
    }
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let config = parse(&["--socket", "/s", "--state-dir", "/d"]).unwrap();
        assert_eq!(config.name, "test.csi.dvdi");
        assert_eq!(config.node_id, "node-1");
        assert!(config.controller && config.stage && config.controller_publish);
        let config = parse(&[
            "--socket",
            "/s",
            "--state-dir",
            "/d",
            "--no-stage",
            "--no-controller",
            "--no-controller-publish",
            "--node-id",
            "n9",
            "--name",
            "x",
            "--controller-socket",
            "/c",
        ])
        .unwrap();
        assert!(!config.controller && !config.stage && !config.controller_publish);
        assert_eq!(config.node_id, "n9");
        assert_eq!(config.name, "x");
        assert_eq!(config.controller_socket.as_deref(), Some(Path::new("/c")));
    }

    #[test]
    fn bad_command_lines_say_why() {
        assert!(parse(&["--state-dir", "/d"])
            .unwrap_err()
            .contains("--socket"));
        assert!(parse(&["--socket"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("--bogus"));
    }
}
