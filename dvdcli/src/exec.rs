//! `dvdcli exec -- CMD…` (SPEC §8): prepare the volumes named by `DVDI_VOLUME_*` in our own
//! environment exactly as the agent would, run CMD in a private mount namespace with the
//! volumes at their container paths, and release them when CMD exits.
//!
//! The container is registered in the host's isolator checkpoint with this process as its
//! holder (pid + start time, also in its id `dvdcli-exec-<pid>-<start time>`). CMD dies with us
//! (`PR_SET_PDEATHSIG`), so if we are killed outright, the next dvdcli that touches the
//! checkpoint finds the holder gone and releases the volumes — from the record's file name
//! alone when the record is damaged. The isolator is dropped before the process exits, which
//! deletes the temp files its ledger kept: [`run`] returns CMD's status to `main` only after
//! the isolator has gone out of scope. Signals meant for us (INT, TERM, HUP, QUIT) are passed
//! on to CMD, and we clean up after it exits however it ended. The exit status is CMD's
//! (128 + signal when killed).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};

use anyhow::Context;
use dvdi::holder::Holder;
use dvdi::sys::{self, TaskSetup};
use dvdi::{ContainerConfig, ContainerId, LaunchInfo};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

use crate::isolator_env::isolator_from_env;

/// Signals passed on to CMD.
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Runs CMD with its volumes and gives its exit status, once the volumes are released and the
/// isolator dropped.
pub fn run(command: &[OsString]) -> anyhow::Result<ExitCode> {
    let status = with_volumes(command)?;
    // An exit status is 0..=255 (128 + signal included); anything else is our failure.
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(1)))
}

fn with_volumes(command: &[OsString]) -> anyhow::Result<i32> {
    let isolator = isolator_from_env()?;
    let reaped = isolator.reap_dead_holders()?;
    for e in &reaped.errors {
        eprintln!("dvdcli: warning: releasing a dead dvdcli exec's volumes: {e}");
    }
    for e in &reaped.repair.errors {
        eprintln!("dvdcli: warning: repairing the checkpoint: {e}");
    }
    let holder = Holder::current().context("cannot read this process's start time")?;
    // The id names the holder, so even a damaged record of it is reaped once it is gone.
    let id = ContainerId::new(&holder.exec_container_id())?;
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let config = ContainerConfig {
        env,
        sandbox: std::env::current_dir().context("cannot read the current directory")?,
        user: None,
        rootfs: None,
        holder: Some(holder),
        docker_volumes: Vec::new(),
    };
    let launch = isolator.prepare(&id, &config)?;
    if launch.is_none() {
        eprintln!(
            "dvdcli: exec: no DVDI_VOLUME_* variables in the environment; running without volumes"
        );
    }
    let outcome = run_command(command, launch);
    let cleanup = isolator.cleanup(&id);
    let status = outcome?;
    if let Err(e) = cleanup {
        eprintln!("dvdcli: exec: releasing the volumes failed: {e}");
        return Ok(if status == 0 { 1 } else { status });
    }
    Ok(status)
}

/// Runs CMD (in its launch namespace) and waits for it, passing our signals on.
fn run_command(command: &[OsString], launch: Option<LaunchInfo>) -> anyhow::Result<i32> {
    let mut signals = SigSet::empty();
    for s in FORWARDED {
        signals.add(s);
    }
    signals.add(Signal::SIGCHLD);
    // Blocked before the child exists, so neither its exit nor a forwarded signal is missed.
    signals.thread_block().context("cannot block signals")?;
    let (program, args) = command.split_first().context("no command given")?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    let setup = TaskSetup {
        die_with_parent: true,
        unblock: Some(signals),
        ..launch
            .as_ref()
            .map(LaunchInfo::task_setup)
            .unwrap_or_default()
    };
    sys::set_task_setup(&mut cmd, setup).context("cannot prepare the command's launch")?;
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {program:?}"))?;
    let pid = Pid::from_raw(child.id() as i32);
    let status = loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(status) = child.try_wait().context("waiting for the command")? {
                    break status;
                }
            }
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
            Err(e) => return Err(e).context("waiting for signals"),
        }
    };
    let _ = signals.thread_unblock();
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
