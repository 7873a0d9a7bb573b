//! The boundary every export goes through: NULL and UTF-8 checks, panics caught and turned
//! into `DVDI_ERR_PANIC`, fixed status codes, and error messages handed out as C strings.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `dvdi_status` of dvdi.h; the numbers are ABI and never change.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    NullArgument = 1,
    InvalidUtf8 = 2,
    InvalidJson = 3,
    Config = 4,
    InvalidInput = 5,
    Volume = 6,
    State = 7,
    Panic = 8,
    BufferSize = 9,
}

impl Status {
    /// Every status, in order.
    pub const ALL: [Status; 10] = [
        Status::Ok,
        Status::NullArgument,
        Status::InvalidUtf8,
        Status::InvalidJson,
        Status::Config,
        Status::InvalidInput,
        Status::Volume,
        Status::State,
        Status::Panic,
        Status::BufferSize,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "DVDI_OK",
            Status::NullArgument => "DVDI_ERR_NULL_ARGUMENT",
            Status::InvalidUtf8 => "DVDI_ERR_INVALID_UTF8",
            Status::InvalidJson => "DVDI_ERR_INVALID_JSON",
            Status::Config => "DVDI_ERR_CONFIG",
            Status::InvalidInput => "DVDI_ERR_INVALID_INPUT",
            Status::Volume => "DVDI_ERR_VOLUME",
            Status::State => "DVDI_ERR_STATE",
            Status::Panic => "DVDI_ERR_PANIC",
            Status::BufferSize => "DVDI_ERR_BUFFER_SIZE",
        }
    }
}

/// A failure on its way out: a status and the message for `*err`.
#[derive(Debug)]
pub struct Failure {
    pub status: Status,
    pub message: String,
}

impl Failure {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Runs `body`, catching panics; on failure writes the message to `err` (when not NULL).
pub fn guard(err: *mut *mut c_char, body: impl FnOnce() -> Result<(), Failure>) -> Status {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Failure::new(
            Status::Panic,
            format!("internal error (a bug in dvdi): {what}"),
        ))
    });
    match outcome {
        Ok(()) => Status::Ok,
        Err(failure) => {
            if !err.is_null() {
                // SAFETY: the caller passed a writable `char **` (checked non-NULL above).
                unsafe { *err = into_c_string(failure.message) };
            }
            failure.status
        }
    }
}

/// Borrows a required string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the call.
pub unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::new(
            Status::NullArgument,
            format!("{name} is NULL"),
        ));
    }
    // SAFETY: non-NULL and NUL-terminated per the function's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|e| Failure::new(Status::InvalidUtf8, format!("{name} is not UTF-8: {e}")))
}

/// Checks a required out-parameter.
pub fn out_arg<T>(ptr: *mut T, name: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(Failure::new(
            Status::NullArgument,
            format!("{name} is NULL"),
        ));
    }
    Ok(())
}

/// A heap C string for the caller (freed with `dvdi_string_free`). Interior NULs, which JSON
/// and our messages never contain, are replaced rather than truncating the text.
pub fn into_c_string(s: String) -> *mut c_char {
    let s = if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    };
    CString::new(s)
        .map(CString::into_raw)
        .unwrap_or(std::ptr::null_mut())
}
