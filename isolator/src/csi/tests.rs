//! The library's side of CSI without a plugin: the `dvdi-csi` program replaced by scripts that
//! misbehave (missing, silent, garbled, another format, too large, wedged) or that answer as
//! told, to check what each failure becomes, and the users kept on disk across mounts,
//! unmounts and failed releases.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::driver::Outcome;

struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    /// A fake `dvdi-csi` whose body is `script` (after reading its request).
    fn new(script: &str) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dvdi-csi");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fake { dir }
    }

    /// Logs each operation to `ops.log` and answers `reply-<op>.json` if there is one, else
    /// success.
    fn scripted() -> Fake {
        let fake = Fake::new("");
        let dir = fake.dir.path().display().to_string();
        let script = format!(
            r#"req=$(/bin/cat)
op=$(printf '%s' "$req" | /bin/sed -n 's/.*"op":"\([a-z]*\)".*/\1/p')
echo "$op" >> {dir}/ops.log
/bin/readlink /proc/$$/fd/2 >> {dir}/stderr.log
if [ -f {dir}/reply-$op.json ]; then /bin/cat {dir}/reply-$op.json; else echo '{{"version":1,"calls":[],"result":{{"ok":{{"creates_volumes":false}}}}}}'; fi"#
        );
        std::fs::write(fake.program(), format!("#!/bin/sh\n{script}\n")).unwrap();
        fake
    }

    fn program(&self) -> PathBuf {
        self.dir.path().join("dvdi-csi")
    }

    fn ops(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("ops.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn answer(&self, op: &str, reply: Option<&str>) {
        let path = self.dir.path().join(format!("reply-{op}.json"));
        match reply {
            Some(r) => std::fs::write(path, r).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn driver(&self, controller: bool, deadline: Duration) -> CsiDriver {
        let controller = if controller {
            r#","controller_endpoint":"unix:///nonexistent/ctl.sock""#
        } else {
            ""
        };
        let config = CsiConfig::parse(
            &DriverName::new("fake").unwrap(),
            Path::new("/etc/dvdi/csi.d/fake.json"),
            format!(
                r#"{{"node_endpoint":"unix:///nonexistent/csi.sock"{controller},"root":"{}"}}"#,
                self.dir.path().join("root").display()
            )
            .as_bytes(),
        )
        .unwrap();
        CsiDriver::new(config, self.program(), Timeouts::uniform(deadline))
    }
}

fn vol(name: &str) -> VolumeName {
    VolumeName::new(name).unwrap()
}

const TIMEOUT_REPLY: &str = r#"{"version":1,"calls":["NodeStageVolume","NodeStageVolume"],"result":{"error":{"call":"NodeStageVolume","kind":"timeout","code":null,"message":"","limit_ms":700,"attempts":2,"undone":false}}}"#;

#[test]
fn a_program_that_fails_to_answer_is_named_and_never_taken_for_a_refusal() {
    let ms = Duration::from_millis(1);
    for (script, words, outcome) in [
        (
            "/bin/cat >/dev/null; exit 3",
            "exited (exit status: 3) without a reply",
            Outcome::NoAnswer,
        ),
        (
            "/bin/cat >/dev/null; echo hello",
            "unreadable reply",
            Outcome::NoAnswer,
        ),
        (
            r#"/bin/cat >/dev/null; echo '{"version":99,"calls":[],"result":{"ok":{"creates_volumes":false}}}'"#,
            "replied in format 99",
            Outcome::NoAnswer,
        ),
        (
            "/bin/cat >/dev/null; /usr/bin/head -c 2000000 /dev/zero",
            "larger than 1048576 bytes",
            Outcome::NoAnswer,
        ),
    ] {
        let fake = Fake::new(script);
        let e = fake.driver(true, ms).activate().unwrap_err();
        let text = e.to_string();
        assert!(text.contains(words), "{script}: {text}");
        assert!(
            text.contains("CSI plugin \"fake\"") && text.contains(fake.program().to_str().unwrap()),
            "{text}"
        );
        assert_eq!(e.outcome(), outcome, "{script}");
    }
    let missing = Fake::new("");
    std::fs::remove_file(missing.program()).unwrap();
    let e = missing.driver(true, ms).activate().unwrap_err();
    assert_eq!(e.outcome(), Outcome::Unreachable, "{e}");
    assert!(
        e.to_string().contains("cannot run the CSI client program"),
        "{e}"
    );
}

#[test]
fn a_wedged_program_is_killed_once_every_deadline_of_its_calls_has_passed() {
    let fake = Fake::new("exec /bin/sleep 600");
    let driver = fake.driver(true, Duration::from_millis(1));
    let started = Instant::now();
    let e = driver.activate().unwrap_err();
    // Twelve calls, two attempts, 1 ms each plus 1 ms to connect: 48 ms, and the margin.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(e.to_string().contains("still running after 5.05 s"), "{e}");
    assert_eq!(e.outcome(), Outcome::NoAnswer);
}

#[test]
fn the_programs_errors_become_outcomes_and_text_naming_plugin_call_and_limit() {
    let fake = Fake::scripted();
    let driver = fake.driver(true, Duration::from_secs(1));
    for (reply, outcome, words) in [
        (TIMEOUT_REPLY.to_owned(), Outcome::NoAnswer, "NodeStageVolume of \"v\" got no answer within 700 ms (2 attempts)"),
        (
            TIMEOUT_REPLY.replace(r#""undone":false"#, r#""undone":true"#),
            Outcome::Failed,
            "got no answer within 700 ms",
        ),
        (
            r#"{"version":1,"calls":[],"result":{"error":{"call":"NodeStageVolume","kind":"status","code":"NOT_FOUND","message":"gone\u001b[2J","limit_ms":null,"attempts":1,"undone":true}}}"#.to_owned(),
            Outcome::NoSuchVolume,
            r#"NodeStageVolume of "v" failed: NOT_FOUND: gone\u{1b}[2J"#,
        ),
        (
            r#"{"version":1,"calls":[],"result":{"error":{"call":"NodeStageVolume","kind":"status","code":"INTERNAL","message":"x","limit_ms":null,"attempts":1,"undone":false}}}"#.to_owned(),
            Outcome::NoAnswer,
            "could not all be undone",
        ),
        (
            r#"{"version":1,"calls":[],"result":{"error":{"call":"NodeGetCapabilities","kind":"unreachable","code":null,"message":"no socket","limit_ms":null,"attempts":1,"undone":true}}}"#.to_owned(),
            Outcome::Unreachable,
            "NodeGetCapabilities of \"v\": cannot connect: no socket",
        ),
    ] {
        fake.answer("publish", Some(&reply));
        driver.create(&vol("v"), &VolumeOpts::new()).unwrap();
        let e = driver.mount(&vol("v"), "id1").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("CSI plugin \"fake\" (unix:///nonexistent/csi.sock): "), "{text}");
        assert!(text.contains(words), "{words}: {text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert_eq!(e.outcome(), outcome, "{text}");
        // A mount that may have happened keeps its user for the Unmount; one that did not
        // leaves none.
        let users = driver.store.read_users(&vol("v")).unwrap();
        assert_eq!(users.users.contains("id1"), outcome == Outcome::NoAnswer, "{text}");
        fake.answer("publish", None);
        let _ = driver.unmount(&vol("v"), "id1");
    }
}

#[test]
fn users_are_a_set_and_only_the_last_one_unpublishes_retried_until_it_succeeds() {
    let fake = Fake::scripted();
    let driver = fake.driver(true, Duration::from_secs(1));
    let v = vol("v");
    assert_eq!(
        driver.get(&v).unwrap(),
        None,
        "a controller plugin's volume is created first"
    );
    assert_eq!(
        driver.mount(&v, "id1").unwrap_err().outcome(),
        Outcome::NoSuchVolume
    );
    driver
        .create(
            &v,
            &VolumeOpts::parse_lists(&["size=1G,type=gp3,readonly=true"]).unwrap(),
        )
        .unwrap();
    let record = driver.store.read_record(&v).unwrap().unwrap();
    assert_eq!(record.volume_id, "v", "the program's id, or the name");
    assert!(record.capability.read_only);

    let target = driver.mount(&v, "id1").unwrap();
    assert_eq!(target, fake.dir.path().join("root/v/target"));
    driver.mount(&v, "id2").unwrap();
    driver.unmount(&v, "id1").unwrap();
    assert_eq!(
        fake.ops(),
        ["create", "publish", "publish"],
        "a user left: no unpublish"
    );
    assert_eq!(
        driver.unmount(&v, "id9").unwrap_err().outcome(),
        Outcome::NotHeld
    );
    assert_eq!(
        driver.remove(&v).unwrap_err().outcome(),
        Outcome::Refused,
        "in use"
    );

    // The last user's release fails: the user is gone, the volume still to be unpublished.
    fake.answer("unpublish", Some(TIMEOUT_REPLY));
    assert_eq!(
        driver.unmount(&v, "id2").unwrap_err().outcome(),
        Outcome::NoAnswer
    );
    let users = driver.store.read_users(&v).unwrap();
    assert!(users.users.is_empty() && users.published);
    assert_eq!(
        driver.remove(&v).unwrap_err().outcome(),
        Outcome::Refused,
        "not released yet"
    );
    // The retry of that Unmount sends every unpublish call again.
    fake.answer("unpublish", None);
    driver.unmount(&v, "id2").unwrap();
    assert!(!driver.store.read_users(&v).unwrap().published);
    // Nothing is published now: an unknown id is "not held", with no call.
    assert_eq!(
        driver.unmount(&v, "id2").unwrap_err().outcome(),
        Outcome::NotHeld
    );
    driver.remove(&v).unwrap();
    assert_eq!(
        fake.ops(),
        [
            "create",
            "publish",
            "publish",
            "unpublish",
            "unpublish",
            "delete"
        ]
    );
    assert!(!fake.dir.path().join("root/v").exists());

    // Every operation on a volume ran with the volume's lock file as its stderr (so the lock
    // outlives a caller that dies while the program runs); only the probe, about no volume,
    // had none.
    driver.activate().unwrap();
    let stderr = std::fs::read_to_string(fake.dir.path().join("stderr.log")).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 7, "{stderr}");
    let lock = fake.dir.path().join("root/.locks/v");
    for line in &lines[..6] {
        assert_eq!(Path::new(line), lock, "{stderr}");
    }
    assert_eq!(lines[6], "/dev/null");
}

#[test]
fn a_node_only_plugins_volume_needs_no_create_and_bad_options_are_named() {
    let fake = Fake::scripted();
    let driver = fake.driver(false, Duration::from_secs(1));
    let v = vol("preprovisioned");
    assert!(driver.get(&v).unwrap().is_some(), "its name is its id");
    driver.mount(&v, "id1").unwrap();
    driver.unmount(&v, "id1").unwrap();
    assert_eq!(fake.ops(), ["publish", "unpublish"]);
    let e = driver
        .create(&v, &VolumeOpts::parse_lists(&["size=lots"]).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("option size"), "{e}");
    assert_eq!(e.outcome(), Outcome::Refused);
}

#[test]
fn damaged_records_are_errors_naming_the_path() {
    let fake = Fake::scripted();
    let driver = fake.driver(true, Duration::from_secs(1));
    let v = vol("v");
    driver.create(&v, &VolumeOpts::new()).unwrap();
    let users = fake.dir.path().join("root/v/users.json");
    for bad in ["", "{", r#"{"version":2,"users":[],"published":false}"#] {
        std::fs::write(&users, bad).unwrap();
        let e = driver.mount(&v, "id1").unwrap_err();
        assert!(e.to_string().contains(users.to_str().unwrap()), "{e}");
        assert_eq!(e.outcome(), Outcome::Failed);
    }
    std::fs::remove_file(&users).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &users).unwrap();
    let e = driver.mount(&v, "id1").unwrap_err();
    assert!(
        e.to_string().contains(users.to_str().unwrap()),
        "a symlink is never followed: {e}"
    );
}
