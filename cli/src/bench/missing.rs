//! Why a contender of the runtime benchmarks (echo, offload, http) produced no
//! figure: it is not built yet (a slot waiting for `ringpool::runtime`), or
//! it failed. The report lists both; a target that needs the figure says
//! "not measured", never passes.

use serde::Serialize;
use std::fmt;

/// Why a contender has no figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The contender does not exist yet; the text says what is missing.
    NotBuilt(String),
    /// The contender ran and failed.
    Failed(String),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::NotBuilt(why) => write!(f, "not built: {why}"),
            Missing::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl From<String> for Missing {
    fn from(why: String) -> Missing {
        Missing::Failed(why)
    }
}

/// A contender left out of a section, as listed in the report and the JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// `echo`, `offload` or `http`.
    pub section: &'static str,
    /// Contender name.
    pub contender: String,
    /// What was not measured (a cell, or the whole section).
    pub what: String,
    /// `true`: not built yet; `false`: it failed.
    pub not_built: bool,
    /// The reason, as the contender gave it.
    pub reason: String,
}

impl Skipped {
    /// Files `missing` for `contender` in `section`.
    pub fn new(section: &'static str, contender: &str, what: String, missing: &Missing) -> Skipped {
        let (not_built, reason) = match missing {
            Missing::NotBuilt(r) => (true, r.clone()),
            Missing::Failed(r) => (false, r.clone()),
        };
        Skipped {
            section,
            contender: contender.to_string(),
            what,
            not_built,
            reason,
        }
    }
}
