//! What the benchmark binary and the integration tests in `tests/` share: the C ABI loaded
//! as a host loads it ([`capi`]), and the matrices' table cells ([`table`]).

pub mod capi;
pub mod table;
