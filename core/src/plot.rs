//! Training curves as an SVG file: loss and accuracy per epoch, train and validation.

use crate::error::{Error, Result};
use crate::history::{EpochReport, History};
use plotters::prelude::*;
use std::path::Path;

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);

impl History {
    /// Writes the loss and accuracy curves (train and validation) to an SVG file
    /// (see [`plot_history`]).
    pub fn plot_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        plot_history(self, path)
    }
}

/// Draws `history` as two panels, loss and accuracy by epoch, to an SVG file at `path`.
///
/// Accuracy is drawn only when the loss defines it; validation curves only
/// when a validation set was given.
pub fn plot_history(history: &History, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if history.epochs.is_empty() {
        return Err(Error::InvalidConfig("nothing to plot: the history has no epochs".into()));
    }
    let svg = render(history).map_err(|e| Error::format(path, format!("cannot draw the plot: {e}")))?;
    crate::persist::write_atomic(path, svg.as_bytes())
}

type Series = Vec<(f64, f64)>;

fn series(history: &History, pick: impl Fn(&EpochReport) -> Option<f64>) -> Series {
    history.epochs.iter().filter_map(|r| pick(r).map(|v| (r.epoch as f64, v))).collect()
}

fn render(history: &History) -> std::result::Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(480);
        let last = history.epochs.len() as f64;
        let panels = [
            (
                "loss",
                series(history, |r| Some(r.train.loss)),
                series(history, |r| r.validation.map(|v| v.loss)),
            ),
            (
                "accuracy",
                series(history, |r| r.train.accuracy),
                series(history, |r| r.validation.and_then(|v| v.accuracy)),
            ),
        ];
        for (area, (title, train, validation)) in [left, right].iter().zip(panels) {
            if train.is_empty() && validation.is_empty() {
                continue;
            }
            let values = train.iter().chain(&validation).map(|p| p.1);
            let (lo, hi) =
                values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
            let pad = ((hi - lo) * 0.05).max(1e-6);
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(1.0..last.max(2.0), (lo - pad)..(hi + pad))?;
            chart.configure_mesh().x_desc("epoch").draw()?;
            for (label, points, color) in [("train", train, TRAIN), ("validation", validation, VALIDATION)] {
                if points.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
                chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
            }
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Metrics;

    fn history(validation: bool) -> History {
        let epochs = (1..=4)
            .map(|epoch| EpochReport {
                epoch,
                train: Metrics { loss: 1.0 / epoch as f64, accuracy: Some(0.7 + 0.05 * epoch as f64) },
                validation: validation.then(|| Metrics {
                    loss: 1.2 / epoch as f64,
                    accuracy: Some(0.65 + 0.05 * epoch as f64),
                }),
                seconds: 0.1,
            })
            .collect();
        History { epochs }
    }

    #[test]
    fn writes_an_svg_with_both_panels_and_curves() {
        let dir = std::env::temp_dir().join(format!("staticnet-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("training.svg");
        history(true).plot_svg(&path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        let texts = |svg: &str| -> Vec<String> {
            svg.split("<text")
                .skip(1)
                .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim().to_string()))
                .collect()
        };
        let shown = texts(&svg);
        for text in ["loss", "accuracy", "train", "validation", "epoch"] {
            assert!(shown.iter().any(|t| t == text), "missing {text} in {shown:?}");
        }
        // Both curves in both panels, in their colours.
        assert!(svg.matches("#1F77B4").count() >= 2 && svg.matches("#FF7F0E").count() >= 2);
        history(false).plot_svg(&path).unwrap();
        let without = std::fs::read_to_string(&path).unwrap();
        assert!(!texts(&without).iter().any(|t| t == "validation"));
        assert!(History::default().plot_svg(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
