//! What an export reports while it runs. The library only calls this trait; drawing
//! (indicatif bars on a terminal, a few log lines otherwise) is the binaries' job
//! ([`crate::bars`], behind the `bars` feature), so library users stay free of it.

/// Export progress events, in the order an export emits them. All methods default
/// to doing nothing.
pub trait Progress: Send + Sync {
    /// The health scan starts over `tensors` checkpoint tensors.
    fn scan_started(&self, _tensors: usize) {}
    /// `done` tensors scanned.
    fn scanned(&self, _done: usize) {}
    /// Writing starts: `tensors` weight payloads of `bytes` in total, in three models.
    fn write_started(&self, _tensors: usize, _bytes: u64) {}
    /// One weight payload of `bytes` was written (called from the writer, in order).
    fn tensor_written(&self, _bytes: u64) {}
    /// A model file is complete: its name, weights written and data bytes.
    fn model_written(&self, _file: &str, _tensors: usize, _bytes: u64) {}
    /// `--verify` starts (ONNX Runtime and the tch reference; no finer steps).
    fn verify_started(&self) {}
    /// The export is over, successfully or not: tear down any bars.
    fn finished(&self) {}
}

/// Reports nothing (library callers, tests).
pub struct Silent;

impl Progress for Silent {}
