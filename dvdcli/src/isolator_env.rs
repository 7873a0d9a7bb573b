//! The isolator as `dvdcli` sees it (`exec`, `inspect`, `recover`): the `DVDI_*` settings of
//! its environment, read through the library's one settings table.

use dvdi::Isolator;

pub fn isolator_from_env() -> anyhow::Result<Isolator> {
    Ok(Isolator::from_env(|k| std::env::var(k).ok())?)
}
