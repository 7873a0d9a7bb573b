//! `log_level` through the C ABI: the host's callback gets the records at or above it, and
//! `DVDI_LOG_DEBUG` ones when it is `debug`.

use std::ffi::{c_char, c_void, CString};
use std::sync::Mutex;

use dvdi_ffi::{
    dvdi_isolator_free, dvdi_isolator_new, dvdi_set_logger, dvdi_string_free, CLogLevel, Status,
};

static LEVELS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

extern "C" fn record(_context: *mut c_void, level: CLogLevel, _message: *const c_char) {
    LEVELS.lock().unwrap().push(level.0);
}

/// The levels the callback received while an isolator with `log_level` was created.
fn levels_with(log_level: &str) -> Vec<i32> {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "checkpoint_dir": dir.path().join("checkpoint"),
        "log_level": log_level,
        "work_dir": "/tmp/mesos",
    })
    .to_string();
    let config = CString::new(config).unwrap();
    LEVELS.lock().unwrap().clear();
    dvdi_set_logger(Some(record), std::ptr::null_mut());
    let mut handle = std::ptr::null_mut();
    let mut err = std::ptr::null_mut();
    // SAFETY: a valid C string and valid out-pointers.
    let status = unsafe { dvdi_isolator_new(config.as_ptr(), &mut handle, &mut err) };
    assert_eq!(status, Status::Ok);
    // SAFETY: the handle from _new, freed once; err was not written (NULL).
    unsafe {
        dvdi_isolator_free(handle);
        dvdi_string_free(err);
    }
    dvdi_set_logger(None, std::ptr::null_mut());
    let levels = LEVELS.lock().unwrap().clone();
    levels
}

#[test]
fn debug_records_reach_the_host_only_at_log_level_debug() {
    const DEBUG: i32 = 3;
    const INFO: i32 = 2;
    // The work_dir note is an info record; a debug isolator also says its settings.
    let debug = levels_with("debug");
    assert!(debug.contains(&DEBUG) && debug.contains(&INFO), "{debug:?}");
    let info = levels_with("info");
    assert!(!info.contains(&DEBUG) && info.contains(&INFO), "{info:?}");
    let warning = levels_with("warning");
    assert!(warning.iter().all(|l| *l < INFO), "{warning:?}");
}
