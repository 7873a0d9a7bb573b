//! `dvdcli version`: Go dvdcli's six lines, filled in by `build.rs`.

use std::path::PathBuf;

use crate::output::emit;

pub fn run() -> anyhow::Result<()> {
    emit(&text())
}

fn text() -> String {
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("dvdcli"));
    format!(
        "Binary: {}\nSemVer: {}\nOsArch: {}-{}\nBranch: {}\nCommit: {}\nFormed: {}\n",
        binary.display(),
        env!("CARGO_PKG_VERSION"),
        capitalize(std::env::consts::OS),
        std::env::consts::ARCH,
        env!("DVDCLI_BRANCH"),
        env!("DVDCLI_COMMIT"),
        env!("DVDCLI_FORMED"),
    )
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
