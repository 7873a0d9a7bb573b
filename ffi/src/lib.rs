//! The C ABI of dvdi-rs (`ffi/include/dvdi.h`): an opaque isolator handle over the core
//! library, with container data in Mesos' protobuf-JSON mapping.
//!
//! Every export goes through `boundary::guard`: NULL and UTF-8 checks, panics caught, fixed
//! status codes, out-parameters written only on success. A bug in this library must never take
//! a Mesos agent down.

pub mod abi;
mod boundary;
mod log;
mod mesos;
pub mod metrics;

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use dvdi::{DriverResolver, Isolator, IsolatorConfig, IsolatorError, LogLevel};
use serde_json::{json, Value};

use boundary::{guard, into_c_string, out_arg, str_arg};
pub use boundary::{Failure, Status};
pub use log::{CLogLevel, LogFn};
use mesos::{MesosContainerConfig, MesosContainerId, MesosContainerState};
pub use metrics::{CMetrics, CTimerMetrics};

/// `DVDI_ABI_VERSION` of dvdi.h.
pub const ABI_VERSION: u32 = 1;

/// The opaque handle behind `dvdi_isolator *`.
pub struct DvdiIsolator {
    inner: Isolator,
}

fn parse_json<'a, T: serde::Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, Failure> {
    serde_json::from_str(text)
        .map_err(|e| Failure::new(Status::InvalidJson, format!("{what}: invalid JSON: {e}")))
}

/// The status an isolator error maps to.
fn status_of(e: &IsolatorError) -> Status {
    match e.primary() {
        IsolatorError::InvalidContainerId(_)
        | IsolatorError::ReservedId { .. }
        | IsolatorError::Grammar { .. }
        | IsolatorError::ContainerInfo { .. }
        | IsolatorError::DriverNotAllowed { .. }
        | IsolatorError::LocalDeviceOptions { .. }
        | IsolatorError::ContainerPath { .. } => Status::InvalidInput,
        IsolatorError::Ledger { .. }
        | IsolatorError::VolumeLedger { .. }
        | IsolatorError::Checkpoint(_)
        | IsolatorError::AlreadyPrepared { .. } => Status::State,
        _ => Status::Volume,
    }
}

fn isolator_failure(e: IsolatorError) -> Failure {
    Failure::new(status_of(&e), e.to_string())
}

/// A JSON value as the string a module parameter would hold.
fn parameter_text(key: &str, value: &Value) -> Result<String, Failure> {
    // An unknown key's separator does not matter: the parser refuses the key.
    let sep = dvdi::settings::Setting::by_parameter(key).map_or(":", |s| s.kind.list_separator());
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(sep))
            .ok_or_else(|| {
                Failure::new(
                    Status::Config,
                    format!("config key {key}: array items must be strings"),
                )
            }),
        _ => Err(Failure::new(
            Status::Config,
            format!("config key {key}: expected a string, number, bool or array of strings"),
        )),
    }
}

/// The isolator configuration a `dvdi_isolator_new` JSON object describes (no side effects):
/// values may be strings, numbers, bools or arrays of strings; the keys are the module
/// parameters of the table `dvdi::settings::SETTINGS`. Also returns notes for the host's log.
pub fn config_from_json(text: &str) -> Result<(IsolatorConfig, Vec<String>), Failure> {
    let object: serde_json::Map<String, Value> = parse_json(text, "config_json")?;
    let mut pairs = Vec::with_capacity(object.len());
    for (key, value) in &object {
        pairs.push((key.clone(), parameter_text(key, value)?));
    }
    let base = IsolatorConfig {
        log: log::logger(),
        ..IsolatorConfig::default()
    };
    dvdi::settings::from_parameters(&pairs, base)
        .map(|parsed| (parsed.config, parsed.notes))
        .map_err(|e| Failure::new(Status::Config, e.to_string()))
}

/// Wraps a handle reference; NULL is an error.
///
/// # Safety
/// `isolator` is NULL or a live handle from `dvdi_isolator_new`.
unsafe fn handle<'a>(isolator: *const DvdiIsolator) -> Result<&'a DvdiIsolator, Failure> {
    // SAFETY: per the contract above, a non-NULL pointer is a live handle.
    unsafe { isolator.as_ref() }
        .ok_or_else(|| Failure::new(Status::NullArgument, "isolator is NULL"))
}

/// Writes an owned C string to an out-parameter the caller checked.
fn put(out: *mut *mut c_char, text: Option<String>) {
    if !out.is_null() {
        let ptr = text.map(into_c_string).unwrap_or(std::ptr::null_mut());
        // SAFETY: `out` is non-NULL and points to writable storage for a `char *`.
        unsafe { *out = ptr };
    }
}

#[no_mangle]
pub extern "C" fn dvdi_abi_version() -> u32 {
    ABI_VERSION
}

#[no_mangle]
pub extern "C" fn dvdi_set_logger(f: Option<log::LogFn>, context: *mut c_void) {
    let _ = std::panic::catch_unwind(|| log::set(f, context));
}

/// # Safety
/// See dvdi.h: `config_json` is a NUL-terminated string, `out` and `err` writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn dvdi_isolator_new(
    config_json: *const c_char,
    out: *mut *mut DvdiIsolator,
    err: *mut *mut c_char,
) -> Status {
    guard(err, || {
        out_arg(out, "out")?;
        // SAFETY: forwarded contract of this function.
        let text = unsafe { str_arg(config_json, "config_json") }?;
        let (config, notes) = config_from_json(text)?;
        let logger = config.logger();
        for note in notes {
            logger.log(LogLevel::Info, &note);
        }
        let resolver = DriverResolver::new(config.settings.clone());
        let inner = Isolator::new(config, resolver, Arc::new(dvdi::sys::RealHost))
            .map_err(|e| Failure::new(Status::State, e.to_string()))?;
        let handle = Box::into_raw(Box::new(DvdiIsolator { inner }));
        // SAFETY: `out` was checked non-NULL above.
        unsafe { *out = handle };
        Ok(())
    })
}

/// # Safety
/// `isolator` is NULL or a handle from `dvdi_isolator_new` not yet freed, and no other call
/// on it is running.
#[no_mangle]
pub unsafe extern "C" fn dvdi_isolator_free(isolator: *mut DvdiIsolator) {
    if !isolator.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: per the contract, the pointer came from Box::into_raw in _new.
            drop(unsafe { Box::from_raw(isolator) });
        }));
    }
}

/// # Safety
/// See dvdi.h.
#[no_mangle]
pub unsafe extern "C" fn dvdi_isolator_recover(
    isolator: *const DvdiIsolator,
    states_json: *const c_char,
    orphans_json: *const c_char,
    report_json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> Status {
    guard(err, || {
        // SAFETY: forwarded contract of this function.
        let (iso, states, orphans) = unsafe {
            (
                handle(isolator)?,
                str_arg(states_json, "states_json")?,
                str_arg(orphans_json, "orphans_json")?,
            )
        };
        let states: Vec<MesosContainerState> = parse_json(states, "states_json")?;
        let orphans: Vec<MesosContainerId> = parse_json(orphans, "orphans_json")?;
        let id_failure =
            |e: dvdi::ContainerIdError| Failure::new(Status::InvalidInput, e.to_string());
        let known = states
            .iter()
            .map(|s| s.container_id.to_container_id())
            .collect::<Result<Vec<_>, _>>()
            .map_err(id_failure)?;
        let orphans = orphans
            .iter()
            .map(MesosContainerId::to_container_id)
            .collect::<Result<Vec<_>, _>>()
            .map_err(id_failure)?;
        let report = iso
            .inner
            .recover(&known, &orphans)
            .map_err(isolator_failure)?;
        for message in &report.messages {
            log::emit(LogLevel::Info, message);
        }
        let text = json!({
            "kept_containers": report.kept_containers,
            "cleaned_containers": report.cleaned_containers,
            "unmounted_volumes": report.unmounted_volumes,
            "retried_unmounts": report.retried_unmounts,
            "failed_unmounts": report.failed_unmounts,
            "corrupt_records": report.corrupt_records,
            "messages": report.messages,
        })
        .to_string();
        put(report_json, Some(text));
        Ok(())
    })
}

/// # Safety
/// See dvdi.h.
#[no_mangle]
pub unsafe extern "C" fn dvdi_isolator_prepare(
    isolator: *const DvdiIsolator,
    container_id_json: *const c_char,
    container_config_json: *const c_char,
    launch_info_json: *mut *mut c_char,
    err: *mut *mut c_char,
) -> Status {
    guard(err, || {
        out_arg(launch_info_json, "launch_info_json")?;
        // SAFETY: forwarded contract of this function.
        let (iso, id, config) = unsafe {
            (
                handle(isolator)?,
                str_arg(container_id_json, "container_id_json")?,
                str_arg(container_config_json, "container_config_json")?,
            )
        };
        let id: MesosContainerId = parse_json(id, "container_id_json")?;
        let config: MesosContainerConfig = parse_json(config, "container_config_json")?;
        let id = id
            .to_container_id()
            .map_err(|e| Failure::new(Status::InvalidInput, e.to_string()))?;
        if config.is_debug() {
            put(launch_info_json, None);
            return Ok(());
        }
        let (config, secrets) = config.to_container_config();
        for name in secrets {
            log::emit(
                LogLevel::Warning,
                &format!("container {id}: secret environment variable {name} is not read by dvdi"),
            );
        }
        let launch = iso.inner.prepare(&id, &config).map_err(isolator_failure)?;
        put(
            launch_info_json,
            launch.map(|l| mesos::launch_info_json(&l).to_string()),
        );
        Ok(())
    })
}

/// # Safety
/// See dvdi.h.
#[no_mangle]
pub unsafe extern "C" fn dvdi_isolator_cleanup(
    isolator: *const DvdiIsolator,
    container_id_json: *const c_char,
    err: *mut *mut c_char,
) -> Status {
    guard(err, || {
        // SAFETY: forwarded contract of this function.
        let (iso, id) = unsafe {
            (
                handle(isolator)?,
                str_arg(container_id_json, "container_id_json")?,
            )
        };
        let id: MesosContainerId = parse_json(id, "container_id_json")?;
        let id = id
            .to_container_id()
            .map_err(|e| Failure::new(Status::InvalidInput, e.to_string()))?;
        iso.inner.cleanup(&id).map_err(isolator_failure)
    })
}

/// # Safety
/// See dvdi.h: `out` is NULL or points to `out_size` writable bytes; `err` writable or NULL.
#[no_mangle]
pub unsafe extern "C" fn dvdi_isolator_metrics(
    isolator: *const DvdiIsolator,
    out: *mut CMetrics,
    out_size: usize,
    err: *mut *mut c_char,
) -> Status {
    guard(err, || {
        out_arg(out, "out")?;
        // SAFETY: forwarded contract of this function.
        let iso = unsafe { handle(isolator) }?;
        if out_size < metrics::METRICS_SIZE_V1 {
            return Err(Failure::new(
                Status::BufferSize,
                format!(
                    "out_size is {out_size} bytes; a dvdi_metrics has at least {}",
                    metrics::METRICS_SIZE_V1
                ),
            ));
        }
        let figures = CMetrics::from(&iso.inner.metrics());
        // SAFETY: `out` is non-NULL with `out_size` writable bytes per the contract.
        unsafe { figures.write_to(out.cast::<u8>(), out_size) };
        Ok(())
    })
}

/// # Safety
/// `s` is NULL or a string returned by this library, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn dvdi_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: per the contract, `s` came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Exercises the panic boundary: panics inside the library and returns what any export would.
///
/// # Safety
/// `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dvdi_selftest_panic(err: *mut *mut c_char) -> Status {
    guard(err, || panic!("dvdi_selftest_panic was called"))
}
