//! Test-only helpers for dvdi-rs: a Docker volume plugin server with fault injection
//! ([`plugin`]), the CSI test plugin as a child process ([`csi_plugin`]), a real third-party
//! plugin ([`buttervolume`]), root checks and binary locators for black-box tests
//! ([`env`](mod@env)), and the few host calls they need ([`sys`]).

pub mod buttervolume;
pub mod c_host;
pub mod csi_plugin;
pub mod env;
pub mod fixtures;
pub mod imports;
pub mod loops;
pub mod plugin;
pub mod records;
pub mod sys;

/// The workspace's one civil-date routine (`CreatedAt` of the test plugin's volumes). The
/// testkit does not depend on `dvdi`, so it compiles the library's file itself.
#[allow(dead_code)]
#[path = "../../../isolator/src/date.rs"]
mod date;
