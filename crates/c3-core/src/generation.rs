//! Generation rules shared by every back-end (tch reference, ONNX Runtime,
//! TensorRT): greedy choice, `no_repeat_ngram_size` over the whole sequence
//! (prompt included, as HF does), stop tokens and the length limit.

use rustc_hash::FxHashMap;

/// Generation settings (spec §2 defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    /// 0 disables the rule.
    pub no_repeat_ngram_size: usize,
    pub stop_ids: Vec<u32>,
}

impl GenerationConfig {
    /// The reference settings: 4096 new tokens, n-gram 20, the given stop ids.
    pub fn reference(stop_ids: Vec<u32>) -> Self {
        GenerationConfig {
            max_new_tokens: 4096,
            no_repeat_ngram_size: 20,
            stop_ids,
        }
    }
}

/// Why a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token was produced (not included in the output).
    Stop,
    /// `max_new_tokens` was reached.
    Length,
    /// The decoder's context (max_position_embeddings) is full.
    Context,
}

/// Incremental `no_repeat_ngram_size` ban list: for each (n-1)-gram seen, the
/// tokens that followed it. Updating is O(n) per token, looking up O(n), so
/// the cost per step does not grow with the sequence.
#[derive(Debug, Clone)]
pub struct NoRepeatNGram {
    n: usize,
    seq: Vec<u32>,
    followers: FxHashMap<Vec<u32>, Vec<u32>>,
}

impl NoRepeatNGram {
    /// Starts from the prompt ids.
    pub fn new(n: usize, prompt: &[u32]) -> Self {
        let mut s = NoRepeatNGram {
            n,
            seq: Vec::with_capacity(prompt.len() + 256),
            followers: FxHashMap::default(),
        };
        for &t in prompt {
            s.push(t);
        }
        s
    }

    /// Appends a token, recording the n-gram it completes.
    pub fn push(&mut self, token: u32) {
        self.seq.push(token);
        if self.n == 0 || self.seq.len() < self.n {
            return;
        }
        let start = self.seq.len() - self.n;
        let prefix = self.seq[start..start + self.n - 1].to_vec();
        self.followers.entry(prefix).or_default().push(token);
    }

    /// Tokens banned at the next step.
    pub fn banned(&self) -> &[u32] {
        if self.n == 0 || self.seq.len() + 1 < self.n {
            return &[];
        }
        let tail = &self.seq[self.seq.len() + 1 - self.n..];
        self.followers.get(tail).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Greedy pick over one row of logits with the banned tokens removed: the first id of
/// the largest value, like `argmax` in PyTorch (ties to the lowest id). NaN never
/// wins; if no allowed value exceeds -inf, the first allowed id.
pub fn greedy_pick(logits: &[f32], banned: &[u32]) -> u32 {
    if banned.is_empty() {
        return argmax(logits);
    }
    let (mut best, mut first_allowed) = (None::<(f32, u32)>, None::<u32>);
    for (i, &v) in logits.iter().enumerate() {
        let i = i as u32;
        if banned.contains(&i) {
            continue;
        }
        first_allowed.get_or_insert(i);
        if v > best.map_or(f32::NEG_INFINITY, |b| b.0) {
            best = Some((v, i));
        }
    }
    best.map(|b| b.1).or(first_allowed).unwrap_or(0)
}

/// First index of the largest value (0 if none exceeds -inf). Written as
/// independent lanes so the compiler vectorizes it: a decode step at batch 8 picks
/// from 8 rows of the vocabulary, which a scalar scan made a visible share of a step.
fn argmax(x: &[f32]) -> u32 {
    const W: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; W];
    let chunks = x.chunks_exact(W);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = if v > *l { v } else { *l };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &v in lanes.iter().chain(rest) {
        m = if v > m { v } else { m };
    }
    if m == f32::NEG_INFINITY {
        return 0;
    }
    x.iter().position(|&v| v == m).unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_argmax_agrees_with_the_banned_path() {
        // Ties go to the first index, NaN never wins, any length (remainders).
        for len in [1usize, 15, 16, 17, 100, 4096] {
            for seed in 0..20u32 {
                let x: Vec<f32> = (0..len as u32)
                    .map(|i| match (i * 7 + seed * 13) % 11 {
                        0 => f32::NAN,
                        k => ((i * 31 + seed) % 17) as f32 - k as f32,
                    })
                    .collect();
                // `u32::MAX` is banned but never an index: forces the scalar path.
                assert_eq!(
                    greedy_pick(&x, &[]),
                    greedy_pick(&x, &[u32::MAX]),
                    "len {len} seed {seed}"
                );
            }
        }
        assert_eq!(greedy_pick(&[f32::NEG_INFINITY; 5], &[]), 0);
        assert_eq!(
            greedy_pick(&[f32::NAN, 1.0], &[]),
            1,
            "NaN first never wins"
        );
        assert_eq!(greedy_pick(&[f32::NAN, 1.0], &[7]), 1);
        assert_eq!(greedy_pick(&[5.0, f32::NEG_INFINITY, 2.0], &[0]), 2);
        assert_eq!(greedy_pick(&[1.0, 3.0, 3.0], &[]), 1);
    }

    /// Brute-force HF rule: ban t if (last n-1 tokens, t) already occurred.
    fn brute(n: usize, seq: &[u32]) -> Vec<u32> {
        if seq.len() + 1 < n {
            return vec![];
        }
        let tail = &seq[seq.len() + 1 - n..];
        let mut v: Vec<u32> = seq
            .windows(n)
            .filter(|w| &w[..n - 1] == tail)
            .map(|w| w[n - 1])
            .collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn incremental_equals_brute_force() {
        let seq: Vec<u32> = (0..300).map(|i| ((i * 7 + i / 5) % 5) as u32).collect();
        for n in [1, 2, 3, 5] {
            let mut s = NoRepeatNGram::new(n, &seq[..10]);
            for k in 10..seq.len() {
                let mut got = s.banned().to_vec();
                got.sort();
                got.dedup();
                assert_eq!(got, brute(n, &seq[..k]), "n={n} k={k}");
                s.push(seq[k]);
            }
        }
    }

    #[test]
    fn greedy_skips_banned_and_breaks_ties_low() {
        assert_eq!(greedy_pick(&[1.0, 3.0, 3.0], &[]), 1);
        assert_eq!(greedy_pick(&[1.0, 3.0, 2.0], &[1]), 2);
    }
}

/// One decoded sequence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Generated {
    /// Generated ids, stop token excluded.
    pub ids: Vec<u32>,
    pub finish: FinishReason,
}

/// One document compressed and reconstructed window by window, with timings:
/// what every back-end's round trip returns.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reconstruction {
    /// The document's ids in the model's tokenizer.
    pub text_ids: Vec<u32>,
    /// The joined output ids; `finish` is the worst of the windows' (`length` if any
    /// window ran to its limit).
    pub generation: Generated,
    /// Decoded output, whitespace-stripped (spec §2).
    pub text: String,
    pub encode_seconds: f64,
    pub decode_seconds: f64,
    /// Every window's outcome, in order.
    pub windows: Vec<crate::WindowReport>,
}

impl Reconstruction {
    /// Splits one tokenized document into `plan`'s windows, times `encode` (window
    /// inputs -> the back-end's latents) and the windows' decoding (`decode`: latents,
    /// a range of windows, the settings for that batch -> their generations), then
    /// joins and detokenizes the output.
    pub fn windowed<L, E: From<crate::Error>>(
        tokenizer: &crate::C3Tokenizer,
        text_ids: Vec<u32>,
        plan: &crate::WindowPlan,
        cfg: &GenerationConfig,
        limit: Option<usize>,
        encode: impl FnOnce(&[Vec<u32>]) -> std::result::Result<L, E>,
        mut decode: impl FnMut(
            &L,
            std::ops::Range<usize>,
            &GenerationConfig,
        ) -> std::result::Result<Vec<Generated>, E>,
    ) -> std::result::Result<Self, E> {
        if text_ids.is_empty() {
            return Err(crate::Error::Input("the text is empty".into()).into());
        }
        let (windows, inputs) = plan.split_inputs(std::slice::from_ref(&text_ids));
        let t0 = std::time::Instant::now();
        let latents = encode(&inputs)?;
        let encode_seconds = t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        let (docs, reports) =
            crate::window::decode_windows(&windows, 1, cfg, limit, |r, c| decode(&latents, r, c))?;
        let decode_seconds = t1.elapsed().as_secs_f64();
        let mut r = Self::assemble(tokenizer, text_ids, docs, reports)?;
        (r.encode_seconds, r.decode_seconds) = (encode_seconds, decode_seconds);
        Ok(r)
    }

    /// One document's round trip from its joined windows (`docs`, `reports`: what
    /// `window::join` gives for one document): the output ids, how it finished, the
    /// text. The one assembly of a round trip, shared by [`Self::windowed`] and the
    /// scheduler; timings are zero for the caller to fill.
    pub fn assemble(
        tokenizer: &crate::C3Tokenizer,
        text_ids: Vec<u32>,
        mut docs: Vec<Vec<u32>>,
        reports: Vec<crate::WindowReport>,
    ) -> crate::Result<Self> {
        let ids = docs.pop().unwrap_or_default();
        let finish = crate::window::document_finish(&reports);
        let text = tokenizer.decode_text(&ids)?;
        Ok(Reconstruction {
            text_ids,
            generation: Generated { ids, finish },
            text,
            encode_seconds: 0.0,
            decode_seconds: 0.0,
            windows: reports,
        })
    }
}

/// Greedy decoding state of one sequence, independent of the back-end and of the
/// other rows it may share a batch with: feed it the last position's logits, get
/// the next token to feed or `None` once it has finished. The one greedy loop every
/// back-end runs, batched ([`BatchGreedy`]) or row by row (a continuous-batching
/// scheduler, where rows join and leave at any step).
#[derive(Debug, Clone)]
pub struct RowGreedy {
    stop_ids: Vec<u32>,
    max_new_tokens: usize,
    context: usize,
    /// Position of the next token to be fed.
    pos: usize,
    rule: NoRepeatNGram,
    ids: Vec<u32>,
    done: Option<FinishReason>,
}

impl RowGreedy {
    /// A sequence after `prompt`, in a decoder of `context` positions.
    pub fn new(prompt: &[u32], context: usize, cfg: &GenerationConfig) -> Self {
        RowGreedy {
            stop_ids: cfg.stop_ids.clone(),
            max_new_tokens: cfg.max_new_tokens,
            context,
            pos: prompt.len(),
            rule: NoRepeatNGram::new(cfg.no_repeat_ngram_size, prompt),
            ids: Vec::new(),
            done: None,
        }
    }

    /// Chooses the next token from `logits`. Returns it when it is to be fed back
    /// (and is part of the output), `None` when the sequence has ended (a stop
    /// token, the length limit, a full context) or had already ended.
    pub fn pick(&mut self, logits: &[f32]) -> Option<u32> {
        if self.done.is_some() {
            return None;
        }
        let tok = greedy_pick(logits, self.rule.banned());
        self.pos += 1;
        if self.stop_ids.contains(&tok) {
            self.done = Some(FinishReason::Stop);
            return None;
        }
        self.ids.push(tok);
        self.rule.push(tok);
        if self.ids.len() >= self.max_new_tokens {
            self.done = Some(FinishReason::Length);
        } else if self.pos >= self.context {
            self.done = Some(FinishReason::Context);
        }
        Some(tok)
    }

    /// Whether the sequence has ended.
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// Generated ids so far (stop token excluded).
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The result (a sequence not finished yet ends with `Length`).
    pub fn into_result(self) -> Generated {
        Generated {
            ids: self.ids,
            finish: self.done.unwrap_or(FinishReason::Length),
        }
    }
}

/// Greedy decoding of a batch of rows sharing one prompt: [`RowGreedy`] per row.
/// Rows that finished keep receiving the first stop id (their outputs are ignored)
/// so the batch stays rectangular.
#[derive(Debug)]
pub struct BatchGreedy {
    filler: u32,
    rows: Vec<RowGreedy>,
}

impl BatchGreedy {
    /// `rows` sequences after `prompt`, in a decoder of `context` positions.
    pub fn new(rows: usize, prompt: &[u32], context: usize, cfg: &GenerationConfig) -> Self {
        BatchGreedy {
            filler: cfg.stop_ids.first().copied().unwrap_or(0),
            rows: vec![RowGreedy::new(prompt, context, cfg); rows],
        }
    }

    /// Chooses each row's next token from `logits(row)` and records finished rows.
    /// Returns the tokens to feed next (one per row), or `None` when all rows are done.
    /// `on_token(row, id)` sees every kept token as it is chosen (streaming).
    pub fn step<'a>(
        &mut self,
        logits: impl Fn(usize) -> &'a [f32],
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Option<Vec<u32>> {
        let mut next = vec![self.filler; self.rows.len()];
        for (r, (slot, row)) in next.iter_mut().zip(&mut self.rows).enumerate() {
            if row.is_done() {
                continue;
            }
            if let Some(tok) = row.pick(logits(r)) {
                *slot = tok;
                on_token(r, tok);
            }
        }
        if self.rows.iter().all(RowGreedy::is_done) {
            None
        } else {
            Some(next)
        }
    }

    /// Whether row `r` has finished.
    pub fn is_done(&self, r: usize) -> bool {
        self.rows[r].is_done()
    }

    /// The results, one per row (rows not finished yet end with `Length`).
    pub fn into_results(self) -> Vec<Generated> {
        self.rows.into_iter().map(RowGreedy::into_result).collect()
    }
}
