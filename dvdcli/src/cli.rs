//! The command line: Go dvdcli's subcommands and flags, plus our additions (`--id`).
//!
//! Flags are global so they may stand before or after the subcommand, as with Go dvdcli's
//! persistent flags; `--flag=value` and `--flag value` both work.

use clap::{ArgAction, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dvdcli",
    about = "Docker volume driver client: create, mount and unmount volumes through a Docker volume plugin",
    disable_version_flag = true,
    propagate_version = false
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Volume driver (plugin) name; `local` is the embedded driver.
    #[arg(long, global = true, value_name = "DRIVER")]
    pub volumedriver: Option<String>,

    /// Volume name.
    #[arg(long, global = true, value_name = "NAME")]
    pub volumename: Option<String>,

    /// Volume options `k=v[,k=v…]` (create, mount); repeatable.
    #[arg(long, global = true, value_name = "K=V", action = ArgAction::Append)]
    pub volumeopts: Vec<String>,

    /// Mount only: the volume must already exist; never create it. `--explicitcreate false`
    /// means false.
    #[arg(
        long,
        global = true,
        alias = "explicitCreate",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "BOOL"
    )]
    pub explicitcreate: Option<bool>,

    /// Mount/unmount: the ID sent with Mount and Unmount (default: a stable ID shared by every
    /// dvdcli, so a mount and its unmount pair up across processes).
    #[arg(long, global = true, value_name = "ID")]
    pub id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a volume.
    Create,
    /// Remove a volume.
    Remove,
    /// Mount a volume (creating it unless --explicitcreate) and print its mount point.
    Mount,
    /// Unmount a volume.
    Unmount,
    /// Print a volume's mount point.
    Path,
    /// Print a volume's name if it exists.
    Get,
    /// List the driver's volumes, one name per line.
    List,
    /// Print version information.
    Version,
    /// Mount the volumes named by DVDI_VOLUME_* in this environment, run CMD in a private
    /// mount namespace with them at their container paths, release them when CMD exits.
    Exec {
        /// The command and its arguments (after `--`).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<std::ffi::OsString>,
    },
    /// Show which containers hold which volumes, from the isolator's checkpoint.
    Inspect {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recover what dead `dvdcli exec`s left in the isolator's checkpoint: release their
    /// volumes, repair their damaged records, retry failed unmounts. Agent containers are left
    /// alone.
    Recover {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Create => "create",
            Command::Remove => "remove",
            Command::Mount => "mount",
            Command::Unmount => "unmount",
            Command::Path => "path",
            Command::Get => "get",
            Command::List => "list",
            Command::Version => "version",
            Command::Exec { .. } => "exec",
            Command::Inspect { .. } => "inspect",
            Command::Recover { .. } => "recover",
        }
    }
}
