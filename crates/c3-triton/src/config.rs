//! The three models of the repository and their `config.pbtxt` text. Names, tensor
//! names, types and shapes are the clients' contract (docs/triton.md): change them
//! only with the docs and the tests.

use crate::Provider;

/// A tensor of a model's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tensor {
    pub name: &'static str,
    /// Triton's data type name (`TYPE_STRING`, `TYPE_UINT8`, `TYPE_INT32`).
    pub data_type: &'static str,
    /// Full shape: `max_batch_size` is 0, so there is no implicit batch dimension.
    pub dims: &'static [i64],
    /// Clients may leave it out.
    pub optional: bool,
}

const TEXT_1: Tensor = Tensor {
    name: "TEXT",
    data_type: "TYPE_STRING",
    dims: &[1],
    optional: false,
};
const TEXTS: Tensor = Tensor {
    name: "TEXT",
    data_type: "TYPE_STRING",
    dims: &[-1],
    optional: false,
};
const LATENT_FILE: Tensor = Tensor {
    name: "LATENT_FILE",
    data_type: "TYPE_UINT8",
    dims: &[-1],
    optional: false,
};
const MAX_NEW_TOKENS: Tensor = Tensor {
    name: "MAX_NEW_TOKENS",
    data_type: "TYPE_INT32",
    dims: &[1],
    optional: true,
};
/// The task after the latents in the decoder prompt, for a model trained to answer
/// it (default: the prompt the export records).
const PROMPT: Tensor = Tensor {
    name: "PROMPT",
    data_type: "TYPE_STRING",
    dims: &[1],
    optional: true,
};
/// The `c3 roundtrip --json` object of a round trip, as JSON text.
const SUMMARY: Tensor = Tensor {
    name: "SUMMARY",
    data_type: "TYPE_STRING",
    dims: &[1],
    optional: false,
};

/// One model of the repository: a name clients call and the bindings call it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// One text in, its reconstruction out (`c3.Runtime.roundtrip`).
    Roundtrip,
    /// Texts in, the latent file `c3 compress` writes out (`c3.Runtime.compress`).
    Compress,
    /// A latent file in, its texts out (`c3.Runtime.decompress`).
    Decompress,
}

impl Model {
    pub const ALL: [Model; 3] = [Model::Roundtrip, Model::Compress, Model::Decompress];

    /// The model's name in the repository and in request URLs.
    pub fn name(self) -> &'static str {
        match self {
            Model::Roundtrip => "c3_roundtrip",
            Model::Compress => "c3_compress",
            Model::Decompress => "c3_decompress",
        }
    }

    /// The `C3_TASK` parameter `model.py` dispatches on.
    pub fn task(self) -> &'static str {
        match self {
            Model::Roundtrip => "roundtrip",
            Model::Compress => "compress",
            Model::Decompress => "decompress",
        }
    }

    pub fn inputs(self) -> &'static [Tensor] {
        match self {
            Model::Roundtrip => &[TEXT_1, MAX_NEW_TOKENS, PROMPT],
            Model::Compress => &[TEXTS],
            Model::Decompress => &[LATENT_FILE, MAX_NEW_TOKENS, PROMPT],
        }
    }

    pub fn outputs(self) -> &'static [Tensor] {
        match self {
            Model::Roundtrip => &[TEXT_1, SUMMARY],
            Model::Compress => &[LATENT_FILE],
            Model::Decompress => &[TEXTS],
        }
    }
}

/// What a model's config says besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigParams {
    /// The export folder as `model.py` opens it: absolute, or relative to the
    /// model's folder (a copy inside the repository).
    pub export_dir: String,
    pub provider: Provider,
    /// Model instances (processes, each with its own runtime and scheduler); per
    /// GPU for GPU providers.
    pub instances: u32,
    /// The scheduler's rows decoded together.
    pub max_batch: u32,
    /// Requests the scheduler holds beyond the running batch.
    pub max_queue: u32,
    /// ONNX Runtime intra-op threads per session (0: its default).
    pub threads: u32,
    /// sha256 of the export manifest, recorded in the header.
    pub export_sha256: String,
}

/// A protobuf text-format string literal (C escapes; UTF-8 passes through).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03o}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn tensors(out: &mut String, field: &str, list: &[Tensor]) {
    out.push_str(&format!("{field} [\n"));
    for (i, t) in list.iter().enumerate() {
        let dims: Vec<String> = t.dims.iter().map(i64::to_string).collect();
        out.push_str("  {\n");
        out.push_str(&format!("    name: {}\n", quote(t.name)));
        out.push_str(&format!("    data_type: {}\n", t.data_type));
        out.push_str(&format!("    dims: [ {} ]\n", dims.join(", ")));
        if t.optional {
            out.push_str("    optional: true\n");
        }
        out.push_str(if i + 1 < list.len() {
            "  },\n"
        } else {
            "  }\n"
        });
    }
    out.push_str("]\n");
}

/// `config.pbtxt` of `model`.
pub fn config_pbtxt(model: Model, p: &ConfigParams) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# Generated by `c3 triton` (c3 {}) for the export whose manifest has sha256\n# {}. Regenerate rather than edit; docs/triton.md describes every field.\n",
        env!("CARGO_PKG_VERSION"),
        p.export_sha256
    ));
    out.push_str(&format!("name: {}\n", quote(model.name())));
    out.push_str("backend: \"python\"\n");
    out.push_str(
        "# Triton does not batch: model.py hands every request to the runtime's\n# continuous-batching scheduler at once and answers it when it is done.\n",
    );
    out.push_str("max_batch_size: 0\n");
    tensors(&mut out, "input", model.inputs());
    tensors(&mut out, "output", model.outputs());
    out.push_str("instance_group [\n  {\n");
    out.push_str(&format!("    count: {}\n", p.instances));
    out.push_str(&format!("    kind: {}\n", p.provider.instance_kind()));
    out.push_str("  }\n]\n");
    let params = [
        ("C3_TASK", model.task().to_string()),
        ("EXPORT_DIR", p.export_dir.clone()),
        ("PROVIDER", p.provider.name().to_string()),
        ("MAX_BATCH", p.max_batch.to_string()),
        ("MAX_QUEUE", p.max_queue.to_string()),
        ("THREADS", p.threads.to_string()),
    ];
    for (k, v) in params {
        out.push_str(&format!(
            "parameters {{\n  key: {}\n  value: {{ string_value: {} }}\n}}\n",
            quote(k),
            quote(&v)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(provider: Provider) -> ConfigParams {
        ConfigParams {
            export_dir: "/srv/c3 \"tiny\"/export".into(),
            provider,
            instances: 2,
            max_batch: 16,
            max_queue: 64,
            threads: 0,
            export_sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn roundtrip_config_is_the_documented_contract() {
        let text = config_pbtxt(Model::Roundtrip, &params(Provider::Cpu));
        let expected = r#"name: "c3_roundtrip"
backend: "python"
# Triton does not batch: model.py hands every request to the runtime's
# continuous-batching scheduler at once and answers it when it is done.
max_batch_size: 0
input [
  {
    name: "TEXT"
    data_type: TYPE_STRING
    dims: [ 1 ]
  },
  {
    name: "MAX_NEW_TOKENS"
    data_type: TYPE_INT32
    dims: [ 1 ]
    optional: true
  },
  {
    name: "PROMPT"
    data_type: TYPE_STRING
    dims: [ 1 ]
    optional: true
  }
]
output [
  {
    name: "TEXT"
    data_type: TYPE_STRING
    dims: [ 1 ]
  },
  {
    name: "SUMMARY"
    data_type: TYPE_STRING
    dims: [ 1 ]
  }
]
instance_group [
  {
    count: 2
    kind: KIND_CPU
  }
]
parameters {
  key: "C3_TASK"
  value: { string_value: "roundtrip" }
}
parameters {
  key: "EXPORT_DIR"
  value: { string_value: "/srv/c3 \"tiny\"/export" }
}
parameters {
  key: "PROVIDER"
  value: { string_value: "cpu" }
}
parameters {
  key: "MAX_BATCH"
  value: { string_value: "16" }
}
parameters {
  key: "MAX_QUEUE"
  value: { string_value: "64" }
}
parameters {
  key: "THREADS"
  value: { string_value: "0" }
}
"#;
        // The header names the generator version and export; the rest is exact.
        let body: String = text
            .lines()
            .skip_while(|l| l.starts_with("# Generated") || l.starts_with("# ab"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(text.starts_with("# Generated by `c3 triton`"), "{text}");
        assert!(text.contains(&"ab".repeat(32)));
        assert_eq!(body, expected);
    }

    #[test]
    fn compress_and_decompress_signatures() {
        let c = config_pbtxt(Model::Compress, &params(Provider::Cpu));
        assert!(c.contains("name: \"c3_compress\""));
        assert!(c.contains(
            "input [\n  {\n    name: \"TEXT\"\n    data_type: TYPE_STRING\n    dims: [ -1 ]\n  }\n]"
        ));
        assert!(c.contains(
            "output [\n  {\n    name: \"LATENT_FILE\"\n    data_type: TYPE_UINT8\n    dims: [ -1 ]\n  }\n]"
        ));
        let d = config_pbtxt(Model::Decompress, &params(Provider::Cpu));
        assert!(d.contains("name: \"c3_decompress\""));
        assert!(d.contains("name: \"LATENT_FILE\"\n    data_type: TYPE_UINT8\n    dims: [ -1 ]\n  },\n  {\n    name: \"MAX_NEW_TOKENS\"\n    data_type: TYPE_INT32\n    dims: [ 1 ]\n    optional: true"));
        assert!(d.contains(
            "output [\n  {\n    name: \"TEXT\"\n    data_type: TYPE_STRING\n    dims: [ -1 ]\n  }\n]"
        ));
        assert!(d.contains("string_value: \"decompress\""));
    }

    #[test]
    fn gpu_providers_get_gpu_instances() {
        for (p, kind) in [
            (Provider::Cpu, "KIND_CPU"),
            (Provider::Cuda, "KIND_GPU"),
            (Provider::TensorRt, "KIND_GPU"),
        ] {
            let text = config_pbtxt(Model::Roundtrip, &params(p));
            assert!(text.contains(&format!("    kind: {kind}\n")), "{text}");
            assert!(text.contains(&format!("string_value: {}", quote(p.name()))));
        }
    }

    #[test]
    fn quoting_escapes_what_text_format_needs() {
        assert_eq!(quote("a\"b\\c\nd\te\u{1}é"), r#""a\"b\\c\nd\te\001é""#);
    }
}
