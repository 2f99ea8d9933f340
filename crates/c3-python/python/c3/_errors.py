"""Exceptions raised by c3. Every message is the runtime's one line, as the ``c3``
CLI prints it after ``error:``."""


class C3Error(Exception):
    """Base of every c3 error."""


class InputError(C3Error, ValueError):
    """The caller's input is at fault: empty text, a malformed or foreign latent
    file, an argument out of range."""


class C3RuntimeError(C3Error, RuntimeError):
    """The runtime failed (ONNX Runtime, the scheduler, a model that returns the
    wrong shapes)."""


class LoadError(C3RuntimeError):
    """The export folder or the ONNX Runtime library cannot be loaded."""


class QueueFullError(C3RuntimeError):
    """The scheduler already holds ``max_queue`` waiting requests: retry later."""
