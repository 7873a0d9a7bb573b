//! Reply decoding and Docker's error texts (`dvdi::plugin::decode_reply`, `error_text`) for
//! any status and body.
#![no_main]

use dvdi::plugin::{self, Endpoint, PluginError, Reply};
use dvdi::DriverName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[e, hi, lo], body)) = data.split_first_chunk::<3>() else {
        return;
    };
    let endpoint = dvdi_fuzz::endpoint(e);
    let status = u16::from_be_bytes([hi, lo]);

    let text = plugin::error_text(endpoint, status, body);
    match &text {
        Some(t) if status == 200 => assert!(!t.is_empty()),
        Some(t) => assert!(t.starts_with(&format!("{endpoint}: ")), "{t:?}"),
        None => assert_eq!(status, 200, "every other status is an error"),
    }

    let driver = DriverName::new("fuzz").expect("a valid driver name");
    let decoded = plugin::decode_reply(&driver, endpoint, status, body);
    match (&decoded, endpoint) {
        // Capabilities is optional: every failure reads as the local scope.
        (Ok(Reply::Scope(_)), Endpoint::Capabilities) => {}
        (_, Endpoint::Capabilities) => panic!("Capabilities gave {decoded:?}"),
        (Err(PluginError::Refused { message, .. }), _) => assert_eq!(Some(message), text.as_ref()),
        (_, _) if text.is_some() => panic!("an error reply gave {decoded:?}"),
        (Ok(Reply::Mountpoint(Some(p))), _) => assert!(!p.as_os_str().is_empty()),
        (Ok(_), _) => {}
        (Err(e), _) => {
            let _ = e.to_string();
        }
    }
});
