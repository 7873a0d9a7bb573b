//! The crash matrix's fixed scenario, shared by the harness binary and the test: which
//! containers exist, and which volumes each one asks for.
//!
//! - `A`: `shared` on the test plugin (driver [`PLUGIN_DRIVER`], container path `p`),
//!   `blk`, a `local` block volume (`size=32M`, container path `b/c`), and `csivol` on the CSI
//!   test plugin (driver [`CSI_DRIVER`], container path `q`): all three kinds of driver.
//! - `B`: `shared` and `csivol` again (container paths `p`, `q`), named the other way a
//!   container can name a volume — `DOCKER_VOLUME`s of Mesos' `ContainerInfo.volumes`, not
//!   `DVDI_VOLUME_*`: it joins A's mounts instead of mounting (one ledger for both grammars),
//!   so the CSI volume is published once and unpublished only after its last holder.
//!
//! - `C`: `shared` (container path `p`) and `missing`, a `local` volume that does not exist,
//!   with explicit create: its Mount fails after `shared` was mounted, so the prepare rolls
//!   back (unmounts `shared` again) and fails.
//!
//! - `E`: the volumes of `A`, for a `dvdcli exec`-style container (held by the harness process).
//!
//! The scenario's steps, in order: prepare A, prepare B, cleanup A, cleanup B; and, on its
//! own, prepare C (which fails and rolls back).

/// The plugin driver's name: its socket is `<plugin dir>/crashplug.sock`.
pub const PLUGIN_DRIVER: &str = "crashplug";

/// The CSI driver's name: its configuration is `<csi config dir>/crashcsi.json`.
pub const CSI_DRIVER: &str = "crashcsi";

/// The CSI volume of the scenario.
pub const CSI_VOLUME: &str = "csivol";

/// The containers of the scenario, in the order they are prepared.
pub const CONTAINERS: &[&str] = &["A", "B", "C"];

/// The I/O fault matrix's probe container: the volumes of `A`, prepared and cleaned up right
/// after a faulted step, in the same process.
pub const PROBE: &str = "P";

/// The `DVDI_VOLUME_*` environment of container `id` (`None` for a container not in the
/// scenario).
pub fn env_of(id: &str) -> Option<Vec<(String, String)>> {
    let pairs: &[(&str, &str)] = match id {
        "A" | "E" | PROBE => &[
            ("DVDI_VOLUME_DRIVER", PLUGIN_DRIVER),
            ("DVDI_VOLUME_NAME", "shared"),
            ("DVDI_VOLUME_CONTAINERPATH", "p"),
            ("DVDI_VOLUME_DRIVER1", "local"),
            ("DVDI_VOLUME_NAME1", "blk"),
            ("DVDI_VOLUME_OPTS1", "size=32M"),
            ("DVDI_VOLUME_CONTAINERPATH1", "b/c"),
            ("DVDI_VOLUME_DRIVER2", CSI_DRIVER),
            ("DVDI_VOLUME_NAME2", CSI_VOLUME),
            ("DVDI_VOLUME_CONTAINERPATH2", "q"),
        ],
        "B" => &[],
        "C" => &[
            ("DVDI_VOLUME_DRIVER", PLUGIN_DRIVER),
            ("DVDI_VOLUME_NAME", "shared"),
            ("DVDI_VOLUME_CONTAINERPATH", "p"),
            ("DVDI_VOLUME_DRIVER1", "local"),
            ("DVDI_VOLUME_NAME1", "missing"),
            ("DVDI_VOLUME_EXPLICITCREATE1", "true"),
        ],
        _ => return None,
    };
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// A `DOCKER_VOLUME` entry of `ContainerInfo.volumes`: driver, name, container path, mode.
pub type DockerVolumeEntry = (&'static str, &'static str, &'static str, &'static str);

/// The `DOCKER_VOLUME`s of container `id` (the harness turns `docker_volumes` on).
pub fn docker_volumes_of(id: &str) -> &'static [DockerVolumeEntry] {
    match id {
        "B" => &[
            (PLUGIN_DRIVER, "shared", "p", "RW"),
            (CSI_DRIVER, CSI_VOLUME, "q", "RW"),
        ],
        _ => &[],
    }
}

/// The volumes (driver, name) container `id` uses.
pub fn volumes_of(id: &str) -> &'static [(&'static str, &'static str)] {
    match id {
        "A" | "E" | PROBE => &[
            (PLUGIN_DRIVER, "shared"),
            ("local", "blk"),
            (CSI_DRIVER, CSI_VOLUME),
        ],
        "B" => &[(PLUGIN_DRIVER, "shared"), (CSI_DRIVER, CSI_VOLUME)],
        "C" => &[(PLUGIN_DRIVER, "shared"), ("local", "missing")],
        _ => &[],
    }
}
