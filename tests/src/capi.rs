//! The C ABI of `libdvdi_ffi.so`, loaded with `dlopen` exactly as the Mesos module's host
//! process loads it (its own copy of the library, never unloaded): the benchmark's isolator
//! measurements and the tests that must see the library as a host does go through it. A
//! failed call gives its status and the library's message ([`Failure`]).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

type NewFn = unsafe extern "C" fn(*const c_char, *mut *mut c_void, *mut *mut c_char) -> c_int;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type RecoverFn = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_char,
    *mut *mut c_char,
    *mut *mut c_char,
) -> c_int;
type PrepareFn = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_char,
    *mut *mut c_char,
    *mut *mut c_char,
) -> c_int;
type CleanupFn = unsafe extern "C" fn(*mut c_void, *const c_char, *mut *mut c_char) -> c_int;
type StringFreeFn = unsafe extern "C" fn(*mut c_char);
/// `dvdi_isolator_metrics`.
pub type MetricsFn =
    unsafe extern "C" fn(*const c_void, *mut c_void, usize, *mut *mut c_char) -> c_int;
type LogFn = extern "C" fn(*mut c_void, c_int, *const c_char);
type SetLoggerFn = unsafe extern "C" fn(Option<LogFn>, *mut c_void);

/// The library's exports.
pub struct Api {
    new: NewFn,
    free: FreeFn,
    recover: RecoverFn,
    prepare: PrepareFn,
    cleanup: CleanupFn,
    string_free: StringFreeFn,
    set_logger: SetLoggerFn,
    /// `None` in a library older than the call.
    metrics: Option<MetricsFn>,
}

/// A call that did not return `DVDI_OK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub call: &'static str,
    pub status: c_int,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: status {}: {}", self.call, self.status, self.message)
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s).expect("no NUL in benchmark strings")
}

/// `dlopen` + `dlsym`; the library stays loaded for the life of the process.
pub fn load(path: &Path) -> Result<Api, String> {
    let cpath = cstring(&path.to_string_lossy());
    // SAFETY: a NUL-terminated path; RTLD_NOW resolves everything up front.
    let lib = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        return Err(format!("dlopen {} failed", path.display()));
    }
    let sym = |name: &str| -> Result<*mut c_void, String> {
        let cname = cstring(name);
        // SAFETY: `lib` is a live handle, `cname` NUL-terminated.
        let p = unsafe { libc::dlsym(lib, cname.as_ptr()) };
        if p.is_null() {
            Err(format!("{name} missing from {}", path.display()))
        } else {
            Ok(p)
        }
    };
    // SAFETY: each symbol is the function dvdi.h declares with this signature.
    unsafe {
        Ok(Api {
            new: std::mem::transmute::<*mut c_void, NewFn>(sym("dvdi_isolator_new")?),
            free: std::mem::transmute::<*mut c_void, FreeFn>(sym("dvdi_isolator_free")?),
            recover: std::mem::transmute::<*mut c_void, RecoverFn>(sym("dvdi_isolator_recover")?),
            prepare: std::mem::transmute::<*mut c_void, PrepareFn>(sym("dvdi_isolator_prepare")?),
            cleanup: std::mem::transmute::<*mut c_void, CleanupFn>(sym("dvdi_isolator_cleanup")?),
            string_free: std::mem::transmute::<*mut c_void, StringFreeFn>(sym("dvdi_string_free")?),
            set_logger: std::mem::transmute::<*mut c_void, SetLoggerFn>(sym("dvdi_set_logger")?),
            metrics: sym("dvdi_isolator_metrics")
                .ok()
                .map(|p| std::mem::transmute::<*mut c_void, MetricsFn>(p)),
        })
    }
}

extern "C" fn discard_log(_: *mut c_void, _: c_int, _: *const c_char) {}

/// An isolator handle (the ABI allows calls from many threads at once).
pub struct Handle<'a> {
    api: &'a Api,
    ptr: *mut c_void,
}

// SAFETY: dvdi.h: "a handle may be used from many threads at once".
unsafe impl Send for Handle<'_> {}
// SAFETY: as above.
unsafe impl Sync for Handle<'_> {}

impl Api {
    /// Log records go to a callback that drops them, as a host's logger would take them off
    /// stderr (the Mesos module hands them to glog).
    pub fn discard_logs(&self) {
        // SAFETY: a valid callback that ignores its arguments; NULL context.
        unsafe { (self.set_logger)(Some(discard_log), std::ptr::null_mut()) }
    }

    /// Takes a string the library returned.
    fn take(&self, s: *mut c_char) -> Option<String> {
        if s.is_null() {
            return None;
        }
        // SAFETY: a NUL-terminated string from the library, freed right after.
        let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
        // SAFETY: returned by the library, not yet freed.
        unsafe { (self.string_free)(s) };
        Some(text)
    }

    fn status(&self, code: c_int, err: *mut c_char, call: &'static str) -> Result<(), Failure> {
        let message = self.take(err);
        if code == 0 {
            Ok(())
        } else {
            Err(Failure {
                call,
                status: code,
                message: message.unwrap_or_default(),
            })
        }
    }

    /// `dvdi_isolator_metrics` itself, for calls with the arguments a host could get wrong:
    /// its status and, when `with_err` (else the `err` argument is NULL), its message.
    ///
    /// # Safety
    /// As dvdi.h says: `iso` a live handle or NULL, `out` writable for `size` bytes or NULL.
    pub unsafe fn metrics_raw(
        &self,
        iso: *const c_void,
        out: *mut c_void,
        size: usize,
        with_err: bool,
    ) -> (c_int, Option<String>) {
        let f = self
            .metrics
            .expect("this libdvdi_ffi.so has no dvdi_isolator_metrics");
        let mut err = std::ptr::null_mut();
        let place = if with_err {
            &mut err as *mut *mut c_char
        } else {
            std::ptr::null_mut()
        };
        let code = f(iso, out, size, place);
        (code, self.take(err))
    }

    pub fn new_isolator(&self, config_json: &str) -> Result<Handle<'_>, Failure> {
        let config = cstring(config_json);
        let mut out = std::ptr::null_mut();
        let mut err = std::ptr::null_mut();
        // SAFETY: valid string and out-parameters.
        let code = unsafe { (self.new)(config.as_ptr(), &mut out, &mut err) };
        self.status(code, err, "dvdi_isolator_new")?;
        Ok(Handle {
            api: self,
            ptr: out,
        })
    }
}

impl Handle<'_> {
    /// The handle as the C ABI knows it.
    pub fn as_ptr(&self) -> *const c_void {
        self.ptr
    }

    /// `dvdi_isolator_metrics` into `out` (a `dvdi_metrics` of `size` bytes).
    ///
    /// # Safety
    /// `out` must be writable for `size` bytes.
    pub unsafe fn metrics_into(&self, out: *mut c_void, size: usize) -> Result<(), Failure> {
        match self.api.metrics_raw(self.ptr, out, size, true) {
            (0, _) => Ok(()),
            (status, message) => Err(Failure {
                call: "dvdi_isolator_metrics",
                status,
                message: message.unwrap_or_default(),
            }),
        }
    }

    pub fn prepare(&self, id_json: &str, config_json: &str) -> Result<Option<String>, Failure> {
        let (id, config) = (cstring(id_json), cstring(config_json));
        let mut launch = std::ptr::null_mut();
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle, valid strings and out-parameters.
        let code = unsafe {
            (self.api.prepare)(
                self.ptr,
                id.as_ptr(),
                config.as_ptr(),
                &mut launch,
                &mut err,
            )
        };
        self.api.status(code, err, "dvdi_isolator_prepare")?;
        Ok(self.api.take(launch))
    }

    pub fn cleanup(&self, id_json: &str) -> Result<(), Failure> {
        let id = cstring(id_json);
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle, a valid string and out-parameter.
        let code = unsafe { (self.api.cleanup)(self.ptr, id.as_ptr(), &mut err) };
        self.api.status(code, err, "dvdi_isolator_cleanup")
    }

    pub fn recover(&self, states_json: &str, orphans_json: &str) -> Result<String, Failure> {
        let (states, orphans) = (cstring(states_json), cstring(orphans_json));
        let mut report = std::ptr::null_mut();
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle, valid strings and out-parameters.
        let code = unsafe {
            (self.api.recover)(
                self.ptr,
                states.as_ptr(),
                orphans.as_ptr(),
                &mut report,
                &mut err,
            )
        };
        self.api.status(code, err, "dvdi_isolator_recover")?;
        Ok(self.api.take(report).unwrap_or_default())
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        // SAFETY: a live handle; no call on it is running (we own it).
        unsafe { (self.api.free)(self.ptr) }
    }
}

/// `{"value": id}`: a `mesos.ContainerID`.
pub fn container_id_json(id: &str) -> String {
    serde_json::json!({ "value": id }).to_string()
}

/// A `mesos.slave.ContainerConfig` whose executor environment holds `env`.
pub fn container_config_json(env: &[(&str, &str)], sandbox: &Path) -> String {
    let variables: Vec<_> = env
        .iter()
        .map(|(k, v)| serde_json::json!({ "name": k, "value": v }))
        .collect();
    serde_json::json!({
        "executor_info": { "command": { "environment": { "variables": variables } } },
        "directory": sandbox,
    })
    .to_string()
}
