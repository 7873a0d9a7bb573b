//! How the fuzz targets read their input bytes, in one place so that the targets and the seed
//! capture (`examples/capture_seeds.rs`) agree on the layouts.
//!
//! | target | input |
//! |---|---|
//! | `grammar_env` | text (lossy UTF-8): one variable a line, `NAME=VALUE` split at the first `=` |
//! | `http_reply` | [`ReplyControl`] (3 bytes), then the raw bytes a plugin sent |
//! | `plugin_reply` | endpoint byte, status (2 bytes, big-endian), then the de-framed body |
//! | `plugin_spec` | kind byte (even: `.spec`, odd: `.json`), then the file's text |
//! | `names_opts` | text: checked as every kind of name, and as option lists (one a line) |
//! | `local_opts` | text: option lists (one a line) for the embedded `local` driver |

use std::io::{self, Read};

use dvdi::config::DEFAULT_MAX_REPLY_BYTES;
use dvdi::plugin::Endpoint;

/// Every endpoint, indexed by an input byte (modulo the length).
pub const ENDPOINTS: [Endpoint; 9] = [
    Endpoint::Activate,
    Endpoint::Create,
    Endpoint::Remove,
    Endpoint::Mount,
    Endpoint::Unmount,
    Endpoint::Path,
    Endpoint::Get,
    Endpoint::List,
    Endpoint::Capabilities,
];

/// The endpoint an input byte stands for.
pub fn endpoint(byte: u8) -> Endpoint {
    ENDPOINTS[usize::from(byte) % ENDPOINTS.len()]
}

/// The byte that stands for `endpoint` (the inverse of [`endpoint`]).
pub fn endpoint_byte(endpoint: Endpoint) -> u8 {
    let i = ENDPOINTS.iter().position(|e| *e == endpoint).unwrap_or(0);
    u8::try_from(i).unwrap_or(0)
}

/// The first three bytes of an `http_reply` input: how the reply reaches the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyControl {
    /// Which endpoint the reply answers (decoded with `decode_reply` when it parses).
    pub endpoint: Endpoint,
    /// Bytes per read when the reply trickles in; 0: one read for everything.
    pub step: usize,
    /// Every other read fails with `Interrupted` first (the reader must retry).
    pub interrupt: bool,
    /// The reply-size cap.
    pub max_body: usize,
}

impl ReplyControl {
    /// Splits an input into its control bytes and the reply; `None` when it is too short.
    pub fn split(data: &[u8]) -> Option<(ReplyControl, &[u8])> {
        let (&[e, s, m], reply) = data.split_first_chunk::<3>()?;
        let control = ReplyControl {
            endpoint: endpoint(e),
            step: usize::from(s & 0x7f),
            interrupt: s & 0x80 != 0,
            // The cap is a setting (`max_reply_bytes`), so any value is possible: the default,
            // no cap at all, and small ones so that the "too large" paths are reachable.
            max_body: match m {
                0 => DEFAULT_MAX_REPLY_BYTES,
                1 => usize::MAX,
                n => usize::from(n - 2) * 16,
            },
        };
        Some((control, reply))
    }

    /// The control bytes for an input (the inverse of [`ReplyControl::split`] for the caps it
    /// can express: the default cap, no cap, or a multiple of 16 up to 4048).
    pub fn bytes(&self) -> [u8; 3] {
        let m = match self.max_body {
            DEFAULT_MAX_REPLY_BYTES => 0,
            usize::MAX => 1,
            n => u8::try_from(n / 16 + 2).unwrap_or(0),
        };
        let s =
            u8::try_from(self.step.min(0x7f)).unwrap_or(0) | if self.interrupt { 0x80 } else { 0 };
        [endpoint_byte(self.endpoint), s, m]
    }
}

/// A connection that delivers `data` a few bytes at a time, as a slow or fragmenting peer
/// would, optionally interrupting every other read.
#[derive(Debug)]
pub struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    interrupt: bool,
    interrupted_last: bool,
}

impl<'a> Trickle<'a> {
    pub fn new(data: &'a [u8], step: usize, interrupt: bool) -> Self {
        Trickle {
            data,
            step: step.max(1),
            interrupt,
            interrupted_last: false,
        }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.interrupt && !self.interrupted_last {
            self.interrupted_last = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted_last = false;
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The `(name, value)` pairs of a `grammar_env` input.
pub fn env_pairs(text: &str) -> Vec<(&str, &str)> {
    text.split('\n')
        .map(|line| line.split_once('=').unwrap_or((line, "")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_round_trip() {
        for c in [
            ReplyControl {
                endpoint: Endpoint::Get,
                step: 0,
                interrupt: false,
                max_body: DEFAULT_MAX_REPLY_BYTES,
            },
            ReplyControl {
                endpoint: Endpoint::Capabilities,
                step: 7,
                interrupt: true,
                max_body: usize::MAX,
            },
            ReplyControl {
                endpoint: Endpoint::Activate,
                step: 1,
                interrupt: false,
                max_body: 64,
            },
        ] {
            let bytes = c.bytes();
            assert_eq!(ReplyControl::split(&bytes), Some((c, &[][..])));
        }
    }

    #[test]
    fn trickle_delivers_everything_in_steps() {
        let mut t = Trickle::new(b"abcdefg", 3, true);
        let mut out = Vec::new();
        let mut buf = [0u8; 16];
        loop {
            match t.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    assert!(n <= 3);
                    out.extend_from_slice(&buf[..n]);
                }
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::Interrupted),
            }
        }
        assert_eq!(out, b"abcdefg");
    }
}
