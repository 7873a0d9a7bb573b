//! Planning a prepare: everything that can be refused is refused here, before the ledger or
//! any mount is touched — the grammar, allowed drivers, the protected host directories (for
//! containers without an image), driver resolution (plugin discovery), the options a driver
//! says mount a host device or path ([`VolumeDriver::device_options`]) and container paths
//! (checked read-only with the symlink-safe walk).
//!
//! Container paths of the DVDI environment (SPEC §4): absolute → without a rootfs the same path on the host (the task
//! runs in the host's filesystem with a private mount namespace), with a rootfs `rootfs/path`;
//! it must exist, or is created when it is under `/tmp/`. Relative → under the sandbox,
//! created if missing. The walk starts from a trusted base (the sandbox, the rootfs, the
//! host's `/tmp`, or `/`) and never follows a symlink below it; since the launcher later
//! mounts on the *path*, the target must also resolve (realpath) inside its base.
//!
//! A `DOCKER_VOLUME`'s container path follows Mesos' `docker/volume` isolator instead
//! ([`PathRule::ContainerInfo`]): absolute → inside the rootfs, created there, or without a
//! rootfs the host's path, which must exist (`/tmp/` included); relative → as above. Both
//! grammars' paths pass the same checks (protected host directories, the symlink-safe walk).
//!
//! The image rootfs is as untrusted as the sandbox (SPEC §9): its `tmp` is walked like every
//! other component of it, never used as a base, so an image whose `/tmp` is a symlink to a
//! host directory cannot make root create directories there.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::error::{DeviceOptionsRefused, PathRule};
use super::{ContainerConfig, Isolator, IsolatorError, PathError};
use crate::container_id::ContainerId;
use crate::container_info::{self, DockerVolume};
use crate::driver::VolumeDriver;
use crate::grammar::{self, ContainerPath, GrammarConfig, Origin, VolumeRequest};
use crate::ledger::VolumeKey;
use crate::names::DriverName;
use crate::protected::ProtectedDirs;
use crate::sys::{walk_beneath, DirId, Missing};

/// Where a container path lands on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub container_path: String,
    /// The trusted directory the walk starts from.
    pub base: PathBuf,
    /// Plain components below `base`.
    pub rel: PathBuf,
    /// Missing components may be created (sandbox paths, `/tmp/…`).
    pub create: bool,
    /// How many leading components of `rel` must exist even when `create` is set: 1 for a
    /// rootfs's own `tmp`, which is walked (never followed) but never made.
    pub must_exist: usize,
    /// The grammar's rule that decided `create` (for the error when a path is missing).
    pub rule: PathRule,
    /// The directory the plan's walk reached when the whole path was already there.
    pub existed: Option<DirId>,
}

impl Target {
    pub fn path(&self) -> PathBuf {
        self.base.join(&self.rel)
    }

    /// Makes the target directory (creating what may be created), then checks it resolves
    /// inside its base.
    pub fn make(&self, host: &dyn crate::sys::Host) -> Result<(), PathError> {
        // The plan's walk found the whole path, a directory inside its base: nothing is to be
        // made, and a second walk would only repeat the first. What the launcher relies on is
        // that the path still resolves to that directory: one `stat` says so.
        if let Some(reached) = self.existed {
            return self.check_resolves_inside(reached);
        }
        let reached = if self.create {
            self.walk_existing_prefix()?;
            host.mkdir_beneath(&self.base, &self.rel)
                .map_err(|e| self.walk_error(e))?
        } else {
            self.walk(Missing::Refuse)?
                .ok_or_else(|| self.unreached())?
        };
        self.check_resolves_inside(reached)
    }

    /// The read-only dry run of [`Target::make`]; the directory reached when the whole path
    /// is there.
    fn check(&self) -> Result<Option<DirId>, PathError> {
        self.walk_existing_prefix()?;
        let missing = if self.create {
            Missing::Stop
        } else {
            Missing::Refuse
        };
        let reached = self.walk(missing)?;
        if let Some(reached) = reached {
            self.check_resolves_inside(reached)?;
        }
        Ok(reached)
    }

    fn walk(&self, missing: Missing) -> Result<Option<DirId>, PathError> {
        walk_beneath(&self.base, &self.rel, missing).map_err(|e| self.walk_error(e))
    }

    /// Checks that the first `must_exist` components are there as real directories (the
    /// symlink-free walk); creating the rest is then `mkdir_beneath`'s, which walks them again
    /// without following anything, so swapping one for a symlink in between gains nothing.
    fn walk_existing_prefix(&self) -> Result<(), PathError> {
        if self.must_exist == 0 {
            return Ok(());
        }
        let prefix: PathBuf = self.rel.components().take(self.must_exist).collect();
        walk_beneath(&self.base, &prefix, Missing::Refuse)
            .map(drop)
            .map_err(|e| {
                if e.is_missing() {
                    PathError::Missing {
                        path: self.container_path.clone(),
                        missing: e.path,
                        rule: self.rule,
                    }
                } else {
                    self.walk_error(e)
                }
            })
    }

    fn unreached(&self) -> PathError {
        PathError::Missing {
            path: self.container_path.clone(),
            missing: self.path(),
            rule: self.rule,
        }
    }

    fn walk_error(&self, e: crate::sys::WalkError) -> PathError {
        if e.is_missing() && !self.create {
            PathError::Missing {
                path: self.container_path.clone(),
                missing: e.path,
                rule: self.rule,
            }
        } else {
            PathError::Walk {
                path: self.container_path.clone(),
                cause: e,
            }
        }
    }

    /// The launcher mounts on the *path*: it must resolve to the directory the walk reached
    /// (`reached`), which lies inside the base, since the walk follows no symlink below it and
    /// takes no `..`. One `stat` of the path says so; only when it does not are both resolved
    /// (realpath), for the error.
    pub(super) fn check_resolves_inside(&self, reached: DirId) -> Result<(), PathError> {
        let target = self.path();
        let resolve = |p: &Path| {
            std::fs::canonicalize(p).map_err(|source| PathError::Resolve {
                path: self.container_path.clone(),
                target: p.to_path_buf(),
                cause: source,
            })
        };
        match DirId::resolve(&target) {
            Ok(id) if id == reached => return Ok(()),
            Ok(_) => {}
            Err(source) => {
                return Err(PathError::Resolve {
                    path: self.container_path.clone(),
                    target,
                    cause: source,
                })
            }
        }
        let base = resolve(&self.base)?;
        let resolved = resolve(&target)?;
        Err(PathError::Escapes {
            path: self.container_path.clone(),
            target,
            resolved,
            base,
        })
    }
}

/// Plans where `path` lands for a container with `sandbox` and `rootfs`, under the grammar's
/// `rule`, without touching anything but `stat`/`open` of existing directories.
///
/// The two rules differ only for absolute paths: `DVDI_VOLUME_CONTAINERPATH` creates what is
/// under `/tmp/` (the host's, or the image's own `tmp`, which must exist) and nothing else; a
/// `DOCKER_VOLUME` (Mesos' rule) creates anything inside an image's rootfs and nothing on the
/// host (an image-less container's absolute path must exist).
pub(super) fn plan_target(
    path: &ContainerPath,
    sandbox: &Path,
    rootfs: Option<&Path>,
    rule: PathRule,
) -> Result<Target, PathError> {
    let text = path.as_str().to_owned();
    // The grammar refuses `..`; a path must never reach the walk with one, whoever built it.
    if path
        .as_path()
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(PathError::DotDot { path: text });
    }
    let target = if path.is_absolute() {
        if let Some(r) = rootfs.filter(|r| !r.is_absolute()) {
            return Err(PathError::RootfsNotAbsolute { rootfs: r.into() });
        }
        let below_root: PathBuf = path
            .as_path()
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let under_tmp = below_root
            .strip_prefix("tmp")
            .is_ok_and(|rest| rest.components().next().is_some());
        match (rootfs, under_tmp) {
            // Mesos' rule: anything inside the image is created (walked from the rootfs, never
            // following a symlink), nothing on the host.
            (Some(r), _) if rule == PathRule::ContainerInfo => Target {
                container_path: text,
                base: r.to_path_buf(),
                rel: below_root,
                create: true,
                must_exist: 0,
                rule,
                existed: None,
            },
            (None, _) if rule == PathRule::ContainerInfo => Target {
                container_path: text,
                base: PathBuf::from("/"),
                rel: below_root,
                create: false,
                must_exist: 0,
                rule,
                existed: None,
            },
            // The host's own /tmp is the host's: a trusted base.
            (None, true) => Target {
                container_path: text,
                base: PathBuf::from("/tmp"),
                rel: below_root.strip_prefix("tmp").unwrap_or(&below_root).into(),
                create: true,
                must_exist: 0,
                rule,
                existed: None,
            },
            // The image's /tmp is the image's: walked from the rootfs like the rest of it.
            (Some(r), true) => Target {
                container_path: text,
                base: r.to_path_buf(),
                rel: below_root,
                create: true,
                must_exist: 1,
                rule,
                existed: None,
            },
            (root, false) => Target {
                container_path: text,
                base: root.map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
                rel: below_root,
                create: false,
                must_exist: 0,
                rule,
                existed: None,
            },
        }
    } else {
        if !sandbox.is_absolute() {
            return Err(PathError::SandboxNotAbsolute {
                sandbox: sandbox.into(),
            });
        }
        Target {
            container_path: text,
            base: sandbox.to_path_buf(),
            rel: path.as_path().to_path_buf(),
            create: true,
            must_exist: 0,
            rule,
            existed: None,
        }
    };
    let existed = target.check()?;
    Ok(Target { existed, ..target })
}

/// Refuses an absolute container path of a container without an image (the host's own path)
/// that covers a protected host directory (`protected_host_dirs`). Pure: nothing is looked at.
fn check_protected(
    protected: &ProtectedDirs,
    path: &ContainerPath,
    origin: Origin,
) -> Result<(), PathError> {
    if !path.is_absolute() {
        return Ok(());
    }
    match protected.covering(path.as_path()) {
        None => Ok(()),
        Some(dir) => Err(PathError::ProtectedHostDir {
            field: origin.container_path_field(),
            path: path.to_string(),
            protected: dir.to_path_buf(),
        }),
    }
}

/// One volume of a prepare, validated.
pub(super) struct PlannedVolume {
    pub request: VolumeRequest,
    pub key: VolumeKey,
    pub driver: Arc<dyn VolumeDriver>,
    pub target: Option<Target>,
}

/// Parses and validates a container's request: its DVDI environment and, when the operator
/// turned them on, its `DOCKER_VOLUME`s, merged into one list. `Ok(None)`: no volume asked for.
pub(super) fn plan(
    iso: &Isolator,
    id: &ContainerId,
    cfg: &ContainerConfig,
) -> Result<Option<Vec<PlannedVolume>>, IsolatorError> {
    let Some(requests) = requests(iso, id, cfg)? else {
        return Ok(None);
    };
    let mut drivers: BTreeMap<DriverName, Arc<dyn VolumeDriver>> = BTreeMap::new();
    let mut planned = Vec::with_capacity(requests.len());
    for request in requests {
        let key = VolumeKey::new(request.driver.clone(), request.name.clone());
        let origin = request.origin;
        if let Some(allowed) = &iso.config.allowed_drivers {
            if !allowed.contains(&request.driver) {
                return Err(IsolatorError::DriverNotAllowed {
                    container: id.clone(),
                    volume: key,
                    origin,
                    allowed: allowed
                        .iter()
                        .map(DriverName::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        if let (Some(path), None) = (&request.container_path, &cfg.rootfs) {
            check_protected(&iso.config.protected_host_dirs, path, origin).map_err(|source| {
                IsolatorError::ContainerPath {
                    container: id.clone(),
                    volume: key.clone(),
                    origin,
                    cause: Box::new(source),
                }
            })?;
        }
        let driver = match drivers.get(&request.driver) {
            Some(d) => d.clone(),
            None => {
                let d = iso.resolver.resolve(&request.driver).map_err(|source| {
                    IsolatorError::Resolve {
                        container: id.clone(),
                        volume: key.clone(),
                        origin,
                        cause: Box::new(source),
                    }
                })?;
                drivers.insert(request.driver.clone(), d.clone());
                d
            }
        };
        if !iso.config.local_device_options {
            let given = driver.device_options(&request.opts);
            if !given.is_empty() {
                return Err(IsolatorError::LocalDeviceOptions {
                    container: id.clone(),
                    volume: key,
                    origin,
                    cause: Box::new(DeviceOptionsRefused {
                        field: origin.opts_field(),
                        options: given.join(", "),
                    }),
                });
            }
        }
        let rule = match origin {
            Origin::Env { .. } => PathRule::Env,
            Origin::ContainerInfo { .. } => PathRule::ContainerInfo,
        };
        let target = request
            .container_path
            .as_ref()
            .map(|p| plan_target(p, &cfg.sandbox, cfg.rootfs.as_deref(), rule))
            .transpose()
            .map_err(|source| IsolatorError::ContainerPath {
                container: id.clone(),
                volume: key.clone(),
                origin,
                cause: Box::new(source),
            })?;
        planned.push(PlannedVolume {
            request,
            key,
            driver,
            target,
        });
    }
    Ok(Some(planned))
}

/// The container's requests from both grammars, merged; `None` when it asks for nothing.
fn requests(
    iso: &Isolator,
    id: &ContainerId,
    cfg: &ContainerConfig,
) -> Result<Option<Vec<VolumeRequest>>, IsolatorError> {
    let docker_volumes: &[DockerVolume] = if iso.config.docker_volumes {
        &cfg.docker_volumes
    } else {
        if !cfg.docker_volumes.is_empty() {
            iso.note_docker_volumes_ignored(id, cfg.docker_volumes.len());
        }
        &[]
    };
    let env = cfg.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut requests = Vec::new();
    if grammar::has_dvdi_variables(env.clone()) {
        let grammar_config = GrammarConfig {
            default_driver: iso.config.default_driver.clone(),
        };
        let parsed =
            grammar::parse(env, &grammar_config).map_err(|source| IsolatorError::Grammar {
                container: id.clone(),
                cause: Box::new(source),
            })?;
        for warning in &parsed.warnings {
            iso.config.log.warn(&format!("container {id}: {warning}"));
        }
        requests = parsed.volumes;
    }
    let warnings = container_info::parse_into(&mut requests, docker_volumes).map_err(|source| {
        IsolatorError::ContainerInfo {
            container: id.clone(),
            cause: source,
        }
    })?;
    for warning in &warnings {
        iso.config.log.warn(&format!("container {id}: {warning}"));
    }
    Ok(if requests.is_empty() {
        None
    } else {
        Some(requests)
    })
}
