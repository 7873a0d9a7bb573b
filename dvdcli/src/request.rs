//! Raw arguments → a validated [`Request`] before any work: flags given before the subcommand
//! merged with the subcommand's own (the later one wins; `--volumeopts` lists add up), names,
//! options and the mount ID checked. Every problem found here is a usage error (exit 2).

use std::ffi::OsString;

use dvdi::{DriverName, VolumeName, VolumeOpts};

use crate::cli::{self, Cli, Command, Leading};
use crate::output::Failure;

/// The mount ID every `dvdcli mount`/`unmount` sends unless `--id` is given. One fixed value, so
/// a mount and its unmount pair up across processes, and a volume mounted by several
/// `dvdcli mount` calls (Mesos' isolator runs one per container but one unmount) counts once.
pub const DEFAULT_MOUNT_ID: &str = "dvdcli";

/// One validated invocation.
pub enum Request {
    /// A Go dvdcli subcommand against a volume driver.
    Volume {
        driver: DriverName,
        op: VolumeOp,
    },
    Version,
    Exec {
        command: Vec<OsString>,
    },
    Inspect {
        json: bool,
    },
    Recover {
        json: bool,
    },
}

/// What to do with the driver.
pub enum VolumeOp {
    Create {
        volume: VolumeName,
        opts: VolumeOpts,
    },
    Remove {
        volume: VolumeName,
    },
    Mount {
        volume: VolumeName,
        opts: VolumeOpts,
        explicit_create: bool,
        id: String,
    },
    Unmount {
        volume: VolumeName,
        id: String,
    },
    Path {
        volume: VolumeName,
    },
    Get {
        volume: VolumeName,
    },
    List,
}

pub fn from_cli(cli: Cli) -> Result<Request, Failure> {
    let cmd = cli.command.name();
    let mut lead = cli.leading;
    let request = match cli.command {
        Command::Create { volume, opts } => {
            let (driver, volume) = target(&mut lead, volume, cmd)?;
            let opts = volume_opts(&mut lead, opts)?;
            volume_request(driver, VolumeOp::Create { volume, opts })
        }
        Command::Remove { volume } => {
            let (driver, volume) = target(&mut lead, volume, cmd)?;
            volume_request(driver, VolumeOp::Remove { volume })
        }
        Command::Mount {
            volume,
            opts,
            explicitcreate,
            id,
        } => {
            let (driver, volume) = target(&mut lead, volume, cmd)?;
            let opts = volume_opts(&mut lead, opts)?;
            let explicit_create = explicitcreate
                .or(lead.explicitcreate.take())
                .unwrap_or(false);
            let id = mount_id(&mut lead, id)?;
            volume_request(
                driver,
                VolumeOp::Mount {
                    volume,
                    opts,
                    explicit_create,
                    id,
                },
            )
        }
        Command::Unmount { volume, id } => {
            let (driver, volume) = target(&mut lead, volume, cmd)?;
            let id = mount_id(&mut lead, id)?;
            volume_request(driver, VolumeOp::Unmount { volume, id })
        }
        Command::Path { volume } => {
            let (driver, volume) = target(&mut lead, volume, cmd)?;
            volume_request(driver, VolumeOp::Path { volume })
        }
        Command::Get { volume } => {
            let (driver, volume) = target(&mut lead, volume, cmd)?;
            volume_request(driver, VolumeOp::Get { volume })
        }
        Command::List {
            volumedriver,
            volumename: _,
        } => {
            lead.volumename = None; // accepted and ignored, as Go dvdcli did
            let driver = driver(volumedriver.or(lead.volumedriver.take()), cmd)?;
            volume_request(driver, VolumeOp::List)
        }
        Command::Version { .. } => {
            (lead.volumedriver, lead.volumename) = (None, None); // ignored, as Go dvdcli did
            Request::Version
        }
        Command::Exec { command } => Request::Exec { command },
        Command::Inspect { json } => Request::Inspect { json },
        Command::Recover { json } => Request::Recover { json },
    };
    refuse_leftovers(&lead, cmd)?;
    Ok(request)
}

fn volume_request(driver: DriverName, op: VolumeOp) -> Request {
    Request::Volume { driver, op }
}

fn usage(msg: String) -> Failure {
    Failure::Usage(msg)
}

/// A flag before the subcommand that the subcommand does not take.
fn refuse_leftovers(lead: &Leading, cmd: &str) -> Result<(), Failure> {
    let given = [
        ("volumedriver", lead.volumedriver.is_some()),
        ("volumename", lead.volumename.is_some()),
        ("volumeopts", !lead.volumeopts.is_empty()),
        ("explicitcreate", lead.explicitcreate.is_some()),
        ("id", lead.id.is_some()),
    ];
    match given.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(usage(format!("--{flag} is not accepted by '{cmd}'"))),
        None => Ok(()),
    }
}

/// `--volumedriver` and `--volumename`, both required.
fn target(
    lead: &mut Leading,
    volume: cli::Volume,
    cmd: &str,
) -> Result<(DriverName, VolumeName), Failure> {
    let driver = driver(volume.volumedriver.or(lead.volumedriver.take()), cmd)?;
    let name = volume
        .volumename
        .or(lead.volumename.take())
        .ok_or_else(|| usage(format!("'{cmd}' needs --volumename")))?;
    let name = VolumeName::new(&name).map_err(|e| usage(format!("--volumename: {e}")))?;
    Ok((driver, name))
}

fn driver(value: Option<String>, cmd: &str) -> Result<DriverName, Failure> {
    let value = value.ok_or_else(|| usage(format!("'{cmd}' needs --volumedriver")))?;
    DriverName::new(&value).map_err(|e| usage(format!("--volumedriver: {e}")))
}

fn volume_opts(lead: &mut Leading, opts: cli::Opts) -> Result<VolumeOpts, Failure> {
    let mut lists = std::mem::take(&mut lead.volumeopts);
    lists.extend(opts.volumeopts);
    VolumeOpts::parse_lists(&lists).map_err(|e| usage(format!("--volumeopts: {e}")))
}

fn mount_id(lead: &mut Leading, id: cli::MountId) -> Result<String, Failure> {
    let id = id
        .id
        .or(lead.id.take())
        .unwrap_or_else(|| DEFAULT_MOUNT_ID.to_owned());
    if id.is_empty() || id.chars().any(char::is_control) {
        return Err(usage("--id must be non-empty printable text".into()));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn request(args: &[&str]) -> Result<Request, Failure> {
        let cli = Cli::try_parse_from([&["dvdcli"], args].concat()).map_err(Failure::Parse)?;
        from_cli(cli)
    }

    fn usage_error(args: &[&str]) -> String {
        match request(args) {
            Err(Failure::Usage(msg)) => msg,
            Err(Failure::Parse(e)) => e.to_string(),
            Err(Failure::Run(e)) => panic!("{args:?}: not a usage error: {e:#}"),
            Ok(_) => panic!("{args:?}: accepted"),
        }
    }

    #[test]
    fn leading_and_trailing_flags_merge_and_the_trailing_one_wins() {
        let Ok(Request::Volume { driver, op }) = request(&[
            "--volumedriver=a",
            "--volumeopts=x=1",
            "--id=lead",
            "--explicitcreate",
            "mount",
            "--volumedriver=b",
            "--volumename=v",
            "--volumeopts=y=2",
        ]) else {
            panic!("not a volume request")
        };
        assert_eq!(driver.as_str(), "b");
        let VolumeOp::Mount {
            volume,
            opts,
            explicit_create,
            id,
        } = op
        else {
            panic!("not a mount")
        };
        assert_eq!(volume.as_str(), "v");
        assert_eq!(opts.iter().collect::<Vec<_>>(), [("x", "1"), ("y", "2")]);
        assert!(explicit_create);
        assert_eq!(id, "lead");
    }

    #[test]
    fn the_default_mount_id_is_shared() {
        let Ok(Request::Volume {
            op: VolumeOp::Unmount { id, .. },
            ..
        }) = request(&["unmount", "--volumedriver=d", "--volumename=v"])
        else {
            panic!("not an unmount")
        };
        assert_eq!(id, DEFAULT_MOUNT_ID);
    }

    #[test]
    fn a_leading_flag_the_subcommand_does_not_take_is_named() {
        let volume = ["--volumedriver=d", "--volumename=v"];
        for (args, flag, cmd) in [
            (
                vec!["--volumeopts=a=b", "get", volume[0], volume[1]],
                "volumeopts",
                "get",
            ),
            (
                vec!["--explicitcreate", "create", volume[0], volume[1]],
                "explicitcreate",
                "create",
            ),
            (vec!["--id=x", "path", volume[0], volume[1]], "id", "path"),
            (
                vec!["--volumedriver=d", "inspect"],
                "volumedriver",
                "inspect",
            ),
            (
                vec!["--volumename=v", "exec", "--", "true"],
                "volumename",
                "exec",
            ),
        ] {
            assert_eq!(
                usage_error(&args),
                format!("--{flag} is not accepted by '{cmd}'"),
                "{args:?}"
            );
        }
    }

    #[test]
    fn go_dvdcli_persistent_flags_stay_accepted_where_it_ignored_them() {
        assert!(matches!(
            request(&["--volumename=v", "list", "--volumedriver=d"]),
            Ok(Request::Volume {
                op: VolumeOp::List,
                ..
            })
        ));
        assert!(matches!(
            request(&["--volumedriver=d", "version", "--volumename=v"]),
            Ok(Request::Version)
        ));
    }

    #[test]
    fn missing_and_invalid_values_are_usage_errors() {
        assert_eq!(
            usage_error(&["mount", "--volumename=v"]),
            "'mount' needs --volumedriver"
        );
        assert_eq!(usage_error(&["list"]), "'list' needs --volumedriver");
        assert_eq!(
            usage_error(&["unmount", "--volumedriver=d"]),
            "'unmount' needs --volumename"
        );
        assert!(
            usage_error(&["mount", "--volumedriver=d", "--volumename=a/b"])
                .starts_with("--volumename: ")
        );
        assert!(usage_error(&[
            "create",
            "--volumedriver=d",
            "--volumename=v",
            "--volumeopts=x"
        ])
        .starts_with("--volumeopts: "));
        assert_eq!(
            usage_error(&["mount", "--volumedriver=d", "--volumename=v", "--id="]),
            "--id must be non-empty printable text"
        );
    }
}
