//! Operator policy and trust lines through the C ABI, as the Mesos module drives it: a
//! `dvdi_isolator_new` configuration JSON, then `dvdi_isolator_prepare` with a
//! `mesos.slave.ContainerConfig` in the shape a Mesos 1.12 agent sends (`rootfs` is a plain
//! string field of ContainerConfig, next to `directory`).

use std::path::Path;

mod common;

use common::{Failed, Handle};
use dvdi_ffi::Status;
use dvdi_testkit::env::require_root;
use serde_json::{json, Value};

fn new_isolator(config: &Value) -> Result<Handle, Failed> {
    Handle::new(config)
}

fn prepare(iso: &Handle, id: &str, config: &Value) -> Result<Option<String>, Failed> {
    iso.prepare(&json!({ "value": id }), config)
}

fn cleanup(iso: &Handle, id: &str) {
    iso.cleanup(&json!({ "value": id }))
        .unwrap_or_else(|(s, e)| panic!("{s:?}: {e}"));
}

/// The module configuration: everything under `work`, the `local` driver by default.
fn module_config(work: &Path, extra: &[(&str, &str)]) -> Value {
    let mut config = json!({
        "checkpoint_dir": work.join("checkpoint").to_str().unwrap(),
        "local_root": work.join("volumes").to_str().unwrap(),
        "plugin_dirs": work.join("plugins").to_str().unwrap(),
        "default_driver": "local",
    });
    for (k, v) in extra {
        config[*k] = json!(v);
    }
    config
}

/// A `mesos.slave.ContainerConfig` as the agent sends it, with `env` in the executor's
/// environment and `rootfs` when the container has an image.
fn container_config(sandbox: &Path, rootfs: Option<&Path>, env: &[(&str, &str)]) -> Value {
    let variables: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "type": "VALUE", "value": v}))
        .collect();
    let mut config = json!({
        "executor_info": {
            "executor_id": {"value": "e2e"},
            "command": {"shell": false, "value": "/usr/libexec/mesos/mesos-executor",
                        "environment": {"variables": variables}}
        },
        "directory": sandbox.to_str().unwrap(),
        "user": "root",
        "container_class": "DEFAULT",
    });
    if let Some(rootfs) = rootfs {
        config["rootfs"] = json!(rootfs.to_str().unwrap());
    }
    config
}

/// Issue 10, finding 7, as the agent would hit it: a container image whose `/tmp` is an
/// absolute symlink to a host directory. Prepare runs as root; `/tmp/newdir` must not become
/// `<hostdir>/newdir`, and the error names the container path and the link.
#[test]
fn an_image_tmp_symlinked_to_a_host_dir_gets_nothing_created_there() {
    if !require_root("an_image_tmp_symlinked_to_a_host_dir_gets_nothing_created_there") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let host_dir = tempfile::tempdir().unwrap();
    let sandbox = work.path().join("sandbox");
    let rootfs = work.path().join("provisioner/rootfs");
    std::fs::create_dir_all(&sandbox).unwrap();
    std::fs::create_dir_all(rootfs.join("srv")).unwrap();
    std::os::unix::fs::symlink(host_dir.path(), rootfs.join("tmp")).unwrap();
    let iso = new_isolator(&module_config(work.path(), &[])).unwrap();

    for (n, path) in ["/tmp/newdir", "/tmp/newdir/deeper", "/tmp/x"]
        .iter()
        .enumerate()
    {
        let env = [
            ("DVDI_VOLUME_NAME", "imgvol"),
            ("DVDI_VOLUME_CONTAINERPATH", *path),
        ];
        let id = format!("c{n}");
        let (status, message) =
            prepare(&iso, &id, &container_config(&sandbox, Some(&rootfs), &env)).unwrap_err();
        assert_eq!(status, Status::InvalidInput, "{message}");
        assert!(message.contains(&format!("{path:?}")), "{message}");
        assert!(
            message.contains(&rootfs.join("tmp").display().to_string())
                && message.contains("symbolic link"),
            "{message}"
        );
        assert_eq!(
            std::fs::read_dir(host_dir.path()).unwrap().count(),
            0,
            "prepare created something in the host directory"
        );
    }

    // The same image with a real /tmp: the directory is made inside the image.
    std::fs::remove_file(rootfs.join("tmp")).unwrap();
    std::fs::create_dir(rootfs.join("tmp")).unwrap();
    let env = [
        ("DVDI_VOLUME_NAME", "imgvol"),
        ("DVDI_VOLUME_CONTAINERPATH", "/tmp/newdir"),
    ];
    let info = prepare(&iso, "ok", &container_config(&sandbox, Some(&rootfs), &env))
        .unwrap()
        .unwrap();
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(
        info["mounts"][0]["target"],
        json!(rootfs.join("tmp/newdir").to_str().unwrap())
    );
    assert!(rootfs.join("tmp/newdir").is_dir());
    cleanup(&iso, "ok");
}

/// Values of `protected_host_dirs` (and of `DVDI_PROTECTED_HOST_DIRS`, in
/// `tests/tests/dvdcli_policy.rs`) that are refused when the isolator is made.
const BAD_PROTECTED_HOST_DIRS: [&str; 5] = ["", " ", "etc", "none:/etc", "/srv/../etc"];

fn one_volume(path: &str) -> [(&str, &str); 2] {
    [
        ("DVDI_VOLUME_NAME7", "vol"),
        ("DVDI_VOLUME_CONTAINERPATH7", path),
    ]
}

/// Issue 10, finding 8b, through the module parameter: image-less containers may not bind a
/// volume over the host's system directories unless the operator says otherwise.
#[test]
fn protected_host_dirs_through_the_module_parameter() {
    let work = tempfile::tempdir().unwrap();
    let sandbox = work.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    // A directory under /var that the default protects and a narrowed list does not.
    let var_dir = tempfile::Builder::new()
        .prefix("dvdi-policy-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let var_path = var_dir.path().to_str().unwrap().to_owned();
    let guarded = work.path().join("guarded");
    std::fs::create_dir_all(guarded.join("x")).unwrap();
    let guarded_x = guarded.join("x").to_str().unwrap().to_owned();

    let refused = |config: &[(&str, &str)], path: &str, dir: &str| {
        let iso = new_isolator(&module_config(work.path(), config)).unwrap();
        let cfg = container_config(&sandbox, None, &one_volume(path));
        let (status, message) = prepare(&iso, "c1", &cfg).unwrap_err();
        assert_eq!(status, Status::InvalidInput, "{message}");
        for needle in [
            &format!("DVDI_VOLUME_CONTAINERPATH7={path:?}"),
            dir,
            "protected_host_dirs",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from: {message}"
            );
        }
        assert!(!work.path().join("checkpoint/containers/c1.json").exists());
    };
    let accepted = |config: &[(&str, &str)], path: &str| {
        let iso = new_isolator(&module_config(work.path(), config)).unwrap();
        let cfg = container_config(&sandbox, None, &one_volume(path));
        let info = prepare(&iso, "c2", &cfg)
            .unwrap_or_else(|e| panic!("{config:?} {path}: {e:?}"))
            .unwrap();
        let info: Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["mounts"][0]["target"], json!(path));
        cleanup(&iso, "c2");
    };

    // The default.
    refused(&[], "/etc", "/etc");
    refused(&[], "/usr/local/x", "/usr");
    refused(&[], &var_path, "/var");
    accepted(&[], &guarded_x);
    // Widened: the default and one more directory.
    let widened = format!("default:{}", guarded.display());
    refused(
        &[("protected_host_dirs", &widened)],
        &guarded_x,
        guarded.to_str().unwrap(),
    );
    refused(&[("protected_host_dirs", &widened)], "/etc/x", "/etc");
    // Narrowed: /var is the operator's to allow.
    refused(&[("protected_host_dirs", "/etc:/usr")], "/etc", "/etc");
    accepted(&[("protected_host_dirs", "/etc:/usr")], &var_path);
    accepted(&[("protected_host_dirs", "none")], &var_path);

    // With an image, an absolute path is inside its rootfs: not the rule's business.
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    let iso = new_isolator(&module_config(work.path(), &[])).unwrap();
    let cfg = container_config(&sandbox, Some(&rootfs), &one_volume("/etc"));
    prepare(&iso, "img", &cfg).unwrap().unwrap();
    cleanup(&iso, "img");

    for bad in BAD_PROTECTED_HOST_DIRS {
        let (status, message) =
            new_isolator(&module_config(work.path(), &[("protected_host_dirs", bad)]))
                .err()
                .unwrap();
        assert_eq!(status, Status::Config, "{bad:?}: {message}");
        assert!(message.contains("protected_host_dirs"), "{message}");
    }
    // A JSON array is the colon-separated list.
    let mut config = module_config(work.path(), &[]);
    config["protected_host_dirs"] = json!(["default", guarded.to_str().unwrap()]);
    let iso = new_isolator(&config).unwrap();
    let cfg = container_config(&sandbox, None, &one_volume(&guarded_x));
    assert!(prepare(&iso, "arr", &cfg).is_err());
}

/// Issue 10, finding 8a, through the module parameter: a task's `size=` over `local_max_size`
/// (or, without it, over the free space of the local root's filesystem) is refused, naming
/// the volume, the size and the limit, and nothing stays behind.
#[test]
fn local_max_size_through_the_module_parameter() {
    let work = tempfile::tempdir().unwrap();
    let sandbox = work.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).unwrap();
    let task = |opts: &str| {
        let env = [
            ("DVDI_VOLUME_NAME", "esdata"),
            ("DVDI_VOLUME_OPTS", opts),
            ("DVDI_VOLUME_CONTAINERPATH", "data"),
        ];
        container_config(&sandbox, None, &env)
    };
    let iso = new_isolator(&module_config(work.path(), &[("local_max_size", "16M")])).unwrap();
    let (status, message) = prepare(&iso, "c1", &task("size=17M")).unwrap_err();
    assert_eq!(status, Status::Volume, "{message}");
    for needle in ["\"esdata\"", "size=17M", "16 MiB", "local_max_size"] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    assert!(!work.path().join("volumes/esdata").exists());
    assert!(!work.path().join("checkpoint/containers/c1.json").exists());

    // No cap: the free space of the local root's filesystem is the limit.
    let iso = new_isolator(&module_config(work.path(), &[])).unwrap();
    let (status, message) = prepare(&iso, "c2", &task("size=17179869183G")).unwrap_err();
    assert_eq!(status, Status::Volume, "{message}");
    assert!(
        message.contains("free on the filesystem of the local root"),
        "{message}"
    );
    assert!(!work.path().join("volumes/esdata").exists());

    for bad in ["", "lots", "0", "16MB"] {
        let (status, message) =
            new_isolator(&module_config(work.path(), &[("local_max_size", bad)]))
                .err()
                .unwrap();
        assert_eq!(status, Status::Config, "{bad:?}: {message}");
        assert!(message.contains("local_max_size"), "{message}");
    }
    // A JSON number is read as bytes.
    let mut config = module_config(work.path(), &[]);
    config["local_max_size"] = json!(16 << 20);
    let iso = new_isolator(&config).unwrap();
    assert!(prepare(&iso, "c3", &task("size=17M")).is_err());
}
