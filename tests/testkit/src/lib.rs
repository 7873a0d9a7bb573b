//! Test-only helpers for dvdi-rs: root checks and binary locators for black-box tests
//! ([`env`]), and the few host calls they need ([`sys`]).

pub mod env;
pub mod sys;
