//! What the benchmark binary and the integration tests in `tests/` share: the C ABI loaded
//! as a host loads it ([`capi`]).

pub mod capi;
