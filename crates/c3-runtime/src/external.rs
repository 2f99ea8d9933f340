//! External-data locations inside an export's ONNX files. ONNX Runtime opens each
//! tensor's `location` relative to the model file, so a model whose location is
//! `../x` or `/x` would read a file outside the export folder; the manifest's names
//! are checked by c3-core, these are checked here, before any session is created.

use std::path::Path;

use c3_core::manifest::check_plain_name;

use crate::error::Result;

/// Refuses `dir/file` if any external-data location in it is not a plain name inside
/// `dir`. Reads the model's protobuf (not its external data).
pub(crate) fn check_external_data(dir: &Path, file: &str) -> Result<()> {
    let model = c3_onnx::load_model(dir.join(file))?;
    for loc in c3_onnx::external_data_locations(&model) {
        check_plain_name(dir, &format!("{file}: external data location"), &loc)?;
    }
    Ok(())
}
