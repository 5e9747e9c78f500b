//! Choosing the mechanism: the environment overrides, the kernel probe, and
//! `auto`'s fallback order.

use super::caps::Capabilities;
use super::names::Handoff;
use crate::error::{Error, ErrorKind};
use std::fmt;

/// The outcome of choosing a mechanism: what was asked, what runs, and why.
#[derive(Clone, Debug)]
pub struct Selection {
    /// What was asked for (after the environment override).
    pub requested: Handoff,
    /// Where the request came from: `"builder"` or `"RINGPOOL_HANDOFF"`.
    pub source: &'static str,
    /// The mechanism that runs.
    pub chosen: Handoff,
    /// Mechanisms `Auto` passed over, each with the reason.
    pub skipped: Vec<(Handoff, String)>,
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (requested {} via {})",
            self.chosen, self.requested, self.source
        )?;
        for (h, why) in &self.skipped {
            write!(f, "; skipped {h}: {why}")?;
        }
        Ok(())
    }
}

/// The environment's say in the choice: `RINGPOOL_HANDOFF` forces a
/// mechanism; `RINGPOOL_UNSUPPORTED` (comma-separated names) treats
/// mechanisms as missing from the kernel, so tests can force every fallback.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides {
    pub(crate) handoff: Option<String>,
    pub(crate) unsupported: Option<String>,
}

impl Overrides {
    /// Reads both variables (unset and blank are the same).
    pub(crate) fn from_env() -> Overrides {
        let var = |k| {
            std::env::var(k)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        Overrides {
            handoff: var("RINGPOOL_HANDOFF"),
            unsupported: var("RINGPOOL_UNSUPPORTED"),
        }
    }

    /// The mechanisms `RINGPOOL_UNSUPPORTED` masks.
    fn masked(&self) -> Result<Vec<Handoff>, Error> {
        let Some(v) = &self.unsupported else {
            return Ok(Vec::new());
        };
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Handoff>().map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidConfig,
                        format!("RINGPOOL_UNSUPPORTED: {e}"),
                    )
                })
            })
            .collect()
    }
}

/// Resolves `requested` against `caps`, under the environment's overrides.
///
/// # Errors
///
/// `InvalidConfig` for an unparsable `RINGPOOL_HANDOFF` or
/// `RINGPOOL_UNSUPPORTED`; `Unsupported(h)` when a concrete mechanism was
/// asked for and this kernel (or the mask) lacks it.
pub(crate) fn select(requested: Handoff, caps: &Capabilities) -> Result<Selection, Error> {
    choose(requested, &Overrides::from_env(), caps)
}

/// [`select`] with the overrides given, not read from the environment.
pub(crate) fn choose(
    requested: Handoff,
    env: &Overrides,
    caps: &Capabilities,
) -> Result<Selection, Error> {
    let (requested, source) = match &env.handoff {
        Some(v) => (
            v.parse::<Handoff>().map_err(|e| {
                Error::new(ErrorKind::InvalidConfig, format!("RINGPOOL_HANDOFF: {e}"))
            })?,
            "RINGPOOL_HANDOFF",
        ),
        None => (requested, "builder"),
    };
    let mask = env.masked()?;
    let reason = |h: Handoff| -> Option<String> {
        if mask.contains(&h) {
            Some("disabled by RINGPOOL_UNSUPPORTED".into())
        } else {
            h.unsupported_reason(caps)
        }
    };
    if requested != Handoff::Auto {
        return match reason(requested) {
            None => Ok(Selection {
                requested,
                source,
                chosen: requested,
                skipped: vec![],
            }),
            Some(why) => Err(Error::new(
                ErrorKind::Unsupported(requested),
                format!("handoff {requested} is unavailable: {why}"),
            )),
        };
    }
    let mut skipped = Vec::new();
    for h in Handoff::AUTO_ORDER {
        match reason(h) {
            None => {
                return Ok(Selection {
                    requested,
                    source,
                    chosen: h,
                    skipped,
                })
            }
            Some(why) => skipped.push((h, why)),
        }
    }
    // Condvar has no requirements, so this is unreachable unless masked too.
    Err(Error::new(
        ErrorKind::Unsupported(Handoff::Auto),
        "every handoff is unavailable or masked by RINGPOOL_UNSUPPORTED",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: Overrides = Overrides {
        handoff: None,
        unsupported: None,
    };

    #[test]
    fn names_round_trip() {
        for h in std::iter::once(Handoff::Auto).chain(Handoff::ALL) {
            assert_eq!(h.name().parse::<Handoff>().unwrap(), h);
        }
        assert_eq!(
            "MSG_RING_SYNC".parse::<Handoff>().unwrap(),
            Handoff::MsgRingSync
        );
        let e: Error = "smoke-signals".parse::<Handoff>().unwrap_err().into();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("msg-ring-sync"), "{e}");
    }

    #[test]
    fn old_kernel_falls_back_to_condvar() {
        let mut caps = Capabilities::everything();
        caps.io_uring = false;
        caps.io_uring_error = Some("ENOSYS".into());
        let s = choose(Handoff::Auto, &CLEAN, &caps).unwrap();
        assert_eq!(s.chosen, Handoff::Condvar);
        assert_eq!(s.skipped.len(), 5);
        assert!(s.skipped.iter().all(|(_, why)| why.contains("ENOSYS")));
        let e = choose(Handoff::Futex, &CLEAN, &caps).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported(Handoff::Futex));
        // Spin needs nothing either, but auto never picks it.
        assert_eq!(
            choose(Handoff::Spin, &CLEAN, &caps).unwrap().chosen,
            Handoff::Spin
        );
    }

    #[test]
    fn pre_6_13_kernel_skips_ringless() {
        let mut caps = Capabilities::everything();
        caps.sync_msg_ring = false;
        caps.futex = false;
        let s = choose(Handoff::Auto, &CLEAN, &caps).unwrap();
        assert_eq!(s.chosen, Handoff::MsgRing);
        assert_eq!(s.skipped[0].0, Handoff::MsgRingSync);
        assert!(s.skipped[0].1.contains("6.13"), "{}", s.skipped[0].1);
        assert_eq!(s.skipped[1].0, Handoff::Futex);
        assert!(s.skipped[1].1.contains("6.7"), "{}", s.skipped[1].1);
    }

    #[test]
    fn a_full_kernel_picks_the_first_of_the_order() {
        let s = choose(Handoff::Auto, &CLEAN, &Capabilities::everything()).unwrap();
        assert_eq!(s.chosen, Handoff::AUTO_ORDER[0]);
        assert!(s.skipped.is_empty());
        assert_eq!(s.source, "builder");
    }

    #[test]
    fn environment_overrides() {
        let caps = Capabilities::everything();
        let env = Overrides {
            handoff: Some("pipe".into()),
            unsupported: None,
        };
        let s = choose(Handoff::Futex, &env, &caps).unwrap();
        assert_eq!(
            (s.requested, s.chosen, s.source),
            (Handoff::Pipe, Handoff::Pipe, "RINGPOOL_HANDOFF")
        );

        let env = Overrides {
            handoff: None,
            unsupported: Some("msg-ring-sync, futex".into()),
        };
        let s = choose(Handoff::Auto, &env, &caps).unwrap();
        assert_eq!(s.chosen, Handoff::MsgRing);
        assert!(s
            .skipped
            .iter()
            .all(|(_, why)| why.contains("RINGPOOL_UNSUPPORTED")));
        let e = choose(Handoff::Futex, &env, &caps).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported(Handoff::Futex));

        // Every mechanism masked: a typed error, not a panic.
        let all: Vec<_> = Handoff::ALL.iter().map(|h| h.name()).collect();
        let env = Overrides {
            handoff: None,
            unsupported: Some(all.join(",")),
        };
        let e = choose(Handoff::Auto, &env, &caps).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported(Handoff::Auto));
    }

    #[test]
    fn bad_overrides_are_named() {
        let caps = Capabilities::everything();
        for env in [
            Overrides {
                handoff: Some("smoke-signals".into()),
                unsupported: None,
            },
            Overrides {
                handoff: None,
                unsupported: Some("futex,bogus".into()),
            },
        ] {
            let e = choose(Handoff::Auto, &env, &caps).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            let var = if env.handoff.is_some() {
                "RINGPOOL_HANDOFF"
            } else {
                "RINGPOOL_UNSUPPORTED"
            };
            assert!(e.to_string().contains(var), "{e}");
        }
    }
}
