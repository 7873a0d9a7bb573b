//! Plugin discovery (SPEC §2): from a driver name to the address of its plugin.
//!
//! In each configured directory, in order: `NAME.sock`, `NAME/NAME.sock`, `NAME.spec`,
//! `NAME/NAME.spec`, `NAME.json`, `NAME/NAME.json`. The name is a validated [`DriverName`], so it
//! can never leave the directory.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::names::DriverName;

/// Where a plugin listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginAddr {
    Unix(PathBuf),
    /// `host:port`, from `tcp://` or `http://` addresses.
    Tcp(String),
}

impl std::fmt::Display for PluginAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            PluginAddr::Tcp(h) => write!(f, "tcp://{h}"),
        }
    }
}

/// Where a plugin was found and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLocation {
    pub addr: PluginAddr,
    /// The socket or spec file that named it.
    pub found_at: PathBuf,
}

/// Why no usable plugin address was found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("plugin {driver:?} not found: no socket, .spec or .json for it in {}", display_dirs(.searched))]
    NotFound {
        driver: String,
        searched: Vec<PathBuf>,
    },
    #[error("plugin {driver:?}: cannot read {}: {cause}", .path.display())]
    Read {
        driver: String,
        path: PathBuf,
        cause: io::Error,
    },
    /// `NAME.sock` exists but is not a socket (and nothing later in the search order is).
    #[error("plugin {driver:?}: {} is not a socket (and no other socket, .spec or .json for it was found in {})", .path.display(), display_dirs(.searched))]
    NotASocket {
        driver: String,
        path: PathBuf,
        searched: Vec<PathBuf>,
    },
    #[error("plugin {driver:?}: bad plugin spec {}: {reason}", .path.display())]
    BadSpec {
        driver: String,
        path: PathBuf,
        reason: String,
    },
    #[error("plugin {driver:?}: address {addr:?} in {} uses https, which dvdi does not support; use a unix socket or plain tcp/http", .path.display())]
    HttpsUnsupported {
        driver: String,
        path: PathBuf,
        addr: String,
    },
}

impl DiscoveryError {
    /// The name of the plugin looked for.
    pub fn driver(&self) -> &str {
        match self {
            DiscoveryError::NotFound { driver, .. }
            | DiscoveryError::Read { driver, .. }
            | DiscoveryError::NotASocket { driver, .. }
            | DiscoveryError::BadSpec { driver, .. }
            | DiscoveryError::HttpsUnsupported { driver, .. } => driver,
        }
    }
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    let v: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    v.join(", ")
}

/// The `.json` spec format. Only `Addr` matters; TLS settings are read so that a spec that has
/// them is understood (and refused with a clear message when it asks for TLS).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonSpec {
    #[serde(default)]
    addr: Option<String>,
    #[serde(default, rename = "TLSConfig")]
    tls_config: Option<serde_json::Value>,
}

/// Finds `driver` in `dirs`; the first hit wins. A `NAME.sock` that is not a socket is passed
/// over, as Docker does, but named in the error when nothing else is found.
pub fn discover(driver: &DriverName, dirs: &[PathBuf]) -> Result<PluginLocation, DiscoveryError> {
    let name = driver.as_str();
    let mut not_a_socket: Option<PathBuf> = None;
    for dir in dirs {
        for sock in [
            dir.join(format!("{name}.sock")),
            dir.join(name).join(format!("{name}.sock")),
        ] {
            match fs::metadata(&sock) {
                Ok(m) if m.file_type().is_socket() => {
                    return Ok(PluginLocation {
                        addr: PluginAddr::Unix(sock.clone()),
                        found_at: sock,
                    });
                }
                Ok(_) => {
                    not_a_socket.get_or_insert(sock);
                }
                Err(_) => {}
            }
        }
        for spec in [
            dir.join(format!("{name}.spec")),
            dir.join(name).join(format!("{name}.spec")),
        ] {
            if let Some(text) = read_if_file(driver, &spec)? {
                let addr = parse_spec(driver, &spec, SpecKind::Url, &text)?;
                return Ok(PluginLocation {
                    addr,
                    found_at: spec,
                });
            }
        }
        for json in [
            dir.join(format!("{name}.json")),
            dir.join(name).join(format!("{name}.json")),
        ] {
            if let Some(text) = read_if_file(driver, &json)? {
                let addr = parse_spec(driver, &json, SpecKind::Json, &text)?;
                return Ok(PluginLocation {
                    addr,
                    found_at: json,
                });
            }
        }
    }
    Err(match not_a_socket {
        Some(path) => DiscoveryError::NotASocket {
            driver: name.to_owned(),
            path,
            searched: dirs.to_vec(),
        },
        None => DiscoveryError::NotFound {
            driver: name.to_owned(),
            searched: dirs.to_vec(),
        },
    })
}

fn read_if_file(driver: &DriverName, path: &Path) -> Result<Option<String>, DiscoveryError> {
    match fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        _ => return Ok(None),
    }
    // Spec files are a few bytes; refuse to slurp anything large.
    let bytes = fs::read(path).map_err(|cause| DiscoveryError::Read {
        driver: driver.to_string(),
        path: path.to_owned(),
        cause,
    })?;
    if bytes.len() > 64 * 1024 {
        return Err(bad_spec(driver, path, "file is larger than 64 KiB"));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| bad_spec(driver, path, "file is not UTF-8"))
}

fn bad_spec(driver: &DriverName, path: &Path, reason: impl Into<String>) -> DiscoveryError {
    DiscoveryError::BadSpec {
        driver: driver.to_string(),
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The two kinds of plugin spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecKind {
    /// `NAME.spec`: one URL, surrounded by any whitespace.
    Url,
    /// `NAME.json`: `{"Name":…,"Addr":URL,"TLSConfig":{…}}`.
    Json,
}

/// Parses the text of a spec file of `kind` into an address, as [`discover`] does once it has
/// read the file (`path` only names it in errors). A public entry point for tests and fuzzing.
pub fn parse_spec(
    driver: &DriverName,
    path: &Path,
    kind: SpecKind,
    text: &str,
) -> Result<PluginAddr, DiscoveryError> {
    match kind {
        SpecKind::Url => parse_url(driver, path, text.trim()),
        SpecKind::Json => parse_json_spec(driver, path, text),
    }
}

/// Parses a plugin URL: `unix:///path.sock`, `tcp://host:port`, `http://host:port[/]`.
pub fn parse_url(
    driver: &DriverName,
    path: &Path,
    url: &str,
) -> Result<PluginAddr, DiscoveryError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad_spec(
            driver,
            path,
            format!("address {url:?} has no scheme (unix://, tcp://, http://)"),
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "unix" => {
            if !rest.starts_with('/') {
                return Err(bad_spec(
                    driver,
                    path,
                    format!("unix address {url:?} is not an absolute path"),
                ));
            }
            Ok(PluginAddr::Unix(PathBuf::from(rest)))
        }
        "tcp" | "http" => {
            let hostport = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if !is_host_port(hostport) {
                return Err(bad_spec(
                    driver,
                    path,
                    format!("address {url:?} needs host:port (a host name or IP address, and a port number)"),
                ));
            }
            Ok(PluginAddr::Tcp(hostport.to_owned()))
        }
        "https" => Err(DiscoveryError::HttpsUnsupported {
            driver: driver.to_string(),
            path: path.to_owned(),
            addr: url.to_owned(),
        }),
        other => Err(bad_spec(
            driver,
            path,
            format!("unsupported scheme {other:?} in {url:?}"),
        )),
    }
}

/// `host:port` as a TCP connection needs it: a port number, and a host that is a name or an
/// IPv4 address (letters, digits, `.`, `-`, `_`) or a bracketed IPv6 address. Anything else
/// (whitespace, a line break, a missing host or port) could only fail later, at connect time,
/// with a less useful message; Docker's URL parser refuses such addresses too.
fn is_host_port(hostport: &str) -> bool {
    let Some((host, port)) = hostport.rsplit_once(':') else {
        return false;
    };
    let port_ok =
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        }
    };
    port_ok && host_ok
}

fn parse_json_spec(
    driver: &DriverName,
    path: &Path,
    text: &str,
) -> Result<PluginAddr, DiscoveryError> {
    let spec: JsonSpec = serde_json::from_str(text)
        .map_err(|e| bad_spec(driver, path, format!("invalid JSON: {e}")))?;
    let addr = spec
        .addr
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| bad_spec(driver, path, "no \"Addr\" field"))?;
    let wants_tls = spec
        .tls_config
        .as_ref()
        .and_then(|t| t.as_object())
        .is_some_and(|t| {
            ["CAFile", "CertFile", "KeyFile"].iter().any(|k| {
                t.get(*k)
                    .and_then(|v| v.as_str())
                    .is_some_and(|s| !s.is_empty())
            })
        });
    let addr = parse_url(driver, path, addr.trim())?;
    if wants_tls {
        return Err(bad_spec(
            driver,
            path,
            "TLSConfig with certificates is not supported; use a unix socket or plain tcp/http",
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn driver(n: &str) -> DriverName {
        DriverName::new(n).unwrap()
    }

    #[test]
    fn finds_every_kind_in_order() {
        let d = tempfile::tempdir().unwrap();
        let dirs = vec![d.path().to_path_buf()];
        let n = driver("p");
        assert!(matches!(
            discover(&n, &dirs),
            Err(DiscoveryError::NotFound { .. })
        ));

        fs::create_dir(d.path().join("p")).unwrap();
        fs::write(
            d.path().join("p/p.json"),
            r#"{"Name":"p","Addr":"tcp://127.0.0.1:1"}"#,
        )
        .unwrap();
        assert_eq!(
            discover(&n, &dirs).unwrap().addr,
            PluginAddr::Tcp("127.0.0.1:1".into())
        );

        fs::write(
            d.path().join("p.json"),
            r#"{"Addr":"tcp://127.0.0.1:2","TLSConfig":{"InsecureSkipVerify":true}}"#,
        )
        .unwrap();
        assert_eq!(
            discover(&n, &dirs).unwrap().addr,
            PluginAddr::Tcp("127.0.0.1:2".into())
        );

        fs::write(d.path().join("p/p.spec"), "http://localhost:3/\n").unwrap();
        assert_eq!(
            discover(&n, &dirs).unwrap().addr,
            PluginAddr::Tcp("localhost:3".into())
        );

        fs::write(d.path().join("p.spec"), "  unix:///run/x.sock \n").unwrap();
        assert_eq!(
            discover(&n, &dirs).unwrap().addr,
            PluginAddr::Unix("/run/x.sock".into())
        );

        let _l2 = UnixListener::bind(d.path().join("p/p.sock")).unwrap();
        assert_eq!(
            discover(&n, &dirs).unwrap().found_at,
            d.path().join("p/p.sock")
        );
        let _l1 = UnixListener::bind(d.path().join("p.sock")).unwrap();
        assert_eq!(
            discover(&n, &dirs).unwrap().addr,
            PluginAddr::Unix(d.path().join("p.sock"))
        );
    }

    #[test]
    fn earlier_directory_wins_and_symlinked_sockets_work() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let _l = UnixListener::bind(b.path().join("real.sock")).unwrap();
        std::os::unix::fs::symlink(b.path().join("real.sock"), b.path().join("p.sock")).unwrap();
        fs::write(a.path().join("p.spec"), "tcp://127.0.0.1:9").unwrap();
        let n = driver("p");
        let both = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(
            discover(&n, &both).unwrap().addr,
            PluginAddr::Tcp("127.0.0.1:9".into())
        );
        let only_b = vec![b.path().to_path_buf()];
        assert_eq!(
            discover(&n, &only_b).unwrap().addr,
            PluginAddr::Unix(b.path().join("p.sock"))
        );
    }

    #[test]
    fn a_sock_file_that_is_not_a_socket_is_named_as_such() {
        // Found in review (issue 10, finding 9): a regular file named NAME.sock was reported
        // as "not found".
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let n = driver("p");
        fs::write(a.path().join("p.sock"), "").unwrap();
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        let err = discover(&n, &dirs).unwrap_err();
        assert!(
            matches!(&err, DiscoveryError::NotASocket { path, .. } if *path == a.path().join("p.sock")),
            "{err}"
        );
        assert!(err.to_string().contains("is not a socket"), "{err}");
        // Passed over, as Docker does, when a later candidate is a plugin.
        fs::write(b.path().join("p.spec"), "tcp://127.0.0.1:9").unwrap();
        assert_eq!(
            discover(&n, &dirs).unwrap().addr,
            PluginAddr::Tcp("127.0.0.1:9".into())
        );
    }

    #[test]
    fn parse_spec_reads_both_kinds() {
        let (n, p) = (driver("p"), Path::new("/x/p.spec"));
        assert_eq!(
            parse_spec(&n, p, SpecKind::Url, " tcp://h:1/\n").unwrap(),
            PluginAddr::Tcp("h:1".into())
        );
        assert_eq!(
            parse_spec(&n, p, SpecKind::Json, r#"{"Addr":" unix:///s.sock "}"#).unwrap(),
            PluginAddr::Unix("/s.sock".into())
        );
        let err = parse_spec(&n, p, SpecKind::Json, "tcp://h:1").unwrap_err();
        assert!(err.to_string().contains("/x/p.spec"), "{err}");
    }

    #[test]
    fn tcp_addresses_need_a_real_host_and_port() {
        let (n, p) = (driver("p"), Path::new("/x/p.spec"));
        for (url, want) in [
            ("tcp://127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://localhost:3/", "localhost:3"),
            (
                "HTTP://plugin.example-1_a:65535/VolumeDriver",
                "plugin.example-1_a:65535",
            ),
            ("tcp://[::1]:9", "[::1]:9"),
            ("http://h:1?x=y", "h:1"),
            ("http://h:1#frag", "h:1"),
        ] {
            assert_eq!(
                parse_url(&n, p, url).unwrap(),
                PluginAddr::Tcp(want.into()),
                "{url}"
            );
        }
        // Found by fuzzing (plugin_spec): these were accepted as addresses that can never
        // connect, e.g. "tcp://:http\n/" became host:port ":http\n".
        for url in [
            "http://:http\n/",
            "tcp://h:1 x",
            "tcp://a b:1",
            "tcp://:80",
            "tcp://h:",
            "tcp://h:port",
            "tcp://h:+1",
            "tcp://h:70000",
            "tcp://[]:1",
            "tcp://h",
        ] {
            let err = parse_url(&n, p, url).unwrap_err().to_string();
            assert!(err.contains("needs host:port"), "{url:?}: {err}");
        }
        assert!(parse_spec(&n, p, SpecKind::Url, "http://:http\n/\n").is_err());
    }

    #[test]
    fn bad_specs_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let dirs = vec![d.path().to_path_buf()];
        let cases = [
            ("a.spec", "/run/no-scheme.sock", "no scheme"),
            ("b.spec", "https://h:1", "https"),
            ("c.spec", "ftp://h:1", "unsupported scheme"),
            ("d.json", "{not json", "invalid JSON"),
            ("e.json", r#"{"Name":"e"}"#, "Addr"),
            (
                "f.json",
                r#"{"Addr":"tcp://h:1","TLSConfig":{"CAFile":"/ca.pem"}}"#,
                "TLSConfig",
            ),
            ("g.spec", "unix://relative.sock", "absolute"),
        ];
        for (file, body, want) in cases {
            fs::write(d.path().join(file), body).unwrap();
            let name = file.split('.').next().unwrap();
            let err = discover(&driver(name), &dirs).unwrap_err().to_string();
            assert!(err.contains(want), "{file}: {err}");
            assert!(err.contains(&format!("{name:?}")), "{file}: {err}");
        }
    }
}
