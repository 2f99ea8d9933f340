//! A submitted task with its typed sink, as the worker keeps it: checked at submit,
//! split into windows when taken in, answered with its own result type.

use std::sync::Arc;

use c3_core::{DecoderPrompt, Decompressed, Generated, GenerationConfig, Reconstruction, Window};

use super::{CompressTask, DecompressTask, Event, RoundtripTask, Sink};
use crate::error::{Error, Result};
use crate::latents::Latents;

use crate::model::{C3Runtime, Compressed};

/// A task and the sink of its result type. Public only as the hidden half of
/// [`super::Task`]; not nameable outside this crate.
pub enum Job {
    Roundtrip(RoundtripTask, Sink<Reconstruction>),
    Compress(CompressTask, Sink<Compressed>),
    Decompress(DecompressTask, Sink<Decompressed>),
}

/// How a request's windows are decoded: settings, the cap per window, the prompt.
#[derive(Clone)]
pub(super) struct Decoding {
    pub cfg: GenerationConfig,
    pub limit: Option<usize>,
    pub prompt: Arc<DecoderPrompt>,
}

/// Where a request's result goes, once its task's data has become windows.
pub(super) enum Reply {
    Roundtrip {
        text_ids: Vec<u32>,
        sink: Sink<Reconstruction>,
    },
    Compress(Sink<Compressed>),
    Decompress(Sink<Decompressed>),
}

/// A request as the worker starts it: its windows with their encoder inputs (or
/// latents, for a decompress), and how they decode (`None`: a compress).
pub(super) struct Split {
    pub reply: Reply,
    pub windows: Vec<Window>,
    pub inputs: Vec<Vec<u32>>,
    pub latents: Vec<Latents>,
    pub doc_tokens: Vec<usize>,
    pub decoding: Option<Decoding>,
}

fn check_docs(docs: &[Vec<u32>]) -> Result<()> {
    if docs.is_empty() {
        return Err(Error::Input("no documents".into()));
    }
    match docs.iter().position(Vec::is_empty) {
        Some(i) => Err(Error::Input(format!("document {i} is empty"))),
        None => Ok(()),
    }
}

/// A request's prompt (or the model's) must fit a row with the longest window it
/// may generate: `room` positions per row.
fn check_prompt(
    rt: &C3Runtime,
    prompt: &Option<Arc<DecoderPrompt>>,
    new_tokens: usize,
    capacity: usize,
) -> Result<()> {
    let p = prompt.as_deref().unwrap_or(rt.prompt());
    if p.n_latents != rt.n_latents() {
        return Err(Error::Input(format!(
            "the prompt has {} latent slots, this export takes {}",
            p.n_latents,
            rt.n_latents()
        )));
    }
    if p.ids.len() + new_tokens > capacity {
        return Err(Error::Input(format!(
            "the prompt ({} tokens) and a window's {new_tokens} new tokens exceed this server's {capacity} positions per row",
            p.ids.len()
        )));
    }
    Ok(())
}

impl Job {
    /// Refuses a task the scheduler could not run, before it is queued; rows hold
    /// `capacity` positions.
    pub(super) fn check(&self, rt: &C3Runtime, capacity: usize) -> Result<()> {
        match self {
            Job::Roundtrip(t, _) => {
                check_docs(std::slice::from_ref(&t.text_ids))?;
                let longest = rt.plan().split(0, t.text_ids.len());
                let most = longest.iter().map(|w| w.max_new_tokens(t.limit)).max();
                check_prompt(rt, &t.prompt, most.unwrap_or(0), capacity)
            }
            Job::Compress(t, _) => check_docs(&t.docs),
            Job::Decompress(t, _) => {
                let c = &t.compressed;
                if c.windows.is_empty() || c.windows.len() != c.latents.len() {
                    return Err(Error::Input(format!(
                        "{} windows but {} latent sets",
                        c.windows.len(),
                        c.latents.len()
                    )));
                }
                let mut most = 0;
                for (i, (w, l)) in c.windows.iter().zip(&c.latents).enumerate() {
                    (l.check_shape(rt.n_latents(), rt.manifest.hidden))
                        .map_err(|e| Error::Input(format!("window {i}: {e}")))?;
                    if w.doc >= c.doc_tokens.len() {
                        return Err(Error::Input(format!(
                            "window {i} belongs to document {} of {}",
                            w.doc,
                            c.doc_tokens.len()
                        )));
                    }
                    most = most.max(w.max_new_tokens(t.limit));
                }
                check_prompt(rt, &t.prompt, most, capacity)
            }
        }
    }

    /// The request's windows, split by the runtime's one plan.
    pub(super) fn split(self, rt: &C3Runtime) -> Split {
        let default = || Arc::new(rt.prompt().clone());
        match self {
            Job::Roundtrip(t, sink) => {
                let (windows, inputs) = rt.plan().split_inputs(std::slice::from_ref(&t.text_ids));
                Split {
                    windows,
                    inputs,
                    latents: Vec::new(),
                    doc_tokens: vec![t.text_ids.len()],
                    decoding: Some(Decoding {
                        cfg: t.cfg,
                        limit: t.limit,
                        prompt: t.prompt.unwrap_or_else(default),
                    }),
                    reply: Reply::Roundtrip {
                        text_ids: t.text_ids,
                        sink,
                    },
                }
            }
            Job::Compress(t, sink) => {
                let (windows, inputs) = rt.plan().split_inputs(&t.docs);
                Split {
                    windows,
                    inputs,
                    latents: Vec::new(),
                    doc_tokens: t.docs.iter().map(Vec::len).collect(),
                    decoding: None,
                    reply: Reply::Compress(sink),
                }
            }
            Job::Decompress(t, sink) => Split {
                windows: t.compressed.windows,
                inputs: Vec::new(),
                latents: t.compressed.latents,
                doc_tokens: t.compressed.doc_tokens,
                decoding: Some(Decoding {
                    cfg: t.cfg,
                    limit: t.limit,
                    prompt: t.prompt.unwrap_or_else(default),
                }),
                reply: Reply::Decompress(sink),
            },
        }
    }
}

/// An event before the request's end, whatever its result type.
pub(super) enum Progress {
    Token { window: usize, id: u32 },
    WindowDone { window: usize, generated: Generated },
}

fn send<T>(sink: &mut Sink<T>, p: Progress) -> bool {
    sink(match p {
        Progress::Token { window, id } => Event::Token { window, id },
        Progress::WindowDone { window, generated } => Event::WindowDone { window, generated },
    })
}

impl Reply {
    /// Sends a progress event; `false`: the caller went away.
    pub(super) fn progress(&mut self, p: Progress) -> bool {
        match self {
            Reply::Roundtrip { sink, .. } => send(sink, p),
            Reply::Compress(sink) => send(sink, p),
            Reply::Decompress(sink) => send(sink, p),
        }
    }

    /// Ends the request with `e`.
    pub(super) fn fail(self, e: Error) {
        match self {
            Reply::Roundtrip { mut sink, .. } => sink(Event::Failed(e)),
            Reply::Compress(mut sink) => sink(Event::Failed(e)),
            Reply::Decompress(mut sink) => sink(Event::Failed(e)),
        };
    }
}
