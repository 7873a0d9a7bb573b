//! STYLE.md: "a thiserror source is either interpolated into the message or exposed as
//! `#[source]` — never both". One value of every library error that wraps another, rendered as
//! `dvdcli` renders errors (each link of the source chain, joined by `": "`): no link may
//! repeat the one it wraps (issue 10, finding 9: a refused connection printed its cause three
//! times).

use std::error::Error;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use dvdi::grammar::{self, GrammarConfig};
use dvdi::http::HttpError;
use dvdi::ledger::{LedgerError, VolumeKey};
use dvdi::lifecycle::PathError;
use dvdi::local::LocalError;
use dvdi::ops::OpsError;
use dvdi::plugin::{Endpoint, PluginError};
use dvdi::sys::{walk_beneath, Missing};
use dvdi::{ContainerId, DriverError, DriverName, IsolatorError, VolumeName};

fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text = format!("{text}: {s}");
        next = s.source();
    }
    text
}

fn assert_said_once(e: &dyn Error) {
    let mut link = Some(e);
    while let Some(l) = link {
        if let Some(s) = l.source() {
            assert!(
                !l.to_string().contains(&s.to_string()),
                "{l}\n  both says and exposes\n{s}"
            );
        }
        link = l.source();
    }
    let text = chain(e);
    let segments: Vec<&str> = text.split(": ").collect();
    for (i, s) in segments.iter().enumerate() {
        assert!(!segments[i + 1..].contains(s), "{s:?} twice in {text}");
    }
}

fn refused() -> io::Error {
    io::Error::from_raw_os_error(libc::ECONNREFUSED)
}

fn plugin_connect() -> PluginError {
    PluginError::Connect {
        driver: "p".into(),
        endpoint: Endpoint::Mount,
        cause: HttpError::Connect {
            addr: "unix:///run/p.sock".into(),
            waited: Duration::from_millis(1500),
            cause: refused(),
        },
    }
}

#[test]
fn every_wrapping_error_says_its_cause_once() {
    let container = ContainerId::new("c1").unwrap();
    let key = VolumeKey::new(DriverName::new("p").unwrap(), VolumeName::new("v").unwrap());
    let ledger = || LedgerError::Io {
        path: PathBuf::from("/ckpt/x"),
        step: "write",
        error: io::Error::from_raw_os_error(libc::ENOSPC),
    };
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
    let walk = walk_beneath(dir.path(), "link/x".as_ref(), Missing::Refuse).unwrap_err();
    let grammar =
        grammar::parse([("DVDI_VOLUME_NAME", "a/b")], &GrammarConfig::default()).unwrap_err();
    let local = LocalError::Io {
        volume: "v".into(),
        action: "read",
        path: PathBuf::from("/var/lib/dvdi/volumes/v/meta.json"),
        cause: io::Error::from_raw_os_error(libc::EIO),
    };
    let errors: Vec<Box<dyn Error>> = vec![
        Box::new(HttpError::Io(refused())),
        Box::new(plugin_connect()),
        Box::new(DriverError::from(plugin_connect())),
        Box::new(OpsError::from(DriverError::from(plugin_connect()))),
        Box::new(IsolatorError::Mount {
            container: container.clone(),
            volume: key.clone(),
            mount_id: "dvdi-1".into(),
            cause: Box::new(OpsError::from(DriverError::from(plugin_connect()))),
        }),
        Box::new(IsolatorError::Unmount {
            volume: key.clone(),
            mount_id: "dvdi-1".into(),
            cause: Box::new(local.into_driver_error(dvdi::Operation::Unmount)),
        }),
        Box::new(IsolatorError::VolumeLedger {
            volume: key.clone(),
            cause: Box::new(ledger()),
        }),
        Box::new(IsolatorError::Ledger {
            container: container.clone(),
            cause: Box::new(ledger()),
        }),
        Box::new(IsolatorError::ContainerPath {
            container: container.clone(),
            volume: key.clone(),
            origin: dvdi::grammar::Origin::ContainerInfo { index: 1 },
            cause: Box::new(PathError::Walk {
                path: "link/x".into(),
                cause: walk,
            }),
        }),
        Box::new(IsolatorError::Grammar {
            container: container.clone(),
            cause: Box::new(grammar),
        }),
        Box::new(IsolatorError::Rollback {
            primary: Box::new(IsolatorError::Ledger {
                container: container.clone(),
                cause: Box::new(ledger()),
            }),
            rollback: vec![IsolatorError::VolumeLedger {
                volume: key.clone(),
                cause: Box::new(LedgerError::Io {
                    path: PathBuf::from("/ckpt/volumes/v"),
                    step: "rename",
                    error: io::Error::from_raw_os_error(libc::EROFS),
                }),
            }],
        }),
    ];
    for e in &errors {
        assert_said_once(e.as_ref());
    }
    assert_eq!(
        chain(&IsolatorError::Mount {
            container,
            volume: key,
            mount_id: "dvdi-1".into(),
            cause: Box::new(OpsError::from(DriverError::from(plugin_connect()))),
        })
        .matches("Connection refused")
        .count(),
        1
    );
}
