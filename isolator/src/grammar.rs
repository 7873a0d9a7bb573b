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
//!   is validated — it is the only one the task would see. One exception: the Elasticsearch
//!   framework's repeated unsuffixed `CONTAINERPATH` meant for slot 1 (see
//!   `ElasticsearchShape`).
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
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

pub use container_path::{ContainerPath, ContainerPathError, MAX_CONTAINER_PATH_BYTES};

use crate::names::{DriverName, NameError, VolumeName};
use crate::opts::{OptsError, VolumeOpts};

/// Every variable of the grammar starts with this.
pub const PREFIX: &str = "DVDI_VOLUME_";
/// Highest slot number.
pub const MAX_SLOT: u8 = 99;
/// The driver of a slot without `DVDI_VOLUME_DRIVER`, unless configured otherwise.
pub const DEFAULT_DRIVER: &str = "rexray";

/// What the grammar needs from the host's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrammarConfig {
    pub default_driver: DriverName,
}

impl Default for GrammarConfig {
    fn default() -> Self {
        Self {
            // A constant checked by a unit test; not input.
            default_driver: DriverName::new(DEFAULT_DRIVER)
                .expect("DEFAULT_DRIVER is a valid driver name"),
        }
    }
}

/// Where a volume request came from, for messages: the two grammars a container can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A slot of the DVDI environment (the lowest one, when several slots name the volume).
    Env { slot: u8 },
    /// An entry of Mesos' `ContainerInfo.volumes` of type `DOCKER_VOLUME` (its index among
    /// all of the container's volumes, whatever their type).
    ContainerInfo { index: usize },
}

impl Origin {
    /// The DVDI slot, for a request from the environment.
    pub fn slot(self) -> Option<u8> {
        match self {
            Origin::Env { slot } => Some(slot),
            Origin::ContainerInfo { .. } => None,
        }
    }

    /// Where the request's container path was given: `DVDI_VOLUME_CONTAINERPATH3`, or
    /// `container_info.volumes[1].container_path`.
    pub fn container_path_field(self) -> String {
        match self {
            Origin::Env { slot } => Kind::ContainerPath.variable(slot),
            Origin::ContainerInfo { .. } => format!("{self}.container_path"),
        }
    }

    /// Where the request's options were given: `DVDI_VOLUME_OPTS3`, or
    /// `container_info.volumes[1].source.docker_volume.driver_options`.
    pub fn opts_field(self) -> String {
        match self {
            Origin::Env { slot } => Kind::Opts.variable(slot),
            Origin::ContainerInfo { .. } => {
                format!("{self}.source.docker_volume.driver_options")
            }
        }
    }
}

/// `DVDI_VOLUME_NAME3` (the variable that names the volume), or `container_info.volumes[1]`.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env { slot } => f.write_str(&Kind::Name.variable(*slot)),
            Origin::ContainerInfo { index } => write!(f, "container_info.volumes[{index}]"),
        }
    }
}

/// One volume a container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRequest {
    /// Where it was asked for.
    pub origin: Origin,
    pub driver: DriverName,
    pub name: VolumeName,
    /// Sent to the driver's `Create`, and only then.
    pub opts: VolumeOpts,
    /// `None`: the task uses the host mount point.
    pub container_path: Option<ContainerPath>,
    /// The volume must already exist; never create it.
    pub explicit_create: bool,
    /// The container sees it read-only.
    pub readonly: bool,
}

/// The outcome of [`parse`]: requests ordered by slot, and what the operator should know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub volumes: Vec<VolumeRequest>,
    pub warnings: Vec<String>,
}

impl Parsed {
    /// No volume to prepare (there may still be warnings, e.g. a slot without a name).
    pub fn is_empty(&self) -> bool {
        self.volumes.is_empty()
    }
}

/// A variable as the operator wrote it, or its name when unset: for errors about two slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
}

impl fmt::Display for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={value:?}", self.name),
            None => write!(f, "{} (unset)", self.name),
        }
    }
}

/// One side of a conflict between two slots: the volume a slot asked for, and the variable of
/// that slot the conflict is about. Boxed in [`GrammarError`] to keep the error small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub slot: u8,
    pub driver: DriverName,
    pub name: VolumeName,
    pub var: EnvVar,
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "slot {} (volume {:?} of driver {:?}, {})",
            self.slot,
            self.name.as_str(),
            self.driver.as_str(),
            self.var
        )
    }
}

/// Why a container's DVDI environment was refused. Every variant names the variables involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    #[error("unknown variable {variable}={value:?}: {PREFIX}* variables are NAME, DRIVER, OPTS, CONTAINERPATH, EXPLICITCREATE, READONLY and DVDCLI, each with an optional slot number 0-99")]
    UnknownVariable { variable: String, value: String },
    #[error("{variable}={value:?}: slot suffix {suffix:?} is not a decimal number")]
    BadSuffix {
        variable: String,
        value: String,
        suffix: String,
    },
    #[error("{variable}={value:?}: slot numbers are written without leading zeros (did you mean {suggestion}?)")]
    LeadingZero {
        variable: String,
        value: String,
        suggestion: String,
    },
    #[error("{variable}={value:?}: slot {suffix} is out of range (slots are 0-99)")]
    SlotOutOfRange {
        variable: String,
        value: String,
        suffix: String,
    },
    /// A bad `NAME` or `DRIVER` value; the cause shows the value.
    #[error("{variable}: {cause}")]
    InvalidName {
        variable: String,
        value: String,
        cause: NameError,
    },
    /// A bad `OPTS` list; the cause shows the list and the item.
    #[error("{variable}: {cause}")]
    InvalidOpts {
        variable: String,
        value: String,
        cause: OptsError,
    },
    /// A bad `CONTAINERPATH`; the cause shows the path.
    #[error("{variable}: {cause}")]
    InvalidContainerPath {
        variable: String,
        value: String,
        cause: ContainerPathError,
    },
    #[error("{variable}={value:?}: expected \"true\" or \"false\" (case-insensitive) or nothing")]
    InvalidBool { variable: String, value: String },
    #[error("one volume at two container paths: {first} and {second}; a volume is mounted once per container")]
    VolumeAtTwoPaths {
        first: Box<Claim>,
        second: Box<Claim>,
    },
    #[error(
        "one volume both read-only and read-write at one container path: {first} and {second}"
    )]
    ConflictingReadOnly {
        first: Box<Claim>,
        second: Box<Claim>,
    },
    #[error("one volume with two different option lists: {first} and {second}; options are used to create it, so they must agree")]
    ConflictingOpts {
        first: Box<Claim>,
        second: Box<Claim>,
    },
    #[error("two volumes at container path {path}: {first} and {second}")]
    SharedContainerPath {
        path: ContainerPath,
        first: Box<Claim>,
        second: Box<Claim>,
    },
}

/// Whether `env` holds any `DVDI_VOLUME_*` variable at all (well-formed or not). When it does
/// not, the container is none of our business: no volumes, no warnings, nothing written.
pub fn has_dvdi_variables<N: AsRef<str>, V>(env: impl IntoIterator<Item = (N, V)>) -> bool {
    env.into_iter()
        .any(|(name, _)| name.as_ref().starts_with(PREFIX))
}

/// Reads the container's environment, in order (a name may appear more than once), into
/// volume requests ordered by slot. See the module documentation for the rules.
pub fn parse<N, V>(
    env: impl IntoIterator<Item = (N, V)>,
    config: &GrammarConfig,
) -> Result<Parsed, GrammarError>
where
    N: AsRef<str>,
    V: AsRef<str>,
{
    let mut warnings = Vec::new();
    let mut slots: BTreeMap<u8, SlotVars> = BTreeMap::new();
    let mut es_shape = ElasticsearchShape::default();
    for (name, value) in env {
        let (name, value) = (name.as_ref(), value.as_ref());
        let Some((kind, slot)) = classify(name, value)? else {
            continue;
        };
        es_shape.see(name, kind, slot, value, warnings.len());
        if kind == Kind::Dvdcli {
            warnings.push(format!(
                "ignoring {name}={value:?}: a per-task dvdcli binary is not supported (it ran as root); volumes are handled by the agent's own driver client"
            ));
            continue;
        }
        let entry = &mut slots.entry(slot).or_default().0[kind as usize];
        if let Some(old) = entry.as_ref() {
            warnings.push(format!(
                "{name}={value:?} overrides {}={:?}: the last one wins",
                old.name, old.value
            ));
        }
        *entry = Some(Raw {
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }

    es_shape.apply(&mut slots, &mut warnings);

    let mut merged: Vec<Candidate> = Vec::new();
    for (slot, vars) in slots {
        let Some(candidate) = build(slot, vars, config, &mut warnings)? else {
            continue;
        };
        let same_volume = merged.iter_mut().find(|c| {
            c.request.driver == candidate.request.driver && c.request.name == candidate.request.name
        });
        if let Some(first) = same_volume {
            merge(first, candidate, &mut warnings)?;
            continue;
        }
        if let Some(path) = &candidate.request.container_path {
            if let Some(first) = merged
                .iter()
                .find(|c| c.request.container_path.as_ref() == Some(path))
            {
                return Err(GrammarError::SharedContainerPath {
                    path: path.clone(),
                    first: first.claim(Kind::ContainerPath),
                    second: candidate.claim(Kind::ContainerPath),
                });
            }
        }
        merged.push(candidate);
    }
    Ok(Parsed {
        volumes: merged.into_iter().map(|c| c.request).collect(),
        warnings,
    })
}

/// The Elasticsearch framework's environment (its executor's `ExecutorEnvironmentalVariables`)
/// names the data volume's path `DVDI_VOLUME_CONTAINERPATH` a second time, after
/// `DVDI_VOLUME_NAME1`, where it meant `DVDI_VOLUME_CONTAINERPATH1`. Under "last wins" the config
/// volume would be bound at the data path and the data volume nowhere. Exactly this shape — the
/// unsuffixed `CONTAINERPATH` set twice, the second time after slot 1's `NAME`, while slot 1 has
/// no path of its own and `CONTAINERPATH0` is not used — gives the second path to slot 1, with
/// a warning naming both variables; anything else keeps "last wins".
#[derive(Debug, Default)]
struct ElasticsearchShape {
    /// Each unsuffixed `DVDI_VOLUME_CONTAINERPATH`: its value, and how many warnings had been
    /// said when it was read (the index of its "last one wins" warning, if it made one).
    unsuffixed_paths: Vec<(String, usize)>,
    /// How many unsuffixed paths had been read when `DVDI_VOLUME_NAME1` was.
    paths_before_name1: Option<usize>,
    /// A variable that spoils the shape: `CONTAINERPATH0`, or a `CONTAINERPATH1`.
    spoiled: bool,
}

impl ElasticsearchShape {
    const PATH: &'static str = "DVDI_VOLUME_CONTAINERPATH";

    fn see(&mut self, name: &str, kind: Kind, slot: u8, value: &str, warnings: usize) {
        match (kind, slot) {
            (Kind::ContainerPath, 0) if name == Self::PATH => {
                self.unsuffixed_paths.push((value.to_owned(), warnings));
            }
            (Kind::ContainerPath, 0 | 1) => self.spoiled = true,
            (Kind::Name, 1) => {
                self.paths_before_name1 = Some(self.unsuffixed_paths.len());
            }
            _ => {}
        }
    }

    fn apply(self, slots: &mut BTreeMap<u8, SlotVars>, warnings: &mut Vec<String>) {
        let [(first, _), (second, warned_at)] = self.unsuffixed_paths.as_slice() else {
            return;
        };
        let slot1_named = slots.get(&1).is_some_and(|v| v.get(Kind::Name).is_some());
        if self.spoiled || self.paths_before_name1 != Some(1) || !slot1_named {
            return;
        }
        // Slot 0 keeps its first path; the second becomes slot 1's.
        let raw = |value: &str| Raw {
            name: Self::PATH.to_owned(),
            value: value.to_owned(),
        };
        slots.entry(0).or_default().0[Kind::ContainerPath as usize] = Some(raw(first));
        slots.entry(1).or_default().0[Kind::ContainerPath as usize] = Some(raw(second));
        let message = format!(
            "{path}={second:?} is set a second time, after DVDI_VOLUME_NAME1, and \
             DVDI_VOLUME_CONTAINERPATH1 is not set: read as DVDI_VOLUME_CONTAINERPATH1 (the \
             Elasticsearch framework's environment); slot 0 keeps {path}={first:?}",
            path = Self::PATH
        );
        // It replaces the "last one wins" warning the second value made.
        match warnings.get_mut(*warned_at) {
            Some(w) if w.starts_with(Self::PATH) => *w = message,
            _ => warnings.push(message),
        }
    }
}

/// The keyword after [`PREFIX`]. The discriminant indexes [`SlotVars`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Name = 0,
    Driver,
    Opts,
    ContainerPath,
    ExplicitCreate,
    ReadOnly,
    Dvdcli,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Name,
        Kind::Driver,
        Kind::Opts,
        Kind::ContainerPath,
        Kind::ExplicitCreate,
        Kind::ReadOnly,
        Kind::Dvdcli,
    ];

    fn keyword(self) -> &'static str {
        match self {
            Kind::Name => "NAME",
            Kind::Driver => "DRIVER",
            Kind::Opts => "OPTS",
            Kind::ContainerPath => "CONTAINERPATH",
            Kind::ExplicitCreate => "EXPLICITCREATE",
            Kind::ReadOnly => "READONLY",
            Kind::Dvdcli => "DVDCLI",
        }
    }

    /// The canonical spelling of this variable for `slot` (no suffix for slot 0).
    fn variable(self, slot: u8) -> String {
        match slot {
            0 => format!("{PREFIX}{}", self.keyword()),
            n => format!("{PREFIX}{}{n}", self.keyword()),
        }
    }
}

/// Splits a variable name into its keyword and slot; `None` when it is not ours.
fn classify(variable: &str, value: &str) -> Result<Option<(Kind, u8)>, GrammarError> {
    let Some(rest) = variable.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    // No keyword is a prefix of another (a unit test checks), so the first match is the only one.
    let found = Kind::ALL.iter().find_map(|&kind| {
        rest.strip_prefix(kind.keyword())
            .map(|suffix| (kind, suffix))
    });
    let (kind, suffix) = match found {
        Some((kind, suffix))
            if suffix.is_empty() || suffix.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            (kind, suffix)
        }
        _ => {
            return Err(GrammarError::UnknownVariable {
                variable: variable.to_owned(),
                value: value.to_owned(),
            })
        }
    };
    if suffix.is_empty() {
        return Ok(Some((kind, 0)));
    }
    if !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GrammarError::BadSuffix {
            variable: variable.to_owned(),
            value: value.to_owned(),
            suffix: suffix.to_owned(),
        });
    }
    let significant = suffix.trim_start_matches('0');
    let slot = match significant.parse::<u8>() {
        _ if significant.is_empty() => 0,
        Ok(n) if n <= MAX_SLOT => n,
        _ => {
            return Err(GrammarError::SlotOutOfRange {
                variable: variable.to_owned(),
                value: value.to_owned(),
                suffix: suffix.to_owned(),
            })
        }
    };
    if suffix != slot.to_string() {
        return Err(GrammarError::LeadingZero {
            variable: variable.to_owned(),
            value: value.to_owned(),
            suggestion: format!("{PREFIX}{}{slot}", kind.keyword()),
        });
    }
    Ok(Some((kind, slot)))
}

/// A variable as it appeared (its exact spelling, e.g. `NAME0`, is kept for messages).
#[derive(Debug, Clone)]
struct Raw {
    name: String,
    value: String,
}

/// The last value of each variable of one slot, indexed by `Kind` (`Dvdcli` stays empty: it is
/// warned about and dropped as it is read).
#[derive(Debug, Default)]
struct SlotVars([Option<Raw>; Kind::ALL.len()]);

impl SlotVars {
    fn get(&self, kind: Kind) -> Option<&Raw> {
        self.0[kind as usize].as_ref()
    }

    fn env_var(&self, kind: Kind, slot: u8) -> EnvVar {
        match self.get(kind) {
            Some(raw) => EnvVar {
                name: raw.name.clone(),
                value: Some(raw.value.clone()),
            },
            None => EnvVar {
                name: kind.variable(slot),
                value: None,
            },
        }
    }
}

/// A request with the variables it came from, for messages about later slots.
struct Candidate {
    slot: u8,
    request: VolumeRequest,
    vars: SlotVars,
}

impl Candidate {
    fn claim(&self, kind: Kind) -> Box<Claim> {
        Box::new(Claim {
            slot: self.slot,
            driver: self.request.driver.clone(),
            name: self.request.name.clone(),
            var: self.vars.env_var(kind, self.slot),
        })
    }
}

/// Validates one slot; `None` when it has no `NAME`.
fn build(
    slot: u8,
    vars: SlotVars,
    config: &GrammarConfig,
    warnings: &mut Vec<String>,
) -> Result<Option<Candidate>, GrammarError> {
    let Some(name_var) = vars.get(Kind::Name) else {
        let ignored: Vec<&str> = vars.0.iter().flatten().map(|r| r.name.as_str()).collect();
        warnings.push(format!(
            "slot {slot} has no {}: ignoring {}",
            Kind::Name.variable(slot),
            ignored.join(", ")
        ));
        return Ok(None);
    };
    let name = VolumeName::new(&name_var.value).map_err(|source| invalid_name(name_var, source))?;
    let driver = match vars.get(Kind::Driver) {
        Some(raw) => DriverName::new(&raw.value).map_err(|source| invalid_name(raw, source))?,
        None => config.default_driver.clone(),
    };
    let mut opts = VolumeOpts::new();
    if let Some(raw) = vars.get(Kind::Opts) {
        opts.add_list(&raw.value)
            .map_err(|source| GrammarError::InvalidOpts {
                variable: raw.name.clone(),
                value: raw.value.clone(),
                cause: source,
            })?;
    }
    let container_path = vars
        .get(Kind::ContainerPath)
        .map(|raw| {
            ContainerPath::new(&raw.value).map_err(|source| GrammarError::InvalidContainerPath {
                variable: raw.name.clone(),
                value: raw.value.clone(),
                cause: source,
            })
        })
        .transpose()?;
    let explicit_create = flag(vars.get(Kind::ExplicitCreate))?;
    let readonly = flag(vars.get(Kind::ReadOnly))?;
    Ok(Some(Candidate {
        slot,
        request: VolumeRequest {
            origin: Origin::Env { slot },
            driver,
            name,
            opts,
            container_path,
            explicit_create,
            readonly,
        },
        vars,
    }))
}

fn invalid_name(raw: &Raw, source: NameError) -> GrammarError {
    GrammarError::InvalidName {
        variable: raw.name.clone(),
        value: raw.value.clone(),
        cause: source,
    }
}

/// `true`/`false`, case-insensitive and trimmed; empty or unset is false.
fn flag(raw: Option<&Raw>) -> Result<bool, GrammarError> {
    let Some(raw) = raw else { return Ok(false) };
    let value = raw.value.trim();
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.is_empty() || value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(GrammarError::InvalidBool {
            variable: raw.name.clone(),
            value: raw.value.clone(),
        })
    }
}

/// Folds `later` (a higher slot naming the same volume) into `first`.
fn merge(
    first: &mut Candidate,
    later: Candidate,
    warnings: &mut Vec<String>,
) -> Result<(), GrammarError> {
    let (a, b) = (&first.request, &later.request);
    if a.container_path != b.container_path {
        return Err(GrammarError::VolumeAtTwoPaths {
            first: first.claim(Kind::ContainerPath),
            second: later.claim(Kind::ContainerPath),
        });
    }
    if a.readonly != b.readonly {
        return Err(GrammarError::ConflictingReadOnly {
            first: first.claim(Kind::ReadOnly),
            second: later.claim(Kind::ReadOnly),
        });
    }
    if !a.opts.is_empty() && !b.opts.is_empty() && a.opts != b.opts {
        return Err(GrammarError::ConflictingOpts {
            first: first.claim(Kind::Opts),
            second: later.claim(Kind::Opts),
        });
    }
    warnings.push(format!(
        "{} and {} name the same volume {:?} of driver {:?} at the same place; it is mounted once",
        first.vars.env_var(Kind::Name, first.slot),
        later.vars.env_var(Kind::Name, later.slot),
        a.name.as_str(),
        a.driver.as_str(),
    ));
    let Candidate {
        slot: later_slot,
        request: later_request,
        vars: mut later_vars,
    } = later;
    if first.request.opts.is_empty() && !later_request.opts.is_empty() {
        first.request.opts = later_request.opts;
        first.vars.0[Kind::Opts as usize] = later_vars.0[Kind::Opts as usize].take();
    }
    if first.request.explicit_create != later_request.explicit_create {
        warnings.push(format!(
            "{} and {} disagree on volume {:?} of driver {:?}: it must already exist (explicit create wins)",
            first.vars.env_var(Kind::ExplicitCreate, first.slot),
            later_vars.env_var(Kind::ExplicitCreate, later_slot),
            first.request.name.as_str(),
            first.request.driver.as_str(),
        ));
        if !first.request.explicit_create {
            first.request.explicit_create = true;
            first.vars.0[Kind::ExplicitCreate as usize] =
                later_vars.0[Kind::ExplicitCreate as usize].take();
        }
    }
    Ok(())
}
