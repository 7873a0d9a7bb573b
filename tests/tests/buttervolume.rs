//! dvdcli against a real third-party plugin: buttervolume 3.13 (BTRFS subvolumes, from PyPI),
//! on a loop-mounted btrfs image in a temp dir (see `dvdi_testkit::buttervolume`).
//!
//! The first tests speak the plugin protocol over the raw socket; they pin down what
//! buttervolume really answers, and keep the harness honest. The rest run the workspace's
//! `dvdcli` binary with a scrubbed environment, finding the plugin through a `.spec` file and
//! through a socket named after the driver. All need root; CI is root and must not skip.
//! Install the plugin with `.ci/install-buttervolume.sh`.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dvdi_testkit::buttervolume::{mount_points, ButterVolume};
use serde_json::{json, Value};
use tempfile::TempDir;

/// True when running as root. Otherwise: a failure under CI (`CI=true`), where every test
/// must run for real, else a SKIP line and false.
fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root, and CI must not skip it");
    }
    eprintln!("SKIP {test}: needs root");
    false
}

/// A temp dir with buttervolume running inside it. Field order matters: the plugin (and its
/// mounts) goes before the directory is removed.
struct Fixture {
    bv: ButterVolume,
    tmp: TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("dvdi-butter.")
            .tempdir()
            .expect("temp dir");
        let bv = ButterVolume::start(&tmp.path().join("bv")).unwrap_or_else(|e| {
            panic!("cannot start buttervolume: {e}");
        });
        Fixture { bv, tmp }
    }

    /// A fresh, empty plugin directory for dvdcli's `DVDI_PLUGIN_DIRS`.
    fn plugin_dir(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        fs::create_dir_all(&dir).expect("plugin dir");
        dir
    }
}

// ---------------------------------------------------------------------------------------------
// The plugin protocol over the raw socket.

struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 POST on a fresh connection, read until the plugin closes it.
fn post(socket: &Path, endpoint: &str, body: &str) -> Reply {
    let mut s = UnixStream::connect(socket).expect("connect to plugin socket");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = format!(
        "POST /{endpoint} HTTP/1.1\r\nHost: plugin\r\n\
         Accept: application/vnd.docker.plugins.v1.2+json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read reply");
    let raw = String::from_utf8(raw).expect("utf-8 reply");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    let length: Option<usize> = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    });
    if let Some(n) = length {
        assert_eq!(body.len(), n, "Content-Length of {endpoint}");
    }
    Reply {
        status,
        body: body.to_owned(),
    }
}

fn err_of(v: &Value) -> &str {
    v["Err"]
        .as_str()
        .unwrap_or_else(|| panic!("no Err string in {v}"))
}

#[test]
fn harness_speaks_the_plugin_protocol() {
    if !root_or_skip("harness_speaks_the_plugin_protocol") {
        return;
    }
    let f = Fixture::start();
    let sock = f.bv.socket_path();
    let vol = f.bv.volume_path("x");
    let vol_s = vol.to_str().unwrap();

    let r = post(sock, "Plugin.Activate", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"Implements": ["VolumeDriver"]}));

    let r = post(sock, "VolumeDriver.Create", r#"{"Name":"x","Opts":{}}"#);
    assert_eq!((r.status, r.json()), (200, json!({"Err": ""})));
    // Creating an existing volume is no error.
    let r = post(sock, "VolumeDriver.Create", r#"{"Name":"x","Opts":{}}"#);
    assert_eq!((r.status, r.json()), (200, json!({"Err": ""})));
    assert!(f.bv.subvolumes().unwrap().contains(&"volumes/x".to_owned()));

    // Get has no CreatedAt or Status.
    let r = post(sock, "VolumeDriver.Get", r#"{"Name":"x"}"#);
    assert_eq!(
        r.json(),
        json!({"Volume": {"Name": "x", "Mountpoint": vol_s}, "Err": ""})
    );
    let r = post(sock, "VolumeDriver.Mount", r#"{"Name":"x","ID":"abc"}"#);
    assert_eq!(r.json(), json!({"Mountpoint": vol_s, "Err": ""}));
    // Mount mounts nothing: the mount point is the subvolume's own directory.
    assert!(!mount_points().unwrap().contains(&vol));
    fs::write(vol.join("data"), "hello").unwrap();

    let r = post(sock, "VolumeDriver.Path", r#"{"Name":"x"}"#);
    assert_eq!(r.json(), json!({"Mountpoint": vol_s, "Err": ""}));
    // List gives names only, no Mountpoint.
    let r = post(sock, "VolumeDriver.List", "{}");
    assert_eq!(r.json(), json!({"Volumes": [{"Name": "x"}], "Err": ""}));
    let r = post(sock, "VolumeDriver.Capabilities", "{}");
    assert_eq!(r.json(), json!({"Capabilities": {"Scope": "local"}}));
    let r = post(sock, "VolumeDriver.Unmount", r#"{"Name":"x","ID":"abc"}"#);
    assert_eq!(r.json(), json!({"Err": ""}));

    // The data is in the subvolume itself, seen through a mount of just that subvolume.
    let view = f.bv.dir().join("view");
    f.bv.mount_subvolume("x", &view).unwrap();
    assert_eq!(fs::read_to_string(view.join("data")).unwrap(), "hello");

    let r = post(sock, "VolumeDriver.Remove", r#"{"Name":"x"}"#);
    assert_eq!(r.json(), json!({"Err": ""}));
    assert!(!vol.exists());
    let r = post(sock, "VolumeDriver.List", "{}");
    assert_eq!(r.json(), json!({"Volumes": [], "Err": ""}));
}

#[test]
fn harness_shows_buttervolume_error_styles() {
    if !root_or_skip("harness_shows_buttervolume_error_styles") {
        return;
    }
    let f = Fixture::start();
    let sock = f.bv.socket_path();

    // A missing volume is an error (HTTP 200 + Err) for Get, not `"Volume": null`.
    for ep in ["Get", "Path", "Remove"] {
        let r = post(sock, &format!("VolumeDriver.{ep}"), r#"{"Name":"nope"}"#);
        assert_eq!(r.status, 200, "{ep}");
        assert_eq!(r.json(), json!({"Err": "nope: no such volume"}), "{ep}");
    }
    let r = post(sock, "VolumeDriver.Mount", r#"{"Name":"nope","ID":"1"}"#);
    assert_eq!(r.json(), json!({"Err": "nope: no such volume"}));
    // Unmount is a no-op: it answers success even for a volume that does not exist.
    let r = post(sock, "VolumeDriver.Unmount", r#"{"Name":"nope","ID":"1"}"#);
    assert_eq!(r.json(), json!({"Err": ""}));
    // Bad options are refused with a 200 and the reason in Err.
    let r = post(
        sock,
        "VolumeDriver.Create",
        r#"{"Name":"y","Opts":{"copyonwrite":"maybe"}}"#,
    );
    assert_eq!(r.status, 200);
    assert!(err_of(&r.json()).starts_with("Invalid option for copyonwrite: maybe"));
    let r = post(sock, "VolumeDriver.Create", r#"{"Name":"a@b","Opts":{}}"#);
    assert_eq!(
        r.json(),
        json!({"Err": "\"@\" is illegal in a volume name"})
    );
    // A request without Name crashes the handler: HTTP 500 with an HTML page.
    let r = post(sock, "VolumeDriver.Get", "{}");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("<html>"), "{}", r.body);
    // An unknown endpoint: HTTP 404 with an HTML page.
    let r = post(sock, "VolumeDriver.Nope", "{}");
    assert_eq!(r.status, 404);
    assert!(r.body.contains("<html>"), "{}", r.body);
}

#[test]
fn harness_tears_everything_down() {
    if !root_or_skip("harness_tears_everything_down") {
        return;
    }
    let f = Fixture::start();
    let dir = f.bv.dir().to_owned();
    let device = f.bv.loop_device().expect("loop device").to_owned();
    let socket = f.bv.socket_path().to_owned();
    let r = post(&socket, "VolumeDriver.Create", r#"{"Name":"v","Opts":{}}"#);
    assert_eq!(r.json(), json!({"Err": ""}));
    f.bv.mount_subvolume("v", &dir.join("extra")).unwrap();
    assert!(mount_points().unwrap().iter().any(|m| m.starts_with(&dir)));

    let Fixture { bv, tmp } = f;
    drop(bv);
    assert!(
        !mount_points().unwrap().iter().any(|m| m.starts_with(&dir)),
        "mounts left under {}",
        dir.display()
    );
    assert!(
        UnixStream::connect(&socket).is_err(),
        "plugin still serving"
    );
    // A detached loop device has no backing file.
    let name = device.file_name().unwrap().to_str().unwrap();
    let backing = fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"));
    assert!(
        backing.map_or(true, |b| !b.contains(dir.to_str().unwrap())),
        "{} still attached to our image",
        device.display()
    );
    drop(tmp);
}

#[test]
fn harness_refuses_to_start_without_buttervolume() {
    // No root needed: the check comes before anything is touched.
    let tmp = TempDir::new().unwrap();
    let missing = Path::new("/nonexistent/buttervolume");
    let err = ButterVolume::start_with(missing, tmp.path()).expect_err("start without it");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/buttervolume"), "{msg}");
    assert!(msg.contains(".ci/install-buttervolume.sh"), "{msg}");
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "it set things up"
    );
}

// ---------------------------------------------------------------------------------------------
// The real dvdcli binary.

/// `target/<profile>/dvdcli`: integration test binaries live in `target/<profile>/deps/`.
fn dvdcli_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary under target/<profile>/deps");
    let bin = profile_dir.join("dvdcli");
    assert!(
        bin.is_file(),
        "{} not found: build it first (cargo build -p dvdcli, or cargo test --workspace)",
        bin.display()
    );
    bin
}

/// Runs `dvdcli ARGS…` with nothing from this process's environment but PATH, the plugin
/// directories and a deadline.
fn dvdcli(plugin_dir: &Path, args: &[&str]) -> Output {
    Command::new(dvdcli_path())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DVDI_PLUGIN_DIRS", plugin_dir)
        .env("DVDI_TIMEOUT", "30")
        .output()
        .expect("run dvdcli")
}

fn stdout(o: &Output) -> &str {
    std::str::from_utf8(&o.stdout).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit status 0 and returns stdout.
#[track_caller]
fn ok<'a>(o: &'a Output, what: &str) -> &'a str {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: stdout {:?}, stderr:\n{}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// Asserts exit status 1 with nothing on stdout and returns stderr.
#[track_caller]
fn fails(o: &Output, what: &str) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: stdout {:?}, stderr:\n{}",
        stdout(o),
        stderr(o)
    );
    assert_eq!(stdout(o), "", "{what}: stdout must stay empty on failure");
    stderr(o)
}

/// How dvdcli finds the plugin in a test.
enum Discovery {
    /// `DIR/<driver>.spec` holding `unix:///…/btrfs.sock`.
    SpecFile,
    /// `DIR/<driver>.sock`, a symlink to buttervolume's socket.
    SocketLink,
}

/// Lays out a plugin directory in which driver `driver` resolves to `f`'s buttervolume.
fn discover(f: &Fixture, how: Discovery, driver: &str) -> PathBuf {
    let dir = f.plugin_dir(&format!("plugins-{driver}"));
    match how {
        Discovery::SpecFile => fs::write(
            dir.join(format!("{driver}.spec")),
            format!("unix://{}\n", f.bv.socket_path().display()),
        )
        .unwrap(),
        Discovery::SocketLink => {
            symlink(f.bv.socket_path(), dir.join(format!("{driver}.sock"))).unwrap()
        }
    }
    dir
}

/// create, get, list, path, mount (data lands in the subvolume), unmount, remove.
fn full_lifecycle(how: Discovery, driver: &str) {
    let f = Fixture::start();
    let plugins = discover(&f, how, driver);
    let d = format!("--volumedriver={driver}");
    let run = |args: &[&str]| dvdcli(&plugins, args);
    let vol = f.bv.volume_path("data1");
    let vol_s = vol.to_str().unwrap();

    assert_eq!(
        ok(&run(&["create", &d, "--volumename=data1"]), "create"),
        ""
    );
    assert!(f
        .bv
        .subvolumes()
        .unwrap()
        .contains(&"volumes/data1".to_owned()));
    // A second volume, so that list has more than one line.
    assert_eq!(
        ok(&run(&["create", &d, "--volumename", "other"]), "create"),
        ""
    );

    assert_eq!(
        ok(&run(&["get", &d, "--volumename=data1"]), "get"),
        "data1\n"
    );

    let listed = run(&["list", &d]);
    let mut names: Vec<&str> = ok(&listed, "list").lines().collect();
    assert!(stdout(&listed).ends_with('\n'), "{:?}", stdout(&listed));
    names.sort_unstable();
    assert_eq!(names, ["data1", "other"]);

    let path = run(&["path", &d, "--volumename=data1"]);
    assert_eq!(ok(&path, "path").trim_end_matches('\n'), vol_s);

    let mount = run(&["mount", &d, "--volumename=data1"]);
    assert_eq!(ok(&mount, "mount"), format!("{vol_s}\n"));
    // Mount again: the same path.
    let again = run(&["mount", "--volumename=data1", &d]);
    assert_eq!(ok(&again, "second mount"), format!("{vol_s}\n"));

    // What is written at the mount point is in the btrfs subvolume.
    fs::write(vol.join("hello.txt"), "written through the mount point\n").unwrap();
    let view = f.bv.dir().join("view-data1");
    f.bv.mount_subvolume("data1", &view).unwrap();
    assert_eq!(
        fs::read_to_string(view.join("hello.txt")).unwrap(),
        "written through the mount point\n"
    );

    assert_eq!(
        ok(&run(&["unmount", &d, "--volumename=data1"]), "unmount"),
        ""
    );
    assert_eq!(
        ok(&run(&["unmount", &d, "--volumename=data1"]), "unmount"),
        ""
    );
    assert_eq!(
        ok(&run(&["remove", &d, "--volumename=data1"]), "remove"),
        ""
    );
    assert!(!vol.exists());
    let left = run(&["list", &d]);
    assert_eq!(ok(&left, "list after remove"), "other\n");

    // The volume is gone: get fails with buttervolume's reason, on stderr only.
    let gone = fails(&run(&["get", &d, "--volumename=data1"]), "get removed");
    assert!(gone.contains("no such volume"), "{gone}");
}

#[test]
fn dvdcli_lifecycle_through_spec_file() {
    if !root_or_skip("dvdcli_lifecycle_through_spec_file") {
        return;
    }
    full_lifecycle(Discovery::SpecFile, "btrfs");
}

#[test]
fn dvdcli_lifecycle_through_socket_link() {
    if !root_or_skip("dvdcli_lifecycle_through_socket_link") {
        return;
    }
    full_lifecycle(Discovery::SocketLink, "butter");
}

#[test]
fn dvdcli_mount_after_remove() {
    if !root_or_skip("dvdcli_mount_after_remove") {
        return;
    }
    let f = Fixture::start();
    let plugins = discover(&f, Discovery::SocketLink, "btrfs");
    let run = |args: &[&str]| dvdcli(&plugins, args);
    let d = "--volumedriver=btrfs";
    let vol = f.bv.volume_path("gone");
    let vol_line = format!("{}\n", vol.display());

    assert_eq!(
        ok(&run(&["mount", d, "--volumename=gone"]), "mount"),
        vol_line
    );
    fs::write(vol.join("old"), "old data").unwrap();
    assert_eq!(
        ok(&run(&["unmount", d, "--volumename=gone"]), "unmount"),
        ""
    );
    assert_eq!(ok(&run(&["remove", d, "--volumename=gone"]), "remove"), "");

    // Unmounting a removed volume fails (dvdcli's Get finds nothing), though buttervolume's
    // own Unmount would answer success.
    let err = fails(
        &run(&["unmount", d, "--volumename=gone"]),
        "unmount removed",
    );
    assert!(!err.is_empty(), "unmount removed: no error text");
    // With explicit create (both spellings), a removed volume is not brought back.
    for flag in [
        "--explicitcreate",
        "--explicitCreate",
        "--explicitcreate=true",
    ] {
        let err = fails(&run(&["mount", d, "--volumename=gone", flag]), flag);
        assert!(!err.is_empty(), "{flag}: no error text");
        assert!(!vol.exists(), "{flag} created the volume");
    }
    // Without it, Get's "no such volume" means: create, then mount a new, empty volume.
    let again = run(&["mount", d, "--volumename=gone"]);
    assert_eq!(ok(&again, "mount after remove"), vol_line);
    assert!(vol.is_dir());
    assert!(!vol.join("old").exists(), "data outlived remove");
    assert_eq!(
        ok(&run(&["unmount", d, "--volumename=gone"]), "unmount"),
        ""
    );
    assert_eq!(ok(&run(&["remove", d, "--volumename=gone"]), "remove"), "");
}

#[test]
fn dvdcli_mount_creates_missing_volume_with_options() {
    if !root_or_skip("dvdcli_mount_creates_missing_volume_with_options") {
        return;
    }
    let f = Fixture::start();
    let plugins = discover(&f, Discovery::SpecFile, "btrfs");
    let vol = f.bv.volume_path("nocow");
    let out = dvdcli(
        &plugins,
        &[
            "mount",
            "--volumedriver=btrfs",
            "--volumename=nocow",
            "--volumeopts=copyonwrite=false",
        ],
    );
    assert_eq!(ok(&out, "mount"), format!("{}\n", vol.display()));
    // The option reached the plugin: copyonwrite=false sets the No_COW attribute (chattr +C).
    let attrs = Command::new("lsattr")
        .arg("-d")
        .arg(&vol)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .expect("lsattr (e2fsprogs)");
    let attrs = String::from_utf8_lossy(&attrs.stdout);
    let flags = attrs.split_whitespace().next().unwrap_or("");
    assert!(flags.contains('C'), "no No_COW flag: {attrs:?}");
}

#[test]
fn dvdcli_reports_plugin_errors() {
    if !root_or_skip("dvdcli_reports_plugin_errors") {
        return;
    }
    let f = Fixture::start();
    let plugins = discover(&f, Discovery::SpecFile, "btrfs");
    let run = |args: &[&str]| dvdcli(&plugins, args);
    let d = "--volumedriver=btrfs";

    let err = fails(
        &run(&[
            "create",
            d,
            "--volumename=y",
            "--volumeopts=copyonwrite=maybe",
        ]),
        "create with a bad option",
    );
    assert!(
        err.contains("Invalid option for copyonwrite: maybe"),
        "{err}"
    );
    let err = fails(&run(&["create", d, "--volumename=a@b"]), "create a@b");
    assert!(err.contains("\"@\" is illegal in a volume name"), "{err}");
    let err = fails(&run(&["get", d, "--volumename=nope"]), "get missing");
    assert!(err.contains("nope: no such volume"), "{err}");
    let err = fails(&run(&["remove", d, "--volumename=nope"]), "remove missing");
    assert!(err.contains("nope: no such volume"), "{err}");
    // An empty list prints nothing.
    assert_eq!(ok(&run(&["list", d]), "empty list"), "");
    // A driver that is not there: exit 1, stdout empty.
    fails(
        &run(&["get", "--volumedriver=absent", "--volumename=x"]),
        "no plugin",
    );
}
