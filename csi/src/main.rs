//! `dvdi-csi`: makes one operation's CSI v1 calls for the dvdi library and exits.
//!
//! The library (`dvdi::csi`) runs this program with one JSON [`Request`] on stdin and reads
//! one JSON [`Reply`] from stdout: the only place the gRPC stack lives, so `dvdcli` and the
//! cdylib stay within their size targets. Nothing is kept between runs; every call is
//! idempotent (CSI spec), so an operation may always be run again.
//!
//! Every call has its own deadline (the request's, from the settings table), and a call that
//! got no answer — its deadline passed, or the connection broke — is sent once more on a new
//! connection (`retries`), since CSI calls may be repeated safely. A `publish` that fails part
//! way undoes what it did, in reverse order, so that a failed mount leaves nothing staged or
//! published.

mod calls;

use std::io::{Read, Write};

use dvdi::csi::wire::{CallError, ErrorKind, Outcome, Reply, Request, WIRE_VERSION};

/// The most bytes of request read (secrets and parameters included).
const MAX_REQUEST_BYTES: u64 = 1 << 20;

fn main() {
    // Started by the library, stderr is the volume's lock file, held open so that the lock
    // outlives a caller that dies mid-operation (`dvdi::csi` helper): nothing may be written
    // there, not even a panic's message (the reply says what failed).
    if std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.is_file()) {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let reply = match read_request() {
        Ok(request) => run(request),
        Err(message) => Reply {
            version: WIRE_VERSION,
            calls: Vec::new(),
            result: Outcome::Error(CallError {
                call: "request".into(),
                kind: ErrorKind::Refused,
                code: None,
                message,
                limit_ms: None,
                attempts: 0,
                undone: true,
            }),
        },
    };
    let mut out = serde_json::to_vec(&reply).expect("a reply always encodes");
    out.push(b'\n');
    let mut stdout = std::io::stdout().lock();
    // Nobody to tell if the library went away.
    let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
}

fn read_request() -> Result<Request, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the request: {e}"))?;
    if bytes.len() as u64 > MAX_REQUEST_BYTES {
        return Err("the request is larger than 1 MiB".into());
    }
    // The version first, so a library of another version is told so, not "unknown field".
    let version = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("version").and_then(|v| v.as_u64()));
    if version != Some(u64::from(WIRE_VERSION)) {
        return Err(format!(
            "request format {version:?} is not {WIRE_VERSION}: install matching versions of dvdi and dvdi-csi"
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("unreadable request: {e}"))
}

fn run(request: Request) -> Reply {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return Reply {
                version: WIRE_VERSION,
                calls: Vec::new(),
                result: Outcome::Error(CallError {
                    call: "runtime".into(),
                    kind: ErrorKind::Refused,
                    code: None,
                    message: e.to_string(),
                    limit_ms: None,
                    attempts: 0,
                    undone: true,
                }),
            }
        }
    };
    let mut session = calls::Session::new(request);
    let result = runtime.block_on(session.operation());
    Reply {
        version: WIRE_VERSION,
        calls: session.sent,
        result: match result {
            Ok(done) => Outcome::Ok(done),
            Err(e) => Outcome::Error(e),
        },
    }
}
