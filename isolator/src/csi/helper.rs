//! Running the `dvdi-csi` program: one operation per process, the [`Request`] on its stdin,
//! the [`Reply`] on its stdout, an empty environment, and a bound on its life.
//!
//! The program enforces each call's deadline itself; the bound here is the backstop for a
//! program that is wedged or gone astray: every call of the longest operation, each attempt at
//! its longest deadline, and a margin. Past it the program is killed and the operation is "no
//! answer" (it may have made calls), which the ledger treats like a plugin's timeout.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::CsiError;
use super::wire::{self, Done, Reply, Request, MAX_REPLY_BYTES, WIRE_VERSION};
use crate::render;

/// The most CSI calls one operation sends, undo included: three identity calls, two capability
/// calls, `NodeGetInfo`, three publish calls and their three undo calls.
const MAX_CALLS: u64 = 12;

/// How long the program may live for `request`.
#[cold]
pub fn bound(request: &Request) -> Duration {
    let d = request.deadlines;
    let longest = d.create_ms.max(d.mount_ms).max(d.other_ms);
    let attempts = 1 + u64::from(request.retries);
    let ms = MAX_CALLS
        .saturating_mul(attempts)
        .saturating_mul(longest.saturating_add(d.connect_ms));
    Duration::from_millis(ms.saturating_add(5_000))
}

/// Which of the plugin's endpoints a call goes to (for the error's text).
#[cold]
fn endpoint_of(request: &Request, call: &str) -> String {
    let controller =
        call.starts_with("Controller") || matches!(call, "CreateVolume" | "DeleteVolume");
    match (&request.controller, controller) {
        (Some(c), true) => c.to_string(),
        _ => request.node.to_string(),
    }
}

/// Runs one operation. `lock`, the volume's lock when the operation has one, is inherited by
/// the program, so that if this process dies while the program's calls are under way the
/// volume stays locked until they are over: the next operation on it (recover's Unmount) then
/// waits for them instead of racing them (the CSI spec asks for one call in flight per volume).
///
/// The lock goes over as the program's stderr (a duplicate of the locked descriptor: the same
/// open file, so the same flock), which the program never writes to. A descriptor handed as
/// stdio lets std start the program with `posix_spawn` (a `vfork`), where a `pre_exec` hook
/// that cleared close-on-exec forced a `fork`, copying the page tables of the whole agent.
#[cold]
pub fn run(
    helper: &Path,
    request: &Request,
    lock: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<Done, CsiError> {
    let failed = |reason: String, started: bool| CsiError::Helper {
        driver: request.driver.clone(),
        helper: helper.to_owned(),
        reason,
        started,
    };
    let input = serde_json::to_vec(request).map_err(|e| failed(e.to_string(), false))?;
    let stderr = match lock.map(|fd| fd.try_clone_to_owned()).transpose() {
        Ok(Some(fd)) => Stdio::from(fd),
        Ok(None) => Stdio::null(),
        Err(e) => {
            return Err(failed(
                format!("cannot hand it the volume's lock: {e}"),
                false,
            ))
        }
    };
    let mut child = Command::new(helper)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| failed(format!("cannot run the CSI client program: {e}"), false))?;
    let deadline = Instant::now() + bound(request);
    // The request is a few KiB: it fits the pipe, and the program reads it whole first.
    let wrote = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&input))
        .unwrap_or(Ok(()));
    crate::fault::point("csi.program_running");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let read = wrote.and_then(|()| read_until(&mut stdout, deadline));
    let output = match read {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(
                format!(
                    "still running after {} (the deadlines of every call of the operation together); killed",
                    render::duration(bound(request))
                ),
                true,
            ));
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(format!("reading its reply: {e}"), true));
        }
    };
    let status = child.wait().map_err(|e| failed(e.to_string(), true))?;
    let reply: Reply = match serde_json::from_slice(&output) {
        Ok(r) => r,
        Err(_) if output.is_empty() => {
            return Err(failed(format!("exited ({status}) without a reply"), true))
        }
        Err(e) => return Err(failed(format!("unreadable reply ({status}): {e}"), true)),
    };
    if reply.version != WIRE_VERSION {
        return Err(failed(
            format!(
                "replied in format {} (this library reads {WIRE_VERSION}): install matching versions",
                reply.version
            ),
            true,
        ));
    }
    match reply.result {
        wire::Outcome::Ok(done) => Ok(done),
        wire::Outcome::Error(error) => Err(CsiError::Call {
            driver: request.driver.clone(),
            endpoint: endpoint_of(request, &error.call),
            volume: request.volume.clone(),
            error: Box::new(error),
        }),
    }
}

/// Reads `pipe` to its end, or `None` if `deadline` passes first. At most
/// [`MAX_REPLY_BYTES`] are kept; more is an error.
#[cold]
fn read_until(
    pipe: &mut std::process::ChildStdout,
    deadline: Instant,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match crate::sys::poll_readable_within(pipe.as_fd(), left) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        match pipe.read(&mut buf) {
            Ok(0) => return Ok(Some(out)),
            Ok(k) => {
                out.extend_from_slice(&buf[..k]);
                if out.len() > MAX_REPLY_BYTES {
                    return Err(std::io::Error::other(format!(
                        "reply larger than {MAX_REPLY_BYTES} bytes"
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
