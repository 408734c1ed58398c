//! Charts for the reports, drawn by plotters as inline SVG (the browser lays the text out, so
//! no font files are needed). Each function takes ready numbers and returns one `<svg>`
//! element; an empty series still draws its axes and says so in the caption.

use plotters::prelude::*;

use mfascope_core::time::format_rfc3339;

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (760, 260);

/// One named line: `(epoch ms, value)` points in time order.
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend text.
    pub name: String,
    /// Points.
    pub points: Vec<(i64, f64)>,
}

/// Colours that stay apart for up to eight lines and print in grey.
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn day_label(ms: &i64) -> String {
    format_rfc3339(*ms)[5..10].to_string()
}

/// A time-series chart of `lines` over `[x0, x1)`, y from `y0` to the data's maximum (or
/// `y_max`), with a horizontal `target` line when given.
pub fn lines(
    title: &str,
    y_desc: &str,
    (x0, x1): (i64, i64),
    lines: &[Line],
    y_min: Option<f64>,
    y_max: Option<f64>,
    target: Option<f64>,
) -> String {
    let mut svg = String::new();
    let values = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let lo = y_min.unwrap_or_else(|| {
        values()
            .fold(f64::INFINITY, f64::min)
            .min(target.unwrap_or(f64::INFINITY))
    });
    let hi = y_max.unwrap_or_else(|| {
        values()
            .fold(f64::NEG_INFINITY, f64::max)
            .max(target.unwrap_or(f64::NEG_INFINITY))
    });
    let (lo, hi) = match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => (lo, hi + (hi - lo) * 0.05),
        (true, true) => (lo - 1.0, hi + 1.0),
        _ => (0.0, 1.0),
    };
    let caption = if lines.iter().all(|l| l.points.is_empty()) {
        format!("{title} (no data in the period)")
    } else {
        title.to_string()
    };
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let _ = draw_lines(
            &root,
            &caption,
            y_desc,
            (x0, x1.max(x0 + 1)),
            (lo, hi),
            lines,
            target,
        );
    }
    svg
}

fn draw_lines(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    (x0, x1): (i64, i64),
    (lo, hi): (f64, f64),
    lines: &[Line],
    target: Option<f64>,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, lo..hi)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&day_label)
        .y_desc(y_desc)
        .draw()?;
    if let Some(t) = target {
        chart
            .draw_series(LineSeries::new(
                [(x0, t), (x1, t)],
                BLACK.mix(0.5).stroke_width(1),
            ))?
            .label(format!("objective {t}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.5)));
    }
    for (i, line) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(line.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart.draw_series(
            line.points
                .iter()
                .map(|&p| Circle::new(p, 2, color.filled())),
        )?;
    }
    if !lines.is_empty() || target.is_some() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    root.present()
}

/// A bar chart of `(label, value)` bars (values ≥ 0 unless `signed`).
pub fn bars(title: &str, y_desc: &str, bars: &[(String, f64)]) -> String {
    let mut svg = String::new();
    let lo = bars.iter().map(|b| b.1).fold(0.0, f64::min);
    let hi = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let (lo, hi) = if hi > lo {
        (lo * 1.1, hi * 1.1)
    } else {
        (0.0, 1.0)
    };
    let caption = if bars.is_empty() {
        format!("{title} (none in the period)")
    } else {
        title.to_string()
    };
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let _ = draw_bars(&root, &caption, y_desc, bars, (lo, hi));
    }
    svg
}

fn draw_bars(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    bars: &[(String, f64)],
    (lo, hi): (f64, f64),
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    let n = bars.len().max(1) as u32;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0u32..n).into_segmented(), lo..hi)?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len().max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc(y_desc)
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let color = if b.1 < 0.0 { COLORS[3] } else { COLORS[0] };
        let (y0, y1) = if b.1 < 0.0 { (b.1, 0.0) } else { (0.0, b.1) };
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i as u32), y0),
                (SegmentValue::Exact(i as u32 + 1), y1),
            ],
            color.filled(),
        );
        r.set_margin(0, 0, 6, 6);
        r
    }))?;
    root.present()
}
