//! Faults a test can inject into the plugin's replies, and the table that decides which
//! fault, if any, the next request on an endpoint gets.

use std::collections::HashMap;
use std::time::Duration;

/// The endpoint pattern that matches every request (an exact endpoint takes precedence).
pub const ANY_ENDPOINT: &str = "*";

/// One way for the plugin to misbehave on a request.
///
/// Faults that only change *how* a normal answer travels (`Delay`, `Chunked`,
/// `CloseDelimited`, `Huge`) still perform the call, so the volume state changes as it would
/// without the fault. Every other fault fails the call and leaves the volume state untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 200 with `{"Err": text}`.
    ErrorIn200(String),
    /// An arbitrary status and raw body, e.g. 500 with `{"Err":"…"}` or 404 with an HTML page.
    Status {
        code: u16,
        body: String,
        content_type: String,
    },
    /// Wait this long (interrupted when the plugin is dropped), then answer normally.
    Delay(Duration),
    /// Read the request and never answer; the connection closes when the plugin is dropped.
    Hang,
    /// Answer normally, with `Transfer-Encoding: chunked` and the body split in several chunks.
    Chunked,
    /// Answer normally without `Content-Length` and close the connection after the body.
    CloseDelimited,
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// Answer normally, padded with a `"Padding"` string field to about this many bytes.
    Huge(usize),
    /// Announce a `Content-Length` larger than the body, send part of it, then close.
    CutMidBody,
    /// Answer `{"Implements":["NetworkDriver"]}` (meant for `Plugin.Activate`).
    NotVolumeDriver,
    /// Close the connection without answering.
    DropConnection,
    /// Answer normally, with two `Content-Length` headers: a wrong one (the body's length plus
    /// 16), then the right one. A client reading the last one gets the right body; RFC 9112
    /// §6.3 makes it a framing error.
    ConflictingLengths,
    /// Answer normally (the call is performed), with the reply's `Mountpoint` replaced by this
    /// text: the top-level one (`Mount`, `Path`) or the volume's (`Get`).
    Mountpoint(String),
    /// Answer a `List` with volumes of these names (the call changes nothing).
    ListNames(Vec<String>),
}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    /// `None`: every request; `Some(n)`: the next `n` requests.
    remaining: Option<usize>,
}

/// Faults by endpoint (`"VolumeDriver.Mount"`, `"Plugin.Activate"`, or [`ANY_ENDPOINT`]).
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    armed: HashMap<String, Armed>,
}

/// `"/VolumeDriver.Mount"` and `"VolumeDriver.Mount"` name the same endpoint.
pub(crate) fn normalize_endpoint(endpoint: &str) -> &str {
    endpoint.strip_prefix('/').unwrap_or(endpoint)
}

impl FaultTable {
    /// Arms `fault` for `endpoint`, replacing any fault armed there; `times: Some(0)` disarms.
    pub(crate) fn set(&mut self, endpoint: &str, fault: Fault, times: Option<usize>) {
        let endpoint = normalize_endpoint(endpoint).to_owned();
        if times == Some(0) {
            self.armed.remove(&endpoint);
        } else {
            self.armed.insert(
                endpoint,
                Armed {
                    fault,
                    remaining: times,
                },
            );
        }
    }

    pub(crate) fn clear(&mut self) {
        self.armed.clear();
    }

    /// The fault for this request on `endpoint`, counting it against its remaining uses.
    pub(crate) fn take(&mut self, endpoint: &str) -> Option<Fault> {
        if self.armed.is_empty() {
            return None;
        }
        let key = if self.armed.contains_key(endpoint) {
            endpoint
        } else {
            ANY_ENDPOINT
        };
        let armed = self.armed.get_mut(key)?;
        let fault = armed.fault.clone();
        match &mut armed.remaining {
            None => {}
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.armed.remove(key);
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out_and_persistent_ones_do_not() {
        let mut table = FaultTable::default();
        table.set("/VolumeDriver.Mount", Fault::Hang, Some(2));
        table.set("VolumeDriver.Get", Fault::Malformed, None);
        assert_eq!(table.take("VolumeDriver.Mount"), Some(Fault::Hang));
        assert_eq!(table.take("VolumeDriver.Mount"), Some(Fault::Hang));
        assert_eq!(table.take("VolumeDriver.Mount"), None);
        for _ in 0..5 {
            assert_eq!(table.take("VolumeDriver.Get"), Some(Fault::Malformed));
        }
        table.clear();
        assert_eq!(table.take("VolumeDriver.Get"), None);
    }

    #[test]
    fn exact_endpoint_wins_over_wildcard_and_zero_times_disarms() {
        let mut table = FaultTable::default();
        table.set(ANY_ENDPOINT, Fault::DropConnection, None);
        table.set("VolumeDriver.List", Fault::Chunked, None);
        assert_eq!(table.take("VolumeDriver.List"), Some(Fault::Chunked));
        assert_eq!(table.take("Plugin.Activate"), Some(Fault::DropConnection));
        table.set(ANY_ENDPOINT, Fault::DropConnection, Some(0));
        assert_eq!(table.take("Plugin.Activate"), None);
    }
}
