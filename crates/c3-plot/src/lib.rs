//! PNG plots for `c3 eval`: precision against compression ratio (ours beside the
//! paper's published C3 and DeepSeek-OCR points) and error rate by position decile
//! (the paper's "sequential loss" pattern).
//!
//! Text is drawn with a bundled DejaVu Sans (licence in `assets/`) through
//! plotters' ab_glyph back-end, so plotting needs no system font or fontconfig.

use std::path::Path;
use std::sync::Once;

use c3_core::eval::Report;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

mod figures;

pub use figures::{error_by_position, precision_vs_compression};

/// Plot failures name the file being written.
#[derive(Debug, thiserror::Error)]
#[error("plotting {path}: {msg}")]
pub struct Error {
    pub path: String,
    pub msg: String,
}

pub type Result<T> = std::result::Result<T, Error>;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 600);

/// Registers the bundled font once per process.
fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure here would be a
        // corrupted build, which the first draw call reports as a missing family.
        let _ = register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Writes both plots of `report` into `dir` (`precision_vs_compression.png`,
/// `error_by_position.png`) and returns their paths. Each file is drawn to a
/// temporary name and renamed, so an interrupted run leaves no half image.
pub fn write_report_plots(
    report: &Report,
    n_latents: usize,
    dir: &Path,
) -> Result<[std::path::PathBuf; 2]> {
    let a = dir.join("precision_vs_compression.png");
    let b = dir.join("error_by_position.png");
    atomic(&a, |tmp| precision_vs_compression(report, n_latents, tmp))?;
    atomic(&b, |tmp| error_by_position(report, tmp))?;
    Ok([a, b])
}

fn atomic(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    // Keep the .png extension on the temporary name: the encoder picks the format from it.
    let tmp = path.with_extension("partial.png");
    let done = draw(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| err(path, e)));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// A 960x600 PNG canvas with the bundled font registered.
fn canvas(path: &Path) -> DrawingArea<BitMapBackend<'_>, plotters::coord::Shift> {
    ensure_font();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let _ = root.fill(&WHITE);
    root
}
