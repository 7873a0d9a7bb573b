//! Fault injection: `<state-dir>/faults.json`, read on every RPC, says how to misbehave.
//!
//! The file is a JSON object keyed by RPC name (`"NodeStageVolume"`), each value
//! `{"action": "hang" | "error" | "delay" | "exit", "code": "INTERNAL", "message": "…",
//! "ms": 500, "times": N}`. With `times`, the fault applies N more times; the count left is
//! written back so a restarted plugin carries on counting down, and the entry goes at zero.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::Code;

/// What a fault does to the RPC it is set on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Never answer; the server keeps serving other requests.
    Hang,
    /// Answer with this status instead of handling the call.
    Error { code: Code, message: String },
    /// Wait, then handle the call normally.
    Delay(Duration),
    /// Exit the process without answering, as a crashing plugin would.
    Exit,
}

/// One entry of `faults.json`, as written by the harness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// The whole `faults.json`.
pub type FaultTable = BTreeMap<String, FaultSpec>;

impl FaultSpec {
    /// The action this entry describes; an error names the field that is wrong, so a typo in a
    /// test shows up as a failed RPC that says why rather than as a fault silently not firing.
    pub fn action(&self) -> Result<Action, String> {
        match self.action.as_str() {
            "hang" => Ok(Action::Hang),
            "exit" => Ok(Action::Exit),
            "delay" => Ok(Action::Delay(Duration::from_millis(self.ms.unwrap_or(0)))),
            "error" => {
                let name = self.code.as_deref().unwrap_or("INTERNAL");
                let code = code_from_name(name)
                    .ok_or_else(|| format!("unknown gRPC code {name:?} in faults.json"))?;
                let message = self
                    .message
                    .clone()
                    .unwrap_or_else(|| "injected fault".to_string());
                Ok(Action::Error { code, message })
            }
            other => Err(format!(
                "unknown fault action {other:?} in faults.json (hang, error, delay or exit)"
            )),
        }
    }
}

/// Takes the fault for `rpc` out of `table`, counting down `times`. Returns the fault to apply
/// (if any) and whether `table` changed and must be written back.
pub fn take(table: &mut FaultTable, rpc: &str) -> (Option<FaultSpec>, bool) {
    let Some(spec) = table.get_mut(rpc) else {
        return (None, false);
    };
    match spec.times {
        None => (Some(spec.clone()), false),
        Some(0) => {
            table.remove(rpc);
            (None, true)
        }
        Some(n) => {
            let fired = spec.clone();
            if n == 1 {
                table.remove(rpc);
            } else {
                spec.times = Some(n - 1);
            }
            (Some(fired), true)
        }
    }
}

/// The gRPC code spelled as in the spec (`NOT_FOUND`), the way tests name it.
pub fn code_from_name(name: &str) -> Option<Code> {
    let code = match name {
        "OK" => Code::Ok,
        "CANCELLED" => Code::Cancelled,
        "UNKNOWN" => Code::Unknown,
        "INVALID_ARGUMENT" => Code::InvalidArgument,
        "DEADLINE_EXCEEDED" => Code::DeadlineExceeded,
        "NOT_FOUND" => Code::NotFound,
        "ALREADY_EXISTS" => Code::AlreadyExists,
        "PERMISSION_DENIED" => Code::PermissionDenied,
        "RESOURCE_EXHAUSTED" => Code::ResourceExhausted,
        "FAILED_PRECONDITION" => Code::FailedPrecondition,
        "ABORTED" => Code::Aborted,
        "OUT_OF_RANGE" => Code::OutOfRange,
        "UNIMPLEMENTED" => Code::Unimplemented,
        "INTERNAL" => Code::Internal,
        "UNAVAILABLE" => Code::Unavailable,
        "DATA_LOSS" => Code::DataLoss,
        "UNAUTHENTICATED" => Code::Unauthenticated,
        _ => return None,
    };
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> FaultTable {
        serde_json::from_str(json).expect("valid faults.json")
    }

    #[test]
    fn error_fault_carries_code_and_message() {
        let table =
            parse(r#"{"Probe": {"action": "error", "code": "UNAVAILABLE", "message": "down"}}"#);
        assert_eq!(
            table["Probe"].action(),
            Ok(Action::Error {
                code: Code::Unavailable,
                message: "down".into()
            })
        );
    }

    #[test]
    fn delay_hang_and_exit_parse() {
        let table = parse(
            r#"{"A": {"action": "delay", "ms": 250}, "B": {"action": "hang"}, "C": {"action": "exit"}}"#,
        );
        assert_eq!(
            table["A"].action(),
            Ok(Action::Delay(Duration::from_millis(250)))
        );
        assert_eq!(table["B"].action(), Ok(Action::Hang));
        assert_eq!(table["C"].action(), Ok(Action::Exit));
    }

    #[test]
    fn unknown_action_and_code_are_named() {
        let table =
            parse(r#"{"A": {"action": "explode"}, "B": {"action": "error", "code": "OOPS"}}"#);
        assert!(table["A"].action().unwrap_err().contains("\"explode\""));
        assert!(table["B"].action().unwrap_err().contains("\"OOPS\""));
    }

    #[test]
    fn times_counts_down_then_removes_the_entry() {
        let mut table = parse(r#"{"Probe": {"action": "hang", "times": 2}}"#);
        let (fired, changed) = take(&mut table, "Probe");
        assert!(fired.is_some() && changed);
        assert_eq!(table["Probe"].times, Some(1));
        let (fired, changed) = take(&mut table, "Probe");
        assert!(fired.is_some() && changed);
        assert!(!table.contains_key("Probe"));
        assert_eq!(take(&mut table, "Probe"), (None, false));
    }

    #[test]
    fn without_times_a_fault_stays() {
        let mut table = parse(r#"{"Probe": {"action": "exit"}}"#);
        assert!(take(&mut table, "Probe").0.is_some());
        assert!(take(&mut table, "Probe").0.is_some());
        assert_eq!(take(&mut table, "NodeGetInfo"), (None, false));
    }
}
