//! What dvdcli says and how it ends: data on stdout ([`emit`]), one error line on stderr, and
//! the exit status ([`Failure::report`]): 0 success, 1 failure, 2 usage error.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

/// Exit status for a usage error.
pub const EXIT_USAGE: u8 = 2;

/// Why `dvdcli` did not succeed.
pub enum Failure {
    /// clap's answer: a usage error (exit 2), or `--help` (stdout, exit 0).
    Parse(clap::Error),
    /// Arguments clap accepted that we do not (exit 2).
    Usage(String),
    /// A failed operation (exit 1).
    Run(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Run(e)
    }
}

impl Failure {
    /// Prints the failure once and gives the exit status.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Parse(e) => {
                // --help goes to stdout with status 0; real usage errors to stderr with 2.
                let _ = e.print();
                ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 })
            }
            Failure::Usage(msg) => {
                eprintln!("dvdcli: {msg}");
                eprintln!("Run 'dvdcli help' for usage.");
                ExitCode::from(EXIT_USAGE)
            }
            Failure::Run(err) => {
                eprintln!("dvdcli: {err:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Writes data to stdout; a closed stdout is a failure (the caller lost the answer).
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .context("cannot write to stdout")
}
