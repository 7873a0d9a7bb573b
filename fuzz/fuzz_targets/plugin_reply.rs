//! Reply decoding and Docker's error texts (`dvdi::plugin::decode_reply`, `error_text`) for
//! any status and body.
#![no_main]

use dvdi::plugin::{self, Endpoint, PluginError, Reply};
use dvdi::{render, DriverName};
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
        // A mount point that gets through is one `check_mountpoint` accepts as it is.
        (Ok(Reply::Mountpoint(Some(p))), _) => {
            let text = p.to_str().expect("a mount point from JSON is UTF-8");
            assert_eq!(plugin::check_mountpoint(text).ok().as_ref(), Some(p));
        }
        (Ok(Reply::Volume(Some(v))), _) => {
            assert!(render::is_printable(&v.name), "{v:?}");
            if let Some(p) = &v.mountpoint {
                assert!(
                    plugin::check_mountpoint(&p.to_string_lossy()).is_ok(),
                    "{v:?}"
                );
            }
        }
        (Ok(Reply::Volumes(list)), _) => {
            assert!(
                list.iter().all(|v| render::is_printable(&v.name)),
                "{list:?}"
            );
        }
        (Ok(_), _) => {}
        // Messages are one line whatever the plugin sent.
        (Err(e), _) => assert!(!e.to_string().contains(['\n', '\r']), "{e}"),
    }
});
