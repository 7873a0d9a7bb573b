//! Fills in `dvdcli version` (commit, branch and build time, from git when it is there) and
//! generates, from the same clap definitions as the binary, the man pages (`man/dvdcli.1` and
//! one `dvdcli-COMMAND.1` per subcommand) and the bash, zsh and fish completions
//! (`completions/`) in `OUT_DIR`; `scripts/build-dvdcli-static.sh` copies them out for the
//! `.deb`.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::CommandFactory;
use clap_complete::Shell;

/// The command line, exactly as the binary parses it.
#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

/// The library's calendar routine (a build script cannot depend on the crate it builds for).
#[allow(dead_code)]
#[path = "../isolator/src/date.rs"]
mod date;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Man pages and completions into `out`.
fn generate_docs(out: &Path) -> std::io::Result<()> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    // The version is for the pages' title line only: the binary has no --version flag.
    let cmd = cli::Cli::command().version(env!("CARGO_PKG_VERSION"));
    clap_mangen::generate_to(cmd.clone(), &man)?;
    let mut cmd = cmd;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "dvdcli", &completions)?;
    }
    Ok(())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=DVDCLI_COMMIT={commit}");
    println!("cargo:rustc-env=DVDCLI_BRANCH={branch}");
    println!("cargo:rustc-env=DVDCLI_FORMED={}", date::rfc1123_utc(secs));
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=../isolator/src/date.rs");
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/refs");
    }
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    if let Err(e) = generate_docs(Path::new(&out)) {
        panic!("cannot generate the man pages and completions: {e}");
    }
}
