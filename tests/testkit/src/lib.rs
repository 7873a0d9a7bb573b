//! Test-only helpers for dvdi's integration tests: real plugins, root checks, binary locators.
pub mod buttervolume;
