//! The `dvdi-csi` program's own edge: whatever arrives on stdin, one JSON reply on stdout and
//! exit status 0 — a request of another format or garbage is refused by name, never a panic.

use std::io::Write;
use std::process::{Command, Stdio};

use dvdi::csi::wire::{ErrorKind, Outcome, Reply};

fn run(input: &[u8]) -> Reply {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dvdi-csi"))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bad_requests_get_a_reply_naming_what_is_wrong() {
    for (input, words) in [
        (&b""[..], "request format None"),
        (b"{}", "request format None"),
        (b"not json", "request format None"),
        (br#"{"version":2}"#, "request format Some(2) is not 1"),
        (br#"{"version":1}"#, "unreadable request"),
        (
            br#"{"version":1,"op":"probe","unknown":1}"#,
            "unreadable request",
        ),
    ] {
        let reply = run(input);
        assert!(reply.calls.is_empty());
        match reply.result {
            Outcome::Error(e) => {
                assert_eq!(e.kind, ErrorKind::Refused);
                assert!(e.message.contains(words), "{words}: {}", e.message);
                assert!(e.undone, "nothing was sent");
            }
            Outcome::Ok(_) => panic!("{input:?} was accepted"),
        }
    }
}

#[test]
fn a_plugin_that_is_not_there_is_unreachable_after_the_connect_window() {
    let request = serde_json::json!({
        "version": 1, "op": "probe", "driver": "d", "plugin_name": null,
        "node": {"unix": "/nonexistent/csi.sock"}, "controller": null, "volume": "",
        "volume_id": null, "capability": {"fs_type": null, "read_only": false},
        "capacity": null, "staging_path": null, "target_path": null,
        "deadlines": {"connect_ms": 300, "create_ms": 100, "mount_ms": 100, "other_ms": 100},
        "retries": 1
    });
    let started = std::time::Instant::now();
    let reply = run(request.to_string().as_bytes());
    let elapsed = started.elapsed();
    assert!(
        reply.calls.is_empty(),
        "no call was sent: {:?}",
        reply.calls
    );
    match reply.result {
        Outcome::Error(e) => {
            assert_eq!(
                (e.kind, e.call.as_str()),
                (ErrorKind::Unreachable, "GetPluginInfo")
            );
            assert!(e.message.contains("/nonexistent/csi.sock"), "{}", e.message);
            assert!(e.undone);
        }
        Outcome::Ok(_) => panic!("reached a plugin that is not there"),
    }
    assert!(
        elapsed.as_millis() >= 250,
        "the window is waited for: {elapsed:?}"
    );
}
