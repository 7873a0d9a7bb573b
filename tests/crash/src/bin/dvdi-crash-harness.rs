//! `dvdi-crash-harness`: one step of the crash matrix's scenario (see the crate's `lib.rs`),
//! run by the library built with its fault points, so `DVDI_FAULT_POINT` can kill it anywhere.
//!
//! ```text
//! dvdi-crash-harness --checkpoint DIR --local-root DIR --plugin-dir DIR --sandboxes DIR STEP
//!   STEP: prepare ID | cleanup ID | recover [KNOWN…] | inspect
//!         (also spelled `--step prepare ID`, `--step cleanup ID`, `--recover [KNOWN…]`)
//! ```
//!
//! Prints one JSON line on stdout: `{"ok": …}` (the launch info, the recover report or the
//! inspection) with exit 0, or `{"error": "…"}` with exit 1. Usage errors exit 2.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dvdi::{ContainerConfig, ContainerId, Isolator, IsolatorConfig, Settings, Timeouts};
use serde_json::{json, Value};

const USAGE: &str = "usage: dvdi-crash-harness --checkpoint DIR --local-root DIR --plugin-dir DIR \
--sandboxes DIR (prepare ID | cleanup ID | recover [KNOWN...] | inspect)";

struct Args {
    checkpoint: PathBuf,
    local_root: PathBuf,
    plugin_dir: PathBuf,
    sandboxes: PathBuf,
    step: Vec<String>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut checkpoint, mut local_root, mut plugin_dir, mut sandboxes) = (None, None, None, None);
    let mut step = Vec::new();
    while let Some(arg) = argv.next() {
        let slot = match arg.as_str() {
            "--checkpoint" => &mut checkpoint,
            "--local-root" => &mut local_root,
            "--plugin-dir" => &mut plugin_dir,
            "--sandboxes" => &mut sandboxes,
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
    let need = |v: Option<PathBuf>, flag: &str| v.ok_or_else(|| format!("{flag} is required"));
    Ok(Args {
        checkpoint: need(checkpoint, "--checkpoint")?,
        local_root: need(local_root, "--local-root")?,
        plugin_dir: need(plugin_dir, "--plugin-dir")?,
        sandboxes: need(sandboxes, "--sandboxes")?,
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
    Isolator::from_config(IsolatorConfig {
        checkpoint_dir: args.checkpoint.clone(),
        settings,
        ..IsolatorConfig::default()
    })
    .map_err(|e| e.to_string())
}

fn cid(id: &str) -> Result<ContainerId, String> {
    ContainerId::new(id).map_err(|e| e.to_string())
}

fn run(args: &Args) -> Result<Value, String> {
    let iso = isolator(args)?;
    match args.step.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["prepare", id] => {
            let env = dvdi_crash::env_of(id).ok_or_else(|| format!("no container {id}"))?;
            let sandbox = args.sandboxes.join(id);
            std::fs::create_dir_all(&sandbox).map_err(|e| e.to_string())?;
            let cfg = ContainerConfig {
                env,
                sandbox,
                ..ContainerConfig::default()
            };
            let info = iso.prepare(&cid(id)?, &cfg).map_err(|e| e.to_string())?;
            Ok(to_json(&info))
        }
        ["cleanup", id] => {
            iso.cleanup(&cid(id)?).map_err(|e| e.to_string())?;
            Ok(Value::Null)
        }
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
    match run(&args) {
        Ok(v) => {
            println!("{}", json!({ "ok": v }));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{}", json!({ "error": e }));
            ExitCode::FAILURE
        }
    }
}
