//! What each mode runs: quick (the default), `--full` and `--smoke`, as a
//! list of steps that the progress bar counts.

use super::contenders::Contender;
use super::echo::{EchoSpec, ServerImpl};
use super::http::{Endpoint, HttpServer, HttpSpec};
use super::offload::OffloadSpec;
use super::results::Results;
use super::scenarios::{self, IdleSpec, LoopSetup, PingPongSpec, ThroughputSpec, Variant};
use super::work::Calibration;
use serde::Serialize;
use std::time::Duration;

/// Which configuration runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The default: about two minutes on two cores (the handoff section 70
    /// to 80 s, echo and offload about 30 s, http about 20 s).
    Quick,
    /// `--full`: every depth, cost and worker count, longer windows.
    Full,
    /// `--smoke`: tiny counts, every contender once (CI).
    Smoke,
}

/// Sizes of one mode.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// `quick`, `full` or `smoke`.
    pub mode: &'static str,
    /// Worker counts.
    pub workers: Vec<usize>,
    /// In-flight depths for throughput.
    pub depths: Vec<usize>,
    /// Job costs for throughput, µs.
    pub costs_us: Vec<u64>,
    /// Hot ping-pong.
    pub hot: PingPongSpec,
    /// Idle ping-pong.
    pub idle_pp: PingPongSpec,
    /// Throughput warm-up.
    #[serde(with = "super::seconds")]
    pub tput_warmup: Duration,
    /// Throughput window (one measured run).
    #[serde(with = "super::seconds")]
    pub tput_window: Duration,
    /// Measured throughput runs per figure (the median is reported), taken
    /// in turns: one window of every contender per round.
    pub tput_reps: usize,
    /// Ping-pong rounds: each contender's round trips are split into this
    /// many runs, taken in turns, and their histograms merged.
    pub ping_pong_rounds: usize,
    /// Idle cost.
    pub idle: IdleSpec,
    /// Worker scaling: throughput of a few contenders at more worker counts.
    pub scaling: ScalingSpec,
    /// The sections that run (`handoff`, `echo`, `offload`, `http`).
    pub sections: Vec<&'static str>,
    /// The TCP echo benchmark (issue 9).
    pub echo: EchoSpec,
    /// The offload benchmark (issue 9).
    pub offload: OffloadSpec,
    /// The http section (issue 10).
    pub http: HttpSpec,
}

/// Worker scaling: jobs/s of ringpool's default and the main peers at 1, 2
/// and all cores' worth of workers. Figures the main runs already measured
/// (their worker counts) are not measured again.
#[derive(Clone, Debug, Serialize)]
pub struct ScalingSpec {
    /// Worker counts: 1, 2 and the number of cores, deduplicated.
    pub workers: Vec<usize>,
    /// Jobs in flight.
    pub depth: usize,
    /// Job costs, µs.
    pub costs_us: Vec<u64>,
    /// Who is measured.
    pub contenders: Vec<&'static str>,
}

impl ScalingSpec {
    fn new(ncpu: usize, costs_us: Vec<u64>) -> ScalingSpec {
        let mut workers = vec![1, 2.min(ncpu.max(1)), ncpu.max(1)];
        workers.dedup();
        ScalingSpec {
            workers,
            depth: 64,
            costs_us,
            contenders: vec![
                "auto",
                "answer",
                "tokio-blocking",
                "tokio-rayon",
                "crossbeam",
                "std-mpsc",
            ],
        }
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Plan {
    /// The plan of `mode` on a machine with `ncpu` cores.
    pub fn new(mode: Mode, ncpu: usize) -> Plan {
        let ping_pong = |variant, iterations, warmup, max_time| PingPongSpec {
            variant,
            iterations,
            warmup,
            max_time,
            gap: ms(1),
        };
        let mut workers = vec![1];
        if ncpu > 1 {
            workers.push(ncpu);
        }
        let echo = |warmup, window, reps, idle_connections, idle_deadline, idle_settle| EchoSpec {
            servers: ServerImpl::ALL.to_vec(),
            connections: vec![1, 64],
            sizes: vec![64, 4096],
            warmup,
            window,
            reps,
            idle_connections,
            idle_deadline,
            idle_settle,
        };
        let offload = |workers, warmup, window, reps| OffloadSpec {
            tasks: 64,
            workers,
            warmup,
            window,
            reps,
        };
        let http = |warmup, window, reps| HttpSpec {
            servers: HttpServer::ALL.to_vec(),
            endpoints: Endpoint::ALL.to_vec(),
            connections: 64,
            workers: 2,
            warmup,
            window,
            reps,
        };
        let sections = vec!["handoff", "echo", "offload", "http"];
        match mode {
            Mode::Smoke => Plan {
                mode: "smoke",
                workers: vec![1],
                depths: vec![1, 64],
                costs_us: vec![0, 1],
                hot: ping_pong(Variant::Hot, 200, 20, ms(50)),
                idle_pp: ping_pong(Variant::Idle, 5, 1, ms(50)),
                tput_warmup: ms(2),
                tput_window: ms(15),
                tput_reps: 1,
                ping_pong_rounds: 1,
                idle: IdleSpec {
                    settle: ms(5),
                    window: ms(20),
                },
                scaling: ScalingSpec::new(ncpu, vec![0]),
                sections,
                echo: echo(ms(20), ms(50), 2, 1_000, ms(5_000), ms(50)),
                offload: offload(vec![1], ms(10), ms(50), 2),
                http: http(ms(20), ms(100), 2),
            },
            Mode::Full => Plan {
                mode: "full",
                depths: vec![1, 8, 64, 256],
                costs_us: vec![0, 1, 10, 100],
                hot: ping_pong(Variant::Hot, 200_000, 2_000, ms(800)),
                idle_pp: ping_pong(Variant::Idle, 1_000, 20, ms(2_000)),
                tput_warmup: ms(50),
                tput_window: ms(200),
                tput_reps: 3,
                ping_pong_rounds: 3,
                idle: IdleSpec {
                    settle: ms(100),
                    window: ms(1_000),
                },
                scaling: ScalingSpec::new(ncpu, vec![0, 10]),
                sections,
                echo: echo(ms(500), ms(1_000), 5, 10_000, ms(60_000), ms(500)),
                offload: offload(workers.clone(), ms(200), ms(600), 5),
                http: http(ms(1_000), ms(2_000), 5),
                workers,
            },
            Mode::Quick => Plan {
                mode: "quick",
                workers: vec![1],
                depths: vec![1, 64],
                costs_us: vec![0, 10],
                hot: ping_pong(Variant::Hot, 50_000, 1_000, ms(300)),
                idle_pp: ping_pong(Variant::Idle, 300, 10, ms(500)),
                tput_warmup: ms(40),
                tput_window: ms(150),
                tput_reps: 3,
                ping_pong_rounds: 3,
                idle: IdleSpec {
                    settle: ms(50),
                    window: ms(300),
                },
                scaling: ScalingSpec::new(ncpu, vec![0, 10]),
                sections,
                echo: echo(ms(200), ms(500), 3, 10_000, ms(30_000), ms(300)),
                offload: offload(vec![1], ms(100), ms(300), 3),
                http: http(ms(300), ms(800), 3),
            },
        }
    }

    /// Every measurement, scenario-major: all contenders run one figure
    /// back to back, in turns (one run of each per round, see
    /// [`Round`]), so that the VM's fast and slow phases hit them alike.
    pub fn steps(&self, contenders: &[Contender]) -> Vec<Step> {
        let mut v = Vec::new();
        // One figure: `rounds` turns of every contender of `who` that
        // supports it.
        let mut figure =
            |who: &[Contender], w: usize, depth: usize, rounds: usize, scenario: Scenario| {
                for index in 0..rounds {
                    for &c in who.iter().filter(|c| c.supports(w, depth)) {
                        v.push(Step {
                            contender: c,
                            workers: w,
                            scenario,
                            round: Round { index, of: rounds },
                        });
                    }
                }
            };
        for &w in &self.workers {
            for spec in [self.hot, self.idle_pp] {
                let rounds = self.ping_pong_rounds.max(1);
                let part = PingPongSpec {
                    iterations: spec.iterations.div_ceil(rounds),
                    max_time: spec.max_time / rounds as u32,
                    ..spec
                };
                figure(contenders, w, 1, rounds, Scenario::PingPong(part));
            }
            for &cost in &self.costs_us {
                for &depth in &self.depths {
                    let scenario = self.throughput(depth, cost);
                    figure(contenders, w, depth, self.tput_reps.max(1), scenario);
                }
            }
            figure(contenders, w, 1, 1, Scenario::Idle(self.idle));
        }
        let scaling = &self.scaling;
        let scaled: Vec<Contender> = contenders
            .iter()
            .filter(|c| scaling.contenders.contains(&c.name().as_str()))
            .copied()
            .collect();
        for &w in &scaling.workers {
            for &cost in &scaling.costs_us {
                let measured = self.workers.contains(&w)
                    && self.depths.contains(&scaling.depth)
                    && self.costs_us.contains(&cost);
                if measured {
                    continue;
                }
                let scenario = self.throughput(scaling.depth, cost);
                figure(&scaled, w, scaling.depth, self.tput_reps.max(1), scenario);
            }
        }
        v
    }

    /// A throughput scenario of this plan's windows.
    fn throughput(&self, depth: usize, cost_us: u64) -> Scenario {
        Scenario::Throughput {
            depth,
            cost: Duration::from_micros(cost_us),
            warmup: self.tput_warmup,
            window: self.tput_window,
            reps: 1,
        }
    }
}

/// The scenario one step measures, with its sizes.
#[derive(Copy, Clone, Debug)]
pub enum Scenario {
    /// A ping-pong run.
    PingPong(PingPongSpec),
    /// A throughput run.
    Throughput {
        /// Jobs in flight.
        depth: usize,
        /// CPU work per job.
        cost: Duration,
        /// Unmeasured warm-up.
        warmup: Duration,
        /// Measured window.
        window: Duration,
        /// Measured runs in this step (one: the rounds repeat it).
        reps: usize,
    },
    /// An idle-cost run.
    Idle(IdleSpec),
}

/// One measurement: a contender, a worker count, a scenario.
#[derive(Copy, Clone, Debug)]
pub struct Step {
    /// Who.
    pub contender: Contender,
    /// With how many workers.
    pub workers: usize,
    /// Measuring which scenario.
    pub scenario: Scenario,
    /// Which turn of its figure this is.
    pub round: Round,
}

/// A step's turn: round `index` of `of`. A figure's rounds are merged after
/// the run ([`Results::merge_rounds`]).
#[derive(Copy, Clone, Debug)]
pub struct Round {
    /// From 0.
    pub index: usize,
    /// Rounds of the figure.
    pub of: usize,
}

impl Round {
    /// The figure's last round: the one whose throughput run is followed by
    /// the counted run (system calls), so that counting happens once.
    pub fn is_last(&self) -> bool {
        self.index + 1 == self.of
    }
}

impl Step {
    /// For error messages: names the figure, whatever the round.
    pub fn label(&self) -> String {
        let desc = match self.scenario {
            Scenario::PingPong(s) => format!("ping-pong {:?}", s.variant).to_lowercase(),
            Scenario::Throughput { depth, cost, .. } => {
                format!("throughput depth {depth} cost {}us", cost.as_micros())
            }
            Scenario::Idle(_) => "idle cost".into(),
        };
        format!("{} w={} {desc}", self.contender, self.workers)
    }

    /// [`Step::label`] with the round, for the progress bar.
    pub fn progress(&self) -> String {
        if self.round.of > 1 {
            format!(
                "{} round {}/{}",
                self.label(),
                self.round.index + 1,
                self.round.of
            )
        } else {
            self.label()
        }
    }

    /// Runs the measurement and files the result.
    pub fn run(
        &self,
        setup: &LoopSetup,
        calibration: &Calibration,
        results: &mut Results,
    ) -> Result<(), String> {
        let c = self.contender;
        let counted = LoopSetup {
            count_syscalls: setup.count_syscalls && self.round.is_last(),
            ..setup.clone()
        };
        let setup = &counted;
        match self.scenario {
            Scenario::PingPong(spec) => results
                .ping_pong
                .push(scenarios::ping_pong(c, setup, spec)?),
            Scenario::Throughput {
                depth,
                cost,
                warmup,
                window,
                reps,
            } => {
                let spec = ThroughputSpec {
                    depth,
                    cost,
                    iters: calibration.iters(cost),
                    warmup,
                    window,
                    reps,
                };
                results
                    .throughput
                    .push(scenarios::throughput(c, setup, spec)?);
            }
            Scenario::Idle(spec) => results.idle.push(scenarios::idle_cost(c, setup, spec)?),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every figure of the quick plan is measured in turns: its steps are
    /// `rounds` passes over the same contenders in the same order.
    #[test]
    fn contenders_take_turns_within_a_figure() {
        let plan = Plan::new(Mode::Quick, 2);
        let steps = plan.steps(&Contender::all());
        let mut i = 0;
        let mut figures = 0;
        while i < steps.len() {
            let of = steps[i].round.of;
            let per_round = steps[i..]
                .iter()
                .take_while(|s| s.round.index == 0 && s.round.of == of)
                .count();
            let figure = &steps[i..i + per_round * of];
            for (k, s) in figure.iter().enumerate() {
                let first = &figure[k % per_round];
                assert_eq!(s.round.index, k / per_round, "{}", s.progress());
                assert_eq!(s.label(), first.label(), "round {} strays", s.round.index);
            }
            assert!(figure.last().unwrap().round.is_last());
            i += per_round * of;
            figures += 1;
        }
        assert!(figures > 4, "{figures} figures");
        let rounds_of = |label: &str| steps.iter().filter(|s| s.label() == label).count();
        let hot = steps
            .iter()
            .find(|s| matches!(s.scenario, Scenario::PingPong(p) if p.variant == Variant::Hot))
            .unwrap();
        assert_eq!(rounds_of(&hot.label()), plan.ping_pong_rounds);
        let tput = steps
            .iter()
            .find(|s| matches!(s.scenario, Scenario::Throughput { .. }))
            .unwrap();
        assert_eq!(rounds_of(&tput.label()), plan.tput_reps);
    }
}
