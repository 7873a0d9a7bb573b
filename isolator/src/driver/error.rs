//! [`DriverError`]: a failed driver call, told by what happened to it ([`Outcome`]) — the one
//! thing the callers above the trait decide on. Which implementation failed, and how, is its
//! `cause`: kept for its text, never matched on.

use std::fmt;

/// What happened to a failed driver call: above all, whether the driver may have acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The driver answered no: it did nothing (bad options, volume in use, a plugin's error
    /// reply to anything but `Unmount`).
    Refused,
    /// The driver answered that there is no such volume: it did nothing.
    NoSuchVolume,
    /// The driver answered that it does not hold that volume for that mount id (an `Unmount`
    /// of an id it does not know — for a plugin, which cannot say why, any refused `Unmount`).
    /// It did nothing; trusted as "not mounted" only for a mount an interrupted operation left
    /// uncertain.
    NotHeld,
    /// The call never reached the driver (nothing listening, no socket or spec, a bad spec, an
    /// address that is no volume driver): it did nothing.
    Unreachable,
    /// The call went out and no usable answer came back (a timeout, a cut, garbled or too
    /// large reply, a `Mount` whose mount point failed its checks and whose undo failed): the
    /// driver may have acted.
    NoAnswer,
    /// The driver failed on its own side and undid what it had done (the `local` driver's host
    /// I/O, an unreadable record; a plugin `Mount` whose mount point failed its checks and was
    /// undone): nothing of the call is left, but it was no answer about the volume.
    Failed,
}

/// The driver operation a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Finding the driver for a name (plugin discovery), before any call.
    Resolve,
    Activate,
    Create,
    Remove,
    Mount,
    Unmount,
    Path,
    Get,
    List,
    Capabilities,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Resolve => "Resolve",
            Operation::Activate => "Activate",
            Operation::Create => "Create",
            Operation::Remove => "Remove",
            Operation::Mount => "Mount",
            Operation::Unmount => "Unmount",
            Operation::Path => "Path",
            Operation::Get => "Get",
            Operation::List => "List",
            Operation::Capabilities => "Capabilities",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The implementation's own error, kept for its text.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed driver call: what happened ([`Outcome`]), to which driver and operation, and the
/// implementation's own error as its `cause`.
///
/// The message is the cause's, said once: every implementation's error already names its
/// driver, the operation (its endpoint) and the volume in its own words, so repeating them here
/// would print them twice. The cause is interpolated, not a `source`, so `{err:#}` chains
/// never repeat it.
#[derive(Debug, thiserror::Error)]
#[error("{cause}")]
pub struct DriverError {
    outcome: Outcome,
    driver: String,
    operation: Operation,
    cause: Cause,
}

impl DriverError {
    pub fn new(
        outcome: Outcome,
        driver: impl Into<String>,
        operation: Operation,
        cause: impl Into<Cause>,
    ) -> Self {
        Self {
            outcome,
            driver: driver.into(),
            operation,
            cause: cause.into(),
        }
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The driver's name.
    pub fn driver(&self) -> &str {
        &self.driver
    }

    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The implementation's own error (for its text, or a test's downcast).
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.cause.as_ref()
    }

    pub fn into_cause(self) -> Cause {
        self.cause
    }

    /// The driver answered and said no ([`Outcome::Refused`], [`Outcome::NoSuchVolume`],
    /// [`Outcome::NotHeld`]): it was reached, and did nothing. `mount` treats such an answer
    /// to `Get` as "no such volume".
    pub fn is_refusal(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Refused | Outcome::NoSuchVolume | Outcome::NotHeld
        )
    }

    /// The driver may have acted although the call failed ([`Outcome::NoAnswer`]).
    pub fn may_have_acted(&self) -> bool {
        self.outcome == Outcome::NoAnswer
    }

    /// The driver answered that it holds no mount of the volume for the id given
    /// ([`Outcome::NotHeld`], [`Outcome::NoSuchVolume`]).
    pub fn is_not_held(&self) -> bool {
        matches!(self.outcome, Outcome::NotHeld | Outcome::NoSuchVolume)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("driver \"d\": Mount of \"v\": disk on fire")]
    struct Inner;

    #[test]
    fn the_message_is_the_cause_said_once() {
        let e = DriverError::new(Outcome::NoAnswer, "d", Operation::Mount, Inner);
        assert_eq!(e.to_string(), "driver \"d\": Mount of \"v\": disk on fire");
        assert!(std::error::Error::source(&e).is_none());
        assert!(e.may_have_acted() && !e.is_refusal() && !e.is_not_held());
        assert_eq!((e.driver(), e.operation()), ("d", Operation::Mount));
        assert!(e.into_cause().downcast::<Inner>().is_ok());
    }

    #[test]
    fn only_an_answer_is_a_refusal_and_only_no_answer_may_have_acted() {
        for (outcome, refusal, acted) in [
            (Outcome::Refused, true, false),
            (Outcome::NoSuchVolume, true, false),
            (Outcome::NotHeld, true, false),
            (Outcome::Unreachable, false, false),
            (Outcome::NoAnswer, false, true),
            (Outcome::Failed, false, false),
        ] {
            let e = DriverError::new(outcome, "d", Operation::Get, Inner);
            assert_eq!(
                (e.is_refusal(), e.may_have_acted()),
                (refusal, acted),
                "{outcome:?}"
            );
        }
    }
}
