//! The plugin reply reader (`dvdi::http::read_reply` / `parse_reply`) and, for a reply that
//! parses, its decoding (`dvdi::plugin::decode_reply`). A reply must read the same however the
//! connection splits it into reads, and the size cap must only ever turn a reply into
//! "too large".
#![no_main]

use dvdi::http::{self, HttpError, Response};
use dvdi::plugin;
use dvdi::DriverName;
use dvdi_fuzz::{ReplyControl, Trickle};
use libfuzzer_sys::fuzz_target;

fn same(a: &Result<Response, HttpError>, b: &Result<Response, HttpError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a.to_string() == b.to_string(),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((control, reply)) = ReplyControl::split(data) else {
        return;
    };
    let capped = http::parse_reply(reply, control.max_body);
    if control.step > 0 || control.interrupt {
        let mut conn = Trickle::new(reply, control.step, control.interrupt);
        let pieces = http::read_reply(&mut conn, control.max_body);
        assert!(
            same(&capped, &pieces),
            "in one read: {capped:?}\nin reads of {}: {pieces:?}",
            control.step
        );
    }
    // The same reply without a cap (the setting takes any number): what parses there parses
    // the same under the cap when it fits, and is too large when it does not.
    if let Ok(unlimited) = http::parse_reply(reply, usize::MAX) {
        if unlimited.body.len() <= control.max_body {
            assert_eq!(capped.as_ref().ok(), Some(&unlimited));
        } else {
            assert!(matches!(capped, Err(HttpError::TooLarge(_))), "{capped:?}");
        }
    }
    match capped {
        Ok(response) => {
            assert!(response.body.len() <= control.max_body);
            let driver = DriverName::new("fuzz").expect("a valid driver name");
            let decoded =
                plugin::decode_reply(&driver, control.endpoint, response.status, &response.body);
            if let Err(e) = decoded {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
