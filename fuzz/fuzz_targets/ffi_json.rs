//! The C ABI's JSON inputs through the real exports of `dvdi_ffi`: the module configuration
//! (`config_from_json`, what `dvdi_isolator_new` parses), and `ContainerID`, `ContainerConfig`
//! and `ContainerState` lists given to `dvdi_isolator_prepare`, `_cleanup` and `_recover` on a
//! live handle. Bytes go in as they come (invalid UTF-8 included); every call must return a
//! status code, never crash, and write its out-parameter only on success.
//!
//! The handle is made harmless: its checkpoint and local root are in a temp dir, its plugin
//! directory is empty, and the only allowed driver is one that does not exist, so no fuzzed
//! container can mount, create or write anything outside the temp dir — `DOCKER_VOLUME`s of
//! `ContainerInfo` (served: `docker_volumes` is on) included.
#![no_main]

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::sync::OnceLock;

use dvdi_ffi::{
    config_from_json, dvdi_isolator_cleanup, dvdi_isolator_new, dvdi_isolator_prepare,
    dvdi_isolator_recover, dvdi_string_free, DvdiIsolator, Status,
};
use libfuzzer_sys::fuzz_target;

struct Handle(*mut DvdiIsolator);
// SAFETY: the library documents handles as usable from any thread.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

fn handle() -> *mut DvdiIsolator {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("dvdi-fuzz-ffi-{}", std::process::id()));
            std::fs::create_dir_all(dir.join("plugins")).expect("temp dir");
            let config = serde_json::json!({
                "checkpoint_dir": dir.join("checkpoint"),
                "local_root": dir.join("volumes"),
                "plugin_dirs": [dir.join("plugins")],
                "default_driver": "fuzz-none",
                "allowed_drivers": "fuzz-none",
                "timeout": 1,
                // DOCKER_VOLUMEs are read too (their driver is refused like the env's).
                "docker_volumes": true,
            })
            .to_string();
            let config = CString::new(config).expect("no NUL");
            let mut out: *mut DvdiIsolator = ptr::null_mut();
            // SAFETY: valid C string, valid out-pointer, NULL err is allowed.
            let status = unsafe { dvdi_isolator_new(config.as_ptr(), &mut out, ptr::null_mut()) };
            assert_eq!(status, Status::Ok);
            Handle(out)
        })
        .0
}

/// Frees an error or result string, checking it is a valid C string first.
fn take(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the library returned a NUL-terminated string it allocated.
        let _ = unsafe { CStr::from_ptr(s) }.to_bytes().len();
        // SAFETY: returned by the library, freed once.
        unsafe { dvdi_string_free(s) };
    }
}

fn check(status: Status, err: *mut c_char, out: *mut c_char, sentinel: *mut c_char) {
    if status == Status::Ok {
        assert!(err == sentinel || err.is_null(), "err written on success");
        if out != sentinel {
            take(out);
        }
    } else {
        assert!(
            !err.is_null() && err != sentinel,
            "{status:?} without a message"
        );
        assert!(out == sentinel, "out-parameter written on failure");
        assert_ne!(status, Status::Panic, "a panic inside the library");
        take(err);
    }
}

const ID: &CStr = c"{\"value\":\"fuzz-container\"}";
const CONFIG: &CStr = c"{\"directory\":\"/nonexistent-sandbox\",\"command_info\":{\"environment\":{\"variables\":[{\"name\":\"DVDI_VOLUME_NAME\",\"value\":\"v\"}]}}}";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 5 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            let _ = config_from_json(text);
        }
        return;
    }
    let Ok(input) = CString::new(rest) else {
        return;
    };
    let h = handle();
    let mut sentinel_byte = 0 as c_char;
    let sentinel: *mut c_char = &mut sentinel_byte;
    let mut err = sentinel;
    let mut out = sentinel;
    // SAFETY: a live handle, valid C strings, valid out-pointers.
    let status = unsafe {
        match mode % 5 {
            1 => dvdi_isolator_prepare(h, ID.as_ptr(), input.as_ptr(), &mut out, &mut err),
            2 => dvdi_isolator_prepare(h, input.as_ptr(), CONFIG.as_ptr(), &mut out, &mut err),
            3 => dvdi_isolator_cleanup(h, input.as_ptr(), &mut err),
            _ => dvdi_isolator_recover(h, input.as_ptr(), c"[]".as_ptr(), &mut out, &mut err),
        }
    };
    check(status, err, out, sentinel);
});
