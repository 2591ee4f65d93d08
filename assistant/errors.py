"""User-facing errors of the assistant package.

Exception tree::

    AssistantError                 base; ``str(err)`` is a message fit for the user
    ├── UnknownBackendError        LLM backend name not in the registry
    ├── BackendUnavailableError    backend known, but its optional package is not installed
    └── AuditWriteError            the audit log could not be written (read-only dir, disk full)

Bad questions and bad patient input never raise: they come back as an ``AnswerResult`` with
status ``"rejected"`` and a friendly message, so every caller shows them the same way.
"""

from __future__ import annotations

__all__ = [
    "AssistantError",
    "AuditWriteError",
    "BackendUnavailableError",
    "UnknownBackendError",
]


class AssistantError(Exception):
    """Base class; the message is user-facing."""


class UnknownBackendError(AssistantError, KeyError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"Unknown LLM backend {name!r}; choose one of: {', '.join(known)}.")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class BackendUnavailableError(AssistantError):
    def __init__(self, name: str, package: str, extra: str) -> None:
        self.name = name
        self.package = package
        self.extra = extra
        super().__init__(
            f"The {name!r} backend needs the optional package {package!r}: "
            f"pip install 'dosewise[{extra}]'."
        )


class AuditWriteError(AssistantError):
    """Raised when a record could not be durably appended; nothing earlier is lost."""
