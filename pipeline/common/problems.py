"""The one refusal a request can meet anywhere behind the API: an RFC 9457 problem.

Raised by routes and by the query builders they call (the read models' own queries check
ranges and cursors), answered by ``api.problems`` as ``application/problem+json``. Here,
below every side, so a read model's queries need not import the HTTP layer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RETRY_AFTER_S", "Problem"]

RETRY_AFTER_S = "1"
"""Seconds a client should wait before retrying after a 503 (``Retry-After``)."""


class Problem(Exception):
    """Raise to answer with a problem document.

    status: HTTP status; slug: the last part of ``type`` (``/problems/<slug>``, stable:
    clients switch on it); detail: for the human reader; headers: added to the answer
    (``Retry-After``, ``WWW-Authenticate``); extra: more members (``errors``, ``reason``,
    ``command_id``).
    """

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @classmethod
    def retry_later(cls, slug: str, detail: str) -> Problem:
        """A 503 with ``Retry-After: RETRY_AFTER_S``: what was needed (a store, a lock) did
        not answer in time and should shortly."""
        return cls(503, slug, detail, headers={"Retry-After": RETRY_AFTER_S})
