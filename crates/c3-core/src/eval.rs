//! Evaluation reports shaped like the paper's tables (spec §6): passages bucketed
//! by text length in Qwen tokens (the paper's unit), per bucket the mean
//! compression ratio (Qwen tokens / N), character precision, Fox-style word
//! precision and exact-match rate, plus error rate per decile of position.

use serde::{Deserialize, Serialize};

use crate::metrics::{char_precision, decile_error_rates, reference_errors, word_precision};
use crate::published;

/// One reconstructed passage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PassageResult {
    pub id: usize,
    pub source: String,
    pub reference: String,
    pub output: String,
    /// Length in the model's own tokens.
    pub text_tokens: usize,
    /// Length in Qwen tokens (the paper's unit).
    pub qwen_tokens: usize,
    pub n_latents: usize,
    pub char_precision: f64,
    pub word_precision: f64,
    pub exact: bool,
    pub decile_errors: [f64; 10],
    /// Where each window's own tokens begin, as a fraction of the text (one entry
    /// per window; `[0.0]` for a text that fits one window).
    #[serde(default)]
    pub window_starts: Vec<f64>,
    /// Windows that stopped before giving back all their tokens.
    #[serde(default)]
    pub windows_short: usize,
    /// Windows that ran to their token limit (output possibly truncated).
    #[serde(default)]
    pub windows_at_limit: usize,
}

impl PassageResult {
    /// Scores `output` against `reference` (both whitespace-stripped first).
    pub fn score(
        id: usize,
        source: String,
        reference: &str,
        output: &str,
        text_tokens: usize,
        qwen_tokens: usize,
        n_latents: usize,
    ) -> Self {
        let (r, o) = (reference.trim(), output.trim());
        PassageResult {
            id,
            source,
            reference: r.into(),
            output: o.into(),
            text_tokens,
            qwen_tokens,
            n_latents,
            char_precision: char_precision(r, o),
            word_precision: word_precision(r, o),
            exact: r == o,
            decile_errors: decile_error_rates(&reference_errors(r, o)),
            window_starts: vec![0.0],
            windows_short: 0,
            windows_at_limit: 0,
        }
    }
}

/// Bucket edges `[lo, hi)` in Qwen tokens, from `LO-HI:STEP` (e.g. `600-1300:100`).
pub fn parse_buckets(spec: &str) -> Result<Vec<(usize, usize)>, String> {
    let bad = || format!("buckets `{spec}`: expected LO-HI:STEP, e.g. 600-1300:100");
    let (range, step) = spec.split_once(':').ok_or_else(bad)?;
    let (lo, hi) = range.split_once('-').ok_or_else(bad)?;
    let (lo, hi, step): (usize, usize, usize) = (
        lo.parse().map_err(|_| bad())?,
        hi.parse().map_err(|_| bad())?,
        step.parse().map_err(|_| bad())?,
    );
    if step == 0 || lo >= hi {
        return Err(bad());
    }
    Ok((lo..hi)
        .step_by(step)
        .map(|a| (a, (a + step).min(hi)))
        .collect())
}

/// Aggregates of one bucket.
#[derive(Debug, Clone, Serialize)]
pub struct BucketStats {
    pub lo: usize,
    pub hi: usize,
    pub passages: usize,
    pub mean_compression: f64,
    pub char_precision: f64,
    pub word_precision: f64,
    pub exact_rate: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub buckets: Vec<BucketStats>,
    pub overall: BucketStats,
    /// Mean error rate per decile of reference position, over all passages.
    pub decile_errors: [f64; 10],
    /// Passages outside every bucket (counted in `overall` only).
    pub unbucketed: usize,
    /// Where windows after the first begin, as fractions of their text (all
    /// passages pooled): the marks on the error-by-position plot.
    pub window_boundaries: Vec<f64>,
    /// Windows that stopped early / ran to their limit, over all passages.
    pub windows_short: usize,
    pub windows_at_limit: usize,
}

fn stats(lo: usize, hi: usize, rs: &[&PassageResult]) -> BucketStats {
    let k = rs.len().max(1) as f64;
    let mean = |f: &dyn Fn(&PassageResult) -> f64| rs.iter().map(|r| f(r)).sum::<f64>() / k;
    BucketStats {
        lo,
        hi,
        passages: rs.len(),
        mean_compression: mean(&|r| r.qwen_tokens as f64 / r.n_latents as f64),
        char_precision: mean(&|r| r.char_precision),
        word_precision: mean(&|r| r.word_precision),
        exact_rate: mean(&|r| f64::from(u8::from(r.exact))),
    }
}

impl Report {
    pub fn build(results: &[PassageResult], buckets: &[(usize, usize)]) -> Self {
        let all: Vec<&PassageResult> = results.iter().collect();
        let bs: Vec<BucketStats> = buckets
            .iter()
            .map(|&(lo, hi)| {
                stats(
                    lo,
                    hi,
                    &all.iter()
                        .copied()
                        .filter(|r| (lo..hi).contains(&r.qwen_tokens))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let unbucketed = results.len() - bs.iter().map(|b| b.passages).sum::<usize>();
        let k = results.len().max(1) as f64;
        let decile_errors =
            std::array::from_fn(|d| results.iter().map(|r| r.decile_errors[d]).sum::<f64>() / k);
        let lo = results.iter().map(|r| r.qwen_tokens).min().unwrap_or(0);
        let hi = results.iter().map(|r| r.qwen_tokens + 1).max().unwrap_or(0);
        Report {
            buckets: bs,
            overall: stats(lo, hi, &all),
            decile_errors,
            unbucketed,
            window_boundaries: results
                .iter()
                .flat_map(|r| r.window_starts.iter().copied().filter(|&s| s > 0.0))
                .collect(),
            windows_short: results.iter().map(|r| r.windows_short).sum(),
            windows_at_limit: results.iter().map(|r| r.windows_at_limit).sum(),
        }
    }

    /// Markdown: our table with the paper's published C3 (N=64) and DeepSeek-OCR
    /// (64 vision tokens) columns filled where a bucket is one of the paper's, the
    /// error-position row, and the full published table, labelled as published.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut s = format!(
            "### {title}\n\n| text tokens (Qwen) | passages | compression (Qwen tokens / N) | char precision | word precision | exact | C3 N=64 (published) | DeepSeek-OCR 64 (published) |\n|---|---|---|---|---|---|---|---|\n"
        );
        let pct = |x: f64| format!("{:.1}%", 100.0 * x);
        for b in self.buckets.iter().chain(std::iter::once(&self.overall)) {
            let overall = std::ptr::eq(b, &self.overall);
            let name = if overall {
                "all".to_string()
            } else {
                format!("{}-{}", b.lo, b.hi)
            };
            let (c3, ds) = match published::fox_row(b.lo, b.hi).filter(|_| !overall) {
                Some(r) => (pct(r.c3_n64), pct(r.ds_ocr_64)),
                None => ("–".into(), "–".into()),
            };
            if b.passages == 0 {
                s += &format!("| {name} | 0 | – | – | – | – | {c3} | {ds} |\n");
                continue;
            }
            s += &format!(
                "| {name} | {} | {:.1}x | {} | {} | {} | {c3} | {ds} |\n",
                b.passages,
                b.mean_compression,
                pct(b.char_precision),
                pct(b.word_precision),
                pct(b.exact_rate)
            );
        }
        s += "\nError rate by decile of position in the reference (1st .. 10th):\n\n| ";
        s += &self
            .decile_errors
            .iter()
            .map(|&e| pct(e))
            .collect::<Vec<_>>()
            .join(" | ");
        s += " |\n";
        if !self.window_boundaries.is_empty() || self.windows_short + self.windows_at_limit > 0 {
            s += &format!(
                "\nWindows: {} boundaries inside texts; {} window(s) stopped early, {} ran to their token limit.\n",
                self.window_boundaries.len(),
                self.windows_short,
                self.windows_at_limit
            );
        }
        s += "\nPublished by the paper (Fox benchmark, precision undefined there; not measured here):\n\n\
| text tokens | C3 N=64 | DS-OCR 64 | ratio | C3 N=100 | DS-OCR 100 | ratio | C3 N=32 | ratio |\n|---|---|---|---|---|---|---|---|---|\n";
        for r in published::FOX {
            s += &format!(
                "| {}-{} | {} | {} | {:.1}x | {} | {} | {:.1}x | {} | {:.1}x |\n",
                r.lo,
                r.hi,
                pct(r.c3_n64),
                pct(r.ds_ocr_64),
                r.ratio_64,
                pct(r.c3_n100),
                pct(r.ds_ocr_100),
                r.ratio_100,
                pct(r.c3_n32),
                r.ratio_32
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_edges_are_half_open() {
        assert_eq!(
            parse_buckets("600-900:100").unwrap(),
            vec![(600, 700), (700, 800), (800, 900)]
        );
        assert_eq!(parse_buckets("8-20:8").unwrap(), vec![(8, 16), (16, 20)]);
        assert!(parse_buckets("9-3:1").is_err() && parse_buckets("1-3").is_err());
        let r = |q: usize, cp: f64| PassageResult {
            char_precision: cp,
            ..PassageResult::score(0, "x".into(), "a", "a", q, q, 4)
        };
        let rep = Report::build(
            &[r(8, 1.0), r(15, 0.5), r(16, 0.0), r(99, 0.0)],
            &parse_buckets("8-24:8").unwrap(),
        );
        assert_eq!(
            (
                rep.buckets[0].passages,
                rep.buckets[1].passages,
                rep.unbucketed
            ),
            (2, 1, 1)
        );
        assert_eq!(rep.buckets[0].char_precision, 0.75);
        assert_eq!(rep.buckets[0].mean_compression, (2.0 + 15.0 / 4.0) / 2.0);
    }

    #[test]
    fn markdown_puts_published_columns_beside_matching_buckets_only() {
        let r = PassageResult::score(0, "x".into(), "abc", "abc", 650, 650, 64);
        let md = Report::build(&[r], &parse_buckets("600-800:100").unwrap()).to_markdown("t");
        // Our 600-700 row carries the paper's 99.7% / 96.5%; 700-800 has no passage of ours.
        assert!(
            md.contains("| 600-700 | 1 | 10.2x | 100.0% | 100.0% | 100.0% | 99.7% | 96.5% |"),
            "{md}"
        );
        assert!(
            md.contains("| 700-800 | 0 | – | – | – | – | 99.9% | 93.8% |"),
            "{md}"
        );
        assert!(
            md.contains("| all | 1 | 10.2x | 100.0% | 100.0% | 100.0% | – | – |"),
            "{md}"
        );
        assert!(md.contains("| 1200-1300 | 98.4% | 59.1% | 19.7x |"), "{md}");
    }
}
