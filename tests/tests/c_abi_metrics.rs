//! `dvdi_isolator_metrics` as the Mesos module sees it: the real `libdvdi_ffi.so`, loaded
//! with `dlopen` (its own copy of the library, as in the agent), driving a real plugin over a
//! Unix socket (the testkit's `TestPlugin`) and the `local` driver's real tmpfs mounts. Every
//! figure is checked for the exact count each step must give; no duration is asserted.

use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};

use dvdi_ffi::{CMetrics, Status};
use dvdi_testkit::env::{require_root, workspace_bin};
use dvdi_testkit::plugin::{Fault, TestPlugin};
use dvdi_tests::capi::{self, Api, Failure};

/// The loaded `libdvdi_ffi.so` (never unloaded: Rust's runtime in it keeps thread-locals that
/// must outlive the test's threads).
fn lib() -> &'static Api {
    static LIB: std::sync::OnceLock<Api> = std::sync::OnceLock::new();
    LIB.get_or_init(|| capi::load(&workspace_bin("libdvdi_ffi.so")).expect("load libdvdi_ffi.so"))
}

/// A failed call as these tests compare it: its status and the library's message.
fn failed(f: Failure) -> (c_int, String) {
    (f.status, f.message)
}

/// One isolator handle of the loaded library.
struct Handle(capi::Handle<'static>);

impl Handle {
    fn new(config: &serde_json::Value) -> Handle {
        Handle(
            lib()
                .new_isolator(&config.to_string())
                .expect("dvdi_isolator_new"),
        )
    }

    fn recover(&self, known: &[&str], orphans: &[&str]) -> Result<(), (c_int, String)> {
        let states: Vec<_> = known
            .iter()
            .map(|id| serde_json::json!({"container_id": {"value": id}}))
            .collect();
        let orphans: Vec<_> = orphans
            .iter()
            .map(|id| serde_json::json!({"value": id}))
            .collect();
        self.0
            .recover(
                &serde_json::Value::from(states).to_string(),
                &serde_json::Value::from(orphans).to_string(),
            )
            .map(drop)
            .map_err(failed)
    }

    /// Prepares container `id` with these environment variables in `sandbox`.
    fn prepare(
        &self,
        id: &str,
        sandbox: &Path,
        env: &[(&str, &str)],
    ) -> Result<(), (c_int, String)> {
        let variables: Vec<_> = env
            .iter()
            .map(|(k, v)| serde_json::json!({"name": k, "type": "VALUE", "value": v}))
            .collect();
        let config = serde_json::json!({
            "executor_info": {
                "executor_id": {"value": id},
                "command": {"shell": true, "value": "true", "environment": {"variables": variables}},
            },
            "command_info": {"shell": true},
            "directory": sandbox.to_str().unwrap(),
            "user": "root",
        });
        self.0
            .prepare(&capi::container_id_json(id), &config.to_string())
            .map(drop)
            .map_err(failed)
    }

    fn cleanup(&self, id: &str) -> Result<(), (c_int, String)> {
        self.0.cleanup(&capi::container_id_json(id)).map_err(failed)
    }

    fn metrics(&self) -> CMetrics {
        let mut m = CMetrics::default();
        // SAFETY: `m` is a writable dvdi_metrics of its own size.
        unsafe {
            self.0.metrics_into(
                (&mut m as *mut CMetrics).cast(),
                std::mem::size_of::<CMetrics>(),
            )
        }
        .expect("dvdi_isolator_metrics");
        assert_eq!(
            (m.size as usize, m.version),
            (std::mem::size_of::<CMetrics>(), 1)
        );
        m
    }
}

/// The counters and gauges of a snapshot, by name, for one comparison with what is expected.
fn figures(m: &CMetrics) -> Vec<(&'static str, u64)> {
    vec![
        ("prepares", m.prepares),
        ("prepare_failures", m.prepare_failures),
        ("cleanups", m.cleanups),
        ("cleanup_failures", m.cleanup_failures),
        ("recovers", m.recovers),
        ("recover_failures", m.recover_failures),
        ("plugin_timeouts", m.plugin_timeouts),
        ("volumes_known", m.volumes_known),
        ("volumes_mounted", m.volumes_mounted),
        ("unmounts_pending_retry", m.unmounts_pending_retry),
        ("unreadable_volume_records", m.unreadable_volume_records),
        ("prepare_time.count", m.prepare_time.count),
        ("cleanup_time.count", m.cleanup_time.count),
    ]
}

/// `figures` with the named ones changed from all-zero-but-`volumes_known`.
fn expect(changes: &[(&str, u64)]) -> Vec<(&'static str, u64)> {
    let mut want = figures(&CMetrics {
        volumes_known: 1,
        ..CMetrics::default()
    });
    for (name, value) in changes {
        let slot = want
            .iter_mut()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no figure {name}"));
        slot.1 = *value;
    }
    want
}

/// A temp world: a plugin `tp` on a socket in its own plugin directory, a checkpoint, a
/// `local` root and a sandbox; whatever the test left mounted below it is lazily unmounted.
struct World {
    dir: tempfile::TempDir,
    plugin: TestPlugin,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::create_dir(dir.path().join("sandbox")).unwrap();
        let plugin = TestPlugin::start(&plugins.join("tp.sock"), &dir.path().join("mnt")).unwrap();
        World { dir, plugin }
    }

    fn config(&self, timeout: f64) -> serde_json::Value {
        let p = |s: &str| self.dir.path().join(s).to_str().unwrap().to_owned();
        serde_json::json!({
            "checkpoint_dir": p("ckpt"),
            "plugin_dirs": p("plugins"),
            "local_root": p("volumes"),
            "default_driver": "tp",
            "local_device_options": "true",
            "timeout": timeout.to_string(),
        })
    }

    fn handle(&self) -> Handle {
        Handle::new(&self.config(20.0))
    }

    fn sandbox(&self) -> PathBuf {
        self.dir.path().join("sandbox")
    }

    fn mounts_below(&self) -> Vec<String> {
        let root = self.dir.path().to_str().unwrap().to_owned();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
            .filter(|mp| mp.starts_with(&root))
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for mp in self.mounts_below().into_iter().rev() {
            let _ = nix::mount::umount2(mp.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// A volume of the plugin.
fn tp(name: &str) -> Vec<(&str, &str)> {
    vec![("DVDI_VOLUME_NAME", name)]
}

/// A plugin volume in slot 0 and a `local` tmpfs (a real mount) in slot 1.
fn tp_and_tmpfs<'a>(name: &'a str, tmpfs: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("DVDI_VOLUME_NAME", name),
        ("DVDI_VOLUME_NAME1", tmpfs),
        ("DVDI_VOLUME_DRIVER1", "local"),
        ("DVDI_VOLUME_OPTS1", "type=tmpfs,device=tmpfs,o=size=4m"),
    ]
}

#[test]
fn counters_and_gauges_follow_prepare_cleanup_and_recover() {
    if !require_root("counters_and_gauges_follow_prepare_cleanup_and_recover") {
        return;
    }
    let w = World::new();
    let h = w.handle();
    let sb = w.sandbox();
    assert_eq!(figures(&h.metrics()), expect(&[]));

    h.recover(&[], &[]).unwrap();
    // A container without DVDI variables is no prepare of ours, and its cleanup no cleanup.
    h.prepare("plain", &sb, &[("PATH", "/bin")]).unwrap();
    h.cleanup("plain").unwrap();
    assert_eq!(figures(&h.metrics()), expect(&[("recovers", 1)]));

    h.prepare("c1", &sb, &tp_and_tmpfs("v1", "scratch"))
        .unwrap();
    assert_eq!(w.mounts_below().len(), 1, "the tmpfs is really mounted");
    // Sharing v1 mounts nothing new.
    h.prepare("c2", &sb, &tp("v1")).unwrap();
    let after_prepares = [
        ("recovers", 1),
        ("prepares", 2),
        ("prepare_time.count", 2),
        ("volumes_mounted", 2),
    ];
    assert_eq!(figures(&h.metrics()), expect(&after_prepares));

    // The plugin refuses a Mount: a failed prepare, rolled back; then a grammar error.
    w.plugin.set_fault(
        "VolumeDriver.Mount",
        Fault::ErrorIn200("no capacity".into()),
        Some(1),
    );
    let (status, text) = h.prepare("c3", &sb, &tp("v3")).unwrap_err();
    assert_eq!(status, Status::Volume as c_int, "{text}");
    let (status, text) = h
        .prepare(
            "c4",
            &sb,
            &[("DVDI_VOLUME_NAME", "v4"), ("DVDI_VOLUME_BOGUS", "x")],
        )
        .unwrap_err();
    assert_eq!(status, Status::InvalidInput as c_int, "{text}");
    let after_failures = [
        ("recovers", 1),
        ("prepares", 4),
        ("prepare_failures", 2),
        ("prepare_time.count", 4),
        ("volumes_mounted", 2),
    ];
    assert_eq!(figures(&h.metrics()), expect(&after_failures));

    // Mesos cleans up a container whose prepare failed: nothing of it is left to count.
    h.cleanup("c3").unwrap();
    h.cleanup("c2").unwrap();
    let mut want = after_failures.to_vec();
    want.extend([("cleanups", 1), ("cleanup_time.count", 1)]);
    assert_eq!(figures(&h.metrics()), expect(&want), "c1 still holds both");
    h.cleanup("c1").unwrap();
    assert!(w.mounts_below().is_empty());
    let want = [
        ("recovers", 1),
        ("prepares", 4),
        ("prepare_failures", 2),
        ("prepare_time.count", 4),
        ("cleanups", 2),
        ("cleanup_time.count", 2),
        ("volumes_mounted", 0),
    ];
    assert_eq!(figures(&h.metrics()), expect(&want));

    // A recover that cannot list the container records fails, and is counted.
    let containers = w.dir.path().join("ckpt/containers");
    let moved = w.dir.path().join("ckpt/containers.away");
    std::fs::rename(&containers, &moved).unwrap();
    std::fs::write(&containers, "not a directory").unwrap();
    let failed = h.recover(&[], &[]);
    std::fs::remove_file(&containers).unwrap();
    std::fs::rename(&moved, &containers).unwrap();
    assert!(
        failed.is_err(),
        "recover with a file for its containers directory"
    );
    h.recover(&[], &[]).unwrap();
    let mut want = want.to_vec();
    want[0] = ("recovers", 3);
    want.push(("recover_failures", 1));
    assert_eq!(figures(&h.metrics()), expect(&want));

    let m = h.metrics();
    for (what, t) in [("prepare", m.prepare_time), ("cleanup", m.cleanup_time)] {
        assert_eq!(t.window, t.count, "{what}: every duration is in the window");
        assert!(t.min_us <= t.p50_us && t.p50_us <= t.p99_us && t.p99_us <= t.max_us);
        assert!(t.max_us <= t.total_us, "{what}: {t:?}");
    }
}

#[test]
fn a_plugin_that_hangs_past_its_deadline_is_counted_once_per_call() {
    if !require_root("a_plugin_that_hangs_past_its_deadline_is_counted_once_per_call") {
        return;
    }
    let w = World::new();
    // One second for every call: each hang below costs one.
    let h = Handle::new(&w.config(1.0));
    let sb = w.sandbox();

    w.plugin
        .set_fault("VolumeDriver.Mount", Fault::Hang, Some(1));
    assert!(h.prepare("c1", &sb, &tp("v1")).is_err());
    let m = h.metrics();
    assert_eq!((m.plugin_timeouts, m.prepare_failures), (1, 1));
    // The Mount got no answer: its Unmount (the plugin had not mounted, so it refused) is
    // kept for a later retry, as the driver may still act on the Mount.
    assert_eq!((m.volumes_mounted, m.unmounts_pending_retry), (0, 1));

    w.plugin.set_fault("VolumeDriver.Get", Fault::Hang, Some(1));
    assert!(h.prepare("c2", &sb, &tp("v2")).is_err());
    assert_eq!(h.metrics().plugin_timeouts, 2);

    h.prepare("c3", &sb, &tp("v3")).unwrap();
    w.plugin
        .set_fault("VolumeDriver.Unmount", Fault::Hang, Some(1));
    assert!(h.cleanup("c3").is_err());
    let m = h.metrics();
    assert_eq!(m.plugin_timeouts, 3);
    assert_eq!((m.cleanups, m.cleanup_failures), (1, 1));
    assert_eq!(m.unmounts_pending_retry, 2, "v1's and now v3's");
}

#[test]
fn a_failed_unmount_waits_for_retry_until_a_fresh_handles_recover_retries_it() {
    if !require_root("a_failed_unmount_waits_for_retry_until_a_fresh_handles_recover_retries_it") {
        return;
    }
    let w = World::new();
    let sb = w.sandbox();
    {
        let h = w.handle();
        h.prepare("c1", &sb, &tp_and_tmpfs("v1", "scratch1"))
            .unwrap();
        h.prepare("c2", &sb, &tp("v2")).unwrap();
        h.prepare("c3", &sb, &tp("v3")).unwrap();
        assert_eq!(h.metrics().volumes_mounted, 4);

        // The plugin answers the Unmount with an error: remembered for retry, not held.
        w.plugin.set_fault(
            "VolumeDriver.Unmount",
            Fault::ErrorIn200("device busy".into()),
            Some(1),
        );
        assert!(h.cleanup("c3").is_err());
        let m = h.metrics();
        assert_eq!((m.cleanups, m.cleanup_failures), (1, 1));
        assert_eq!((m.volumes_mounted, m.unmounts_pending_retry), (3, 1));
    } // the agent stops

    // A new handle starts its counters from zero, but its gauges are the checkpoint's.
    let h = w.handle();
    let before = expect(&[("volumes_mounted", 3), ("unmounts_pending_retry", 1)]);
    assert_eq!(figures(&h.metrics()), before);

    // The agent knows c1 only: c2's volume is released, v3's Unmount is retried and works.
    h.recover(&["c1"], &[]).unwrap();
    assert_eq!(
        figures(&h.metrics()),
        expect(&[("recovers", 1), ("volumes_mounted", 2)])
    );
    assert_eq!(w.plugin.mount_ids("v3"), Vec::<String>::new());

    h.cleanup("c1").unwrap();
    assert_eq!(
        figures(&h.metrics()),
        expect(&[("recovers", 1), ("cleanups", 1), ("cleanup_time.count", 1)])
    );
    assert!(w.mounts_below().is_empty());
}

#[test]
fn bad_arguments_are_a_status_and_the_struct_is_filled_to_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let h = Handle::new(&serde_json::json!({
        "checkpoint_dir": dir.path().join("ckpt").to_str().unwrap(),
        "plugin_dirs": dir.path().join("plugins").to_str().unwrap(),
    }));
    let size = std::mem::size_of::<CMetrics>();
    let call = |iso: *const c_void, out: *mut c_void, n: usize| {
        // SAFETY: `out` is NULL or a buffer of at least `n` bytes; `iso` NULL or live.
        unsafe { lib().metrics_raw(iso, out, n, true) }
    };

    let mut buf = [0xAAu8; 512];
    let out = buf.as_mut_ptr().cast::<c_void>();
    let (status, err) = call(std::ptr::null(), out, size);
    assert_eq!(status, Status::NullArgument as c_int);
    assert!(err.unwrap().contains("isolator"));
    let (status, err) = call(h.0.as_ptr(), std::ptr::null_mut(), size);
    assert_eq!(status, Status::NullArgument as c_int);
    assert!(err.unwrap().contains("out"));
    let (status, err) = call(h.0.as_ptr(), out, size - 1);
    assert_eq!(status, Status::BufferSize as c_int);
    assert!(err.unwrap().contains(&size.to_string()));
    assert!(buf.iter().all(|&b| b == 0xAA), "written on failure");
    // err may be NULL.
    // SAFETY: a live handle; nothing is written with a size of 0.
    let (status, _) = unsafe { lib().metrics_raw(h.0.as_ptr(), out, 0, false) };
    assert_eq!(status, Status::BufferSize as c_int);

    // A host with a newer, larger struct: filled up to the library's size, which it says.
    let (status, err) = call(h.0.as_ptr(), out, buf.len());
    assert_eq!((status, err), (Status::Ok as c_int, None));
    assert_eq!(
        u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize,
        size
    );
    assert_eq!(u32::from_ne_bytes(buf[4..8].try_into().unwrap()), 1);
    assert!(buf[8..size].iter().any(|&b| b != 0xAA), "filled");
    assert!(
        buf[size..].iter().all(|&b| b == 0xAA),
        "written past its size"
    );
}

/// The names the Mesos module publishes, read from its source: `"dvdi/…"` literals, and for
/// each `timerFigures("X", …)` the timer `dvdi/X_ms` with every `name + "/…"` statistic.
fn published_names() -> std::collections::BTreeSet<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let source =
        std::fs::read_to_string(repo.join("packaging/mesos-module/dvdi_isolator.cpp")).unwrap();
    let quoted_after = |marker: &str| -> Vec<String> {
        source
            .split(marker)
            .skip(1)
            .filter_map(|rest| rest.split('"').next().map(str::to_owned))
            .collect()
    };
    let mut names: std::collections::BTreeSet<String> = quoted_after("\"dvdi/")
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(|n| format!("dvdi/{n}"))
        .collect();
    let stats = quoted_after("name + \"/");
    for timer in quoted_after("timerFigures(\"") {
        let timer = format!("dvdi/{timer}_ms");
        names.extend(stats.iter().map(|s| format!("{timer}/{s}")));
        names.insert(timer);
    }
    names
}

#[test]
fn the_operator_guide_names_exactly_what_the_module_publishes() {
    let names = published_names();
    // The parse sees what it is about (so it cannot pass by seeing nothing).
    for name in [
        "dvdi/prepares",
        "dvdi/plugin_timeouts",
        "dvdi/unmounts_pending_retry",
        "dvdi/prepare_ms",
        "dvdi/cleanup_ms/p99",
    ] {
        assert!(names.contains(name), "{name} not found in {names:?}");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let guide = std::fs::read_to_string(repo.join("packaging/README.md")).unwrap();
    let documented: std::collections::BTreeSet<String> = guide
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.len() > "dvdi/".len() && s.starts_with("dvdi/") && !s.contains(' '))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        names, documented,
        "packaging/README.md and dvdi_isolator.cpp disagree on the metric names"
    );
}
