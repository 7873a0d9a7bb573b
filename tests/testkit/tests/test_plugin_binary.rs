//! `dvdi-test-plugin` as a process: `ready` on stdout, flags, a record file that survives a
//! SIGKILL and a restart, clean exit on SIGTERM/SIGINT, usage errors; plus an ignored
//! per-call timing (`cargo test --release -p dvdi-testkit -- --ignored --nocapture`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::post;
use dvdi_testkit::env::command;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_dvdi-test-plugin");

/// Starts the plugin with `args` and waits for its `ready` line.
fn spawn(args: &[&str]) -> Child {
    let mut child = command(Path::new(BIN))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn dvdi-test-plugin");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read stdout");
    assert_eq!(line, "ready\n", "first line of stdout");
    child
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill only sends a signal to our own child, which has not been reaped yet.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dvdi-test-plugin did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn record_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("record file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each record line is JSON"))
        .collect()
}

#[test]
fn records_calls_across_a_crash_and_restart_and_stops_on_signals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("p.sock");
    let record = dir.path().join("calls.jsonl");
    let mount_root = dir.path().join("mnt");
    let args = [
        "--socket",
        sock.to_str().expect("utf8"),
        "--mount-root",
        mount_root.to_str().expect("utf8"),
        "--record",
        record.to_str().expect("utf8"),
    ];

    let mut first = spawn(&args);
    assert_eq!(post(&sock, "Plugin.Activate", "").status, 200);
    post(&sock, "VolumeDriver.Create", r#"{"Name":"v","Opts":{}}"#);
    let mount = post(&sock, "VolumeDriver.Mount", r#"{"Name":"v","ID":"c1"}"#).json();
    assert_eq!(mount["Err"], "");
    assert!(dir.path().join("mnt/v").is_dir());
    // Every line is in the file by the time its reply arrived, even if the plugin dies.
    signal(&first, libc::SIGKILL);
    wait_within(&mut first, Duration::from_secs(5));
    assert!(sock.exists(), "a killed plugin leaves its socket behind");

    // The restart replaces the stale socket and appends to the same record.
    let mut second = spawn(&args);
    let unmount = post(&sock, "VolumeDriver.Unmount", r#"{"Name":"v","ID":"c1"}"#).json();
    assert_eq!(
        unmount["Err"], "volume v not found",
        "state does not survive a restart"
    );
    signal(&second, libc::SIGTERM);
    assert!(wait_within(&mut second, Duration::from_secs(5)).success());
    assert!(!sock.exists(), "SIGTERM removes the socket");

    let lines = record_lines(&record);
    let summary: Vec<(&str, u32)> = lines
        .iter()
        .map(|l| {
            let pid = l["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
            (l["endpoint"].as_str().unwrap_or("?"), pid.unwrap_or(0))
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Plugin.Activate", first.id()),
            ("VolumeDriver.Create", first.id()),
            ("VolumeDriver.Mount", first.id()),
            ("VolumeDriver.Unmount", second.id()),
        ]
    );
    assert_eq!(lines[0]["body"], Value::Null);
    assert_eq!(lines[2]["body"], json!({"Name": "v", "ID": "c1"}));
    let times: Vec<u64> = lines.iter().filter_map(|l| l["t_ms"].as_u64()).collect();
    assert_eq!(times.len(), 4);
    assert!(times.windows(2).all(|w| w[0] <= w[1]) && times[0] > 1_600_000_000_000);
}

#[test]
fn behaviour_flags_and_sigint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("p.sock");
    let mut child = spawn(&[
        &format!("--socket={}", sock.display()),
        "--mount-root",
        dir.path().to_str().expect("utf8"),
        "--delay-ms",
        "50",
        "--no-require-id",
        "--get-missing-as-error",
    ]);
    let started = Instant::now();
    let get = post(&sock, "VolumeDriver.Get", r#"{"Name":"nope"}"#).json();
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(get, json!({"Err": "volume nope not found"}));
    post(&sock, "VolumeDriver.Create", r#"{"Name":"v"}"#);
    let mount = post(&sock, "VolumeDriver.Mount", r#"{"Name":"v"}"#);
    assert_eq!((mount.status, &mount.json()["Err"]), (200, &json!("")));
    signal(&child, libc::SIGINT);
    assert!(wait_within(&mut child, Duration::from_secs(5)).success());
    assert!(!sock.exists());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["--socket", "/tmp/x.sock"],
        &[
            "--socket",
            "/tmp/x.sock",
            "--mount-root",
            "/tmp",
            "--delay-ms",
            "soon",
        ],
        &["--socket", "/tmp/x.sock", "--mount-root", "/tmp", "--bogus"],
        &["--socket"],
    ] {
        let out = command(Path::new(BIN)).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "usage errors go to stderr");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    }
}
