//! The `dvdcli` the `.deb` ships as /usr/bin/dvdcli is built without CSI (the library's `csi`
//! feature): its 190 KB of code, never run by a Docker-plugin or `local` mount, spread the
//! pages every mount touches and cost the benchmark's mount + unmount row a sixth of its time
//! (BENCHMARKS.md, issue 13). On a host whose `csi_config_dir` holds a plugin file, such a
//! `dvdcli` hands every command that reaches a driver to `dvdcli-csi` — the same program
//! built with CSI, installed beside the `dvdi-csi` program (`csi_client`) — by `exec`, with
//! the same arguments and environment: Mesos, scripts and the exit status see one `dvdcli`.
//!
//! A host without CSI plugin files pays one failed `openat` of the directory.

use std::ffi::OsString;

use crate::output::Failure;

/// `exec`s `dvdcli-csi` when this build has no CSI and the host configures a CSI plugin
/// (`Settings::csi_handoff`); returns when there is nothing to hand over (or the environment's
/// settings are bad: the command then reports them), and fails (naming both paths) when the
/// exec does.
pub fn hand_off_if_needed(args: &[OsString]) -> Result<(), Failure> {
    if dvdi::CSI_BUILT_IN {
        return Ok(());
    }
    let Ok(settings) = dvdi::Settings::from_env() else {
        return Ok(());
    };
    let Some(full) = settings.csi_handoff() else {
        return Ok(());
    };
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(&full)
        .args(args.iter().skip(1))
        .exec();
    Err(Failure::Run(anyhow::anyhow!(
        "{} configures CSI plugins, which this dvdcli hands to {}: {error}",
        settings.csi_config_dir.display(),
        full.display()
    )))
}
