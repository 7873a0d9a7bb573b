//! `CsiError`: every way a CSI volume operation fails, each naming the driver (the operator's
//! name for the plugin), the volume and, for a call, the CSI call and its limit; and how each
//! maps onto the trait's [`Outcome`].

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::config::ConfigError;
use super::wire::{CallError, ErrorKind};
use crate::driver::{DriverError, Operation, Outcome};
use crate::render;

#[derive(Debug, thiserror::Error)]
pub enum CsiError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("CSI plugin {driver:?}: volume {volume:?}: option {key}: {reason}")]
    BadOption {
        driver: String,
        volume: String,
        key: String,
        reason: String,
    },
    #[error(
        "CSI plugin {driver:?}: volume {volume:?} is not known on this host (create it first)"
    )]
    NoSuchVolume { driver: String, volume: String },
    #[error("CSI plugin {driver:?}: volume {volume:?} has no user {id:?}")]
    UnknownUser {
        driver: String,
        volume: String,
        id: String,
    },
    #[error("CSI plugin {driver:?}: volume {volume:?} is in use on this host ({users} mount(s), or a release still to be retried)")]
    InUse {
        driver: String,
        volume: String,
        users: usize,
    },
    #[error("CSI volume {volume:?}: cannot {action} {}: {cause}", .path.display())]
    Io {
        volume: String,
        action: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("CSI volume {volume:?}: record {} is unreadable: {reason}", .path.display())]
    Corrupt {
        volume: String,
        path: PathBuf,
        reason: String,
    },
    /// The `dvdi-csi` program could not be run, or gave no usable reply.
    #[error("CSI plugin {driver:?}: {}: {reason}", .helper.display())]
    Helper {
        driver: String,
        helper: PathBuf,
        reason: String,
        /// Whether the program may have made calls (it ran, and its reply is missing).
        started: bool,
    },
    /// A CSI call failed.
    #[error("{}", CallText { driver, endpoint, volume, error })]
    Call {
        driver: String,
        endpoint: String,
        volume: String,
        error: Box<CallError>,
    },
    #[error("{error}; writing the volume's users record failed too: {cleanup}")]
    WithCleanup {
        error: Box<CsiError>,
        cleanup: Box<CsiError>,
    },
}

struct CallText<'a> {
    driver: &'a str,
    endpoint: &'a str,
    volume: &'a str,
    error: &'a CallError,
}

impl fmt::Display for CallText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let CallText {
            driver,
            endpoint,
            volume,
            error: e,
        } = self;
        write!(f, "CSI plugin {driver:?} ({}): ", render::escape(endpoint))?;
        // The identity calls of `activate` are about no volume.
        let volume = if volume.is_empty() {
            String::new()
        } else {
            format!(" of {volume:?}")
        };
        let attempts = if e.attempts > 1 {
            format!(" ({} attempts)", e.attempts)
        } else {
            String::new()
        };
        // Every word of the reply is the program's, relaying a plugin: the call's name and the
        // code are escaped like the message (found by the `csi_files` fuzz target).
        let call = render::escape(&e.call);
        match e.kind {
            ErrorKind::Unreachable => write!(
                f,
                "{call}{volume}: cannot connect{attempts}: {}",
                render::escape(&e.message)
            )?,
            ErrorKind::Timeout => write!(
                f,
                "{call}{volume} got no answer within {}{attempts}",
                render::duration(Duration::from_millis(e.limit_ms.unwrap_or(0)))
            )?,
            ErrorKind::Status => write!(
                f,
                "{call}{volume} failed: {}: {}",
                render::escape(e.code.as_deref().unwrap_or("UNKNOWN")),
                render::escape(&e.message)
            )?,
            ErrorKind::NoAnswer => write!(
                f,
                "{call}{volume}: no usable answer{attempts}: {}",
                render::escape(&e.message)
            )?,
            ErrorKind::Refused => write!(f, "{call}: {}", render::escape(&e.message))?,
        }
        let answered = !matches!(e.kind, ErrorKind::Timeout | ErrorKind::NoAnswer);
        if answered && !e.undone {
            f.write_str("; the calls before it could not all be undone, so the volume may be left staged or published (its unmount retries the release)")?;
        }
        Ok(())
    }
}

impl CsiError {
    /// The plugin may have acted although the operation failed: a call got no answer, or an
    /// undo failed, or the program's reply is missing.
    pub fn may_have_acted(&self) -> bool {
        self.outcome() == Outcome::NoAnswer
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            CsiError::Config(_) => Outcome::Unreachable,
            CsiError::BadOption { .. } | CsiError::InUse { .. } => Outcome::Refused,
            CsiError::NoSuchVolume { .. } => Outcome::NoSuchVolume,
            CsiError::UnknownUser { .. } => Outcome::NotHeld,
            CsiError::Io { .. } | CsiError::Corrupt { .. } => Outcome::Failed,
            CsiError::Helper { started, .. } => {
                if *started {
                    Outcome::NoAnswer
                } else {
                    Outcome::Unreachable
                }
            }
            CsiError::Call { error, .. } => match (error.kind, error.undone) {
                (_, false) => Outcome::NoAnswer,
                (ErrorKind::Unreachable, true) => Outcome::Unreachable,
                (ErrorKind::Status, true) if error.code.as_deref() == Some("NOT_FOUND") => {
                    Outcome::NoSuchVolume
                }
                (ErrorKind::Status | ErrorKind::Refused, true) => Outcome::Refused,
                // No answer, but whatever the operation did was undone.
                (ErrorKind::Timeout | ErrorKind::NoAnswer, true) => Outcome::Failed,
            },
            CsiError::WithCleanup { error, .. } => match error.outcome() {
                Outcome::NoAnswer => Outcome::NoAnswer,
                _ => Outcome::Failed,
            },
        }
    }

    pub fn into_driver_error(self, operation: Operation) -> DriverError {
        let driver = match &self {
            CsiError::Config(
                ConfigError::Read { driver, .. } | ConfigError::Bad { driver, .. },
            )
            | CsiError::BadOption { driver, .. }
            | CsiError::NoSuchVolume { driver, .. }
            | CsiError::UnknownUser { driver, .. }
            | CsiError::InUse { driver, .. }
            | CsiError::Helper { driver, .. }
            | CsiError::Call { driver, .. } => driver.clone(),
            _ => String::new(),
        };
        DriverError::new(self.outcome(), driver, operation, self)
    }
}
