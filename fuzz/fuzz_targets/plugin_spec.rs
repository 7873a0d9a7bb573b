//! Plugin spec files (`dvdi::discovery::parse_spec`): `.spec` URLs and `.json` specs.
#![no_main]

use std::path::Path;

use dvdi::discovery::{self, PluginAddr, SpecKind};
use dvdi::DriverName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    // Discovery refuses a file that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let kind = if k % 2 == 0 {
        SpecKind::Url
    } else {
        SpecKind::Json
    };
    let driver = DriverName::new("fuzz").expect("a valid driver name");
    let path = Path::new("/etc/docker/plugins/fuzz.spec");
    match discovery::parse_spec(&driver, path, kind, text) {
        Ok(addr) => {
            match &addr {
                PluginAddr::Unix(p) => assert!(p.is_absolute(), "{addr:?}"),
                PluginAddr::Tcp(h) => assert!(h.contains(':') && !h.contains('/'), "{addr:?}"),
            }
            // An address reads back as itself from its own display form (as written in
            // messages, and as an operator would copy it into a .spec file).
            let again = discovery::parse_spec(&driver, path, SpecKind::Url, &addr.to_string());
            assert_eq!(again.as_ref().ok(), Some(&addr), "{addr} gave {again:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
