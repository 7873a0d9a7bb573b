//! The C test hosts (`tests/c/*.c`): built as a C host of `libdvdi_ffi.so` would be, strict
//! (`-Wall -Wextra -Werror`) and with the address and undefined-behaviour sanitizers, against
//! the committed header.

use std::path::Path;
use std::process::Command;

use crate::fixtures::repo;

/// Compiles `source` (relative to the checkout) into the program `out`; a failed build fails
/// the test.
pub fn compile(source: &str, out: &Path) {
    let status = Command::new("cc")
        .args(["-std=gnu11", "-g", "-Wall", "-Wextra", "-Werror"])
        .args([
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all",
        ])
        .arg("-I")
        .arg(repo().join("ffi/include"))
        .arg(repo().join(source))
        .arg("-o")
        .arg(out)
        .arg("-ldl")
        .status()
        .expect("run cc");
    assert!(status.success(), "compiling {source} failed");
}
