"""Bad input, blamed on one field: what the API answers with 422 and the CLI with exit code 2 and one line.

``FieldError`` is the base; the subclasses say which input was bad, so a caller can catch just the kind
it expects: ``ConfigError`` for an experiment config, ``SweepSpecError`` for a sweep spec.  Other bad
request fields (a team name, a request too large for the queue) are plain ``FieldError``.
"""

from __future__ import annotations


class FieldError(ValueError):
    """Bad input; ``field`` is the dotted path of the first bad field ('' for the input as a whole)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class ConfigError(FieldError):
    """An invalid experiment config (``field`` is a path in the config: ``train.batch_size``)."""


class SweepSpecError(FieldError):
    """An invalid sweep spec (``field`` is a path in the spec: ``grid.activations.r``, ``budget``)."""
