//! What a CSI plugin's side hands the library: the operator's plugin file
//! (`CsiConfig::parse`) and the `dvdi-csi` program's reply, which relays a plugin's words
//! (`wire::Reply`). Neither may panic; a file that parses has an absolute root and endpoints
//! of the kinds allowed; a reply's error, as the library prints it, is one line with no control
//! character, whatever the plugin said.
#![no_main]

use std::path::Path;

use dvdi::csi::wire::{Endpoint, Outcome, Reply};
use dvdi::csi::{CsiConfig, CsiError};
use dvdi::DriverName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let driver = DriverName::new("fuzz").expect("a valid name");
    if let Ok(config) = CsiConfig::parse(&driver, Path::new("/etc/dvdi/csi.d/fuzz.json"), data) {
        assert!(config.root.is_absolute());
        assert!(matches!(config.node, Endpoint::Unix(ref p) if p.is_absolute()));
    }
    if let Ok(Reply {
        result: Outcome::Error(error),
        ..
    }) = serde_json::from_slice::<Reply>(data)
    {
        let e = CsiError::Call {
            driver: "fuzz".into(),
            endpoint: "unix:///run/csi.sock".into(),
            volume: "v".into(),
            error: Box::new(error),
        };
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        let _ = e.outcome();
    }
});
