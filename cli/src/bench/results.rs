//! Everything one run measured: what the report, the targets, the charts
//! and the JSON document read.

use super::echo::EchoResults;
use super::http::HttpResults;
use super::missing::Skipped;
use super::offload::OffloadFigure;
use super::scenarios::{Idle, PingPong, Throughput, Variant};
use serde::Serialize;

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Results {
    /// Ping-pong latencies.
    pub ping_pong: Vec<PingPong>,
    /// Throughput and CPU per job.
    pub throughput: Vec<Throughput>,
    /// Idle cost.
    pub idle: Vec<Idle>,
    /// The echo benchmark (issue 9).
    pub echo: EchoResults,
    /// The offload benchmark (issue 9).
    pub offload: Vec<OffloadFigure>,
    /// The http section (issue 10).
    pub http: HttpResults,
    /// Contenders of the echo, offload and http sections left out: not
    /// built yet, or failed.
    pub skipped: Vec<Skipped>,
    /// Measurements that failed, with the reason.
    pub errors: Vec<String>,
}

impl Results {
    /// Merges the rounds of each handoff figure (measured in turns, see
    /// `Plan::steps`) into one, in the order the figures first appeared.
    pub fn merge_rounds(&mut self) {
        self.ping_pong = merge_by(std::mem::take(&mut self.ping_pong), |p| {
            (p.contender.clone(), p.workers, p.variant as u64, 0)
        })
        .into_iter()
        .map(PingPong::merge)
        .collect();
        self.throughput = merge_by(std::mem::take(&mut self.throughput), |t| {
            (t.contender.clone(), t.workers, t.depth as u64, t.cost_ns)
        })
        .into_iter()
        .map(Throughput::merge)
        .collect();
    }

    /// The ping-pong figure of contender `c` with `workers` workers, if it ran.
    pub fn find_ping_pong(&self, c: &str, workers: usize, v: Variant) -> Option<&PingPong> {
        self.ping_pong
            .iter()
            .find(|p| p.contender == c && p.workers == workers && p.variant == v)
    }

    /// The throughput figure of contender `c` with `workers` workers, `depth`
    /// jobs in flight and jobs of `cost_ns`, if it ran.
    pub fn find_throughput(
        &self,
        c: &str,
        workers: usize,
        depth: usize,
        cost_ns: u64,
    ) -> Option<&Throughput> {
        self.throughput.iter().find(|t| {
            t.contender == c && t.workers == workers && t.depth == depth && t.cost_ns == cost_ns
        })
    }

    /// The idle cost of contender `c` with `workers` workers, if it ran.
    pub fn find_idle(&self, c: &str, workers: usize) -> Option<&Idle> {
        self.idle
            .iter()
            .find(|i| i.contender == c && i.workers == workers)
    }
}

/// `items` grouped by `key`, groups in the order their first item came.
fn merge_by<T, K: PartialEq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for item in items {
        let k = key(&item);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, g)) => g.push(item),
            None => groups.push((k, vec![item])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::engine::Counters;
    use hdrhistogram::Histogram;

    fn tput(contender: &str, jobs_per_s: f64, counted: bool) -> Throughput {
        Throughput {
            contender: contender.into(),
            workers: 1,
            depth: 64,
            cost_ns: 0,
            jobs: 10,
            secs: 1.0,
            jobs_per_s,
            loop_cpu_ns_per_job: jobs_per_s,
            worker_cpu_ns_per_job: 0.0,
            loop_pct_of_core: 0.0,
            worker_pct_of_core: 0.0,
            loop_vcsw_per_job: 0.0,
            total_vcsw_per_job: 0.0,
            loop_syscalls_per_job: counted.then_some(0.5),
            total_syscalls_per_job: counted.then_some(0.75),
            counted_jobs_per_s: counted.then_some(1.0),
            counted_threads: counted.then_some(2),
            counted_threads_missed: counted.then_some(0),
            counters: Counters::default(),
            jobs_per_s_reps: vec![jobs_per_s],
        }
    }

    fn ping(contender: &str, ns: &[u64]) -> PingPong {
        let mut hist = Histogram::<u64>::new(3).unwrap();
        ns.iter().for_each(|&n| hist.record(n).unwrap());
        PingPong {
            contender: contender.into(),
            workers: 1,
            variant: Variant::Hot,
            samples: hist.len(),
            p50_ns: 0,
            p99_ns: 0,
            p999_ns: 0,
            max_ns: 0,
            mean_ns: 0.0,
            hist,
        }
    }

    /// Rounds merge per figure, in first-seen order: throughput keeps the
    /// median run (its own CPU figures), every run's jobs/s, and the
    /// system calls of the round that counted them; ping-pong merges the
    /// histograms.
    #[test]
    fn rounds_merge_into_one_figure_each() {
        let mut r = Results {
            throughput: vec![
                tput("a", 3.0, false),
                tput("b", 9.0, false),
                tput("a", 1.0, false),
                tput("b", 7.0, false),
                tput("a", 2.0, true),
                tput("b", 8.0, true),
            ],
            ping_pong: vec![ping("a", &[100, 200]), ping("b", &[5]), ping("a", &[300])],
            ..Results::default()
        };
        r.merge_rounds();
        let names: Vec<_> = r.throughput.iter().map(|t| t.contender.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &r.throughput[0];
        assert_eq!(a.jobs_per_s, 2.0);
        assert_eq!(a.loop_cpu_ns_per_job, 2.0, "the median run's own figures");
        assert_eq!(a.jobs_per_s_reps, [3.0, 1.0, 2.0]);
        assert_eq!(a.loop_syscalls_per_job, Some(0.5));
        assert_eq!(r.throughput[1].jobs_per_s, 8.0);
        let c = Throughput::merge(vec![
            tput("c", 4.0, true),
            tput("c", 6.0, false),
            tput("c", 5.0, false),
        ]);
        assert_eq!((c.jobs_per_s, c.counted_threads), (5.0, Some(2)));
        assert_eq!(r.ping_pong.len(), 2);
        let pa = &r.ping_pong[0];
        assert_eq!((pa.contender.as_str(), pa.samples), ("a", 3));
        assert_eq!(pa.p50_ns, pa.hist.value_at_quantile(0.5));
        assert!((200..=201).contains(&pa.p50_ns), "{}", pa.p50_ns);
        assert!((300..=301).contains(&pa.max_ns), "{}", pa.max_ns);
    }
}
