//! Issue 10, finding 8, through the real `dvdcli`: the operator's policy read from `DVDI_*`
//! variables. A `local` block volume larger than the free space of the local root's filesystem,
//! or than `DVDI_LOCAL_MAX_SIZE`, is refused by `create`, `mount` and `exec` alike; an
//! absolute container path over a protected host directory is refused by `exec` (a container
//! without an image), and `DVDI_PROTECTED_HOST_DIRS` widens or narrows the list. The module
//! parameter side of the same settings is `ffi/tests/policy.rs`.

use std::path::Path;
use std::process::Output;

use dvdi_testkit::env::require_root;

mod common;
use common::{stderr, Env};

/// What these tests ask of the shared world beyond what it has.
trait PolicyEnv {
    fn container_records(&self) -> Vec<String>;
    fn more_than_free(&self) -> String;
}

impl PolicyEnv for Env {
    fn container_records(&self) -> Vec<String> {
        std::fs::read_dir(self.ckpt().join("containers"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with(".tmp-"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A size (in the `size=` syntax) above the free space of the local root's filesystem.
    fn more_than_free(&self) -> String {
        let st = nix::sys::statvfs::statvfs(self.dir.path()).unwrap();
        #[allow(clippy::useless_conversion)]
        let free = u64::from(st.blocks_available()) * u64::from(st.fragment_size());
        format!("{}G", free / (1 << 30) * 2 + 2)
    }
}

fn assert_refused(o: &Output, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let text = stderr(o);
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
}

fn create(volume: &str, opts: &str) -> Vec<String> {
    vec![
        "create".into(),
        "--volumedriver=local".into(),
        format!("--volumename={volume}"),
        format!("--volumeopts={opts}"),
    ]
}

fn mount(volume: &str, opts: &str) -> Vec<String> {
    let mut args = create(volume, opts);
    args[0] = "mount".into();
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---- local_max_size (finding 8a) ----

#[test]
fn an_operator_create_or_mount_over_the_free_space_is_refused_without_a_cap() {
    let env = Env::new();
    let size = env.more_than_free();
    let opts = format!("size={size}");
    for args in [create("big", &opts), mount("big", &opts)] {
        let out = env.run(&strs(&args), &[]);
        assert_refused(
            &out,
            &[
                "\"big\"",
                &format!("size={size}"),
                "free on the filesystem of the local root",
                "local_max_size",
            ],
        );
        assert!(out.stdout.is_empty(), "mount prints no path");
        assert!(!env.volumes().join("big").exists(), "nothing made");
    }
}

#[test]
fn an_operator_cap_refuses_create_and_mount_over_it_and_names_itself() {
    let env = Env::new();
    let cap = [("DVDI_LOCAL_MAX_SIZE", "16M")];
    for args in [create("big", "size=17M"), mount("big", "size=17M")] {
        let out = env.run(&strs(&args), &cap);
        assert_refused(
            &out,
            &["\"big\"", "size=17M", "16 MiB", "DVDI_LOCAL_MAX_SIZE"],
        );
        assert!(!env.volumes().join("big").exists());
    }
    // At the cap is fine (create formats the image; no mount, so no root needed).
    let out = env.run(&strs(&create("fits", "size=16M")), &cap);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(env.volumes().join("fits/disk.img").is_file());
    // A value that is not a size stops dvdcli before anything, naming the variable.
    for bad in ["lots", "0", "16MB", ""] {
        let out = env.run(
            &strs(&create("x", "size=8M")),
            &[("DVDI_LOCAL_MAX_SIZE", bad)],
        );
        assert_refused(&out, &["DVDI_LOCAL_MAX_SIZE"]);
    }
}

#[test]
fn a_task_volume_over_the_free_space_or_the_cap_is_refused_by_exec() {
    let env = Env::new();
    let marker = env.dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let size = env.more_than_free();
    let opts = format!("size={size}");
    let task = |opts: &str| {
        vec![
            ("DVDI_VOLUME_NAME", "esdata".to_owned()),
            ("DVDI_VOLUME_DRIVER", "local".to_owned()),
            ("DVDI_VOLUME_OPTS", opts.to_owned()),
            ("DVDI_VOLUME_CONTAINERPATH", "data".to_owned()),
        ]
    };
    let vars = |v: &[(&'static str, String)], extra: &[(&'static str, &'static str)]| {
        let mut all: Vec<(&str, String)> = v.to_vec();
        all.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        all
    };
    let run = |v: Vec<(&str, String)>, script: &str| {
        let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.exec(&v, script)
    };

    let out = run(vars(&task(&opts), &[]), &touch);
    assert_refused(
        &out,
        &[
            "\"esdata\"",
            &format!("size={size}"),
            "free on the filesystem",
        ],
    );
    let out = run(
        vars(&task("size=17M"), &[("DVDI_LOCAL_MAX_SIZE", "16M")]),
        &touch,
    );
    assert_refused(&out, &["\"esdata\"", "size=17M", "DVDI_LOCAL_MAX_SIZE"]);
    assert!(!marker.exists(), "the command never ran");
    assert!(env.container_records().is_empty(), "released");
    assert!(!env.volumes().join("esdata").exists());
    assert!(env.mounts().is_empty());

    if !require_root("a_task_volume_over_the_free_space_or_the_cap_is_refused_by_exec") {
        return;
    }
    // Within the cap the task runs on its volume.
    let out = run(
        vars(&task("size=16M"), &[("DVDI_LOCAL_MAX_SIZE", "16M")]),
        "grep -q ' - ext4 ' /proc/self/mountinfo && echo ok > data/f",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
}

// ---- protected_host_dirs (finding 8b) ----

/// Values of `DVDI_PROTECTED_HOST_DIRS` refused before anything happens; the same list is
/// refused as the module parameter in `ffi/tests/policy.rs`.
const BAD_PROTECTED_HOST_DIRS: [&str; 5] = ["", " ", "etc", "none:/etc", "/srv/../etc"];

fn at(path: &str, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("DVDI_VOLUME_NAME3", "vol".to_owned()),
        ("DVDI_VOLUME_DRIVER3", "local".to_owned()),
        ("DVDI_VOLUME_CONTAINERPATH3", path.to_owned()),
    ];
    v.extend_from_slice(extra);
    v
}

fn exec_at(env: &Env, vars: &[(&'static str, String)], script: &str) -> Output {
    let v: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.exec(&v, script)
}

#[test]
fn exec_refuses_protected_host_dirs_and_the_operator_widens_and_narrows_them() {
    let env = Env::new();
    let marker = env.dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let guarded = env.dir.path().join("guarded");
    std::fs::create_dir_all(guarded.join("x")).unwrap();
    let guarded_x = guarded.join("x").display().to_string();
    // A directory under /var: protected by default, not by a narrowed list.
    let var_dir = tempfile::Builder::new()
        .prefix("dvdi-policy-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let var_path = var_dir.path().display().to_string();
    let widened = format!("default:{}", guarded.display());
    let narrowed = "/etc:/usr".to_owned();

    let refusals = [
        (at("/etc", &[]), "/etc".to_owned()),
        (at("/usr/local/x", &[]), "/usr".to_owned()),
        (at(&var_path, &[]), "/var".to_owned()),
        (
            at(&guarded_x, &[("DVDI_PROTECTED_HOST_DIRS", widened.clone())]),
            guarded.display().to_string(),
        ),
        (
            at(
                "/etc/sudoers.d",
                &[("DVDI_PROTECTED_HOST_DIRS", widened.clone())],
            ),
            "/etc".to_owned(),
        ),
        (
            at(
                "/usr/bin",
                &[("DVDI_PROTECTED_HOST_DIRS", narrowed.clone())],
            ),
            "/usr".to_owned(),
        ),
    ];
    for (vars, dir) in &refusals {
        let out = exec_at(&env, vars, &touch);
        let path = &vars[2].1;
        assert_refused(
            &out,
            &[
                &format!("DVDI_VOLUME_CONTAINERPATH3={path:?}"),
                dir,
                "DVDI_PROTECTED_HOST_DIRS",
            ],
        );
        assert!(!marker.exists(), "{path}: the command ran");
        assert!(env.container_records().is_empty());
        assert!(
            !env.volumes().join("vol").exists(),
            "{path}: a volume was made"
        );
    }
    for bad in BAD_PROTECTED_HOST_DIRS {
        let out = exec_at(
            &env,
            &at("data", &[("DVDI_PROTECTED_HOST_DIRS", bad.to_owned())]),
            &touch,
        );
        assert_refused(&out, &["DVDI_PROTECTED_HOST_DIRS"]);
        assert!(!marker.exists());
    }

    if !require_root("exec_refuses_protected_host_dirs_and_the_operator_widens_and_narrows_them") {
        return;
    }
    // Accepted: the volume is bound there for the command, and nothing is left afterwards.
    let accepted = [
        at(&guarded_x, &[]),
        at(&var_path, &[("DVDI_PROTECTED_HOST_DIRS", narrowed)]),
        at(
            &var_path,
            &[("DVDI_PROTECTED_HOST_DIRS", "none".to_owned())],
        ),
    ];
    for vars in &accepted {
        let path = vars[2].1.clone();
        let out = exec_at(&env, vars, &format!("echo on-volume > {path}/f"));
        assert_eq!(out.status.code(), Some(0), "{path}: {}", stderr(&out));
        assert!(
            !Path::new(&path).join("f").exists(),
            "{path}: write missed the volume"
        );
        assert!(env.volumes().join("vol/_data/f").is_file());
        std::fs::remove_file(env.volumes().join("vol/_data/f")).unwrap();
        assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    }
}
