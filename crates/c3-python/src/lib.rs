//! `import c3`: the deployed C3 cascade (ONNX Runtime, no libtorch) from Python.
//!
//! One [`Runtime`] is one loaded export and one continuous-batching
//! [`Scheduler`]: every call, from any Python thread, is a scheduler task, and
//! calls run with the GIL released, so concurrent threads' windows share encoder
//! batches and decoder steps. Outputs equal the `c3` CLI's (greedy decoding does
//! not depend on what shares the batch). Errors are `c3.C3Error`s carrying the
//! runtime's one-line messages (errors.rs); see docs/python.md.

mod errors;
mod ort;
mod stream;
mod summary;

use std::path::PathBuf;
use std::sync::{Arc, RwLock, mpsc};
use std::time::Duration;

use c3_core::stream::DocumentStream;
use c3_core::{Cascade, DecoderPrompt, GenerationConfig};
use c3_runtime::{
    C3Runtime, CompressTask, Compressed, DecompressTask, Event, Provider, RoundtripTask,
    RuntimeOptions, Scheduler, SchedulerOptions, Task, latent_file,
};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors::{Fault, Kind, RaiseExt};
use crate::stream::TextStream;
use crate::summary::Summaries;

/// The CLI's default `--no-repeat-ngram-size` (the spec's 20).
const NO_REPEAT_NGRAM: usize = 20;

/// How long a call waits without the GIL before letting Python handle signals
/// (Ctrl-C) and waiting again.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// A loaded export and its scheduler.
#[pyclass(frozen, module = "c3", name = "Runtime")]
struct Runtime {
    rt: Arc<C3Runtime>,
    /// Taken by `close()`; requests in flight hold their own reference.
    sched: RwLock<Option<Arc<Scheduler>>>,
    /// Window length in tokens (the override, or the export's own).
    window: usize,
    options: SchedulerOptions,
    provider: &'static str,
    summaries: Arc<Summaries>,
}

impl Runtime {
    fn scheduler(&self) -> Result<Arc<Scheduler>, Fault> {
        self.sched
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Fault::internal("this Runtime is closed"))
    }

    /// Runs `task` on the scheduler and waits for its outcome without the GIL,
    /// handing Python the GIL every [`POLL`] to run signal handlers: Ctrl-C raises
    /// KeyboardInterrupt and the dropped ticket cancels the request.
    fn run<T: Task>(&self, py: Python<'_>, task: T) -> PyResult<T::Output> {
        let sched = self.scheduler().raise(py)?;
        let (tx, rx) = mpsc::channel();
        let _ticket = sched
            .submit(
                task,
                Box::new(move |e| match e {
                    Event::Done(o) => tx.send(Ok(o)).is_ok(),
                    Event::Failed(e) => tx.send(Err(e)).is_ok(),
                    _ => true,
                }),
            )
            .map_err(Fault::from)
            .raise(py)?;
        let mut rx = rx;
        loop {
            // The receiver goes with the closure and comes back (it is not Sync).
            let (got, back) = py.detach(move || (rx.recv_timeout(POLL), rx));
            rx = back;
            match got {
                Ok(Ok(outcome)) => return Ok(outcome),
                Ok(Err(e)) => return Err(Fault::from(e).into_pyerr(py)),
                Err(mpsc::RecvTimeoutError::Timeout) => py.check_signals()?,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Fault::internal("the scheduler is not running").into_pyerr(py));
                }
            }
        }
    }

    fn generation(
        &self,
        max_new_tokens: Option<usize>,
        no_repeat_ngram_size: usize,
    ) -> Result<GenerationConfig, Fault> {
        if max_new_tokens == Some(0) {
            return Err(Fault::input("max_new_tokens must be at least 1"));
        }
        let mut cfg = self.rt.reference_generation();
        cfg.no_repeat_ngram_size = no_repeat_ngram_size;
        Ok(cfg)
    }

    /// Tokenizes documents, naming the one at fault.
    fn tokenize(&self, texts: &[String]) -> Result<Vec<Vec<u32>>, Fault> {
        if texts.is_empty() {
            return Err(Fault::input("no texts given"));
        }
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                self.rt
                    .document_ids(t)
                    .map_err(|e| Fault::from(e).context(format!("text {i}")))
            })
            .collect()
    }

    fn compress_docs(&self, py: Python<'_>, texts: &[String]) -> PyResult<Compressed> {
        let docs = py.detach(|| self.tokenize(texts)).raise(py)?;
        self.run(py, CompressTask { docs })
    }

    /// The decoder prompt of a call's `prompt` argument (`None`: the model's own).
    fn prompt(&self, prompt: Option<&str>) -> Result<Option<Arc<DecoderPrompt>>, Fault> {
        let Some(task) = prompt else {
            return Ok(None);
        };
        let p = self
            .rt
            .prompt_for(Some(task))
            .map_err(|e| Fault::from(e).context("prompt"))?;
        Ok(Some(Arc::new(p)))
    }
}

/// `texts` as a list of strings; a bare `str` (a sequence of characters to
/// Python) is refused rather than read as one document per character.
fn text_list(texts: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if texts.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "texts must be a list of str, not a str (wrap one text in a list)",
        ));
    }
    texts.extract()
}

/// A JSON value as Python objects (dict, list, str, int, float, None).
pub(crate) fn to_python(py: Python<'_>, v: &serde_json::Value) -> PyResult<Py<PyAny>> {
    let json = py.import("json")?;
    Ok(json.call_method1("loads", (v.to_string(),))?.unbind())
}

#[pymethods]
impl Runtime {
    /// Loads an export folder (made by `c3 export`) and starts its scheduler.
    #[new]
    #[pyo3(signature = (export_dir, provider="cpu", max_batch=16, max_queue=64, window=None, threads=0, ort_lib=None, allow_fallback=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        export_dir: PathBuf,
        provider: &str,
        max_batch: usize,
        max_queue: usize,
        window: Option<usize>,
        threads: usize,
        ort_lib: Option<PathBuf>,
        allow_fallback: bool,
    ) -> PyResult<Self> {
        let provider = Provider::parse(provider)
            .map_err(|e| Fault::from(e).or_kind(Kind::Input))
            .raise(py)?;
        ort::choose(py, ort_lib).raise(py)?;
        let options = SchedulerOptions {
            max_batch,
            max_queue,
            ..Default::default()
        };
        let name = provider.name();
        let loaded = py.detach(|| -> Result<_, c3_runtime::Error> {
            let options_rt = RuntimeOptions {
                provider,
                allow_fallback,
                threads,
                window,
                ..Default::default()
            };
            let rt = Arc::new(C3Runtime::load(&export_dir, options_rt)?);
            let sched = Scheduler::start(rt.clone(), options.clone())?;
            let window = rt.plan().window;
            Ok((rt, sched, window))
        });
        let (rt, sched, window) = match loaded {
            Ok(v) => v,
            // The machine's fault (no ONNX Runtime library), told apart by kind.
            Err(e) if e.is_environment() => {
                return Err(Fault {
                    kind: Kind::Load,
                    msg: format!(
                        "ONNX Runtime library not found (tried {}): pip install onnxruntime, or pass ort_lib=PATH / set ORT_DYLIB_PATH to a libonnxruntime.so",
                        ort::places(py).join(", ")
                    ),
                }
                .into_pyerr(py));
            }
            Err(e) => return Err(load_fault(e, &export_dir).into_pyerr(py)),
        };
        let n_latents = rt.n_latents();
        Ok(Runtime {
            rt,
            sched: RwLock::new(Some(Arc::new(sched))),
            window,
            options,
            provider: name,
            summaries: Arc::new(Summaries::new(window, n_latents)),
        })
    }

    /// Latents per window (N).
    #[getter]
    fn n_latents(&self) -> usize {
        self.rt.n_latents()
    }

    /// Width of a latent vector.
    #[getter]
    fn hidden(&self) -> usize {
        self.rt.manifest.hidden
    }

    /// Text tokens per window.
    #[getter]
    fn window(&self) -> usize {
        self.window
    }

    /// sha256 of the export's manifest: the identity latent files record.
    #[getter]
    fn manifest_sha256(&self) -> &str {
        &self.rt.manifest_sha256
    }

    #[getter]
    fn export_dir(&self) -> String {
        self.rt.dir.display().to_string()
    }

    #[getter]
    fn provider(&self) -> &'static str {
        self.provider
    }

    #[getter]
    fn max_batch(&self) -> usize {
        self.options.max_batch
    }

    #[getter]
    fn max_queue(&self) -> usize {
        self.options.max_queue
    }

    /// The latent file `c3 compress` writes for these documents (safetensors bytes).
    /// `sources` names each document in the file (default: its index, `"0"`,
    /// `"1"`, ..., as the HTTP service's `/v1/compress` names them).
    #[pyo3(signature = (texts, sources=None))]
    fn compress<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        sources: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let texts = text_list(texts)?;
        let sources = sources.unwrap_or_else(|| (0..texts.len()).map(|i| i.to_string()).collect());
        if sources.len() != texts.len() {
            return Err(Fault::input(format!(
                "{} sources for {} texts",
                sources.len(),
                texts.len()
            ))
            .into_pyerr(py));
        }
        let c = self.compress_docs(py, &texts)?;
        let bytes = py
            .detach(|| latent_file::to_bytes(&self.rt, &c, &sources))
            .map_err(Fault::from)
            .raise(py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Every document's latents: one float32 array `[windows, n_latents, hidden]`
    /// per text, in order (the values `compress` stores).
    fn latents<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let texts = text_list(texts)?;
        let c = self.compress_docs(py, &texts)?;
        let (n, d) = (self.rt.n_latents(), self.rt.manifest.hidden);
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for (w, l) in c.windows.iter().zip(&c.latents) {
            out[w.doc].extend_from_slice(l.data());
        }
        out.into_iter()
            .map(|data| {
                let rows = data.len() / (n * d).max(1);
                Ok(PyArray1::from_vec(py, data)
                    .reshape([rows, n, d])?
                    .into_any())
            })
            .collect()
    }

    /// Texts back from a latent file (`compress`'s bytes, or a file `c3 compress`
    /// wrote). The bytes are untrusted: a malformed file, or one made with another
    /// export, raises `c3.InputError`.
    /// `prompt`: the task after the latents, for a model trained to answer it.
    #[pyo3(signature = (latent_file, max_new_tokens=None, no_repeat_ngram_size=NO_REPEAT_NGRAM, prompt=None))]
    fn decompress(
        &self,
        py: Python<'_>,
        latent_file: PyBackedBytes,
        max_new_tokens: Option<usize>,
        no_repeat_ngram_size: usize,
        prompt: Option<String>,
    ) -> PyResult<Vec<String>> {
        let cfg = self
            .generation(max_new_tokens, no_repeat_ngram_size)
            .raise(py)?;
        let prompt = self.prompt(prompt.as_deref()).raise(py)?;
        let bytes: &[u8] = &latent_file;
        let file = py
            .detach(|| latent_file::from_bytes(bytes, &self.rt))
            .map_err(|e| Fault::input(format!("latent file: {}", Fault::from(e).msg)))
            .raise(py)?;
        let task = DecompressTask {
            compressed: file.compressed,
            prompt,
            cfg,
            limit: max_new_tokens,
        };
        let docs = self.run(py, task)?.docs;
        py.detach(|| -> Result<Vec<String>, Fault> {
            docs.iter()
                .map(|ids| Ok(self.rt.tokenizer.decode_text(ids)?))
                .collect()
        })
        .raise(py)
    }

    /// Compresses `text` window by window and reconstructs it: a dict with the
    /// fields of `c3 roundtrip --json`. `prompt`: the task after the latents, for a
    /// model trained to answer it (default: the export's own prompt).
    #[pyo3(signature = (text, max_new_tokens=None, no_repeat_ngram_size=NO_REPEAT_NGRAM, prompt=None))]
    fn roundtrip(
        &self,
        py: Python<'_>,
        text: String,
        max_new_tokens: Option<usize>,
        no_repeat_ngram_size: usize,
        prompt: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let cfg = self
            .generation(max_new_tokens, no_repeat_ngram_size)
            .raise(py)?;
        let prompt = self.prompt(prompt.as_deref()).raise(py)?;
        let text_ids = py
            .detach(|| self.rt.document_ids(&text))
            .map_err(Fault::from)
            .raise(py)?;
        let task = RoundtripTask {
            text_ids,
            prompt,
            cfg,
            limit: max_new_tokens,
        };
        let r = self.run(py, task)?;
        let summary = py.detach(|| self.summaries.roundtrip(&text, &r));
        to_python(py, &summary)
    }

    /// Like `roundtrip`, but an iterator of text pieces as they are decoded;
    /// joined they are `roundtrip(text)["text"]`. After the last piece its
    /// `summary` holds the roundtrip dict. Dropping it early cancels the request.
    #[pyo3(signature = (text, max_new_tokens=None, no_repeat_ngram_size=NO_REPEAT_NGRAM, prompt=None))]
    fn stream(
        &self,
        py: Python<'_>,
        text: String,
        max_new_tokens: Option<usize>,
        no_repeat_ngram_size: usize,
        prompt: Option<String>,
    ) -> PyResult<TextStream> {
        let cfg = self
            .generation(max_new_tokens, no_repeat_ngram_size)
            .raise(py)?;
        py.detach(|| -> Result<TextStream, Fault> {
            let prompt = self.prompt(prompt.as_deref())?;
            let text_ids = self.rt.document_ids(&text)?;
            let windows = self.rt.plan().split(0, text_ids.len());
            let sched = self.scheduler()?;
            let (tx, rx) = mpsc::channel();
            let ticket = sched.submit(
                RoundtripTask {
                    text_ids,
                    prompt,
                    cfg,
                    limit: max_new_tokens,
                },
                Box::new(move |e| tx.send(e).is_ok()),
            )?;
            Ok(TextStream::new(
                text,
                self.rt.clone(),
                self.summaries.clone(),
                DocumentStream::new(windows),
                sched,
                rx,
                ticket,
            ))
        })
        .raise(py)
    }

    /// The scheduler's gauges: queued, running, max_batch, generated_tokens,
    /// finished.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.scheduler().raise(py)?.stats();
        let d = PyDict::new(py);
        d.set_item("queued", s.queued)?;
        d.set_item("running", s.running)?;
        d.set_item("max_batch", s.max_batch)?;
        d.set_item("generated_tokens", s.generated_tokens)?;
        d.set_item("finished", s.finished)?;
        Ok(d)
    }

    /// Stops the scheduler once the requests in flight end; later calls raise.
    fn close(&self, py: Python<'_>) {
        let taken = self.sched.write().unwrap_or_else(|e| e.into_inner()).take();
        // Dropping the last reference joins the scheduler thread: not under the GIL.
        py.detach(move || drop(taken));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Py<PyAny>,
        _exc: Py<PyAny>,
        _tb: Py<PyAny>,
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "c3.Runtime({:?}, provider={:?}, n_latents={}, hidden={}, window={})",
            self.rt.dir.display().to_string(),
            self.provider,
            self.rt.n_latents(),
            self.rt.manifest.hidden,
            self.window
        )
    }
}

/// A load failure: the caller's fault when it is an input error, else `LoadError`;
/// the export folder is named when the message does not already.
fn load_fault(e: c3_runtime::Error, dir: &std::path::Path) -> Fault {
    let f = Fault::from(e).or_kind(Kind::Load);
    let shown = dir.display().to_string();
    if f.msg.contains(&shown) {
        f
    } else {
        f.context(shown)
    }
}

/// The library ONNX Runtime is (or will be) loaded from in this process.
#[pyfunction]
fn ort_library(py: Python<'_>) -> String {
    ort::library(py).display().to_string()
}

#[pymodule]
fn _c3(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Runtime>()?;
    m.add_class::<TextStream>()?;
    m.add_function(wrap_pyfunction!(ort_library, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
