//! The one config type of the project, [`C3Config`], read from and written to the
//! release layout: the root `config.json` (model_type "C3": the decoder's Qwen2
//! fields plus the C3 fields) and `llm1/config.json` (model_type "qwen2": the
//! encoder). Unknown fields are kept in `extra` and written back unchanged, so a
//! round trip through our tools never drops what the release carries (auto_map...).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Fields of a Qwen2 `config.json` that the forward pass depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qwen2Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    /// Qwen2's default is false; a missing field means an untied `lm_head`.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Everything else in the file (model_type, architectures, torch_dtype, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Qwen2Config {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Multiply-adds of the weight matmuls one position costs in all layers
    /// (q, k, v, o projections and the gated MLP; not attention over the cache,
    /// not the LM head): what a prefill's FLOP floor counts per token.
    pub fn layer_macs_per_token(&self) -> u64 {
        let (h, inter) = (self.hidden_size as u64, self.intermediate_size as u64);
        let q = (self.num_attention_heads * self.head_dim()) as u64;
        let kv = (self.num_key_value_heads * self.head_dim()) as u64;
        let per_layer = h * q + 2 * h * kv + q * h + 3 * h * inter;
        per_layer * self.num_hidden_layers as u64
    }

    /// `torch_dtype` as written in the file, if any.
    pub fn torch_dtype(&self) -> Option<&str> {
        self.extra.get("torch_dtype").and_then(Value::as_str)
    }

    /// Checks what the architecture assumes, so a wrong file fails here and not
    /// as a shape error deep in a matmul.
    fn validate(&self, path: &Path) -> Result<()> {
        let fail = |m: String| Err(Error::config(path, m));
        if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            return fail("num_attention_heads and num_key_value_heads must be > 0".into());
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return fail(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.num_attention_heads % self.num_key_value_heads != 0 {
            return fail(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if self.head_dim() % 2 != 0 {
            return fail(format!(
                "head dim {} must be even for RoPE",
                self.head_dim()
            ));
        }
        if let Some(act) = self.extra.get("hidden_act").and_then(Value::as_str)
            && act != "silu"
        {
            return fail(format!(
                "hidden_act `{act}` is not supported (Qwen2 uses silu)"
            ));
        }
        Ok(())
    }
}

/// The C3-specific fields of the root `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct C3Fields {
    /// N: number of latent (context query) vectors.
    pub latent_token_len: usize,
    /// D_enc: the encoder's hidden size, input width of the projector.
    pub contexts_compression_llm_hidden_size: usize,
    /// `<img>` id: opens the latent block.
    pub im_start_token: u32,
    /// `</img>` id: closes the latent block.
    pub im_end_token: u32,
    /// `<imgpad>` id: the N placeholder slots.
    pub im_patch_token: u32,
    #[serde(default = "yes")]
    pub use_im_start_end: bool,
    /// The text length (model tokens) the model was trained on, when every training
    /// passage had exactly this length: documents are windowed to it and shorter
    /// windows padded (crate::window). Absent: trained on varying lengths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_tokens: Option<usize>,
}

fn yes() -> bool {
    true
}

/// Root `config.json` as serialised: decoder fields and C3 fields side by side.
#[derive(Serialize, Deserialize)]
struct RootFile {
    #[serde(flatten)]
    c3: C3Fields,
    #[serde(flatten)]
    decoder: Qwen2Config,
}

/// The whole cascade's configuration: decoder (root), encoder (`llm1`) and C3 fields.
#[derive(Debug, Clone, PartialEq)]
pub struct C3Config {
    pub decoder: Qwen2Config,
    pub encoder: Qwen2Config,
    pub c3: C3Fields,
}

/// Name of the encoder's sub-folder in the release layout.
pub const ENCODER_DIR: &str = "llm1";
/// Name of the config file in both folders.
pub const CONFIG_FILE: &str = "config.json";

impl C3Config {
    /// Reads `DIR/config.json` and `DIR/llm1/config.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let root_path = dir.join(CONFIG_FILE);
        let root: RootFile = read_json(&root_path)?;
        let enc_path = dir.join(ENCODER_DIR).join(CONFIG_FILE);
        let encoder: Qwen2Config = read_json(&enc_path)?;
        let cfg = C3Config {
            decoder: root.decoder,
            encoder,
            c3: root.c3,
        };
        cfg.validate(&root_path, &enc_path)?;
        Ok(cfg)
    }

    fn validate(&self, root_path: &Path, enc_path: &Path) -> Result<()> {
        self.decoder.validate(root_path)?;
        self.encoder.validate(enc_path)?;
        if let Some(t) = self.decoder.extra.get("model_type").and_then(Value::as_str)
            && t != "C3"
        {
            return Err(Error::config(
                root_path,
                format!("model_type is `{t}`, expected `C3`"),
            ));
        }
        if self.c3.contexts_compression_llm_hidden_size != self.encoder.hidden_size {
            return Err(Error::config(
                root_path,
                format!(
                    "contexts_compression_llm_hidden_size {} differs from the encoder's hidden_size {} in {}",
                    self.c3.contexts_compression_llm_hidden_size,
                    self.encoder.hidden_size,
                    enc_path.display()
                ),
            ));
        }
        if let Some(w) = self.c3.window_tokens
            && (w == 0 || w > self.max_text_tokens())
        {
            return Err(Error::config(
                root_path,
                format!(
                    "window_tokens {w} must be in 1..={} (the encoder's limit)",
                    self.max_text_tokens()
                ),
            ));
        }
        if self.c3.latent_token_len == 0 {
            return Err(Error::config(root_path, "latent_token_len must be > 0"));
        }
        // `<img>`, the N query slots and at least one text token fit the encoder.
        if self.max_text_tokens() == 0 {
            return Err(Error::config(
                root_path,
                format!(
                    "latent_token_len {} leaves no room for text in the encoder's {} positions",
                    self.c3.latent_token_len, self.encoder.max_position_embeddings
                ),
            ));
        }
        for (name, id) in [
            ("im_start_token", self.c3.im_start_token),
            ("im_end_token", self.c3.im_end_token),
            ("im_patch_token", self.c3.im_patch_token),
        ] {
            let limit = self.decoder.vocab_size.min(self.encoder.vocab_size);
            if id as usize >= limit {
                return Err(Error::config(
                    root_path,
                    format!("{name} {id} is outside the vocabularies (size {limit})"),
                ));
            }
        }
        Ok(())
    }

    /// Writes both config files into `dir` (which must exist, with `llm1/`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let root = RootFile {
            c3: self.c3.clone(),
            decoder: self.decoder.clone(),
        };
        write_json(&dir.join(CONFIG_FILE), &root)?;
        write_json(&dir.join(ENCODER_DIR).join(CONFIG_FILE), &self.encoder)
    }

    /// N, the number of latent vectors.
    pub fn n_latents(&self) -> usize {
        self.c3.latent_token_len
    }

    /// How this model's documents are windowed (`window`: an override of the length).
    pub fn window_plan(&self, window: Option<usize>, pad_id: u32) -> Result<crate::WindowPlan> {
        crate::WindowPlan::new(
            window,
            self.c3.window_tokens,
            self.max_text_tokens(),
            pad_id,
        )
    }

    /// Longest text (in the model's own tokens) the encoder accepts: its context
    /// minus `<img>` and the N query slots.
    pub fn max_text_tokens(&self) -> usize {
        self.encoder
            .max_position_embeddings
            .saturating_sub(self.n_latents().saturating_add(1))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde names the missing field; the file name is ours to add.
        if e.is_data() {
            Error::config(path, e.to_string())
        } else {
            Error::Json {
                path: PathBuf::from(path),
                source: e,
            }
        }
    })
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Json {
        path: path.into(),
        source: e,
    })?;
    std::fs::write(path, s + "\n").map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen(hidden: usize) -> serde_json::Value {
        serde_json::json!({
            "model_type": "qwen2", "vocab_size": 300, "hidden_size": hidden,
            "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "max_position_embeddings": 128,
            "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "auto_map": {"x": "y"}
        })
    }

    fn write_dir(root: serde_json::Value, enc: serde_json::Value) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("llm1")).unwrap();
        std::fs::write(d.path().join("config.json"), root.to_string()).unwrap();
        std::fs::write(d.path().join("llm1/config.json"), enc.to_string()).unwrap();
        d
    }

    fn root_json() -> serde_json::Value {
        let mut r = qwen(32);
        let m = r.as_object_mut().unwrap();
        m.insert("model_type".into(), "C3".into());
        m.insert("latent_token_len".into(), 4.into());
        m.insert("contexts_compression_llm_hidden_size".into(), 16.into());
        m.insert("im_start_token".into(), 259.into());
        m.insert("im_end_token".into(), 260.into());
        m.insert("im_patch_token".into(), 261.into());
        r
    }

    #[test]
    fn keeps_unknown_fields_through_a_round_trip() {
        let d = write_dir(root_json(), qwen(16));
        let cfg = C3Config::load(d.path()).unwrap();
        assert_eq!(cfg.decoder.extra["auto_map"], serde_json::json!({"x": "y"}));
        let out = tempfile::tempdir().unwrap();
        std::fs::create_dir(out.path().join("llm1")).unwrap();
        cfg.save(out.path()).unwrap();
        assert_eq!(C3Config::load(out.path()).unwrap(), cfg);
    }

    #[test]
    fn missing_field_names_field_and_file() {
        let mut root = root_json();
        root.as_object_mut().unwrap().remove("latent_token_len");
        let d = write_dir(root, qwen(16));
        let e = C3Config::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("latent_token_len") && e.contains("config.json"),
            "{e}"
        );
    }

    #[test]
    fn encoder_width_mismatch_is_refused() {
        let d = write_dir(root_json(), qwen(24));
        let e = C3Config::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("contexts_compression_llm_hidden_size"), "{e}");
    }

    /// A latent count that fills (or overflows) the encoder's positions is refused
    /// in one line (found by fuzz/, config target: `usize::MAX` overflowed).
    #[test]
    fn latents_that_fill_the_encoder_are_refused() {
        for n in [u64::MAX, 1 << 40, 4096] {
            let mut root = root_json();
            root["latent_token_len"] = n.into();
            let d = write_dir(root, qwen(16));
            let e = C3Config::load(d.path()).unwrap_err().to_string();
            assert!(e.contains("leaves no room for text"), "{n}: {e}");
        }
    }
}
