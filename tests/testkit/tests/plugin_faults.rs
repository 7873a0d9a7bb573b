//! Each injected fault looks on the wire the way the client under test must cope with:
//! status and body, framing, delays, hangs that end only when the plugin is dropped, cut
//! bodies and dropped connections; and dropping the plugin never hangs.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::{dechunk_counted, parse, post, request};
use dvdi_testkit::plugin::{Fault, TestPlugin, ANY_ENDPOINT};
use serde_json::json;

const MOUNT: &str = "VolumeDriver.Mount";
const MOUNT_V: &str = r#"{"Name":"v","ID":"c1"}"#;

fn start() -> (tempfile::TempDir, TestPlugin) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = TestPlugin::start(&dir.path().join("p.sock"), &dir.path().join("mnt"))
        .expect("start plugin");
    plugin.add_volume("v", &[]);
    (dir, plugin)
}

/// Sends a request and reads until the server closes or `limit` passes; returns the bytes
/// and whether the server closed.
fn send_and_read(socket: &Path, limit: Option<Duration>) -> (Vec<u8>, bool) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(limit).expect("timeout");
    stream.write_all(&request(MOUNT, MOUNT_V)).expect("send");
    let mut wire = Vec::new();
    match stream.read_to_end(&mut wire) {
        Ok(_) => (wire, true),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => (wire, false),
        Err(e) => panic!("read failed: {e}"),
    }
}

#[test]
fn error_in_200_fails_the_call_without_touching_state() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::ErrorIn200("backend offline".into()), Some(1));
    let r = post(plugin.socket_path(), MOUNT, MOUNT_V);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"Err": "backend offline"}))
    );
    assert!(plugin.mount_ids("v").is_empty());
    // Counted fault: the next call succeeds.
    assert_eq!(post(plugin.socket_path(), MOUNT, MOUNT_V).json()["Err"], "");
    assert_eq!(plugin.mount_ids("v"), ["c1"]);
    assert_eq!(plugin.count(MOUNT), 2);
}

#[test]
fn status_faults_send_the_given_status_type_and_body() {
    let (_dir, plugin) = start();
    plugin.set_fault(
        "VolumeDriver.Get",
        Fault::Status {
            code: 500,
            body: r#"{"Err":"internal"}"#.into(),
            content_type: "application/json".into(),
        },
        None,
    );
    plugin.set_fault(
        "Plugin.Activate",
        Fault::Status {
            code: 404,
            body: "<html><body>404 page not found</body></html>".into(),
            content_type: "text/html".into(),
        },
        None,
    );
    for _ in 0..2 {
        let r = post(plugin.socket_path(), "VolumeDriver.Get", r#"{"Name":"v"}"#);
        assert_eq!(r.status, 500);
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.json(), json!({"Err": "internal"}));
    }
    let r = post(plugin.socket_path(), "Plugin.Activate", "");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    assert_eq!(r.body(), b"<html><body>404 page not found</body></html>");
    plugin.clear_faults();
    assert_eq!(
        post(plugin.socket_path(), "Plugin.Activate", "").status,
        200
    );
}

#[test]
fn delay_answers_normally_after_the_delay() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::Delay(Duration::from_millis(300)), Some(1));
    let started = Instant::now();
    let r = post(plugin.socket_path(), MOUNT, MOUNT_V);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.json()["Err"], "");
    assert_eq!(plugin.mount_ids("v"), ["c1"]);
}

#[test]
fn chunked_fault_and_chunked_option_split_the_body_into_chunks() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::Chunked, Some(1));
    let r = post(plugin.socket_path(), MOUNT, MOUNT_V);
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(r.header("Content-Length"), None);
    let (body, chunks) = dechunk_counted(&r.framed_body).expect("chunked framing");
    assert!(chunks > 1, "only {chunks} chunk(s)");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["Err"], "");
    assert_eq!(plugin.mount_ids("v"), ["c1"]);

    plugin.set_chunked(true);
    for (endpoint, body) in [("Plugin.Activate", ""), ("VolumeDriver.List", "{}")] {
        let r = post(plugin.socket_path(), endpoint, body);
        assert_eq!(r.header("Transfer-Encoding"), Some("chunked"), "{endpoint}");
        let (_, chunks) = dechunk_counted(&r.framed_body).expect("chunked framing");
        assert!(chunks > 1);
    }
    // Error replies are chunked too.
    let r = post(
        plugin.socket_path(),
        "VolumeDriver.Remove",
        r#"{"Name":"v"}"#,
    );
    assert_eq!(r.header("Transfer-Encoding"), Some("chunked"));
    assert!(r.json()["Err"].as_str().is_some_and(|e| !e.is_empty()));
    plugin.set_chunked(false);
    let r = post(plugin.socket_path(), "Plugin.Activate", "");
    assert!(r.header("Content-Length").is_some());
}

#[test]
fn close_delimited_reply_has_no_length_and_ends_at_close() {
    let (_dir, plugin) = start();
    plugin.set_fault(ANY_ENDPOINT, Fault::CloseDelimited, None);
    // Even a client asking to keep the connection alive sees it closed after the body.
    let mut stream = UnixStream::connect(plugin.socket_path()).expect("connect");
    stream
        .write_all(b"POST /Plugin.Activate HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n")
        .expect("send");
    let mut wire = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.read_to_end(&mut wire).expect("server closes");
    let r = parse(wire);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), None);
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.json(), json!({"Implements": ["VolumeDriver"]}));
}

#[test]
fn malformed_reply_is_200_and_not_json() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::Malformed, None);
    let r = post(plugin.socket_path(), MOUNT, MOUNT_V);
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body()).is_err());
    assert!(plugin.mount_ids("v").is_empty());
}

#[test]
fn huge_reply_is_valid_json_of_about_the_requested_size() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::Huge(1 << 20), Some(1));
    let r = post(plugin.socket_path(), MOUNT, MOUNT_V);
    let len = r.body().len();
    assert!(
        ((1 << 20) - 64..=(1 << 20) + 64).contains(&len),
        "{len} bytes"
    );
    let body = r.json();
    assert_eq!(body["Err"], "");
    assert!(body["Mountpoint"]
        .as_str()
        .is_some_and(|p| p.ends_with("/v")));
    assert_eq!(plugin.mount_ids("v"), ["c1"]);
}

#[test]
fn cut_mid_body_announces_more_than_it_sends_then_closes() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::CutMidBody, None);
    let (wire, closed) = send_and_read(plugin.socket_path(), Some(Duration::from_secs(5)));
    assert!(closed, "the server closes after the partial body");
    let r = parse(wire);
    let announced: usize = r
        .header("Content-Length")
        .and_then(|n| n.parse().ok())
        .expect("Content-Length");
    assert!(!r.framed_body.is_empty());
    assert!(
        r.framed_body.len() < announced,
        "{} of {announced}",
        r.framed_body.len()
    );
}

#[test]
fn not_volume_driver_answers_another_interface() {
    let (_dir, plugin) = start();
    plugin.set_fault("Plugin.Activate", Fault::NotVolumeDriver, None);
    let r = post(plugin.socket_path(), "Plugin.Activate", "");
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"Implements": ["NetworkDriver"]}))
    );
}

#[test]
fn drop_connection_closes_without_a_byte() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::DropConnection, Some(1));
    let (wire, closed) = send_and_read(plugin.socket_path(), Some(Duration::from_secs(5)));
    assert!(closed);
    assert!(wire.is_empty(), "{wire:?}");
    assert!(plugin.mount_ids("v").is_empty());
    assert_eq!(plugin.count(MOUNT), 1, "the request was still recorded");
}

#[test]
fn hang_never_answers_and_drop_returns_promptly_closing_it() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::Hang, None);
    let (wire, closed) = send_and_read(plugin.socket_path(), Some(Duration::from_millis(300)));
    assert!(!closed && wire.is_empty(), "a hung call answers nothing");

    // A second hung call, blocked in another thread without a timeout, ends when the
    // plugin is dropped: the connection closes with no reply.
    let socket = plugin.socket_path().to_path_buf();
    let client = thread::spawn(move || send_and_read(&socket, None));
    while plugin.count(MOUNT) < 2 {
        thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    drop(plugin);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "drop took {took:?}");
    let (wire, closed) = client.join().expect("client thread");
    assert!(closed && wire.is_empty(), "no reply after a hang: {wire:?}");
}

#[test]
fn drop_is_prompt_with_a_long_delay_and_an_idle_connection_and_no_socket_file() {
    let (_dir, plugin) = start();
    plugin.set_fault(MOUNT, Fault::Delay(Duration::from_secs(3600)), None);
    let socket = plugin.socket_path().to_path_buf();
    let client = thread::spawn({
        let socket = socket.clone();
        move || send_and_read(&socket, None)
    });
    let _idle = UnixStream::connect(&socket).expect("idle connection");
    while plugin.count(MOUNT) < 1 {
        thread::sleep(Duration::from_millis(5));
    }
    // A test may remove the socket to simulate a vanished plugin; drop must not need it.
    std::fs::remove_file(&socket).expect("remove socket");
    let started = Instant::now();
    drop(plugin);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        started.elapsed()
    );
    assert_eq!(client.join().expect("client"), (Vec::new(), true));
}
