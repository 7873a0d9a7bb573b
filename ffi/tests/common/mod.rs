//! The C ABI as the Mesos module calls it, for the integration tests of this crate: each
//! call with its JSON arguments, the library's strings taken back and freed, the handle freed
//! on drop. A failed call gives its status and the library's error text.
#![allow(dead_code)]

use std::ffi::{c_char, CStr, CString};

use dvdi_ffi::{
    dvdi_isolator_cleanup, dvdi_isolator_free, dvdi_isolator_new, dvdi_isolator_prepare,
    dvdi_isolator_recover, dvdi_string_free, DvdiIsolator, Status,
};
use serde_json::Value;

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
