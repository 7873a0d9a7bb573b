//! The C ABI as the Mesos module calls it, for the integration tests of this crate: each
//! call with its JSON arguments, the library's strings taken back and freed, the handle freed
//! on drop. A failed call gives its status and the library's error text.
#![allow(dead_code)]

use std::ffi::{c_char, CStr, CString};

use dvdi_ffi::{
    dvdi_isolator_cleanup, dvdi_isolator_free, dvdi_isolator_new, dvdi_isolator_prepare,
    dvdi_isolator_recover, dvdi_string_free, DvdiIsolator, Status,
};
use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

/// A failed call: its status and the library's message.
pub type Failed = (Status, String);

/// Takes a string the library returned.
pub fn take(s: *mut c_char) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: a non-NULL string from the library, NUL-terminated, freed right after.
    let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    // SAFETY: returned by the library and not freed yet.
    unsafe { dvdi_string_free(s) };
    Some(text)
}

fn c(value: &Value) -> CString {
    CString::new(value.to_string()).unwrap()
}

fn result<T>(status: Status, ok: impl FnOnce() -> T, err: *mut c_char) -> Result<T, Failed> {
    match status {
        Status::Ok => Ok(ok()),
        s => Err((s, take(err).unwrap_or_default())),
    }
}

pub struct Handle(pub *mut DvdiIsolator);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle from dvdi_isolator_new, freed once.
        unsafe { dvdi_isolator_free(self.0) };
    }
}

impl Handle {
    /// `dvdi_isolator_new` with a module configuration.
    pub fn new(config: &Value) -> Result<Handle, Failed> {
        let text = c(config);
        let mut out: *mut DvdiIsolator = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid C string and writable out-parameters.
        let status = unsafe { dvdi_isolator_new(text.as_ptr(), &mut out, &mut err) };
        result(status, || Handle(out), err)
    }

    /// `dvdi_isolator_prepare`: the launch info's JSON text, `None` when no volume was asked.
    pub fn prepare(&self, container_id: &Value, config: &Value) -> Result<Option<String>, Failed> {
        let (id, config) = (c(container_id), c(config));
        let mut info: *mut c_char = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: a live handle, valid C strings, writable out-parameters.
        let status = unsafe {
            dvdi_isolator_prepare(self.0, id.as_ptr(), config.as_ptr(), &mut info, &mut err)
        };
        result(status, || take(info), err)
    }

    pub fn cleanup(&self, container_id: &Value) -> Result<(), Failed> {
        let id = c(container_id);
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: a live handle, a valid C string, a writable out-parameter.
        let status = unsafe { dvdi_isolator_cleanup(self.0, id.as_ptr(), &mut err) };
        result(status, || (), err)
    }

    /// `dvdi_isolator_recover`: its report's JSON text.
    pub fn recover(&self, states: &Value, orphans: &Value) -> Result<String, Failed> {
        let (states, orphans) = (c(states), c(orphans));
        let mut report: *mut c_char = std::ptr::null_mut();
        let mut err: *mut c_char = std::ptr::null_mut();
        // SAFETY: a live handle, valid C strings, writable out-parameters.
        let status = unsafe {
            dvdi_isolator_recover(
                self.0,
                states.as_ptr(),
                orphans.as_ptr(),
                &mut report,
                &mut err,
            )
        };
        result(status, || take(report).unwrap_or_default(), err)
    }
}

// ---- the second process: the launch info carried out, then writes ----

const CHILD_VAR: &str = "DVDI_FFI_DV_CHILD";
const RESULT_MARK: &str = "DVDI-FFI-DV-RESULT:";

/// In child mode (every test binary of this crate has it, as `common::child_entry`): enter the launch info (`ContainerLaunchInfo` as the library wrote it),
/// then write a file at each path and report each write's errno (0: written).
#[test]
fn child_entry() {
    let Ok(task) = std::env::var(CHILD_VAR) else {
        return;
    };
    let task: Value = serde_json::from_str(&task).unwrap();
    let info: dvdi::LaunchInfo = serde_json::from_value(json!({
        "clone_newns": task["launch"]["clone_namespaces"] == json!([libc::CLONE_NEWNS]),
        "mounts": task["launch"]["mounts"],
    }))
    .unwrap();
    dvdi::launch::carry_out(&info, &dvdi::sys::RealHost).unwrap();
    let results: Vec<i32> = task["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| match std::fs::write(p.as_str().unwrap(), "x") {
            Ok(()) => 0,
            Err(e) => e.raw_os_error().unwrap_or(-1),
        })
        .collect();
    // Then what each path to read holds, as the task sees it ("" when it cannot be read).
    let read: Vec<String> = task["reads"]
        .as_array()
        .map(|paths| {
            paths
                .iter()
                .map(|p| std::fs::read_to_string(p.as_str().unwrap()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    println!(
        "\n{RESULT_MARK}{}",
        json!({"writes": results, "reads": read})
    );
    std::process::exit(0);
}

/// Runs the launch in a second process (`unshare` changes only the calling thread's
/// namespace, and the test harness has many) and returns each write's errno.
pub fn write_in_container(launch: &Value, writes: &[PathBuf]) -> Vec<i32> {
    let out = in_container(launch, writes, &[]);
    serde_json::from_value(out["writes"].clone()).unwrap()
}

/// What the task reads at each path, inside the container the launch info makes.
pub fn read_in_container(launch: &Value, reads: &[PathBuf]) -> Vec<String> {
    let out = in_container(launch, &[], reads);
    serde_json::from_value(out["reads"].clone()).unwrap()
}

pub fn in_container(launch: &Value, writes: &[PathBuf], reads: &[PathBuf]) -> Value {
    let task = json!({ "launch": launch, "writes": writes, "reads": reads });
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "common::child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, task.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(RESULT_MARK).map(|(_, j)| j))
        .unwrap_or_else(|| {
            panic!(
                "child gave no result ({}): {stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap()
}
