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
//! [`inspect`], [`recover`]), each depending only on those and the library.

mod cli;
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
        None => cli::Cli::try_parse_from(args).map_err(Failure::Parse)?,
    };
    match request::from_cli(cli)? {
        Request::Volume { driver, op } => volume::run(&driver, &op)?,
        Request::Version => version::run()?,
        // The command's own status, passed through.
        Request::Exec { command } => return Ok(exec::run(&command)?),
        Request::Inspect { json } => inspect::run(json)?,
        Request::Recover { json } => recover::run(json)?,
    }
    Ok(ExitCode::SUCCESS)
}
