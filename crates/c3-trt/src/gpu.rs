//! Finding a CUDA device and the TensorRT / CUDA runtime libraries without linking
//! either at build time: `nvidia-smi` for the devices (it ships with the driver), and
//! the shared-library file names for the versions. This keeps the crate buildable and
//! testable on CPU machines, and lets `c3 build` say exactly what is missing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One CUDA device as `nvidia-smi` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    /// `major.minor`, e.g. `9.0` for H100.
    pub compute_capability: String,
    pub driver_version: String,
}

impl GpuInfo {
    /// `sm_90`: the architecture engines are tied to.
    pub fn arch(&self) -> String {
        format!("sm_{}", self.compute_capability.replace('.', ""))
    }
}

/// A shared library found on disk, with the version read from its file name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibFound {
    pub path: PathBuf,
    /// `11.4.0` from `libnvinfer.so.11.4.0`.
    pub version: String,
}

impl LibFound {
    /// First component of the version.
    pub fn major(&self) -> Option<u32> {
        self.version.split('.').next()?.parse().ok()
    }
}

/// Where to look: the executable search path and the library directories. Built from
/// the environment in production, by hand in tests.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    pub path_var: Option<OsString>,
    pub lib_dirs: Vec<PathBuf>,
}

impl Probe {
    /// `$PATH`, and `$LD_LIBRARY_PATH`, `$TENSORRT_ROOT/lib`, `$CUDA_HOME/lib64` and the
    /// standard system directories, in the order the dynamic loader would try them.
    pub fn from_env() -> Self {
        let mut lib_dirs: Vec<PathBuf> = Vec::new();
        if let Some(ld) = std::env::var_os("LD_LIBRARY_PATH") {
            lib_dirs.extend(std::env::split_paths(&ld).filter(|p| !p.as_os_str().is_empty()));
        }
        for (var, sub) in [
            ("TENSORRT_ROOT", "lib"),
            ("CUDA_HOME", "lib64"),
            ("CUDA_PATH", "lib64"),
        ] {
            if let Some(root) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                lib_dirs.push(PathBuf::from(root).join(sub));
            }
        }
        for d in [
            "/usr/local/cuda/lib64",
            "/usr/local/tensorrt/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/local/lib",
            "/usr/lib",
        ] {
            lib_dirs.push(PathBuf::from(d));
        }
        Probe {
            path_var: std::env::var_os("PATH"),
            lib_dirs,
        }
    }

    /// An executable named `name` on the search path.
    pub fn which(&self, name: &str) -> Option<PathBuf> {
        let path = self.path_var.as_ref()?;
        std::env::split_paths(path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    }

    /// Every CUDA device, or [`Error::NoGpu`] saying why there is none.
    pub fn gpus(&self) -> Result<Vec<GpuInfo>> {
        let smi = self.which("nvidia-smi").ok_or_else(|| {
            Error::NoGpu(
                "nvidia-smi not on PATH (no NVIDIA driver installed?); TensorRT engines can only be built on a machine with an NVIDIA GPU — use --dry-run to check the export here".into(),
            )
        })?;
        let out = Command::new(&smi)
            .args([
                "--query-gpu=index,name,compute_cap,driver_version",
                "--format=csv,noheader",
            ])
            .output()
            .map_err(|e| Error::NoGpu(format!("{} failed to start: {e}", smi.display())))?;
        if !out.status.success() {
            return Err(Error::NoGpu(format!(
                "{} exited with {}: {}",
                smi.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let gpus = parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout))
            .map_err(|e| Error::NoGpu(format!("{}: {e}", smi.display())))?;
        if gpus.is_empty() {
            return Err(Error::NoGpu(format!("{} lists no devices", smi.display())));
        }
        Ok(gpus)
    }

    /// The TensorRT core library (`libnvinfer.so.<version>`).
    pub fn tensorrt(&self) -> Result<LibFound> {
        find_library("libnvinfer.so", &self.lib_dirs).ok_or_else(|| {
            Error::NoLibrary(format!(
                "TensorRT library libnvinfer.so.* (TensorRT 10 or 11) not found in {}; install TensorRT (e.g. `pip install tensorrt-cu12==11.4.0.106`, then add its tensorrt_libs folder to LD_LIBRARY_PATH) or set TENSORRT_ROOT",
                self.dirs_list()
            ))
        })
    }

    /// The CUDA runtime (`libcudart.so.<version>`), if present.
    pub fn cudart(&self) -> Option<LibFound> {
        find_library("libcudart.so", &self.lib_dirs)
    }

    fn dirs_list(&self) -> String {
        let v: Vec<String> = self
            .lib_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        v.join(":")
    }
}

/// Parses `nvidia-smi --query-gpu=index,name,compute_cap,driver_version
/// --format=csv,noheader` output.
pub fn parse_nvidia_smi(csv: &str) -> std::result::Result<Vec<GpuInfo>, String> {
    let mut gpus = Vec::new();
    for line in csv.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // GPU names contain no commas; split from the right to be safe anyway.
        let f: Vec<&str> = line.rsplitn(3, ',').map(str::trim).collect();
        let (index_name, cc, driver) = match f.as_slice() {
            [driver, cc, index_name] => (*index_name, *cc, *driver),
            _ => return Err(format!("unexpected line `{line}`")),
        };
        let (index, name) = index_name
            .split_once(',')
            .map(|(i, n)| (i.trim(), n.trim()))
            .ok_or_else(|| format!("unexpected line `{line}`"))?;
        let index = index
            .parse()
            .map_err(|_| format!("bad device index in `{line}`"))?;
        if !cc.contains('.') || cc.split('.').any(|p| p.parse::<u32>().is_err()) {
            return Err(format!(
                "bad compute capability `{cc}` in `{line}` (driver too old for compute_cap?)"
            ));
        }
        gpus.push(GpuInfo {
            index,
            name: name.to_owned(),
            compute_capability: cc.to_owned(),
            driver_version: driver.to_owned(),
        });
    }
    Ok(gpus)
}

/// `--gpu`: `auto` (device 0), a device index, an arch (`sm_90`) or part of the name.
pub fn select_gpu(gpus: &[GpuInfo], sel: &str) -> Result<GpuInfo> {
    let found = match sel {
        "auto" => gpus.first(),
        s if s.parse::<u32>().is_ok() => gpus.iter().find(|g| g.index.to_string() == s),
        s if s.starts_with("sm_") => gpus.iter().find(|g| g.arch() == s),
        s => gpus
            .iter()
            .find(|g| g.name.to_lowercase().contains(&s.to_lowercase())),
    };
    found.cloned().ok_or_else(|| {
        let have: Vec<String> = gpus
            .iter()
            .map(|g| format!("{}: {} ({})", g.index, g.name, g.arch()))
            .collect();
        Error::NoGpu(format!(
            "no device matches --gpu {sel}; present: {}",
            have.join(", ")
        ))
    })
}

/// The best `<stem>.<version>` in the first directory holding one: the highest
/// version, read from the file name after following symlinks (the soname link
/// `libnvinfer.so.11` points at `libnvinfer.so.11.4.0`).
pub fn find_library(stem: &str, dirs: &[PathBuf]) -> Option<LibFound> {
    dirs.iter().find_map(|d| best_in_dir(stem, d))
}

fn best_in_dir(stem: &str, dir: &Path) -> Option<LibFound> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut best: Option<(Vec<u32>, LibFound)> = None;
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name == stem || name.starts_with(&format!("{stem}."))) {
            continue;
        }
        let path = entry.path();
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let real_name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(version) = real_name
            .strip_prefix(&format!("{stem}."))
            .or_else(|| name.strip_prefix(&format!("{stem}.")))
        else {
            continue; // the bare dev link pointing nowhere versioned
        };
        let Some(key) = version
            .split('.')
            .map(|p| p.parse::<u32>().ok())
            .collect::<Option<Vec<u32>>>()
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((
                key,
                LibFound {
                    path,
                    version: version.to_owned(),
                },
            ));
        }
    }
    best.map(|(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nvidia_smi_csv() -> std::result::Result<(), String> {
        let gpus = parse_nvidia_smi(
            "0, NVIDIA H100 80GB HBM3, 9.0, 570.86.15\n1, NVIDIA GeForce RTX 4090, 8.9, 570.86.15\n",
        )?;
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(gpus[0].arch(), "sm_90");
        assert_eq!(gpus[1].arch(), "sm_89");
        assert_eq!(gpus[1].driver_version, "570.86.15");
        assert!(parse_nvidia_smi("0, X, [N/A], 470.1").is_err());
        Ok(())
    }

    #[test]
    fn selects_by_index_arch_or_name() -> anyhow::Result<()> {
        let gpus = parse_nvidia_smi("0, NVIDIA A100, 8.0, 1\n1, NVIDIA H100, 9.0, 1")
            .map_err(anyhow::Error::msg)?;
        assert_eq!(select_gpu(&gpus, "auto")?.index, 0);
        assert_eq!(select_gpu(&gpus, "1")?.index, 1);
        assert_eq!(select_gpu(&gpus, "sm_90")?.index, 1);
        assert_eq!(select_gpu(&gpus, "a100")?.index, 0);
        let err = select_gpu(&gpus, "sm_120").unwrap_err().to_string();
        assert!(err.contains("sm_120") && err.contains("H100"), "{err}");
        Ok(())
    }

    #[test]
    fn library_version_from_file_names() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::write(d.join("libnvinfer.so.11.4.0"), b"")?;
        std::os::unix::fs::symlink("libnvinfer.so.11.4.0", d.join("libnvinfer.so.11"))?;
        std::os::unix::fs::symlink("libnvinfer.so.11", d.join("libnvinfer.so"))?;
        std::fs::write(d.join("libnvinfer.so.10.3.0"), b"")?;
        std::fs::write(d.join("libnvinfer_plugin.so.11.4.0"), b"")?;
        let lib = find_library(
            "libnvinfer.so",
            &[PathBuf::from("/nonexistent"), d.to_owned()],
        )
        .expect("found");
        assert_eq!(lib.version, "11.4.0");
        assert_eq!(lib.major(), Some(11));
        assert!(find_library("libcudart.so", &[d.to_owned()]).is_none());
        Ok(())
    }

    #[test]
    fn missing_driver_and_library_are_named() {
        let probe = Probe {
            path_var: Some(OsString::new()),
            lib_dirs: vec![PathBuf::from("/nonexistent/lib")],
        };
        let err = probe.gpus().unwrap_err().to_string();
        assert!(
            err.starts_with("no CUDA device found: nvidia-smi not on PATH"),
            "{err}"
        );
        let err = probe.tensorrt().unwrap_err().to_string();
        assert!(
            err.contains("libnvinfer.so")
                && err.contains("/nonexistent/lib")
                && err.contains("install TensorRT"),
            "{err}"
        );
    }
}
