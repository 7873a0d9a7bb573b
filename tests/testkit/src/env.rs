//! The environment of the workspace's tests: whether privileged tests may run, where the
//! workspace's binaries are, and how to run them with nothing inherited.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The only variable a scrubbed command gets.
pub const SCRUBBED_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether the privileged test `test` can run: true as root. Otherwise it is skipped with
/// `SKIP {test}: needs root` on stderr — except under CI (`CI=true`), where a skipped
/// privileged test is a failure, so this panics.
pub fn require_root(test: &str) -> bool {
    if crate::sys::effective_uid() == 0 {
        return true;
    }
    if is_ci() {
        panic!("privileged test {test} would be skipped under CI (run the tests as root)");
    }
    eprintln!("SKIP {test}: needs root");
    false
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The binary `name` built by the root workspace: next to the running test binary (a test
/// lives in `target/<profile>/deps/`, the binaries in `target/<profile>/`), or, for the tests
/// of a workspace of their own (`tests/crash`, whose target dir is its own), in the root
/// workspace's `target/<profile>/`.
///
/// Panics when it is missing, since the test cannot do anything useful without it.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("cannot locate the running test binary to find {name}: {e}"),
    };
    let profile_dir = profile_dir_of(&exe);
    let bin = profile_dir.join(name);
    if bin.is_file() {
        return bin;
    }
    let root_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    let root_bin = profile_dir
        .file_name()
        .map(|profile| root_target.join(profile).join(name));
    match root_bin {
        Some(root_bin) if root_bin.is_file() => root_bin,
        _ => panic!(
            "{name} not found at {}: build it with `cargo build --workspace` at the root (same profile as the tests)",
            bin.display()
        ),
    }
}

/// `target/<profile>/` for an executable in it or in its `deps/` or `examples/` folder.
fn profile_dir_of(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("."));
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("deps" | "examples") => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// A command for `bin` with an empty environment except `PATH`, so black-box tests never
/// inherit `DVDI_*` (or any other) variables from the developer's shell or from CI.
pub fn command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear().env("PATH", SCRUBBED_PATH);
    cmd
}

/// Starts the `dvdi-test-plugin` binary of this workspace as its own process on `socket`,
/// appending every call to `record`, and returns once it has printed `ready`.
pub fn spawn_plugin_process(
    socket: &Path,
    mount_root: &Path,
    record: &Path,
) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = command(&workspace_bin("dvdi-test-plugin"))
        .arg("--socket")
        .arg(socket)
        .arg("--mount-root")
        .arg(mount_root)
        .arg("--record")
        .arg(record)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dvdi-test-plugin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read dvdi-test-plugin's first line");
    assert_eq!(line.trim(), "ready", "dvdi-test-plugin did not start");
    child
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_is_above_deps() {
        assert_eq!(
            profile_dir_of(Path::new("/w/target/debug/deps/t-123")),
            Path::new("/w/target/debug")
        );
        assert_eq!(
            profile_dir_of(Path::new("/w/target/release/dvdcli")),
            Path::new("/w/target/release")
        );
    }

    #[test]
    fn scrubbed_command_has_only_path() {
        let cmd = command(Path::new("/bin/true"));
        let envs: Vec<_> = cmd.get_envs().collect();
        assert_eq!(envs.len(), 1);
        assert_eq!(envs[0].0, "PATH");
        assert_eq!(envs[0].1.and_then(|v| v.to_str()), Some(SCRUBBED_PATH));
    }
}
