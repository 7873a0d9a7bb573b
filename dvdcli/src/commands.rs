//! Turns a parsed command line into library calls and renders their results.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use dvdi::{ops, DriverName, DriverResolver, Settings, VolumeDriver, VolumeName, VolumeOpts};

use crate::cli::{Cli, Command};

/// The mount ID every `dvdcli mount`/`unmount` sends unless `--id` is given. One fixed value, so
/// a mount and its unmount pair up across processes, and a volume mounted by several
/// `dvdcli mount` calls (Mesos' isolator runs one per container but one unmount) counts once.
pub const DEFAULT_MOUNT_ID: &str = "dvdcli";

/// Why `dvdcli` failed: a usage error (exit 2) or a failed operation (exit 1).
pub enum Failure {
    Usage(String),
    Run(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Run(e)
    }
}

/// Validated arguments of one invocation.
struct Args {
    driver: Option<DriverName>,
    volume: Option<VolumeName>,
    opts: VolumeOpts,
    explicit_create: bool,
    id: String,
}

fn validate(cli: &Cli) -> Result<Args, Failure> {
    let cmd = cli.command.name();
    let usage = |m: String| Failure::Usage(m);
    if !cli.volumeopts.is_empty() && !matches!(cli.command, Command::Create | Command::Mount) {
        return Err(usage(format!("--volumeopts is not accepted by '{cmd}'")));
    }
    if cli.explicitcreate.is_some() && !matches!(cli.command, Command::Mount) {
        return Err(usage(format!(
            "--explicitcreate is not accepted by '{cmd}'"
        )));
    }
    if cli.id.is_some() && !matches!(cli.command, Command::Mount | Command::Unmount) {
        return Err(usage(format!("--id is not accepted by '{cmd}'")));
    }
    let driver = match &cli.volumedriver {
        Some(d) => Some(DriverName::new(d).map_err(|e| usage(format!("--volumedriver: {e}")))?),
        None => None,
    };
    let volume = match &cli.volumename {
        Some(v) => Some(VolumeName::new(v).map_err(|e| usage(format!("--volumename: {e}")))?),
        None => None,
    };
    let opts = VolumeOpts::parse_lists(&cli.volumeopts)
        .map_err(|e| usage(format!("--volumeopts: {e}")))?;
    let id = cli
        .id
        .clone()
        .unwrap_or_else(|| DEFAULT_MOUNT_ID.to_owned());
    if id.is_empty() || id.chars().any(char::is_control) {
        return Err(usage("--id must be non-empty printable text".into()));
    }
    Ok(Args {
        driver,
        volume,
        opts,
        explicit_create: cli.explicitcreate.unwrap_or(false),
        id,
    })
}

fn required<T: Clone>(value: &Option<T>, flag: &str, cmd: &str) -> Result<T, Failure> {
    value
        .clone()
        .ok_or_else(|| Failure::Usage(format!("'{cmd}' needs --{flag}")))
}

/// Writes data to stdout; a closed stdout is a failure (the caller lost the answer).
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .context("cannot write to stdout")
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let args = validate(&cli)?;
    let cmd = cli.command.name();
    match &cli.command {
        Command::Version => return Ok(emit(&version_text())?),
        Command::Exec { command } => return crate::exec::run(command),
        Command::Inspect { json } => return Ok(crate::inspect::run(*json)?),
        Command::Recover { json } => return Ok(crate::recover::run(*json)?),
        _ => {}
    }
    let driver = required(&args.driver, "volumedriver", cmd)?;
    let volume = match cli.command {
        Command::List => None,
        _ => Some(required(&args.volume, "volumename", cmd)?),
    };
    Ok(execute(&cli.command, &args, &driver, volume.as_ref())?)
}

/// Runs a validated command against its driver.
fn execute(
    command: &Command,
    args: &Args,
    driver_name: &DriverName,
    volume: Option<&VolumeName>,
) -> anyhow::Result<()> {
    let settings = Settings::from_env().context("bad configuration in the environment")?;
    let resolver = DriverResolver::new(settings);
    let driver = resolver.resolve(driver_name)?;
    let driver: &dyn VolumeDriver = driver.as_ref();
    let Some(volume) = volume else {
        let text: String = driver
            .list()?
            .iter()
            .map(|v| format!("{}\n", v.name))
            .collect();
        return emit(&text);
    };
    match command {
        Command::Create => driver.create(volume, &args.opts)?,
        Command::Remove => driver.remove(volume)?,
        Command::Mount => {
            let path = ops::mount(driver, volume, &args.opts, args.explicit_create, &args.id)?;
            emit(&format!("{}\n", path.display()))?;
        }
        Command::Unmount => ops::unmount(driver, volume, &args.id)?,
        Command::Path => {
            if let Some(p) = ops::path(driver, volume)? {
                emit(&format!("{}\n", p.display()))?;
            }
        }
        Command::Get => match driver.get(volume)? {
            Some(v) => emit(&format!("{}\n", v.name))?,
            None => anyhow::bail!(
                "volume {:?} not found on driver {:?}",
                volume.as_str(),
                driver_name.as_str()
            ),
        },
        Command::List
        | Command::Version
        | Command::Exec { .. }
        | Command::Inspect { .. }
        | Command::Recover { .. } => {
            unreachable!("handled by run")
        }
    }
    Ok(())
}

fn version_text() -> String {
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("dvdcli"));
    format!(
        "Binary: {}\nSemVer: {}\nOsArch: {}-{}\nBranch: {}\nCommit: {}\nFormed: {}\n",
        binary.display(),
        env!("CARGO_PKG_VERSION"),
        capitalize(std::env::consts::OS),
        std::env::consts::ARCH,
        env!("DVDCLI_BRANCH"),
        env!("DVDCLI_COMMIT"),
        env!("DVDCLI_FORMED"),
    )
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
