//! Go dvdcli's subcommands (`create`, `remove`, `mount`, `unmount`, `path`, `get`, `list`):
//! one validated request against its volume driver, the result rendered on stdout.

use anyhow::Context;
use dvdi::{ops, DriverName, DriverResolver, Settings, VolumeDriver};

use crate::output::emit;
use crate::request::VolumeOp;

pub fn run(driver_name: &DriverName, op: &VolumeOp) -> anyhow::Result<()> {
    let settings = Settings::from_env().context("bad configuration in the environment")?;
    let resolver = DriverResolver::new(settings);
    let driver = resolver.resolve(driver_name)?;
    let driver: &dyn VolumeDriver = driver.as_ref();
    match op {
        VolumeOp::Create { volume, opts } => driver.create(volume, opts)?,
        VolumeOp::Remove { volume } => driver.remove(volume)?,
        VolumeOp::Mount {
            volume,
            opts,
            explicit_create,
            id,
        } => {
            let path = ops::mount(driver, volume, opts, *explicit_create, id)?;
            emit(&format!("{}\n", path.display()))?;
        }
        VolumeOp::Unmount { volume, id } => ops::unmount(driver, volume, id)?,
        VolumeOp::Path { volume } => {
            if let Some(p) = ops::path(driver, volume)? {
                emit(&format!("{}\n", p.display()))?;
            }
        }
        VolumeOp::Get { volume } => match driver.get(volume)? {
            Some(v) => emit(&format!("{}\n", v.name))?,
            None => anyhow::bail!(
                "volume {:?} not found on driver {:?}",
                volume.as_str(),
                driver_name.as_str()
            ),
        },
        VolumeOp::List => {
            let text: String = driver
                .list()?
                .iter()
                .map(|v| format!("{}\n", v.name))
                .collect();
            emit(&text)?;
        }
    }
    Ok(())
}
