//! The C ABI as a C host sees it: the committed header against the library's exports and the
//! library's own description of its signatures (`dvdi_ffi::abi`, compiled as C), and a C
//! program built with `-Wall -Wextra -Werror -fsanitize=address,undefined` that `dlopen`s the
//! real `libdvdi_ffi.so` and drives the whole lifecycle with real mounts (tests/c/).

use std::collections::BTreeSet;
use std::process::Command;

use dvdi_testkit::c_host;
use dvdi_testkit::env::{require_root, workspace_bin};
use dvdi_testkit::fixtures::repo;

/// Function names declared in dvdi.h.
fn header_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(repo().join("ffi/include/dvdi.h")).unwrap();
    let mut names = BTreeSet::new();
    for line in header.lines() {
        let line = line.trim_start();
        if line.starts_with('#')
            || line.starts_with('*')
            || line.starts_with("/*")
            || line.starts_with("typedef")
        {
            continue;
        }
        if let Some(paren) = line.find('(') {
            let before = &line[..paren];
            if let Some(name) = before
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next_back()
            {
                if name.starts_with("dvdi_") {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

/// `dvdi_*` functions the built library exports.
fn library_exports() -> BTreeSet<String> {
    let lib = workspace_bin("libdvdi_ffi.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .unwrap();
    assert!(out.status.success(), "nm failed on {}", lib.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|s| s.starts_with("dvdi_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn header_declares_exactly_the_exports() {
    let declared = header_functions();
    let exported = library_exports();
    assert!(
        declared.len() >= 9,
        "header parse found too little: {declared:?}"
    );
    assert_eq!(declared, exported, "dvdi.h and libdvdi_ffi.so disagree");
}

#[test]
fn header_abi_version_matches_the_library() {
    let header = std::fs::read_to_string(repo().join("ffi/include/dvdi.h")).unwrap();
    let line = header
        .lines()
        .find(|l| l.starts_with("#define DVDI_ABI_VERSION"))
        .unwrap();
    let version: u32 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    // The crate's own export, called (the C test also calls it through dlopen).
    assert_eq!(version, dvdi_ffi::dvdi_abi_version());
    assert_eq!(version, dvdi_ffi::ABI_VERSION);
}

#[test]
fn the_librarys_description_of_itself_covers_every_export() {
    let described: BTreeSet<String> = dvdi_ffi::abi::functions()
        .into_iter()
        .map(|f| f.name.to_owned())
        .collect();
    assert_eq!(
        described,
        library_exports(),
        "dvdi_ffi::abi and libdvdi_ffi.so disagree"
    );
}

/// `dvdi.h` compiled together with `dvdi_abi_check.h`, which the library generates from its
/// own signatures, numbers and sizes: every `_Static_assert` in it must hold, in C and with
/// `-Werror`. A wrong parameter type, a missing `const`, a renumbered status, a wrong
/// `DVDI_ABI_VERSION` all fail to compile.
#[test]
fn header_compiles_against_the_librarys_own_description() {
    let dir = tempfile::tempdir().unwrap();
    let check = dir.path().join("dvdi_abi_check.h");
    std::fs::write(&check, dvdi_ffi::abi::check_header()).unwrap();
    let source = dir.path().join("check.c");
    std::fs::write(
        &source,
        "#include \"dvdi.h\"\n#include \"dvdi_abi_check.h\"\nint main(void) { return 0; }\n",
    )
    .unwrap();
    let out = Command::new("cc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
        ])
        .arg("-I")
        .arg(repo().join("ffi/include"))
        .arg("-I")
        .arg(dir.path())
        .arg(&source)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "dvdi.h does not match the library:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The Mesos module includes it from C++.
    let cxx = dir.path().join("check.cpp");
    std::fs::write(&cxx, "#include \"dvdi.h\"\nint main() { return 0; }\n").unwrap();
    let out = Command::new("c++")
        .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"])
        .arg("-I")
        .arg(repo().join("ffi/include"))
        .arg(&cxx)
        .output()
        .expect("run c++");
    assert!(
        out.status.success(),
        "dvdi.h does not compile as C++:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The check is a check: a header with one parameter type changed must fail it.
    let broken = std::fs::read_to_string(repo().join("ffi/include/dvdi.h"))
        .unwrap()
        .replacen(
            "dvdi_isolator_cleanup(const dvdi_isolator *",
            "dvdi_isolator_cleanup(dvdi_isolator *",
            1,
        );
    std::fs::write(dir.path().join("dvdi.h"), broken).unwrap();
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"])
        .arg("-I")
        .arg(dir.path())
        .arg(&source)
        .output()
        .expect("run cc");
    assert!(!out.status.success(), "a wrong header passed the check");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dvdi_isolator_cleanup"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // So is the layout of dvdi_metrics: a field of the wrong width, or two fields swapped.
    let header = std::fs::read_to_string(repo().join("ffi/include/dvdi.h")).unwrap();
    for (from, to, named) in [
        (
            "uint64_t cleanups;",
            "uint32_t cleanups;",
            "dvdi_metrics.cleanups is a uint64_t",
        ),
        (
            "uint64_t p90_us;\n    uint64_t p95_us;",
            "uint64_t p95_us;\n    uint64_t p90_us;",
            "dvdi_timer_metrics.p90_us is at offset",
        ),
    ] {
        assert!(header.contains(from), "dvdi.h has no {from:?}");
        std::fs::write(dir.path().join("dvdi.h"), header.replacen(from, to, 1)).unwrap();
        let out = Command::new("cc")
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"])
            .arg("-I")
            .arg(dir.path())
            .arg(&source)
            .output()
            .expect("run cc");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{to:?} passed the check");
        assert!(stderr.contains(named), "{to:?}: {stderr}");
    }
}

#[test]
fn c_host_drives_the_whole_lifecycle_with_real_mounts() {
    if !require_root("c_host_drives_the_whole_lifecycle_with_real_mounts") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("ffi_lifecycle");
    c_host::compile("tests/c/ffi_lifecycle.c", &exe);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = Command::new(&exe)
        .arg(workspace_bin("libdvdi_ffi.so"))
        .arg(&work)
        // Rust's runtime keeps a few process-lifetime allocations; leaks are not what this
        // test is about (the C side frees every string, which ASan's use-after-free and
        // double-free checks do cover).
        .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(format!("/tmp/dvdi-c-test-{}", out_pid(&out)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "C test failed ({}):\n{stderr}",
        out.status
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
    // Nothing of the test is left mounted.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&*work.to_string_lossy()),
        "left mounted:\n{mounts}"
    );
}

/// The C program names its absolute container path after its pid; find it in its output.
fn out_pid(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    text.split("/tmp/dvdi-c-test-")
        .nth(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default()
}
