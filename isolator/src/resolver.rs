//! The resolver: which [`VolumeDriver`] serves a driver name — a driver the host registered,
//! the embedded `local` driver (`LocalDriver`), a CSI plugin the operator configured
//! (`CsiDriver`), or a discovered Docker plugin (`PluginClient`), in that order: `local` is
//! always the embedded driver, and a name with a file in `csi_config_dir` is a CSI plugin even
//! if a Docker plugin of that name is also installed (the operator's file is the more
//! deliberate statement).
//!
//! It lives beside `driver`, not inside it, because it is the one place that knows every
//! implementation: `plugin` and `local` depend on `driver` (the trait and its error), and this
//! module depends on all three. Inside `driver/` it would make `driver` → `plugin` → `driver`
//! a cycle.
//!
//! The resolver keeps each plugin it found for the life of the process (as Docker's plugin
//! registry does): discovered once and activated once, not once per operation. A call that
//! fails without an answer from the plugin (unreachable, timed out, garbled) forgets both, so
//! a plugin that moved or restarted is discovered and activated again by the next operation.
//! A CSI plugin is kept the same way: its file is read again after such a failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::Settings;
#[cfg(feature = "csi")]
use crate::csi::{CsiConfig, CsiDriver};
use crate::driver::{DriverError, Scope, VolumeDriver, VolumeInfo};
use crate::local::LocalDriver;
use crate::metrics::Counter;
use crate::names::{DriverName, VolumeName};
use crate::opts::VolumeOpts;
use crate::plugin::PluginClient;
use crate::sys::{Host, RealHost};

/// Builds the driver for a name: `local` is served in-process, every other name is a plugin.
///
/// A host embedding the library (or a test) can register its own driver for a name with
/// [`DriverResolver::with_driver`]; a registered driver wins over `local` and over discovery.
#[derive(Clone)]
pub struct DriverResolver {
    settings: Settings,
    host: Arc<dyn Host>,
    overrides: BTreeMap<DriverName, Arc<dyn VolumeDriver>>,
    /// Plugins found so far, shared by every clone of this resolver.
    plugins: Arc<Mutex<BTreeMap<DriverName, Arc<KeptPlugin>>>>,
    /// Plugin calls whose deadline passed, counted by every plugin this resolver (or a
    /// clone) found.
    plugin_timeouts: Arc<Counter>,
}

/// A discovered Docker plugin or a configured CSI plugin, kept for later operations:
/// `activate` reaches the plugin only until it has succeeded once. Any failure that is not the
/// plugin saying no ([`DriverError::is_refusal`]) marks it stale.
struct KeptPlugin {
    client: Box<dyn VolumeDriver>,
    activated: AtomicBool,
    stale: AtomicBool,
}

impl KeptPlugin {
    fn watch<T>(&self, result: Result<T, DriverError>) -> Result<T, DriverError> {
        if let Err(e) = &result {
            if !e.is_refusal() {
                self.activated.store(false, Ordering::Relaxed);
                self.stale.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}

impl VolumeDriver for KeptPlugin {
    fn name(&self) -> &DriverName {
        self.client.name()
    }
    fn activate(&self) -> Result<(), DriverError> {
        if self.activated.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Threads racing here may each activate: harmless, and no lock is held over a call.
        self.watch(self.client.activate())?;
        self.activated.store(true, Ordering::Relaxed);
        Ok(())
    }
    fn create(&self, volume: &VolumeName, opts: &VolumeOpts) -> Result<(), DriverError> {
        self.watch(self.client.create(volume, opts))
    }
    fn remove(&self, volume: &VolumeName) -> Result<(), DriverError> {
        self.watch(self.client.remove(volume))
    }
    fn mount(&self, volume: &VolumeName, id: &str) -> Result<PathBuf, DriverError> {
        self.watch(self.client.mount(volume, id))
    }
    fn unmount(&self, volume: &VolumeName, id: &str) -> Result<(), DriverError> {
        self.watch(self.client.unmount(volume, id))
    }
    fn path(&self, volume: &VolumeName) -> Result<Option<PathBuf>, DriverError> {
        self.watch(self.client.path(volume))
    }
    fn get(&self, volume: &VolumeName) -> Result<Option<VolumeInfo>, DriverError> {
        self.watch(self.client.get(volume))
    }
    fn list(&self) -> Result<Vec<VolumeInfo>, DriverError> {
        self.watch(self.client.list())
    }
    fn capabilities(&self) -> Result<Scope, DriverError> {
        self.watch(self.client.capabilities())
    }
    fn device_options(&self, opts: &VolumeOpts) -> Vec<String> {
        self.client.device_options(opts)
    }
    fn fixed_mountpoint(&self, volume: &VolumeName) -> Option<PathBuf> {
        self.client.fixed_mountpoint(volume)
    }
}

impl DriverResolver {
    pub fn new(settings: Settings) -> Self {
        Self::with_host(settings, Arc::new(RealHost))
    }

    /// With an injected host (a recording fake in tests).
    pub fn with_host(settings: Settings, host: Arc<dyn Host>) -> Self {
        Self {
            settings,
            host,
            overrides: BTreeMap::new(),
            plugins: Arc::default(),
            plugin_timeouts: Arc::default(),
        }
    }

    /// Serves `driver.name()` with `driver` instead of `local` or a discovered plugin.
    pub fn with_driver(mut self, driver: Arc<dyn VolumeDriver>) -> Self {
        self.overrides.insert(driver.name().clone(), driver);
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many calls to the plugins this resolver (or a clone) found timed out so far. The
    /// calls of a driver registered with [`DriverResolver::with_driver`] are not counted.
    pub fn plugin_timeouts(&self) -> u64 {
        self.plugin_timeouts.get()
    }

    pub fn resolve(&self, name: &DriverName) -> Result<Arc<dyn VolumeDriver>, DriverError> {
        if let Some(driver) = self.overrides.get(name) {
            Ok(driver.clone())
        } else if name.is_local() {
            Ok(Arc::new(self.local()))
        } else {
            self.plugin(name)
        }
    }

    /// [`VolumeDriver::fixed_mountpoint`] of the driver serving `name`, without discovering
    /// a plugin (whose mount points are only in its answers).
    pub fn fixed_mountpoint(&self, name: &DriverName, volume: &VolumeName) -> Option<PathBuf> {
        if let Some(driver) = self.overrides.get(name) {
            driver.fixed_mountpoint(volume)
        } else if name.is_local() {
            self.local().fixed_mountpoint(volume)
        } else if self.has_csi_file(name) {
            self.csi_fixed_mountpoint(name, volume)
        } else {
            None
        }
    }

    /// A CSI volume is always published at the same path of ours.
    #[cfg(feature = "csi")]
    #[cold]
    fn csi_fixed_mountpoint(&self, name: &DriverName, volume: &VolumeName) -> Option<PathBuf> {
        let config = self.csi_config(name).ok().flatten()?;
        Some(crate::csi::target_path(&config.root, volume))
    }

    #[cfg(not(feature = "csi"))]
    fn csi_fixed_mountpoint(&self, _: &DriverName, _: &VolumeName) -> Option<PathBuf> {
        None
    }

    fn local(&self) -> LocalDriver {
        LocalDriver::new(self.settings.local_root.clone(), self.host.clone())
            .with_max_size(self.settings.local_max_size)
    }

    /// The kept plugin for `name`, discovered now if there is none or it went stale.
    fn plugin(&self, name: &DriverName) -> Result<Arc<dyn VolumeDriver>, DriverError> {
        let kept = self.plugins_locked().get(name).cloned();
        if let Some(kept) = kept.filter(|k| !k.stale.load(Ordering::Relaxed)) {
            return Ok(kept);
        }
        // The CSI file and discovery read directories: done without the lock held.
        let client: Box<dyn VolumeDriver> = if self.has_csi_file(name) {
            self.csi_driver(name)?
        } else {
            Box::new(
                PluginClient::discover(name.clone(), &self.settings.client)?
                    .counting_timeouts(self.plugin_timeouts.clone()),
            )
        };
        let found = Arc::new(KeptPlugin {
            client,
            activated: AtomicBool::new(false),
            stale: AtomicBool::new(false),
        });
        self.plugins_locked().insert(name.clone(), found.clone());
        Ok(found)
    }

    /// Whether `csi_config_dir` has a file for `name` (a symlink counts, and is then refused by
    /// name when read). One `statx` inline here: every Docker-plugin name is asked this, and
    /// the CSI code (cold, laid out apart) is not touched for it — running it cost a
    /// `dvdcli mount` six page faults, a tenth of its time on this VM (BENCHMARKS.md, issue 13).
    fn has_csi_file(&self, name: &DriverName) -> bool {
        let file = self
            .settings
            .csi_config_dir
            .join(format!("{}.json", name.as_str()));
        std::fs::symlink_metadata(file).is_ok()
    }

    /// A build without CSI (`dvdcli` as shipped hands CSI hosts to `dvdcli-csi` before it
    /// gets here) names what is missing.
    #[cfg(not(feature = "csi"))]
    fn csi_driver(&self, name: &DriverName) -> Result<Box<dyn VolumeDriver>, DriverError> {
        Err(DriverError::new(
            crate::driver::Outcome::Unreachable,
            name.as_str(),
            crate::driver::Operation::Resolve,
            format!(
                "CSI plugin {:?}: this build has no CSI support (dvdcli-csi, beside csi_client, has it)",
                name.as_str()
            ),
        ))
    }

    /// The CSI driver configured for `name`.
    #[cfg(feature = "csi")]
    #[cold]
    #[inline(never)]
    fn csi_driver(&self, name: &DriverName) -> Result<Box<dyn VolumeDriver>, DriverError> {
        let config = self.csi_config(name)?.ok_or_else(|| {
            DriverError::new(
                crate::driver::Outcome::Unreachable,
                name.as_str(),
                crate::driver::Operation::Resolve,
                format!(
                    "CSI plugin {:?}: its file went away while it was read",
                    name.as_str()
                ),
            )
        })?;
        Ok(Box::new(
            CsiDriver::new(
                config,
                self.settings.csi_client.clone(),
                self.settings.client.timeouts,
            )
            .counting_timeouts(self.plugin_timeouts.clone()),
        ))
    }

    /// `name`'s CSI plugin file, if `csi_config_dir` has one.
    #[cfg(feature = "csi")]
    #[cold]
    fn csi_config(&self, name: &DriverName) -> Result<Option<CsiConfig>, DriverError> {
        CsiConfig::find(&self.settings.csi_config_dir, name).map_err(|e| {
            DriverError::new(
                crate::driver::Outcome::Unreachable,
                name.as_str(),
                crate::driver::Operation::Resolve,
                e,
            )
        })
    }

    fn plugins_locked(&self) -> std::sync::MutexGuard<'_, BTreeMap<DriverName, Arc<KeptPlugin>>> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_driver_that_knows_its_mount_point_says_it_and_no_plugin_is_discovered_for_it() {
        let mut settings = Settings {
            local_root: PathBuf::from("/srv/dvdi"),
            ..Settings::default()
        };
        // No plugin directory exists: asking a plugin would fail discovery, not answer None.
        settings.client.plugin_dirs = vec![PathBuf::from("/nonexistent/dvdi-plugins")];
        let resolver = DriverResolver::new(settings);
        let volume = VolumeName::new("data").unwrap();
        assert_eq!(
            resolver.fixed_mountpoint(&DriverName::new("local").unwrap(), &volume),
            Some(PathBuf::from("/srv/dvdi/data/_data"))
        );
        assert_eq!(
            resolver.fixed_mountpoint(&DriverName::new("rexray").unwrap(), &volume),
            None
        );
        assert!(resolver.plugins_locked().is_empty());
    }

    #[test]
    fn local_options_that_reach_the_host_are_named_by_the_local_driver_alone() {
        let resolver = DriverResolver::new(Settings::default());
        let local = resolver
            .resolve(&DriverName::new("local").unwrap())
            .unwrap();
        let opts = VolumeOpts::parse_lists(&["type=none,device=/etc,o=bind"]).unwrap();
        assert_eq!(local.device_options(&opts), ["type", "device", "o"]);
        let sized = VolumeOpts::parse_lists(&["size=1M"]).unwrap();
        assert!(local.device_options(&sized).is_empty());
    }
}
