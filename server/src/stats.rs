//! The server's counters, shared by the driver's threads, and their JSON form
//! (`GET /stats`).
//!
//! Every counter is a relaxed atomic: each is exact on its own, and a snapshot of several
//! is only roughly simultaneous.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The statuses counted one by one (every status also counts in its class).
pub const CODES: [u16; 9] = [200, 400, 404, 405, 408, 413, 431, 500, 503];

/// The server's counters.
#[derive(Debug)]
pub struct Stats {
    handoff: String,
    by_class: [AtomicU64; 5],
    by_code: [AtomicU64; CODES.len()],
    conns_open: AtomicU64,
    conns_accepted: AtomicU64,
    conns_refused: AtomicU64,
    jobs_in_flight: AtomicU64,
    completions: AtomicU64,
    wakes_sent: AtomicU64,
    wakes_skipped: AtomicU64,
}

impl Stats {
    /// Zeroed counters for a server whose jobs go to the pool by `handoff` (the handoff
    /// mechanism's name, as the driver calls it; `"spawn_blocking"` for hyper).
    pub fn new(handoff: &str) -> Stats {
        Stats {
            handoff: handoff.to_owned(),
            by_class: Default::default(),
            by_code: Default::default(),
            conns_open: AtomicU64::new(0),
            conns_accepted: AtomicU64::new(0),
            conns_refused: AtomicU64::new(0),
            jobs_in_flight: AtomicU64::new(0),
            completions: AtomicU64::new(0),
            wakes_sent: AtomicU64::new(0),
            wakes_skipped: AtomicU64::new(0),
        }
    }

    /// The handoff name given to [`Stats::new`].
    pub fn handoff(&self) -> &str {
        &self.handoff
    }

    /// Counts one response with `status`.
    pub fn record_status(&self, status: u16) {
        if let Some(class) = (status / 100).checked_sub(1).filter(|c| *c < 5) {
            self.by_class[usize::from(class)].fetch_add(1, Relaxed);
        }
        if let Some(i) = CODES.iter().position(|&c| c == status) {
            self.by_code[i].fetch_add(1, Relaxed);
        }
    }

    /// How many responses with `status` were counted (0 for a status not in [`CODES`]).
    pub fn status_count(&self, status: u16) -> u64 {
        CODES
            .iter()
            .position(|&c| c == status)
            .map_or(0, |i| self.by_code[i].load(Relaxed))
    }

    /// How many responses in `class` (1 to 5: 1xx to 5xx) were counted.
    pub fn class_count(&self, class: u16) -> u64 {
        match class {
            1..=5 => self.by_class[usize::from(class - 1)].load(Relaxed),
            _ => 0,
        }
    }

    /// A connection was accepted (and is open).
    pub fn conn_accepted(&self) {
        self.conns_accepted.fetch_add(1, Relaxed);
        self.conns_open.fetch_add(1, Relaxed);
    }

    /// An accepted connection closed.
    pub fn conn_closed(&self) {
        self.conns_open.fetch_sub(1, Relaxed);
    }

    /// A connection was refused (e.g. over the connection limit).
    pub fn conn_refused(&self) {
        self.conns_refused.fetch_add(1, Relaxed);
    }

    /// How many connections are open.
    pub fn conns_open(&self) -> u64 {
        self.conns_open.load(Relaxed)
    }

    /// A job went to the pool.
    pub fn job_started(&self) {
        self.jobs_in_flight.fetch_add(1, Relaxed);
    }

    /// A job's completion came back.
    pub fn job_completed(&self) {
        self.jobs_in_flight.fetch_sub(1, Relaxed);
        self.completions.fetch_add(1, Relaxed);
    }

    /// How many jobs are at the pool.
    pub fn jobs_in_flight(&self) -> u64 {
        self.jobs_in_flight.load(Relaxed)
    }

    /// How many job completions came back.
    pub fn completions(&self) -> u64 {
        self.completions.load(Relaxed)
    }

    /// Sets the wake counts, as the driver reads them from its pool (wakes sent to
    /// sleeping loops or workers, and wakes skipped because the target was awake).
    pub fn set_wakes(&self, sent: u64, skipped: u64) {
        self.wakes_sent.store(sent, Relaxed);
        self.wakes_skipped.store(skipped, Relaxed);
    }

    /// The counters as one JSON object (the body of `GET /stats`).
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(512);
        s.push_str("{\"handoff\":\"");
        for c in self.handoff.chars() {
            match c {
                '"' | '\\' => {
                    s.push('\\');
                    s.push(c);
                }
                c if (c as u32) < 0x20 => {
                    let _ = write!(s, "\\u{:04x}", c as u32);
                }
                c => s.push(c),
            }
        }
        s.push_str("\",\"requests\":{");
        for class in 1..=5u16 {
            let _ = write!(s, "\"{class}xx\":{},", self.class_count(class));
        }
        s.pop();
        s.push_str("},\"status\":{");
        for (code, n) in CODES.iter().zip(&self.by_code) {
            let _ = write!(s, "\"{code}\":{},", n.load(Relaxed));
        }
        s.pop();
        let _ = write!(
            s,
            "}},\"connections\":{{\"open\":{},\"accepted\":{},\"refused\":{}}},\
             \"jobs\":{{\"in_flight\":{},\"completions\":{}}},\
             \"wakes\":{{\"sent\":{},\"skipped\":{}}}}}",
            self.conns_open.load(Relaxed),
            self.conns_accepted.load(Relaxed),
            self.conns_refused.load(Relaxed),
            self.jobs_in_flight.load(Relaxed),
            self.completions.load(Relaxed),
            self.wakes_sent.load(Relaxed),
            self.wakes_skipped.load(Relaxed),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json() {
        let stats = Stats::new("msg-ring \"batched\"");
        stats.record_status(200);
        stats.record_status(200);
        stats.record_status(404);
        stats.record_status(302);
        stats.record_status(999);
        stats.conn_accepted();
        stats.conn_accepted();
        stats.conn_closed();
        stats.conn_refused();
        stats.job_started();
        stats.job_started();
        stats.job_completed();
        stats.set_wakes(7, 3);
        assert_eq!(
            stats.to_json(),
            "{\"handoff\":\"msg-ring \\\"batched\\\"\",\
             \"requests\":{\"1xx\":0,\"2xx\":2,\"3xx\":1,\"4xx\":1,\"5xx\":0},\
             \"status\":{\"200\":2,\"400\":0,\"404\":1,\"405\":0,\"408\":0,\"413\":0,\
             \"431\":0,\"500\":0,\"503\":0},\
             \"connections\":{\"open\":1,\"accepted\":2,\"refused\":1},\
             \"jobs\":{\"in_flight\":1,\"completions\":1},\
             \"wakes\":{\"sent\":7,\"skipped\":3}}"
        );
    }
}
