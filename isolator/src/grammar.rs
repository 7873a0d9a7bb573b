//! The DVDI environment grammar (SPEC §4): a container's `DVDI_VOLUME_*` variables become
//! validated volume requests. Pure logic, no I/O; the first step of the isolator's flow.
//!
//! A variable is `DVDI_VOLUME_` + keyword + optional slot number: `NAME`, `DRIVER`, `OPTS`,
//! `CONTAINERPATH`, `EXPLICITCREATE`, `READONLY`, `DVDCLI`; no suffix and `0` are slot 0, slots
//! run to 99. Names are case-sensitive; a variable not starting with `DVDI_VOLUME_` is not ours.
//!
//! Rules, and the decisions behind the ones SPEC leaves open:
//! - Any other `DVDI_VOLUME_*` name is an error naming it. A slot number with a leading zero
//!   (`NAME01`, `NAME00`) is refused, not read as slot 1: `NAME01` next to `NAME1` would
//!   silently be one variable, and no DVDI deployment ever spelled slots that way.
//! - A variable set twice (`NAME` and `NAME0` are the same variable): the last one wins, as in
//!   the executor's own environment, with a warning naming both values. Only the winning value
//!   is validated — it is the only one the task would see.
//! - A slot without `NAME` is skipped, with a warning naming what it ignored. A `NAME` or
//!   `DRIVER` that is present but empty is an error, not "unset": an empty value is usually a
//!   template that did not expand, and defaulting would mount (or create!) the wrong volume.
//!   An empty `OPTS` is an empty list; an empty `EXPLICITCREATE`/`READONLY` is false.
//! - `EXPLICITCREATE` and `READONLY` accept `true`/`false` (case-insensitive, trimmed) or
//!   empty; anything else (`yes`, `1`) is an error. Reading `READONLY=yes` as false would hand
//!   the task a writable volume it was told was read-only; failing the launch says why.
//! - `DVDCLI` is ignored with a warning: a per-task binary run as root was a security hole.
//! - Volume identity is (driver, name), case-sensitive. The same volume in two slots is one
//!   request (the lowest slot) when both slots agree on the container path (or both have none)
//!   and on `READONLY` (one bind mount cannot be both); otherwise it is an error naming both
//!   slots. Options only matter on create, so a slot without options agrees with any, but two
//!   different non-empty option lists are an error (which one would create the volume?). If
//!   one slot sets `EXPLICITCREATE`, the merged request has it: the stricter reading can only
//!   make the launch fail loudly, never create what one slot said must already exist.
//! - Two different volumes at one container path are an error naming both slots.
//! - Variable names are checked first, in environment order, then slots in slot order; the
//!   first error is returned.

mod container_path;

pub use container_path::{ContainerPath, ContainerPathError, MAX_CONTAINER_PATH_BYTES};
