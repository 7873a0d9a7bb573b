//! `dvdcli`: a drop-in for Go dvdcli 0.2.x over the dvdi core library (SPEC §3).
//!
//! stdout carries only data (Mesos takes `dvdcli mount`'s whole stdout as the host path);
//! every message goes to stderr. Exit status: 0 success, 1 failure, 2 usage error.

mod cli;
mod commands;
mod exec;
mod inspect;
mod recover;

use std::process::ExitCode;

use clap::Parser;

/// Exit status for a usage error.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help goes to stdout with status 0; real usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(commands::Failure::Usage(msg)) => {
            eprintln!("dvdcli: {msg}");
            eprintln!("Run 'dvdcli help' for usage.");
            ExitCode::from(EXIT_USAGE)
        }
        Err(commands::Failure::Run(err)) => {
            eprintln!("dvdcli: {err:#}");
            ExitCode::FAILURE
        }
    }
}
