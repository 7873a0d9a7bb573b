//! The process-wide log callback the host installs (`dvdi_set_logger`); stderr without one.

use std::ffi::{c_char, c_void, CString};
use std::sync::RwLock;

use dvdi::{LogLevel, Logger};

/// `dvdi_log_level` of dvdi.h.
pub const LEVEL_ERROR: i32 = 0;
pub const LEVEL_WARNING: i32 = 1;
pub const LEVEL_INFO: i32 = 2;
pub const LEVEL_DEBUG: i32 = 3;

/// A `dvdi_log_level` as it crosses the ABI: an `int`-sized enum of C.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CLogLevel(pub i32);

pub type LogFn = extern "C" fn(context: *mut c_void, level: CLogLevel, message: *const c_char);

#[derive(Clone, Copy)]
struct Sink {
    f: LogFn,
    context: *mut c_void,
}

// SAFETY: the host promises (dvdi.h) that its callback may be called from any thread with the
// context it registered; we never dereference the context ourselves.
unsafe impl Send for Sink {}
// SAFETY: as above; the sink is only copied out and called.
unsafe impl Sync for Sink {}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

pub fn set(f: Option<LogFn>, context: *mut c_void) {
    let mut sink = SINK.write().unwrap_or_else(|e| e.into_inner());
    *sink = f.map(|f| Sink { f, context });
}

/// Sends one record to the host's callback, or to stderr.
pub fn emit(level: LogLevel, message: &str) {
    let sink = *SINK.read().unwrap_or_else(|e| e.into_inner());
    match sink {
        Some(Sink { f, context }) => {
            let text = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
            let level = match level {
                LogLevel::Error => LEVEL_ERROR,
                LogLevel::Warning => LEVEL_WARNING,
                LogLevel::Info => LEVEL_INFO,
                LogLevel::Debug => LEVEL_DEBUG,
            };
            f(context, CLogLevel(level), text.as_ptr());
        }
        None => eprintln!("dvdi: {level:?}: {message}"),
    }
}

/// A library logger that goes through [`emit`].
pub fn logger() -> Logger {
    Logger::new(emit)
}
