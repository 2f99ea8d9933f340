//! Export progress on stderr for the `c3` and `c3-export` binaries (feature `bars`):
//! indicatif bars (tensors scanned; bytes written with rate and ETA) when stderr is a
//! terminal, otherwise a few plain lines, one per model written, for CI logs.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

use crate::progress::Progress;

/// Progress drawn on stderr.
pub struct StderrProgress {
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    tensors_total: AtomicUsize,
    tensors_done: AtomicUsize,
    t0: Instant,
}

impl StderrProgress {
    /// Bars if stderr is a terminal, log lines otherwise.
    pub fn new() -> Self {
        StderrProgress {
            terminal: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            tensors_total: AtomicUsize::new(0),
            tensors_done: AtomicUsize::new(0),
            t0: Instant::now(),
        }
    }

    fn replace_bar(&self, bar: Option<ProgressBar>) {
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        *slot = bar;
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        let slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = slot.as_ref() {
            f(bar);
        }
    }

    fn styled(len: u64, template: &str) -> ProgressBar {
        let bar = ProgressBar::new(len);
        // The templates are constants of this file: a bad one is a bug, shown plain.
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}

impl Default for StderrProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for StderrProgress {
    fn scan_started(&self, tensors: usize) {
        if self.terminal {
            self.replace_bar(Some(Self::styled(
                tensors as u64,
                "checking weights [{bar:30}] {pos}/{len} tensors",
            )));
        }
    }

    fn scanned(&self, done: usize) {
        self.with_bar(|b| b.set_position(done as u64));
    }

    fn write_started(&self, tensors: usize, bytes: u64) {
        self.tensors_total.store(tensors, Ordering::Relaxed);
        if self.terminal {
            let bar = Self::styled(
                bytes,
                "writing {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            );
            bar.set_message(format!("0/{tensors} tensors"));
            self.replace_bar(Some(bar));
        }
    }

    fn tensor_written(&self, bytes: u64) {
        let done = self.tensors_done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.tensors_total.load(Ordering::Relaxed);
        self.with_bar(|b| {
            b.inc(bytes);
            b.set_message(format!("{done}/{total} tensors"));
        });
    }

    fn model_written(&self, file: &str, tensors: usize, bytes: u64) {
        let line = format!(
            "c3-export: wrote {file} ({tensors} tensors, {}) at {:.1}s",
            HumanBytes(bytes),
            self.t0.elapsed().as_secs_f64()
        );
        if self.terminal {
            self.with_bar(|b| b.println(&line));
        } else {
            eprintln!("{line}");
        }
    }

    fn verify_started(&self) {
        if self.terminal {
            let bar = ProgressBar::new_spinner();
            bar.set_message("verifying against the tch reference");
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            self.replace_bar(Some(bar));
        } else {
            eprintln!("c3-export: verifying against the tch reference");
        }
    }

    fn finished(&self) {
        self.replace_bar(None);
    }
}
