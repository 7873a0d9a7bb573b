//! The repository's checkout and the captured Mesos 1.12 agent arguments in it
//! (`tests/fixtures/mesos-1.12`): what every test that replays a real agent's shapes reads.

use std::path::{Path, PathBuf};

/// The root of the checkout.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the checkout above tests/testkit")
}

/// A captured agent argument, `tests/fixtures/mesos-1.12/NAME`, parsed; a missing or
/// unreadable one fails the test, naming it.
pub fn mesos(name: &str) -> serde_json::Value {
    let path = repo().join("tests/fixtures/mesos-1.12").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the captured Mesos fixtures)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
