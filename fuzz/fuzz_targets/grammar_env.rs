//! The DVDI environment grammar (`dvdi::grammar::parse`): any environment must give requests or
//! an error, never a panic, and accepted requests must keep the grammar's promises.
#![no_main]

use std::collections::HashSet;

use dvdi::grammar::{self, ContainerPath, GrammarConfig, MAX_SLOT};
use dvdi::{DriverName, VolumeName};
use dvdi_fuzz::env_pairs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env = env_pairs(&text);
    let parsed = match grammar::parse(env.iter().copied(), &GrammarConfig::default()) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if !grammar::has_dvdi_variables(env.iter().copied()) {
        assert!(parsed.volumes.is_empty() && parsed.warnings.is_empty());
    }
    let mut last_slot = None;
    let mut volumes = HashSet::new();
    let mut paths = HashSet::new();
    for v in &parsed.volumes {
        assert!(v.origin.slot().unwrap() <= MAX_SLOT);
        assert!(
            last_slot < Some(v.origin.slot().unwrap()),
            "requests ordered by slot, one per slot"
        );
        last_slot = Some(v.origin.slot().unwrap());
        assert!(
            volumes.insert((v.driver.clone(), v.name.clone())),
            "one request per volume"
        );
        assert_eq!(DriverName::new(v.driver.as_str()).as_ref(), Ok(&v.driver));
        assert_eq!(VolumeName::new(v.name.as_str()).as_ref(), Ok(&v.name));
        if let Some(p) = &v.container_path {
            assert!(paths.insert(p.clone()), "one volume per container path");
            assert_eq!(ContainerPath::new(p.as_str()).as_ref(), Ok(p));
        }
        for (key, _) in v.opts.iter() {
            assert!(!key.is_empty());
        }
    }
});
