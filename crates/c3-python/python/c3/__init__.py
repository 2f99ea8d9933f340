"""C3 context-cascade compression from Python: the exported cascade on ONNX
Runtime, one continuous-batching scheduler per :class:`Runtime`.

>>> import c3
>>> rt = c3.Runtime("target/c3-tiny-export")
>>> rt.roundtrip("Some text to compress.")["text"]

Calls release the GIL, so requests from several threads share decoder batches.
See docs/python.md in the repository.
"""

from ._c3 import Runtime, TextStream, __version__, ort_library
from ._errors import C3Error, C3RuntimeError, InputError, LoadError, QueueFullError

__all__ = [
    "Runtime",
    "TextStream",
    "C3Error",
    "InputError",
    "C3RuntimeError",
    "LoadError",
    "QueueFullError",
    "ort_library",
    "__version__",
]
