//! The command line as clap sees it: Go dvdcli's subcommands and flags, plus ours (`--id`,
//! `exec`, `inspect`, `recover`). Definitions only — `build.rs` includes this file to generate
//! the man pages and shell completions, so it uses nothing but `clap` and `std`.
//!
//! Each subcommand declares its own flags, so `dvdcli mount --help` shows mount's flags and
//! `dvdcli inspect --help` only `--json`. Go dvdcli's flags were persistent, so they may also
//! stand before the subcommand (`dvdcli --volumedriver=D --volumename=N mount`): the root
//! takes them as [`Leading`] (hidden from help), and `request` hands each to the subcommand,
//! refusing one it does not take. `--flag=value` and `--flag value` both work.

use std::ffi::OsString;

use clap::{ArgAction, Args, Parser, Subcommand};

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "dvdcli",
    about = "Docker volume driver client: create, mount and unmount volumes through a Docker volume plugin",
    after_help = "A subcommand's flags may also stand before it, as with Go dvdcli:\n  \
                  dvdcli --volumedriver=D --volumename=N mount\n\
                  'dvdcli help COMMAND' shows a command's flags.",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub leading: Leading,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags given before the subcommand (Go dvdcli's persistent flags). Hidden: each
/// subcommand's help shows the ones it takes.
#[derive(Debug, Default, PartialEq, Args)]
pub struct Leading {
    #[arg(long, hide = true)]
    pub volumedriver: Option<String>,
    #[arg(long, hide = true)]
    pub volumename: Option<String>,
    #[arg(long, hide = true, action = ArgAction::Append)]
    pub volumeopts: Vec<String>,
    /// Before the subcommand a value needs `=`, so `dvdcli --explicitcreate mount` is the
    /// flag and the subcommand, not the value `mount`.
    #[arg(
        long,
        hide = true,
        alias = "explicitCreate",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub explicitcreate: Option<bool>,
    #[arg(long, hide = true)]
    pub id: Option<String>,
}

/// `--volumedriver` and `--volumename`.
#[derive(Debug, PartialEq, Args)]
pub struct Volume {
    /// Volume driver (plugin) name; `local` is the embedded driver.
    #[arg(long, value_name = "DRIVER")]
    pub volumedriver: Option<String>,

    /// Volume name.
    #[arg(long, value_name = "NAME")]
    pub volumename: Option<String>,
}

/// `--volumeopts`.
#[derive(Debug, PartialEq, Args)]
pub struct Opts {
    /// Volume options `k=v[,k=v…]`; repeatable. A value may hold `=`; an item without `=`
    /// continues the previous value.
    #[arg(long, value_name = "K=V", action = ArgAction::Append)]
    pub volumeopts: Vec<String>,
}

/// `--id`.
#[derive(Debug, PartialEq, Args)]
pub struct MountId {
    /// The ID sent with Mount and Unmount (default: `dvdcli`, shared by every dvdcli, so a
    /// mount and its unmount pair up across processes).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
}

#[derive(Debug, PartialEq, Subcommand)]
pub enum Command {
    /// Create a volume.
    Create {
        #[command(flatten)]
        volume: Volume,
        #[command(flatten)]
        opts: Opts,
    },
    /// Remove a volume.
    Remove {
        #[command(flatten)]
        volume: Volume,
    },
    /// Mount a volume (creating it unless --explicitcreate) and print its mount point.
    Mount {
        #[command(flatten)]
        volume: Volume,
        #[command(flatten)]
        opts: Opts,
        /// The volume must already exist; never create it. `--explicitcreate false` means
        /// false; `--explicitCreate` is accepted too.
        #[arg(
            long,
            alias = "explicitCreate",
            num_args = 0..=1,
            default_missing_value = "true",
            value_parser = clap::builder::BoolishValueParser::new(),
            value_name = "BOOL"
        )]
        explicitcreate: Option<bool>,
        #[command(flatten)]
        id: MountId,
    },
    /// Unmount a volume.
    Unmount {
        #[command(flatten)]
        volume: Volume,
        #[command(flatten)]
        id: MountId,
    },
    /// Print a volume's mount point.
    Path {
        #[command(flatten)]
        volume: Volume,
    },
    /// Print a volume's name if it exists.
    Get {
        #[command(flatten)]
        volume: Volume,
    },
    /// List the driver's volumes, one name per line.
    List {
        /// Volume driver (plugin) name; `local` is the embedded driver.
        #[arg(long, value_name = "DRIVER")]
        volumedriver: Option<String>,
        /// Accepted and ignored, as Go dvdcli did.
        #[arg(long, hide = true)]
        volumename: Option<String>,
    },
    /// Print version information.
    Version {
        /// Accepted and ignored, as Go dvdcli did.
        #[arg(long, hide = true)]
        volumedriver: Option<String>,
        /// Accepted and ignored, as Go dvdcli did.
        #[arg(long, hide = true)]
        volumename: Option<String>,
    },
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
        command: Vec<OsString>,
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
            Command::Create { .. } => "create",
            Command::Remove { .. } => "remove",
            Command::Mount { .. } => "mount",
            Command::Unmount { .. } => "unmount",
            Command::Path { .. } => "path",
            Command::Get { .. } => "get",
            Command::List { .. } => "list",
            Command::Version { .. } => "version",
            Command::Exec { .. } => "exec",
            Command::Inspect { .. } => "inspect",
            Command::Recover { .. } => "recover",
        }
    }
}
