//! The isolator as `dvdcli` sees it (`exec`, `inspect`, `recover`): the `DVDI_*` settings of
//! its environment.

use anyhow::Context;
use dvdi::{parameters, Isolator, IsolatorConfig};

pub fn isolator_from_env() -> anyhow::Result<Isolator> {
    let (config, _notes) =
        parameters::from_env(|k| std::env::var(k).ok(), IsolatorConfig::default())
            .context("bad configuration in the environment")?;
    Ok(Isolator::from_config(config)?)
}
