//! `dvdi-test-plugin`: the testkit's plugin server as its own process, for tests that need a
//! plugin to crash, restart or outlive a client, and for benchmarks (an "instant plugin").
//!
//! Prints `ready` on stdout once the socket listens; SIGTERM or SIGINT stop it cleanly and
//! remove the socket. Exit codes: 0 ok, 1 failure, 2 usage.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dvdi_testkit::plugin::{PluginOptions, TestPlugin};
use dvdi_testkit::sys::TerminationSignals;

const USAGE: &str = "usage: dvdi-test-plugin --socket PATH --mount-root DIR [--delay-ms N] \
[--record FILE] [--get-missing-as-error] [--no-require-id]";

struct Config {
    socket: PathBuf,
    mount_root: PathBuf,
    options: PluginOptions,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    let mut socket = None;
    let mut mount_root = None;
    let mut options = PluginOptions {
        keep_calls: false,
        ..PluginOptions::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = |flag: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            "--mount-root" => mount_root = Some(PathBuf::from(value("--mount-root")?)),
            "--record" => options.record_file = Some(PathBuf::from(value("--record")?)),
            "--delay-ms" => {
                let text = value("--delay-ms")?;
                let ms = text
                    .parse::<u64>()
                    .map_err(|_| format!("--delay-ms: not a number of milliseconds: {text:?}"))?;
                options.delay = Duration::from_millis(ms);
            }
            "--get-missing-as-error" if inline.is_none() => options.get_missing_as_error = true,
            "--no-require-id" if inline.is_none() => options.require_id = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Config {
        socket: socket.ok_or("--socket is required")?,
        mount_root: mount_root.ok_or("--mount-root is required")?,
        options,
    })
}

fn run(config: Config) -> Result<(), String> {
    // Before any thread exists, so every thread inherits the blocked mask.
    let signals = TerminationSignals::block().map_err(|e| format!("cannot block signals: {e}"))?;
    let plugin = TestPlugin::start_with(&config.socket, &config.mount_root, config.options)
        .map_err(|e| format!("cannot serve on {}: {e}", config.socket.display()))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    let signal = signals
        .wait()
        .map_err(|e| format!("cannot wait for signals: {e}"))?;
    eprintln!("dvdi-test-plugin: signal {signal}, stopping");
    drop(plugin);
    Ok(())
}

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("dvdi-test-plugin: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dvdi-test-plugin: {e}");
            ExitCode::FAILURE
        }
    }
}
