//! The `user_data` tag that marks the pool's own completions on the loop's
//! ring.
//!
//! Layout of a pool `user_data` (most significant bits first):
//!
//! | bits  | field                                                      |
//! |-------|------------------------------------------------------------|
//! | 63–48 | magic `0x5250` ("RP")                                      |
//! | 47–40 | [`Kind`]                                                   |
//! | 39–24 | registration id: unique among the live loop handles of the |
//! |       | process, so two handles on one ring never share a tag      |
//! | 23–0  | payload (slot index, worker index)                         |
//!
//! Any other value belongs to the user. Users must not issue SQEs whose
//! `user_data` has `0x5250` in its top 16 bits; [`is_pool_user_data`] tells.

/// Magic in the top 16 bits of every pool `user_data`.
pub const MAGIC: u64 = 0x5250;

/// What a pool CQE is about.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A batch doorbell: results wait in the loop's queue (msg-ring, msg-ring-sync).
    Doorbell = 1,
    /// One job's result (`Announce::PerJob`); the payload is its slot.
    Result = 2,
    /// The eventfd's multishot poll fired.
    Poll = 3,
    /// The loop's `IORING_OP_FUTEX_WAIT` on its doorbell word completed.
    FutexWait = 4,
    /// A batched `IORING_OP_FUTEX_WAKE` to a worker failed (success is skipped).
    FutexWake = 5,
    /// A read of result pointers from the result pipe completed.
    PipeRead = 6,
    /// A write of job pointers into the job pipe completed; payload = buffer.
    PipeWrite = 7,
    /// A wake message to a worker's ring failed (success is skipped).
    WakeMsg = 8,
    /// An `IORING_OP_ASYNC_CANCEL` issued by `LoopHandle::close`; the
    /// payload is the [`Kind`] of the request it cancels.
    Cancel = 9,
}

impl Kind {
    pub(crate) fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Doorbell,
            2 => Kind::Result,
            3 => Kind::Poll,
            4 => Kind::FutexWait,
            5 => Kind::FutexWake,
            6 => Kind::PipeRead,
            7 => Kind::PipeWrite,
            8 => Kind::WakeMsg,
            9 => Kind::Cancel,
            _ => return None,
        })
    }
}

/// Payloads are 24 bits: slot indices (the in-flight limit is at most 2^20)
/// and worker indices (at most 4096).
pub(crate) const PAYLOAD_BITS: u32 = 24;

/// Builds a pool `user_data`. `payload` must fit in [`PAYLOAD_BITS`].
#[inline]
pub(crate) const fn encode(kind: Kind, reg: u16, payload: u32) -> u64 {
    debug_assert!(payload < 1 << PAYLOAD_BITS);
    (MAGIC << 48)
        | ((kind as u64) << 40)
        | ((reg as u64) << PAYLOAD_BITS)
        | (payload & ((1 << PAYLOAD_BITS) - 1)) as u64
}

/// Splits a pool `user_data` into (kind, registration id, payload).
#[inline]
pub(crate) fn decode(user_data: u64) -> Option<(Kind, u16, u32)> {
    if user_data >> 48 != MAGIC {
        return None;
    }
    let kind = Kind::from_u8((user_data >> 40) as u8)?;
    let reg = (user_data >> PAYLOAD_BITS) as u16;
    Some((kind, reg, user_data as u32 & ((1 << PAYLOAD_BITS) - 1)))
}

/// The registration ids of the live loop handles, process-wide.
pub(crate) mod registry {
    use std::sync::Mutex;

    struct Ids {
        used: Vec<u64>,
        next: usize,
    }

    static IDS: Mutex<Ids> = Mutex::new(Ids {
        used: Vec::new(),
        next: 0,
    });

    /// Takes an id no live handle holds, or `None` if all 65536 are taken.
    pub(crate) fn take() -> Option<u16> {
        let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
        if ids.used.is_empty() {
            ids.used = vec![0; (1 << 16) / 64];
        }
        for k in 0..1usize << 16 {
            let id = (ids.next + k) & 0xffff;
            let (word, bit) = (id / 64, 1u64 << (id % 64));
            if ids.used[word] & bit == 0 {
                ids.used[word] |= bit;
                ids.next = id + 1;
                return Some(id as u16);
            }
        }
        None
    }

    /// Gives `id` back (the handle that held it is gone).
    pub(crate) fn give_back(id: u16) {
        let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
        let id = id as usize;
        if let Some(w) = ids.used.get_mut(id / 64) {
            *w &= !(1u64 << (id % 64));
        }
    }
}

/// `true` if `user_data` lies in the range ringpool reserves for itself.
///
/// A loop that owns several [`LoopHandle`](crate::LoopHandle)s, or that keeps
/// reading CQEs after a handle is gone, can use this to ignore the pool's
/// completions.
#[inline]
pub fn is_pool_user_data(user_data: u64) -> bool {
    user_data >> 48 == MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for kind in [Kind::Doorbell, Kind::Result, Kind::PipeWrite, Kind::Cancel] {
            let ud = encode(kind, 0xbeef, 0xad_beef);
            assert!(is_pool_user_data(ud));
            assert_eq!(decode(ud), Some((kind, 0xbeef, 0xad_beef)));
        }
        assert_eq!(decode(42), None);
        assert!(!is_pool_user_data(u64::MAX >> 1));
        // An unknown kind inside the magic range is not ours either.
        assert_eq!(decode(MAGIC << 48 | 0xff << 40), None);
    }
}

#[cfg(test)]
mod registry_tests {
    use super::registry;

    #[test]
    fn live_ids_never_collide() {
        let mut held: Vec<u16> = (0..300).map(|_| registry::take().unwrap()).collect();
        let mut sorted = held.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), held.len(), "an id was handed out twice");
        let back = held.pop().unwrap();
        registry::give_back(back);
        let again = registry::take().unwrap();
        assert!(!held.contains(&again));
        held.push(again);
        for id in held {
            registry::give_back(id);
        }
    }
}
