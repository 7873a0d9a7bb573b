//! The test plugin speaks the Docker volume plugin protocol (SPEC §2) correctly: handshake,
//! the volume life cycle, recording, keep-alive, option variants and refused requests.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use common::{exchange, post, request};
use dvdi_testkit::plugin::{PluginOptions, TestPlugin};
use serde_json::json;

fn start() -> (tempfile::TempDir, TestPlugin) {
    start_with(PluginOptions::default())
}

fn start_with(options: PluginOptions) -> (tempfile::TempDir, TestPlugin) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin =
        TestPlugin::start_with(&dir.path().join("p.sock"), &dir.path().join("mnt"), options)
            .expect("start plugin");
    (dir, plugin)
}

#[test]
fn activate_answers_volume_driver_with_content_length() {
    let (_dir, plugin) = start();
    let reply = exchange(
        plugin.socket_path(),
        b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("Content-Length"),
        Some(reply.framed_body.len().to_string().as_str())
    );
    assert_eq!(reply.header("Transfer-Encoding"), None);
    assert_eq!(reply.json(), json!({"Implements": ["VolumeDriver"]}));
    assert_eq!(plugin.count("Plugin.Activate"), 1);
    assert_eq!(plugin.calls()[0].body, serde_json::Value::Null);
}

#[test]
fn volume_round_trip_is_served_and_recorded() {
    let (dir, plugin) = start();
    let sock = plugin.socket_path();
    let mountpoint = dir.path().join("mnt/vol1");
    let mp = mountpoint.to_str().expect("utf8");

    let r = post(
        sock,
        "VolumeDriver.Create",
        r#"{"Name":"vol1","Opts":{"size":"1G"}}"#,
    );
    assert_eq!((r.status, r.json()), (200, json!({"Err": ""})));
    // Create is idempotent.
    let r = post(sock, "VolumeDriver.Create", r#"{"Name":"vol1","Opts":{}}"#);
    assert_eq!(r.json(), json!({"Err": ""}));

    let get = post(sock, "VolumeDriver.Get", r#"{"Name":"vol1"}"#).json();
    assert_eq!(get["Err"], "");
    assert_eq!(get["Volume"]["Name"], "vol1");
    assert_eq!(get["Volume"]["Mountpoint"], "");
    assert_eq!(get["Volume"]["Status"]["Opts"], json!({"size": "1G"}));
    assert!(get["Volume"]["CreatedAt"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        post(sock, "VolumeDriver.Path", r#"{"Name":"vol1"}"#).json(),
        json!({"Err": ""})
    );

    let mount = post(sock, "VolumeDriver.Mount", r#"{"Name":"vol1","ID":"c1"}"#).json();
    assert_eq!(mount, json!({"Mountpoint": mp, "Err": ""}));
    assert!(mountpoint.is_dir());
    assert_eq!(plugin.mount_ids("vol1"), ["c1"]);
    let get = post(sock, "VolumeDriver.Get", r#"{"Name":"vol1"}"#).json();
    assert_eq!(get["Volume"]["Mountpoint"], mp);
    let path = post(sock, "VolumeDriver.Path", r#"{"Name":"vol1"}"#).json();
    assert_eq!(path, json!({"Mountpoint": mp, "Err": ""}));
    let list = post(sock, "VolumeDriver.List", "{}").json();
    assert_eq!(
        list,
        json!({"Volumes": [{"Name": "vol1", "Mountpoint": mp}], "Err": ""})
    );
    let caps = post(sock, "VolumeDriver.Capabilities", "{}").json();
    assert_eq!(caps, json!({"Capabilities": {"Scope": "local"}}));

    let busy = post(sock, "VolumeDriver.Remove", r#"{"Name":"vol1"}"#).json();
    assert!(
        busy["Err"].as_str().is_some_and(|e| e.contains("in use")),
        "{busy}"
    );
    let wrong = post(
        sock,
        "VolumeDriver.Unmount",
        r#"{"Name":"vol1","ID":"other"}"#,
    )
    .json();
    assert_ne!(wrong["Err"], "");
    let r = post(sock, "VolumeDriver.Unmount", r#"{"Name":"vol1","ID":"c1"}"#);
    assert_eq!((r.status, r.json()), (200, json!({"Err": ""})));
    assert!(plugin.mount_ids("vol1").is_empty());
    let r = post(sock, "VolumeDriver.Remove", r#"{"Name":"vol1"}"#);
    assert_eq!(r.json(), json!({"Err": ""}));
    assert!(plugin.volumes().is_empty());
    let gone = post(sock, "VolumeDriver.Get", r#"{"Name":"vol1"}"#).json();
    assert_eq!(gone, json!({"Volume": null, "Err": ""}));

    let endpoints: Vec<String> = plugin.calls().into_iter().map(|c| c.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            "VolumeDriver.Create",
            "VolumeDriver.Create",
            "VolumeDriver.Get",
            "VolumeDriver.Path",
            "VolumeDriver.Mount",
            "VolumeDriver.Get",
            "VolumeDriver.Path",
            "VolumeDriver.List",
            "VolumeDriver.Capabilities",
            "VolumeDriver.Remove",
            "VolumeDriver.Unmount",
            "VolumeDriver.Unmount",
            "VolumeDriver.Remove",
            "VolumeDriver.Get",
        ]
    );
    let calls = plugin.calls();
    assert_eq!(calls[4].body, json!({"Name": "vol1", "ID": "c1"}));
    assert!(calls.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(plugin.count("/VolumeDriver.Unmount"), 2);
}

#[test]
fn missing_volumes_are_errors_where_real_plugins_say_so() {
    let (_dir, plugin) = start();
    let sock = plugin.socket_path();
    for endpoint in ["VolumeDriver.Mount", "VolumeDriver.Unmount"] {
        let r = post(sock, endpoint, r#"{"Name":"nope","ID":"x"}"#);
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["Err"], "volume nope not found");
    }
    for endpoint in ["VolumeDriver.Remove", "VolumeDriver.Path"] {
        assert_ne!(post(sock, endpoint, r#"{"Name":"nope"}"#).json()["Err"], "");
    }
}

#[test]
fn get_missing_can_be_an_error() {
    let (_dir, plugin) = start_with(PluginOptions {
        get_missing_as_error: true,
        ..PluginOptions::default()
    });
    let r = post(
        plugin.socket_path(),
        "VolumeDriver.Get",
        r#"{"Name":"nope"}"#,
    );
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"Err": "volume nope not found"}))
    );
}

#[test]
fn mount_without_id_is_400_unless_ids_are_optional() {
    let (_dir, strict) = start();
    strict.add_volume("v", &[("k", "v")]);
    for endpoint in ["VolumeDriver.Mount", "VolumeDriver.Unmount"] {
        let r = post(strict.socket_path(), endpoint, r#"{"Name":"v"}"#);
        assert_eq!(r.status, 400);
        assert!(r.json()["Err"].as_str().is_some_and(|e| e.contains("ID")));
    }
    assert!(strict.mount_ids("v").is_empty());

    let (_dir, lax) = start_with(PluginOptions {
        require_id: false,
        ..PluginOptions::default()
    });
    lax.add_volume("v", &[]);
    assert_eq!(
        post(lax.socket_path(), "VolumeDriver.Mount", r#"{"Name":"v"}"#).status,
        200
    );
    assert_eq!(lax.mount_ids("v"), [""]);
    assert_eq!(
        post(lax.socket_path(), "VolumeDriver.Unmount", r#"{"Name":"v"}"#).json()["Err"],
        ""
    );
}

#[test]
fn bad_requests_get_status_codes_not_panics() {
    let (_dir, plugin) = start();
    let sock = plugin.socket_path();
    let garbage = exchange(sock, b"\x16\x03\x01 not http at all\r\n\r\n");
    assert_eq!(garbage.status, 400);
    assert!(garbage.json()["Err"].is_string());
    let bad_json = post(sock, "VolumeDriver.Create", "{\"Name\":");
    assert_eq!(bad_json.status, 400);
    let no_name = post(sock, "VolumeDriver.Create", "{}");
    assert_eq!(no_name.status, 400);
    let traversal = post(sock, "VolumeDriver.Create", r#"{"Name":"../x"}"#);
    assert_ne!(traversal.json()["Err"], "");
    let unknown = post(sock, "VolumeDriver.Frobnicate", "{}");
    assert_eq!(unknown.status, 404);
    let get = exchange(
        sock,
        b"GET /Plugin.Activate HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(get.status, 405);
    // The server still works afterwards.
    assert_eq!(post(sock, "Plugin.Activate", "").status, 200);
}

#[test]
fn one_connection_carries_several_requests_when_kept_alive() {
    let (_dir, plugin) = start();
    let mut stream = UnixStream::connect(plugin.socket_path()).expect("connect");
    let first = b"POST /Plugin.Activate HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n";
    let mut both = first.to_vec();
    both.extend(request("VolumeDriver.List", "{}"));
    stream.write_all(&both).expect("send");
    let mut wire = Vec::new();
    stream.read_to_end(&mut wire).expect("read");
    let text = String::from_utf8(wire).expect("utf8");
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    let last_body = text.rsplit("\r\n\r\n").next().unwrap_or_default();
    let last: serde_json::Value = serde_json::from_str(last_body).expect("JSON");
    assert_eq!(last, json!({"Volumes": [], "Err": ""}));
    assert_eq!(plugin.count("VolumeDriver.List"), 1);
}

#[test]
fn a_live_socket_is_not_stolen_and_a_stale_one_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("p.sock");
    let first = TestPlugin::start(&sock, dir.path()).expect("start");
    let err = TestPlugin::start(&sock, dir.path()).expect_err("second plugin on a live socket");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    drop(first);
    assert!(!sock.exists(), "drop removes the socket");

    // A socket file nobody listens on, as a killed plugin leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&sock).expect("bind"));
    assert!(sock.exists());
    let second = TestPlugin::start(&sock, dir.path()).expect("replace stale socket");
    assert_eq!(post(&sock, "Plugin.Activate", "").status, 200);
    drop(second);
}
