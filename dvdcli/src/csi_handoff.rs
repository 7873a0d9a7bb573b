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
use std::path::PathBuf;

use crate::output::Failure;

/// `exec`s `dvdcli-csi` when this build has no CSI and the host configures a CSI plugin;
/// returns when there is nothing to hand over, and fails (naming both paths) when the exec
/// does.
pub fn hand_off_if_needed(args: &[OsString]) -> Result<(), Failure> {
    if dvdi::CSI_BUILT_IN {
        return Ok(());
    }
    let setting = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let dir = setting("DVDI_CSI_CONFIG_DIR", dvdi::config::DEFAULT_CSI_CONFIG_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let has_plugin = entries
        .flatten()
        .any(|e| e.file_name().as_encoded_bytes().ends_with(b".json"));
    if !has_plugin {
        return Ok(());
    }
    let full =
        setting("DVDI_CSI_CLIENT", dvdi::config::DEFAULT_CSI_CLIENT).with_file_name("dvdcli-csi");
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(&full)
        .args(args.iter().skip(1))
        .exec();
    Err(Failure::Run(anyhow::anyhow!(
        "{} configures CSI plugins, which this dvdcli hands to {}: {error}",
        dir.display(),
        full.display()
    )))
}
