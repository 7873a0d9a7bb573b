//! `dvdcli`: a drop-in for Go dvdcli 0.2.x over the dvdi core library (SPEC §3).
//!
//! stdout carries only data (Mesos takes `dvdcli mount`'s whole stdout as the host path);
//! every message goes to stderr. Exit status: 0 success, 1 failure, 2 usage error; `exec`
//! exits with its command's status.
//!
//! Modules: [`cli`] is the command line as clap sees it (shared with `build.rs` for the man
//! pages and completions), [`fast`] reads Mesos' own mount and unmount lines without clap,
//! [`request`] validates it, [`output`] owns stdout, the error line and
//! exit codes; one module per subcommand family ([`volume`], [`version`], [`exec`],
//! [`inspect`], [`recover`]), each depending only on those and the library; [`csi_handoff`]
//! re-runs a command as `dvdcli-csi` on a host with CSI plugins when this build has no CSI.

mod cli;
mod csi_handoff;
mod exec;
mod fast;
mod inspect;
mod isolator_env;
mod output;
mod recover;
mod request;
mod version;
mod volume;

use std::process::ExitCode;

use clap::Parser;

use output::Failure;
use request::Request;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

fn run() -> Result<ExitCode, Failure> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match fast::parse(&args) {
        Some(cli) => cli,
        None => cli::Cli::try_parse_from(&args).map_err(Failure::Parse)?,
    };
    let request = request::from_cli(cli)?;
    if !matches!(request, Request::Version) {
        csi_handoff::hand_off_if_needed(&args)?;
    }
    match request {
        Request::Volume { driver, op } => volume::run(&driver, &op)?,
        Request::Version => version::run()?,
        // The command's own status, passed through.
        Request::Exec { command } => return Ok(exec::run(&command)?),
        Request::Inspect { json } => inspect::run(json)?,
        Request::Recover { json } => recover::run(json)?,
    }
    Ok(ExitCode::SUCCESS)
}
