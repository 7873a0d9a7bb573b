//! The captured Mesos 1.12 agent calls (`tests/fixtures/mesos-1.12`) replayed through the real
//! `libdvdi_ffi.so`, `dlopen`ed by a C host (`tests/c/ffi_replay.c`, built with `-Werror` and
//! sanitizers), against real plugin servers on Unix sockets named as in the fixtures. Only host
//! paths are rewritten (sandboxes, and the image-less Elasticsearch task's absolute container
//! paths, which are host directories), plus one `container_class` for the `DEBUG` case.
//!
//! One agent's life: a command task with `DVDI_VOLUME_*`, a command task with two
//! `DOCKER_VOLUME`s, a task group (its executor, a nested container with a `DOCKER_VOLUME`, one
//! with `DVDI_VOLUME_*`, a `DEBUG` container), a nested cleanup; then an agent restart whose
//! recover knows only the first task, and that task's cleanup.

use std::path::PathBuf;
use std::process::Command;

use dvdi_testkit::c_host;
use dvdi_testkit::env::workspace_bin;
use dvdi_testkit::fixtures::mesos as fixture;
use dvdi_testkit::plugin::TestPlugin;
use serde_json::{json, Value};

/// A temp dir with the program, its configuration and the calls' files.
struct Replay {
    dir: PathBuf,
    exe: PathBuf,
    files: usize,
}

/// One call's answer: `Ok(Some(json))`, `Ok(None)` (a NULL launch info, or no output), or
/// `Err((status, message))`.
type Answer = Result<Option<Value>, (i32, String)>;

impl Replay {
    fn file(&mut self, value: &Value) -> String {
        self.files += 1;
        let path = self.dir.join(format!("arg-{}.json", self.files));
        std::fs::write(&path, value.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn prepare(&mut self, args: &Value) -> Vec<String> {
        vec![
            "prepare".into(),
            self.file(&args["container_id"]),
            self.file(&args["container_config"]),
        ]
    }

    fn cleanup(&mut self, args: &Value) -> Vec<String> {
        vec!["cleanup".into(), self.file(&args["container_id"])]
    }

    fn recover(&mut self, args: &Value) -> Vec<String> {
        vec![
            "recover".into(),
            self.file(&args["states"]),
            self.file(&args["orphans"]),
        ]
    }

    /// Runs the calls in one process (one agent run) and returns each answer.
    fn run(&mut self, config: &Value, calls: Vec<Vec<String>>) -> Vec<Answer> {
        let config = self.file(config);
        let out = Command::new(&self.exe)
            .arg(workspace_bin("libdvdi_ffi.so"))
            .arg(config)
            .args(calls.concat())
            .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1")
            .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ffi_replay failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let answers: Vec<Answer> = stdout
            .lines()
            .map(|line| {
                let (_, rest) = line.split_once(' ').unwrap();
                if let Some(ok) = rest.strip_prefix("ok") {
                    let ok = ok.trim();
                    Ok((!ok.is_empty() && ok != "NULL").then(|| serde_json::from_str(ok).unwrap()))
                } else {
                    let (status, message) =
                        rest.strip_prefix("err ").unwrap().split_once(' ').unwrap();
                    Err((status.parse().unwrap(), message.to_owned()))
                }
            })
            .collect();
        assert_eq!(answers.len(), calls.len(), "{stdout}");
        answers
    }
}

fn count(events: &[(String, bool)], volume: &str, mounted: bool) -> usize {
    events
        .iter()
        .filter(|(v, m)| v == volume && *m == mounted)
        .count()
}

#[test]
fn an_agents_captured_calls_through_the_dlopened_library() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    std::fs::create_dir(work.join("plugins")).unwrap();
    let capfast = TestPlugin::start(
        &work.join("plugins/capfast.sock"),
        &work.join("mnt/capfast"),
    )
    .unwrap();
    let rexray =
        TestPlugin::start(&work.join("plugins/rexray.sock"), &work.join("mnt/rexray")).unwrap();
    let exe = work.join("ffi_replay");
    c_host::compile("tests/c/ffi_replay.c", &exe);
    let mut replay = Replay {
        dir: work.to_path_buf(),
        exe,
        files: 0,
    };
    let config = json!({
        "checkpoint_dir": work.join("checkpoint").to_str().unwrap(),
        "plugin_dirs": [work.join("plugins").to_str().unwrap()],
        "local_root": work.join("volumes").to_str().unwrap(),
        "docker_volumes": true,
        "connect_timeout": 1,
    });
    let sandbox = |args: &mut Value, name: &str| {
        let dir = work.join("sandboxes").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        args["container_config"]["directory"] = json!(dir.to_str().unwrap());
        dir
    };

    // The Elasticsearch task: its absolute container paths are host paths (no image).
    let mut es = fixture("prepare-command-task-dvdi-env-checkpointed.json");
    sandbox(&mut es, "es");
    let host_config = work.join("host/config");
    let host_data = work.join("host/data");
    std::fs::create_dir_all(&host_config).unwrap();
    std::fs::create_dir_all(&host_data).unwrap();
    for env in ["executor_info/command", "command_info"] {
        let mut at = &mut es["container_config"];
        for part in env.split('/') {
            at = &mut at[part];
        }
        for v in at["environment"]["variables"].as_array_mut().unwrap() {
            match v["value"].as_str() {
                Some("/tmp/config") => v["value"] = json!(host_config.to_str().unwrap()),
                Some("/data") => v["value"] = json!(host_data.to_str().unwrap()),
                _ => {}
            }
        }
    }
    let mut task = fixture("prepare-docker-volume-task.json");
    let task_sandbox = sandbox(&mut task, "task");
    let mut executor = fixture("prepare-task-group-executor.json");
    sandbox(&mut executor, "executor");
    let mut nested_dv = fixture("prepare-task-group-nested-docker-volume.json");
    let nested_dv_sandbox = sandbox(&mut nested_dv, "nested-dv");
    let mut nested_env = fixture("prepare-task-group-nested-dvdi-env.json");
    sandbox(&mut nested_env, "nested-env");
    let mut debug = fixture("prepare-task-group-nested-docker-volume.json");
    let debug_sandbox = sandbox(&mut debug, "debug");
    debug["container_config"]["container_class"] = json!("DEBUG");
    debug["container_id"]["value"] = json!("debug-exec-1");

    let calls = vec![
        replay.prepare(&es),
        replay.prepare(&task),
        replay.prepare(&executor),
        replay.prepare(&nested_dv),
        replay.prepare(&nested_env),
        replay.prepare(&debug),
        replay.cleanup(&fixture("cleanup-nested-container.json")),
    ];
    let got = replay.run(&config, calls);
    let launch = |i: usize| {
        got[i]
            .clone()
            .unwrap()
            .unwrap_or_else(|| panic!("call {i}"))
    };
    let targets = |info: Value| -> Vec<String> {
        info["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["target"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        targets(launch(0)),
        [host_config.to_str().unwrap(), host_data.to_str().unwrap()]
    );
    let task_targets = targets(launch(1));
    assert_eq!(task_targets.len(), 3, "{task_targets:?}");
    for t in &task_targets {
        assert!(
            [task_sandbox.join("data"), task_sandbox.join("ro")].contains(&PathBuf::from(t)),
            "{t}"
        );
    }
    assert_eq!(got[2], Ok(None), "the task group's executor gets nothing");
    assert_eq!(
        targets(launch(3)),
        [nested_dv_sandbox.join("vol").to_str().unwrap()]
    );
    assert_eq!(targets(launch(4)).len(), 1);
    assert_eq!(got[5], Ok(None), "a DEBUG container gets none of its own");
    assert_eq!(std::fs::read_dir(&debug_sandbox).unwrap().count(), 0);
    assert_eq!(got[6], Ok(None));
    assert_eq!(
        capfast.mount_changes(),
        [
            ("dv1".into(), true),
            ("dv2".into(), true),
            ("tgdv".into(), true)
        ]
    );
    let ev = rexray.mount_changes();
    for v in ["elasticsearch1config", "elasticsearch1data", "tgvol"] {
        assert_eq!(count(&ev, v, true), 1, "{v}: {ev:?}");
    }
    assert_eq!(count(&ev, "tgvol", false), 1, "the nested cleanup");
    let create_of_dv1 = capfast
        .calls()
        .into_iter()
        .find(|c| c.endpoint == "VolumeDriver.Create" && c.body["Name"] == "dv1")
        .unwrap();
    assert_eq!(create_of_dv1.body["Opts"], json!({"size": "5"}));

    // The agent restarts knowing only the Elasticsearch task (the captured recover): the
    // docker-volume task and the nested container are unknown, so their volumes go.
    let calls = vec![
        replay.recover(&fixture("recover-one-running-container.json")),
        replay.cleanup(&es),
    ];
    let got = replay.run(&config, calls);
    let report = got[0].clone().unwrap().unwrap();
    assert_eq!(report["kept_containers"], json!(1), "{report}");
    assert_eq!(report["cleaned_containers"], json!(2), "{report}");
    let ev = capfast.mount_changes();
    for v in ["dv1", "dv2", "tgdv"] {
        assert_eq!(
            (count(&ev, v, true), count(&ev, v, false)),
            (1, 1),
            "{v}: {ev:?}"
        );
    }
    assert_eq!(got[1], Ok(None));
    let ev = rexray.mount_changes();
    for v in ["elasticsearch1config", "elasticsearch1data", "tgvol"] {
        assert_eq!(
            (count(&ev, v, true), count(&ev, v, false)),
            (1, 1),
            "{v}: {ev:?}"
        );
    }
    // Each Unmount carried its Mount's id.
    for plugin in [&capfast, &rexray] {
        for e in plugin.mount_events() {
            let ids: Vec<_> = plugin
                .mount_events()
                .into_iter()
                .filter(|o| o.volume == e.volume)
                .map(|o| o.id)
                .collect();
            assert!(ids.iter().all(|i| *i == ids[0]), "{}: {ids:?}", e.volume);
        }
    }
}
