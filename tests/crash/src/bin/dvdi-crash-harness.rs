//! `dvdi-crash-harness`: one step of the crash matrix's scenario (see the crate's `lib.rs`),
//! run by the library built with its fault points, so `DVDI_FAULT_POINT` can kill it anywhere.
//!
//! ```text
//! dvdi-crash-harness --checkpoint DIR --local-root DIR --plugin-dir DIR --sandboxes DIR
//!                    [--csi-config-dir DIR --csi-client PATH] [--probe] STEP
//!   STEP: prepare ID | cleanup ID | exec ID | reap | recover [KNOWN…] | inspect
//!         (also spelled `--step prepare ID`, `--step cleanup ID`, `--recover [KNOWN…]`)
//! ```
//!
//! `exec ID` does what `dvdcli exec` does around its command: reap dead holders, prepare `ID`
//! held by this process, clean it up. `reap` only reaps dead holders.
//!
//! `--probe` (the I/O fault matrix): after the step, whatever its outcome, the same process —
//! the same isolator handle, as the agent would — prepares and cleans up container `P`, which
//! uses the scenario's volumes: proof that the step left no lock held and that the next
//! operation on its volumes succeeds once its (one-shot) fault is gone.
//!
//! Prints one JSON line on stdout: `{"ok": …}` (the launch info, the recover report or the
//! inspection) with exit 0, or `{"error": "…"}` with exit 1; with `--probe` also `"probe":
//! null` (it succeeded) or the probe's error. Usage errors exit 2.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dvdi::container_info::DockerVolume;
use dvdi::holder::Holder;
use dvdi::{ContainerConfig, ContainerId, Isolator, IsolatorConfig, Settings, Timeouts};
use serde_json::{json, Value};

const USAGE: &str = "usage: dvdi-crash-harness --checkpoint DIR --local-root DIR --plugin-dir DIR \
--sandboxes DIR [--csi-config-dir DIR --csi-client PATH] [--probe] (prepare ID | cleanup ID | exec ID | reap | recover [KNOWN...] | inspect)";

struct Args {
    checkpoint: PathBuf,
    local_root: PathBuf,
    plugin_dir: PathBuf,
    sandboxes: PathBuf,
    /// The CSI settings (`csi_config_dir`, `csi_client`); the library's defaults when absent.
    csi_config_dir: Option<PathBuf>,
    csi_client: Option<PathBuf>,
    probe: bool,
    step: Vec<String>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut checkpoint, mut local_root, mut plugin_dir, mut sandboxes) = (None, None, None, None);
    let (mut csi_config_dir, mut csi_client) = (None, None);
    let mut step = Vec::new();
    let mut probe = false;
    while let Some(arg) = argv.next() {
        let slot = match arg.as_str() {
            "--probe" => {
                probe = true;
                continue;
            }
            "--checkpoint" => &mut checkpoint,
            "--local-root" => &mut local_root,
            "--plugin-dir" => &mut plugin_dir,
            "--sandboxes" => &mut sandboxes,
            "--csi-config-dir" => &mut csi_config_dir,
            "--csi-client" => &mut csi_client,
            // `--step prepare A` is the same as `prepare A`.
            "--step" => continue,
            _ => {
                // `--recover KNOWN…` is the same as `recover KNOWN…`.
                step.push(arg.strip_prefix("--").unwrap_or(&arg).to_owned());
                step.extend(argv.by_ref());
                break;
            }
        };
        *slot = Some(PathBuf::from(
            argv.next().ok_or_else(|| format!("{arg} needs a value"))?,
        ));
    }
    // `--probe` may also follow the step.
    if let Some(at) = step.iter().position(|a| a == "--probe") {
        step.remove(at);
        probe = true;
    }
    let need = |v: Option<PathBuf>, flag: &str| v.ok_or_else(|| format!("{flag} is required"));
    Ok(Args {
        checkpoint: need(checkpoint, "--checkpoint")?,
        local_root: need(local_root, "--local-root")?,
        plugin_dir: need(plugin_dir, "--plugin-dir")?,
        sandboxes: need(sandboxes, "--sandboxes")?,
        csi_config_dir,
        csi_client,
        probe,
        step,
    })
}

fn isolator(args: &Args) -> Result<Isolator, String> {
    let mut settings = Settings::default();
    settings.client.plugin_dirs = vec![args.plugin_dir.clone()];
    settings.client.timeouts = Timeouts {
        connect_window: Duration::from_secs(2),
        ..Timeouts::uniform(Duration::from_secs(10))
    };
    settings.local_root = args.local_root.clone();
    if let Some(dir) = &args.csi_config_dir {
        settings.csi_config_dir = dir.clone();
    }
    if let Some(client) = &args.csi_client {
        settings.csi_client = client.clone();
    }
    Isolator::from_config(IsolatorConfig {
        checkpoint_dir: args.checkpoint.clone(),
        settings,
        docker_volumes: true,
        ..IsolatorConfig::default()
    })
    .map_err(|e| e.to_string())
}

fn cid(id: &str) -> Result<ContainerId, String> {
    ContainerId::new(id).map_err(|e| e.to_string())
}

/// The configuration of scenario container `id`, its sandbox made.
fn config_of(args: &Args, id: &str, holder: Option<Holder>) -> Result<ContainerConfig, String> {
    let env = dvdi_crash::env_of(id).ok_or_else(|| format!("no container {id}"))?;
    let sandbox = args.sandboxes.join(id);
    std::fs::create_dir_all(&sandbox).map_err(|e| e.to_string())?;
    let docker_volumes = dvdi_crash::docker_volumes_of(id)
        .iter()
        .enumerate()
        .map(|(index, (driver, name, path, mode))| DockerVolume {
            index,
            driver: Some((*driver).to_owned()),
            name: (*name).to_owned(),
            options: Vec::new(),
            container_path: (*path).to_owned(),
            mode: Some((*mode).to_owned()),
        })
        .collect();
    Ok(ContainerConfig {
        env,
        sandbox,
        holder,
        docker_volumes,
        ..ContainerConfig::default()
    })
}

/// Every cause of a reap, one line each.
fn reap(iso: &Isolator) -> Result<usize, String> {
    let report = iso.reap_dead_holders().map_err(|e| e.to_string())?;
    match report.errors.as_slice() {
        [] => Ok(report.reaped.len()),
        errors => Err(errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

fn run(iso: &Isolator, args: &Args) -> Result<Value, String> {
    match args.step.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["prepare", id] => {
            let cfg = config_of(args, id, None)?;
            let info = iso.prepare(&cid(id)?, &cfg).map_err(|e| e.to_string())?;
            Ok(to_json(&info))
        }
        ["cleanup", id] => {
            iso.cleanup(&cid(id)?).map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
        ["exec", id] => {
            reap(iso)?;
            let holder = Holder::current().map_err(|e| e.to_string())?;
            let cfg = config_of(args, id, Some(holder))?;
            iso.prepare(&cid(id)?, &cfg).map_err(|e| e.to_string())?;
            iso.cleanup(&cid(id)?).map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
        ["reap"] => Ok(Value::from(reap(iso)?)),
        ["recover", ref known @ ..] => {
            let known = known
                .iter()
                .map(|k| cid(k))
                .collect::<Result<Vec<_>, _>>()?;
            let report = iso.recover(&known, &[]).map_err(|e| e.to_string())?;
            Ok(to_json(&report))
        }
        ["inspect"] => Ok(to_json(&iso.inspect().map_err(|e| e.to_string())?)),
        _ => Err(format!("unknown step {:?}\n{USAGE}", args.step)),
    }
}

/// Prepares and cleans up container `P` on the same handle (see `--probe`).
fn probe(iso: &Isolator, args: &Args) -> Result<(), String> {
    let id = cid(dvdi_crash::PROBE)?;
    let cfg = config_of(args, dvdi_crash::PROBE, None)?;
    iso.prepare(&id, &cfg)
        .map_err(|e| format!("probe prepare: {e}"))?;
    iso.cleanup(&id).map_err(|e| format!("probe cleanup: {e}"))
}

/// One of the library's answers as JSON.
fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) if !args.step.is_empty() => args,
        Ok(_) => {
            eprintln!("dvdi-crash-harness: no step given\n{USAGE}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("dvdi-crash-harness: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let iso = isolator(&args);
    let outcome = match &iso {
        Ok(iso) => run(iso, &args),
        Err(e) => Err(e.clone()),
    };
    let mut line = match &outcome {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": e }),
    };
    if args.probe {
        // A handle that could not be opened (its fault is gone now) is opened again.
        let probed = match iso {
            Ok(iso) => probe(&iso, &args),
            Err(_) => isolator(&args).and_then(|iso| probe(&iso, &args)),
        };
        line["probe"] = match probed {
            Ok(()) => Value::Null,
            Err(e) => Value::from(e),
        };
    }
    println!("{line}");
    if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
