//! SVG charts (`--svg-dir`): latency percentiles per mechanism, and
//! throughput against depth.

use super::contenders::Contender;
use super::results::Results;
use super::scenarios::{PingPong, Variant};
use plotters::prelude::*;
use std::error::Error;
use std::path::{Path, PathBuf};

/// One contender's line on a throughput chart: palette index, name, points.
type Series = (usize, String, Vec<(f64, f64)>);

/// Size of every chart, in pixels.
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 640;

fn color(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Draws every chart the results allow; returns the files written.
pub fn draw(
    dir: &Path,
    contenders: &[Contender],
    r: &Results,
) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the chart directory {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    let mut workers: Vec<usize> = r.ping_pong.iter().map(|p| p.workers).collect();
    workers.extend(r.throughput.iter().map(|t| t.workers));
    workers.sort_unstable();
    workers.dedup();
    for &w in &workers {
        for v in Variant::ALL {
            let rows: Vec<(usize, &PingPong)> = contenders
                .iter()
                .enumerate()
                .filter_map(|(i, c)| r.find_ping_pong(&c.name(), w, v).map(|p| (i, p)))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let name = match v {
                Variant::Hot => "hot",
                Variant::Idle => "idle",
            };
            let path = dir.join(format!("latency-{name}-{w}w.svg"));
            latency(
                &path,
                &format!("ping-pong {name}, {w} worker(s): round trip (µs, log)"),
                &rows,
            )?;
            files.push(path);
        }
        let mut costs: Vec<u64> = r
            .throughput
            .iter()
            .filter(|t| t.workers == w)
            .map(|t| t.cost_ns)
            .collect();
        costs.sort_unstable();
        costs.dedup();
        for cost in costs {
            let series: Vec<Series> = contenders
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let pts: Vec<(f64, f64)> = r
                        .throughput
                        .iter()
                        .filter(|t| t.contender == c.name() && t.workers == w && t.cost_ns == cost)
                        .map(|t| (t.depth as f64, t.jobs_per_s))
                        .collect();
                    (!pts.is_empty()).then(|| (i, c.name(), pts))
                })
                .collect();
            if series.is_empty() {
                continue;
            }
            let path = dir.join(format!("throughput-{}us-{w}w.svg", cost / 1000));
            throughput(
                &path,
                &format!(
                    "throughput, job cost {} µs, {w} worker(s): jobs/s vs depth (log-log)",
                    cost / 1000
                ),
                &series,
            )?;
            files.push(path);
        }
    }
    Ok(files)
}

/// One line per contender through p50, p99, p99.9 and max.
fn latency(path: &Path, title: &str, rows: &[(usize, &PingPong)]) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let vals =
        |p: &PingPong| [p.p50_ns, p.p99_ns, p.p999_ns, p.max_ns].map(|ns| (ns.max(1) as f64) / 1e3);
    let lo = rows
        .iter()
        .map(|(_, p)| vals(p)[0])
        .fold(f64::MAX, f64::min);
    let hi = rows.iter().map(|(_, p)| vals(p)[3]).fold(0.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            -0.2f64..3.2f64,
            ((lo / 2.0).max(0.01)..hi * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&|x| {
            match x.round() as i64 {
                0 => "p50",
                1 => "p99",
                2 => "p99.9",
                3 => "max",
                _ => "",
            }
            .to_string()
        })
        .y_desc("µs")
        .draw()?;
    for (i, p) in rows {
        let pts: Vec<(f64, f64)> = vals(p)
            .iter()
            .enumerate()
            .map(|(k, &y)| (k as f64, y))
            .collect();
        draw_line(&mut chart, &p.contender, color(*i), pts)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}

/// One line per contender: jobs/s at each depth.
fn throughput(path: &Path, title: &str, series: &[Series]) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let ys = series.iter().flat_map(|(_, _, p)| p.iter().map(|q| q.1));
    let lo = ys.clone().fold(f64::MAX, f64::min).max(1.0);
    let hi = ys.fold(0.0f64, f64::max).max(lo * 2.0);
    let xs = series.iter().flat_map(|(_, _, p)| p.iter().map(|q| q.0));
    let xmax = xs.fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0.8f64..xmax * 1.25).log_scale(),
            (lo / 2.0..hi * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("jobs in flight")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("jobs/s")
        .y_label_formatter(&|y| {
            if *y >= 1e6 {
                format!("{:.1}M", y / 1e6)
            } else {
                format!("{:.0}k", y / 1e3)
            }
        })
        .draw()?;
    for (i, name, pts) in series {
        draw_line(&mut chart, name, color(*i), pts.clone())?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(())
}

/// A chart of either kind: `f64` on both axes, linear or log.
type Chart<'a, X, Y> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>;

/// One contender's line through `pts`, a dot on each point, and its entry
/// in the legend.
fn draw_line<X, Y>(
    chart: &mut Chart<'_, X, Y>,
    name: &str,
    col: RGBColor,
    pts: Vec<(f64, f64)>,
) -> Result<(), Box<dyn Error>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
    chart.draw_series(PointSeries::of_element(
        pts,
        3,
        col.filled(),
        &|c, s, st| EmptyElement::at(c) + Circle::new((0, 0), s, st),
    ))?;
    Ok(())
}

/// The legend box, at `pos`.
fn draw_legend<X, Y>(
    chart: &mut Chart<'_, X, Y>,
    pos: SeriesLabelPosition,
) -> Result<(), Box<dyn Error>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
