"""Named errors: every bad input gets one line that names the file or prompt, the problem and the fix."""
from __future__ import annotations


class TracerError(Exception):
    """Base class of everything the tracer raises on bad input."""


class MissingFile(TracerError):
    """A model or transcoder file the tracer needs is not there."""


class UnsupportedArchitecture(TracerError):
    """The checkpoint's architecture has no adapter (the message lists the supported ones)."""


class TranscoderMismatch(TracerError):
    """The transcoders do not fit the model (layer count, d_model, hook names) or are malformed."""


class PromptTooLong(TracerError):
    """The tokenized prompt has more positions than the model can attend over."""


class BadTarget(TracerError):
    """An explicit logit target is not a single token of the vocabulary."""


class BadPrompt(TracerError, ValueError):
    """The prompt is empty, or holds token ids outside the model's vocabulary."""


class BadConfig(TracerError, ValueError):
    """A TraceConfig field is out of range (the message names the field and the allowed range)."""


class BadCheckpoint(TracerError):
    """The checkpoint directory has its files but transformers cannot load them (the message says why)."""


class TracerWarning(UserWarning):
    """Tracing worked but the result may mislead: unknown prompt words, a low replacement score."""
