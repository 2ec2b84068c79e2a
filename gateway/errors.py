"""The window's domain errors: what went wrong, in named classes that know nothing of HTTP.

Services raise them; ``gateway/problems.py`` turns each into an RFC 9457 problem at the edge, with
the class's ``type`` (served at ``/problems/<type>``), title and status. A class names a kind of
failure a caller can act on; ``detail`` says this occurrence in words, ``extra`` carries the fields
a client may read (``field``, ``guid``, ``line``, ``errors`` …).

Each domain names its own errors beside its service (``<domain>/errors.py``) as subclasses of the
generic ones here; a new error needs nothing else to be answered and documented.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error the window answers. Subclasses set ``type``, ``title`` and ``status``."""

    type: ClassVar[str] = "error"
    title: ClassVar[str] = "Error"
    status: ClassVar[int] = 500
    description: ClassVar[str] = "The window could not serve the request; the detail says why."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}

    @classmethod
    def catalogue(cls) -> list[type[DomainError]]:
        """Every error class, this one and all below it, each once."""
        out, stack = [], [cls]
        while stack:
            c = stack.pop()
            if c not in out:
                out.append(c)
                stack.extend(c.__subclasses__())
        return out


class BadRequest(DomainError):
    type, title, status = "bad-request", "Bad Request", 400
    description = "A query parameter or header is outside what the operation accepts; `field` names it."


class Unauthorized(DomainError):
    type, title, status = "unauthorized", "Unauthorized", 401
    description = "No API key was sent, or the key is unknown or revoked."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["WWW-Authenticate"] = 'Bearer realm="swx"'


class Forbidden(DomainError):
    type, title, status = "forbidden", "Forbidden", 403
    description = "The caller is known but may not do this (wrong role, suspended, not its own)."


class NotFound(DomainError):
    type, title, status = "not-found", "Not Found", 404
    description = "Nothing by that name exists that the caller may see."


class Conflict(DomainError):
    type, title, status = "conflict", "Conflict", 409
    description = "The request contradicts the state of what it names."


class TooLarge(DomainError):
    type, title, status = "content-too-large", "Content Too Large", 413
    description = "The body is larger than the window accepts."


class UnsupportedMediaType(DomainError):
    type, title, status = "unsupported-media-type", "Unsupported Media Type", 415
    description = "The body was not sent with the content type the operation reads."


class Invalid(DomainError):
    type, title, status = "invalid-request", "Invalid request", 422
    description = "A field of the request breaks a rule; `errors` lists each field and rule."

    @classmethod
    def fields(cls, *errors: tuple[str, str]) -> Invalid:
        """One error of the same shape as a malformed request body's, for rules that span fields."""
        return cls("; ".join(f"{f}: {m}" for f, m in errors),
                   errors=[{"field": f, "message": m, "type": "value_error"} for f, m in errors])


class Unavailable(DomainError):
    type, title, status = "unavailable", "Service Unavailable", 503
    description = "The window cannot answer now; try again shortly."
