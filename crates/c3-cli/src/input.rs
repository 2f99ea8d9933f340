//! Reading user text: a file or `-` for stdin, valid UTF-8, never empty.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Reads `path` (or stdin for `-`) as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading stdin")?;
        ("stdin".to_string(), b)
    } else {
        let b = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        (path.display().to_string(), b)
    };
    match String::from_utf8(bytes) {
        Ok(s) if s.trim().is_empty() => bail!("{name}: the text is empty"),
        Ok(s) => Ok(s),
        Err(e) => bail!(
            "{name}: not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    }
}
