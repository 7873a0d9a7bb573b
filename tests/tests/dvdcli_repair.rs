//! Faults that used to wedge `dvdcli exec` (issue 10, findings 3 and 4), through the real
//! binary with real `local` block volumes (root): a damaged record a killed exec left never
//! pins its volume, `dvdcli recover` releases what dead execs held, execs leave no temp file
//! and a leftover temp file never blocks a write.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use dvdi_testkit::env::{require_root, workspace_bin};

mod common;
use common::{stderr, wait_for, Env, DATA};

/// What these tests ask of the shared world beyond what it has.
trait RepairEnv {
    fn exec_data(&self, script: &str) -> Output;
    fn killed_exec(&self) -> u32;
    fn image(&self) -> PathBuf;
    fn files_named(&self, prefix: &str) -> Vec<PathBuf>;
}

impl RepairEnv for Env {
    fn exec_data(&self, script: &str) -> Output {
        self.exec(&DATA, script)
    }

    /// A `dvdcli exec` holding the volume, SIGKILLed (no cleanup of its own); its pid.
    fn killed_exec(&self) -> u32 {
        let ready = self.dir.path().join("ready");
        let _ = std::fs::remove_file(&ready);
        let script = format!("touch {}; exec sleep 60", ready.display());
        let mut child = self
            .dvdcli(&["exec", "--", "sh", "-c", &script], &DATA)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&ready);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(self.mounts().len(), 1, "nobody has released it yet");
        child.id()
    }

    fn image(&self) -> PathBuf {
        self.volumes().join("es-data/disk.img")
    }

    /// Every file under the checkpoint whose name starts with `prefix`.
    fn files_named(&self, prefix: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.is_dir() && !path.is_symlink() {
                    walk(&path, prefix, out);
                } else if path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
                {
                    out.push(path);
                }
            }
        }
        let mut out = vec![];
        walk(&self.ckpt(), prefix, &mut out);
        out
    }
}

/// Loop devices backed by `image`, once the detaches the kernel deferred are done.
fn loops_settled(image: &Path) -> Vec<String> {
    dvdi_testkit::loops::settled(|| dvdi_testkit::loops::backed_by(|file| file == image))
}

/// Damages a record; a symlinked one points at a file beside it.
fn damage(path: &Path, how: &str) {
    dvdi_testkit::records::damage(path, how, &path.with_extension("json.elsewhere"));
}

use dvdi_testkit::records::DAMAGE;

#[test]
fn a_damaged_record_of_a_killed_exec_never_pins_its_volume() {
    if !require_root("a_damaged_record_of_a_killed_exec_never_pins_its_volume") {
        return;
    }
    let env = Env::new();
    let out = env.exec_data("echo kept > data/f");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for record in ["container", "volume"] {
        for how in DAMAGE {
            let pid = env.killed_exec();
            let path = match record {
                "container" => env
                    .files_named(&format!("dvdcli-exec-{pid}-"))
                    .into_iter()
                    .find(|p| p.extension().is_some_and(|e| e == "json"))
                    .expect("the killed exec's record"),
                _ => env.ckpt().join("volumes/local/es-data.json"),
            };
            damage(&path, how);
            // The next exec of the same volume runs, with the data …
            let out = env.exec_data("cat data/f");
            let case = format!("{record} record {how}");
            assert_eq!(out.status.code(), Some(0), "{case}: {}", stderr(&out));
            assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n", "{case}");
            // … and afterwards nothing stays mounted or attached.
            assert!(env.mounts().is_empty(), "{case}: {:?}", env.mounts());
            assert!(loops_settled(&env.image()).is_empty(), "{case}");
        }
    }
    // Every damaged record was kept aside for the operator (none over another).
    let aside: Vec<PathBuf> = env
        .files_named("")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".corrupt"))
        .collect();
    assert_eq!(aside.len(), 2 * DAMAGE.len(), "{aside:?}");
    let out = env.dvdcli(&["inspect", "--json"], &[]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["containers"], serde_json::json!([]), "{json}");
    assert_eq!(json["volumes"], serde_json::json!([]), "{json}");
    assert_eq!(json["problems"], serde_json::json!([]), "{json}");
}

#[test]
fn dvdcli_recover_releases_what_killed_execs_held() {
    if !require_root("dvdcli_recover_releases_what_killed_execs_held") {
        return;
    }
    let env = Env::new();
    let pid = env.killed_exec();
    let record = env
        .files_named(&format!("dvdcli-exec-{pid}-"))
        .pop()
        .unwrap();
    damage(&record, "truncated");
    let out = env.dvdcli(&["recover"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "reaped 1 dead dvdcli exec container(s): dvdcli-exec-{pid}-"
        )),
        "{text}"
    );
    assert!(text.contains("left alone: 0 agent container(s)"), "{text}");
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    assert!(loops_settled(&env.image()).is_empty());
    // Nothing left to do: the JSON report says so.
    let out = env.dvdcli(&["recover", "--json"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["reaped_containers"], serde_json::json!([]), "{json}");
    assert_eq!(json["errors"], serde_json::json!([]), "{json}");
}

#[test]
fn execs_leave_no_temp_file() {
    if !require_root("execs_leave_no_temp_file") {
        return;
    }
    let env = Env::new();
    for _ in 0..10 {
        let out = env.exec_data("true");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(env.files_named(".tmp-"), Vec::<PathBuf>::new());
    // A killed exec's are swept by the next dvdcli (its process is gone).
    env.killed_exec();
    let out = env.dvdcli(&["inspect"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.files_named(".tmp-"), Vec::<PathBuf>::new());
    assert!(env.mounts().is_empty());
}

/// `dvdcli exec -- true` under a pid known before it starts: the shell that runs it `exec`s
/// it once a line arrives on its stdin.
fn exec_with_known_pid(env: &Env) -> Child {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "read go; exec {} exec -- true",
            workspace_bin("dvdcli").display()
        ))
        .current_dir(env.sandbox())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env.vars() {
        cmd.env(k, v);
    }
    for (k, v) in DATA {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

#[test]
fn leftover_temp_files_with_the_execs_pid_never_block_it() {
    if !require_root("leftover_temp_files_with_the_execs_pid_never_block_it") {
        return;
    }
    let env = Env::new();
    let out = env.exec_data("true");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut child = exec_with_known_pid(&env);
    let pid = child.id();
    // An earlier process with this pid left temp files under every name of the older form
    // it could pick, in each directory the exec writes in.
    for dir in ["containers", "volumes/local"] {
        for n in 0..64 {
            std::fs::write(env.ckpt().join(dir).join(format!(".tmp-{pid}-{n}")), "{").unwrap();
        }
    }
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(env.mounts().is_empty());
    // Its writer is gone now: the next dvdcli sweeps them.
    assert_eq!(env.files_named(".tmp-").len(), 128);
    let out = env.dvdcli(&["inspect"], &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.files_named(".tmp-"), Vec::<PathBuf>::new());
}
