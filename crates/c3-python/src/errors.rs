//! Runtime errors as Python exceptions. The classes live in `c3/_errors.py` (a
//! Python class can have two bases there: `c3.InputError` is both a `c3.C3Error`
//! and a `ValueError`); this file decides which one an error becomes and keeps the
//! runtime's one-line message, as the `c3` CLI prints it after `error: `.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Which exception class an error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The caller's input is at fault (`c3.InputError`, a `ValueError`).
    Input,
    /// The scheduler's queue is full: retry later (`c3.QueueFullError`).
    QueueFull,
    /// The export or ONNX Runtime cannot be loaded (`c3.LoadError`).
    Load,
    /// Anything else the runtime reports (`c3.C3RuntimeError`).
    Runtime,
}

impl Kind {
    fn class_name(self) -> &'static str {
        match self {
            Kind::Input => "InputError",
            Kind::QueueFull => "QueueFullError",
            Kind::Load => "LoadError",
            Kind::Runtime => "C3RuntimeError",
        }
    }
}

/// An error on its way to Python: made without the GIL (inside `Python::detach`),
/// raised once it is held again.
#[derive(Debug)]
pub struct Fault {
    pub kind: Kind,
    pub msg: String,
}

impl Fault {
    pub fn input(msg: impl Into<String>) -> Self {
        Fault {
            kind: Kind::Input,
            msg: msg.into(),
        }
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Fault {
            kind: Kind::Runtime,
            msg: msg.into(),
        }
    }

    /// The same fault, as a different kind (e.g. every failure to load is a `Load`
    /// unless the caller's argument was at fault).
    pub fn or_kind(mut self, kind: Kind) -> Self {
        if self.kind == Kind::Runtime {
            self.kind = kind;
        }
        self
    }

    /// The message prefixed with what it is about (`text 2: the text is empty`).
    pub fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
}

/// One line, as the CLI prints an error with its causes.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', "; ")
}

impl From<anyhow::Error> for Fault {
    fn from(e: anyhow::Error) -> Self {
        // The kind comes from the runtime's (or core's) typed error anywhere in the
        // chain; anyhow context around it does not change whose fault it is.
        let mut kind = Kind::Runtime;
        for cause in e.chain() {
            if let Some(r) = cause.downcast_ref::<c3_runtime::Error>() {
                kind = match r {
                    c3_runtime::Error::QueueFull { .. } => Kind::QueueFull,
                    r if r.is_client_error() => Kind::Input,
                    _ => Kind::Runtime,
                };
                break;
            }
            if let Some(c3_core::Error::Input(_)) = cause.downcast_ref::<c3_core::Error>() {
                kind = Kind::Input;
                break;
            }
        }
        Fault {
            kind,
            msg: one_line(&e),
        }
    }
}

impl From<c3_runtime::Error> for Fault {
    fn from(e: c3_runtime::Error) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl From<c3_core::Error> for Fault {
    fn from(e: c3_core::Error) -> Self {
        anyhow::Error::from(e).into()
    }
}

static CLASSES: PyOnceLock<[Py<PyType>; 4]> = PyOnceLock::new();

fn class(py: Python<'_>, kind: Kind) -> PyResult<Bound<'_, PyType>> {
    let classes = CLASSES.get_or_try_init(py, || -> PyResult<_> {
        let m = py.import("c3._errors")?;
        let get = |k: Kind| -> PyResult<Py<PyType>> {
            Ok(m.getattr(k.class_name())?.cast_into::<PyType>()?.unbind())
        };
        Ok([
            get(Kind::Input)?,
            get(Kind::QueueFull)?,
            get(Kind::Load)?,
            get(Kind::Runtime)?,
        ])
    })?;
    let i = match kind {
        Kind::Input => 0,
        Kind::QueueFull => 1,
        Kind::Load => 2,
        Kind::Runtime => 3,
    };
    Ok(classes[i].bind(py).clone())
}

impl Fault {
    /// The Python exception (needs the GIL: the classes are Python objects).
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match class(py, self.kind) {
            Ok(cls) => PyErr::from_type(cls, self.msg),
            // The package's Python half is missing (the extension imported on its
            // own): still raise, with the right builtin base.
            Err(_) if self.kind == Kind::Input => pyo3::exceptions::PyValueError::new_err(self.msg),
            Err(_) => pyo3::exceptions::PyRuntimeError::new_err(self.msg),
        }
    }
}

/// `Result<T, Fault>` -> `PyResult<T>`.
pub trait RaiseExt<T> {
    fn raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> RaiseExt<T> for Result<T, Fault> {
    fn raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|f| f.into_pyerr(py))
    }
}
