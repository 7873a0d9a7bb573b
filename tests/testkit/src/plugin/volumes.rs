//! The plugin's volumes and their semantics: what each `VolumeDriver.*` call does to the
//! in-memory state and what it answers, independent of HTTP and of faults.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::date::rfc3339_utc as rfc3339;

/// How the plugin behaves where real plugins differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Behaviour {
    /// Mount/Unmount without an `ID` get HTTP 400.
    pub require_id: bool,
    /// Get of a missing volume answers `{"Err":"volume X not found"}` instead of
    /// `{"Volume":null,"Err":""}`.
    pub get_missing_as_error: bool,
}

/// A reply before it is framed: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Answer { status: 200, body }
    }

    /// HTTP 200 with a non-empty `Err`, the way most plugins report a failed call.
    fn err(text: String) -> Self {
        Answer::ok(json!({ "Err": text }))
    }

    /// A refused request (HTTP 400) with a JSON `Err`.
    fn bad_request(text: String) -> Self {
        Answer {
            status: 400,
            body: json!({ "Err": text }),
        }
    }
}

#[derive(Debug)]
struct Volume {
    opts: Map<String, Value>,
    mount_ids: BTreeSet<String>,
    created_at: SystemTime,
}

/// Every volume the plugin knows, by name; mount points live under `mount_root`.
#[derive(Debug)]
pub(crate) struct Volumes {
    mount_root: PathBuf,
    by_name: BTreeMap<String, Volume>,
    /// Every Mount and Unmount that took effect, in order.
    events: Vec<MountEvent>,
}

/// A Mount or Unmount that took effect (faulted and refused calls are not events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEvent {
    pub volume: String,
    pub id: String,
    /// `true` for a Mount, `false` for an Unmount.
    pub mounted: bool,
}

impl Volumes {
    pub(crate) fn new(mount_root: &Path) -> Self {
        Volumes {
            mount_root: mount_root.to_path_buf(),
            by_name: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// Performs one call; `None` when the endpoint is not one this plugin serves.
    pub(crate) fn handle(
        &mut self,
        endpoint: &str,
        body: &Value,
        behaviour: Behaviour,
    ) -> Option<Answer> {
        let answer = match endpoint {
            "Plugin.Activate" => Answer::ok(json!({ "Implements": ["VolumeDriver"] })),
            "VolumeDriver.Capabilities" => {
                Answer::ok(json!({ "Capabilities": { "Scope": "local" } }))
            }
            "VolumeDriver.List" => self.list(),
            "VolumeDriver.Create" => self.named(endpoint, body, |v, name| v.create(name, body)),
            "VolumeDriver.Remove" => self.named(endpoint, body, Volumes::remove),
            "VolumeDriver.Path" => self.named(endpoint, body, Volumes::path),
            "VolumeDriver.Get" => self.named(endpoint, body, |v, name| {
                v.get(name, behaviour.get_missing_as_error)
            }),
            "VolumeDriver.Mount" | "VolumeDriver.Unmount" => {
                let id = match body.get("ID").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => id,
                    _ if behaviour.require_id => {
                        return Some(Answer::bad_request(format!("{endpoint}: missing ID")));
                    }
                    _ => "",
                };
                if endpoint == "VolumeDriver.Mount" {
                    self.named(endpoint, body, |v, name| v.mount(name, id))
                } else {
                    self.named(endpoint, body, |v, name| v.unmount(name, id))
                }
            }
            _ => return None,
        };
        Some(answer)
    }

    /// Adds a volume directly, as if `Create` had been called.
    pub(crate) fn add(&mut self, name: &str, opts: Map<String, Value>) {
        self.by_name
            .entry(name.to_owned())
            .or_insert_with(|| Volume {
                opts,
                mount_ids: BTreeSet::new(),
                created_at: SystemTime::now(),
            });
    }

    pub(crate) fn events(&self) -> &[MountEvent] {
        &self.events
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    pub(crate) fn mount_ids(&self, name: &str) -> Vec<String> {
        self.by_name
            .get(name)
            .map(|v| v.mount_ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Checks the request's `Name` (400 when absent, `Err` when unusable) and runs `call`.
    fn named(
        &mut self,
        endpoint: &str,
        body: &Value,
        call: impl FnOnce(&mut Self, &str) -> Answer,
    ) -> Answer {
        match body.get("Name").and_then(Value::as_str) {
            None => Answer::bad_request(format!("{endpoint}: missing Name")),
            Some(name) if !is_usable_name(name) => {
                Answer::err(format!("invalid volume name {name:?}"))
            }
            Some(name) => call(self, name),
        }
    }

    fn mountpoint(&self, name: &str) -> PathBuf {
        self.mount_root.join(name)
    }

    /// The mount point while the volume has at least one mount, else `""`.
    fn reported_mountpoint(&self, name: &str, volume: &Volume) -> String {
        if volume.mount_ids.is_empty() {
            String::new()
        } else {
            self.mountpoint(name).to_string_lossy().into_owned()
        }
    }

    fn create(&mut self, name: &str, body: &Value) -> Answer {
        let opts = match body.get("Opts") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(opts)) => opts.clone(),
            Some(_) => {
                return Answer::bad_request("VolumeDriver.Create: Opts is not an object".into())
            }
        };
        self.add(name, opts);
        Answer::ok(json!({ "Err": "" }))
    }

    fn remove(&mut self, name: &str) -> Answer {
        match self.by_name.get(name) {
            None => Answer::err(not_found(name)),
            Some(v) if !v.mount_ids.is_empty() => Answer::err(format!(
                "volume {name} is in use ({} mounts)",
                v.mount_ids.len()
            )),
            Some(_) => {
                self.by_name.remove(name);
                // Only an empty directory goes: never recurse into what a test mounted there.
                let _ = std::fs::remove_dir(self.mountpoint(name));
                Answer::ok(json!({ "Err": "" }))
            }
        }
    }

    fn mount(&mut self, name: &str, id: &str) -> Answer {
        let mountpoint = self.mountpoint(name);
        let Some(volume) = self.by_name.get_mut(name) else {
            return Answer::err(not_found(name));
        };
        if let Err(e) = std::fs::create_dir_all(&mountpoint) {
            return Answer::err(format!("cannot create {}: {e}", mountpoint.display()));
        }
        volume.mount_ids.insert(id.to_owned());
        self.events.push(MountEvent {
            volume: name.to_owned(),
            id: id.to_owned(),
            mounted: true,
        });
        Answer::ok(json!({ "Mountpoint": mountpoint.to_string_lossy(), "Err": "" }))
    }

    fn unmount(&mut self, name: &str, id: &str) -> Answer {
        let Some(volume) = self.by_name.get_mut(name) else {
            return Answer::err(not_found(name));
        };
        if !volume.mount_ids.remove(id) {
            return Answer::err(format!("volume {name} is not mounted with ID {id:?}"));
        }
        self.events.push(MountEvent {
            volume: name.to_owned(),
            id: id.to_owned(),
            mounted: false,
        });
        Answer::ok(json!({ "Err": "" }))
    }

    /// `Mountpoint` is omitted (not empty) while unmounted: clients must cope with both.
    fn path(&mut self, name: &str) -> Answer {
        match self.by_name.get(name) {
            None => Answer::err(not_found(name)),
            Some(v) if v.mount_ids.is_empty() => Answer::ok(json!({ "Err": "" })),
            Some(_) => Answer::ok(json!({
                "Mountpoint": self.mountpoint(name).to_string_lossy(),
                "Err": "",
            })),
        }
    }

    fn get(&mut self, name: &str, missing_as_error: bool) -> Answer {
        match self.by_name.get(name) {
            None if missing_as_error => Answer::err(not_found(name)),
            None => Answer::ok(json!({ "Volume": null, "Err": "" })),
            Some(v) => Answer::ok(json!({
                "Volume": {
                    "Name": name,
                    "Mountpoint": self.reported_mountpoint(name, v),
                    "CreatedAt": rfc3339(v.created_at),
                    "Status": { "Opts": v.opts, "Mounts": v.mount_ids.len() },
                },
                "Err": "",
            })),
        }
    }

    fn list(&self) -> Answer {
        let volumes: Vec<Value> = self
            .by_name
            .iter()
            .map(|(name, v)| json!({ "Name": name, "Mountpoint": self.reported_mountpoint(name, v) }))
            .collect();
        Answer::ok(json!({ "Volumes": volumes, "Err": "" }))
    }
}

fn not_found(name: &str) -> String {
    format!("volume {name} not found")
}

/// A name that stays one directory below the mount root.
fn is_usable_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const STRICT: Behaviour = Behaviour {
        require_id: true,
        get_missing_as_error: false,
    };

    fn call(v: &mut Volumes, endpoint: &str, body: Value) -> Answer {
        v.handle(endpoint, &body, STRICT).expect("known endpoint")
    }

    #[test]
    fn mount_ids_are_tracked_and_remove_waits_for_the_last_unmount() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut v = Volumes::new(root.path());
        call(
            &mut v,
            "VolumeDriver.Create",
            json!({"Name": "a", "Opts": {"size": "1"}}),
        );
        let m = call(
            &mut v,
            "VolumeDriver.Mount",
            json!({"Name": "a", "ID": "c1"}),
        );
        assert_eq!(
            m.body["Mountpoint"],
            root.path().join("a").to_str().expect("utf8")
        );
        assert!(root.path().join("a").is_dir());
        call(
            &mut v,
            "VolumeDriver.Mount",
            json!({"Name": "a", "ID": "c2"}),
        );
        assert_eq!(v.mount_ids("a"), ["c1", "c2"]);
        let busy = call(&mut v, "VolumeDriver.Remove", json!({"Name": "a"}));
        assert_ne!(busy.body["Err"], "");
        let wrong = call(
            &mut v,
            "VolumeDriver.Unmount",
            json!({"Name": "a", "ID": "c9"}),
        );
        assert_ne!(wrong.body["Err"], "");
        call(
            &mut v,
            "VolumeDriver.Unmount",
            json!({"Name": "a", "ID": "c1"}),
        );
        call(
            &mut v,
            "VolumeDriver.Unmount",
            json!({"Name": "a", "ID": "c2"}),
        );
        let gone = call(&mut v, "VolumeDriver.Remove", json!({"Name": "a"}));
        assert_eq!(gone.body, json!({"Err": ""}));
        assert!(v.names().is_empty());
    }

    #[test]
    fn missing_id_is_a_400_only_when_required() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut v = Volumes::new(root.path());
        v.add("a", Map::new());
        let strict = call(&mut v, "VolumeDriver.Mount", json!({"Name": "a"}));
        assert_eq!(strict.status, 400);
        let lax = Behaviour {
            require_id: false,
            ..STRICT
        };
        let ok = v.handle("VolumeDriver.Mount", &json!({"Name": "a"}), lax);
        assert_eq!(ok.map(|a| a.status), Some(200));
    }

    #[test]
    fn names_that_leave_the_mount_root_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let mut v = Volumes::new(root.path());
        for name in ["", ".", "..", "a/b"] {
            let a = call(&mut v, "VolumeDriver.Create", json!({ "Name": name }));
            assert_ne!(a.body["Err"], "", "{name:?}");
        }
        assert!(v.names().is_empty());
        assert_eq!(call(&mut v, "VolumeDriver.Get", json!({})).status, 400);
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_827_696); // 2000-02-29T12:34:56Z
        assert_eq!(rfc3339(leap), "2000-02-29T12:34:56Z");
        let later = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339(later), "2099-12-31T23:59:59Z");
    }
}
