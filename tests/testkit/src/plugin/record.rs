//! The plugin's call history: in memory for tests in the same process, and optionally as
//! JSON lines in a file for tests that watch a plugin process (even across its restarts).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// One request the plugin received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `"Plugin.Activate"`, `"VolumeDriver.Mount"`, …: the request path without its `/`.
    pub endpoint: String,
    /// The request body as JSON; `Null` when it was empty.
    pub body: Value,
    /// When the call was recorded: after its request was read, before it was answered.
    pub at: Instant,
}

/// One line of the record file: `{"endpoint":…,"body":…,"pid":…,"t_ms":…}`, where `t_ms`
/// is milliseconds since the Unix epoch (comparable across plugin processes).
#[derive(Serialize)]
struct FileLine<'a> {
    endpoint: &'a str,
    body: &'a Value,
    pid: u32,
    t_ms: u128,
}

/// Where calls are recorded.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// `None` when in-memory recording is off (a long-running plugin process).
    calls: Option<Vec<Call>>,
    file: Option<File>,
    line: Vec<u8>,
    pid: u32,
}

impl Recorder {
    /// `keep_calls`: remember calls in memory; `file`: append one JSON line per call.
    pub(crate) fn new(keep_calls: bool, file: Option<&Path>) -> io::Result<Self> {
        let file = match file {
            Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
            None => None,
        };
        Ok(Recorder {
            calls: keep_calls.then(Vec::new),
            file,
            line: Vec::with_capacity(256),
            pid: std::process::id(),
        })
    }

    /// Records a call. The file line is written with a single `write` on an `O_APPEND`
    /// descriptor before this returns, so it is in the file before the plugin replies and
    /// survives the plugin being killed.
    pub(crate) fn record(&mut self, endpoint: &str, body: &Value) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            let t_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            self.line.clear();
            let entry = FileLine {
                endpoint,
                body,
                pid: self.pid,
                t_ms,
            };
            serde_json::to_writer(&mut self.line, &entry)?;
            self.line.push(b'\n');
            file.write_all(&self.line)?;
        }
        if let Some(calls) = &mut self.calls {
            calls.push(Call {
                endpoint: endpoint.to_owned(),
                body: body.clone(),
                at: Instant::now(),
            });
        }
        Ok(())
    }

    pub(crate) fn calls(&self) -> &[Call] {
        self.calls.as_deref().unwrap_or_default()
    }
}
