//! The SVG chart: one group of bars per figure, ringlb, HAProxy and NGINX side by side,
//! normalized to HAProxy = 1.0 so that figures with different units share one axis.
//!
//! Must never draw a bar taller than the axis without saying so: clipped bars carry their
//! real ratio as a label, and figures without a positive HAProxy value are left out.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::error::BenchReportError;
use super::metrics::Metric;
use super::model::Target;
use super::summary::Summary;

/// The figures charted: the targets' figures plus the fleet's time to first token.
const CHARTED: [Metric; 7] = [
    Metric::BulkGbps,
    Metric::BulkCpuPerGb,
    Metric::ConnsPerSec,
    Metric::CpuUsPerConn,
    Metric::AddedP99Us,
    Metric::IdleBytesPerConn,
    Metric::FleetTtftP99Ms,
];

/// Bars above this ratio are clipped (and labelled), so one outlier cannot flatten the rest.
const MAX_RATIO: f64 = 3.0;

const SIZE: (u32, u32) = (1100, 540);

fn color(t: Target) -> RGBColor {
    match t {
        Target::Ringlb => RGBColor(0xd9, 0x5f, 0x02),
        Target::RinglbEpoll => RGBColor(0xe6, 0xab, 0x02),
        Target::Haproxy => RGBColor(0x1b, 0x9e, 0x77),
        Target::Nginx => RGBColor(0x75, 0x70, 0xb3),
        Target::Direct => RGBColor(0x66, 0x66, 0x66),
    }
}

/// (figure, ratio per proxy) for every charted figure HAProxy has a positive value for.
pub fn groups(summary: &Summary) -> Vec<(Metric, Vec<(Target, f64)>)> {
    CHARTED
        .iter()
        .filter_map(|&m| {
            let bars: Vec<(Target, f64)> = Target::PROXIES
                .iter()
                .filter_map(|&t| summary.ratio_vs_haproxy(m, t).map(|r| (t, r)))
                .collect();
            (!bars.is_empty()).then_some((m, bars))
        })
        .collect()
}

fn chart_error(path: &Path, e: impl std::fmt::Display) -> BenchReportError {
    BenchReportError::Chart {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes the chart of `summary` to `path`.
pub fn draw(summary: &Summary, title: &str, path: &Path) -> Result<(), BenchReportError> {
    let groups = groups(summary);
    let err = |e: DrawingAreaErrorKind<_>| chart_error(path, e);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let top = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.1))
        .fold(1.0f64, f64::max)
        .min(MAX_RATIO)
        * 1.15;
    let n = groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..n, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_max_light_lines(1)
        .x_labels(0)
        .y_desc("relative to HAProxy (= 1.0)")
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 1.0), (n, 1.0)],
            BLACK.mix(0.5).stroke_width(1),
        )))
        .map_err(err)?;

    let width = 0.8 / Target::PROXIES.len() as f64;
    let above = ("sans-serif", 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    for (slot, &target) in Target::PROXIES.iter().enumerate() {
        let bars: Vec<(f64, f64)> = groups
            .iter()
            .enumerate()
            .filter_map(|(g, (_, bars))| {
                let ratio = bars.iter().find(|b| b.0 == target)?.1;
                Some((g as f64 + 0.1 + width * slot as f64, ratio))
            })
            .collect();
        let fill = color(target).filled();
        chart
            .draw_series(bars.iter().map(|&(x, r)| {
                Rectangle::new([(x, 0.0), (x + width * 0.92, r.clamp(0.0, top))], fill)
            }))
            .map_err(err)?
            .label(target.label())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], fill));
        chart
            .draw_series(bars.iter().map(|&(x, r)| {
                let text = if r > top {
                    format!("{r:.2} (clipped)")
                } else {
                    format!("{r:.2}")
                };
                Text::new(text, (x + width * 0.46, r.clamp(0.0, top)), above.clone())
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(err)?;

    let below = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (g, (metric, _)) in groups.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        let better = if metric.higher_is_better() {
            "higher is better"
        } else {
            "lower is better"
        };
        root.draw_text(metric.short(), &below, (px, py + 8))
            .map_err(err)?;
        root.draw_text(better, &below.clone().color(&BLACK.mix(0.6)), (px, py + 26))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
