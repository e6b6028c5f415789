"""Web origins allowed to send a system's events: their one spelling, and the match.

An origin is what a browser puts in the ``Origin`` header (RFC 6454, section 6.1):
``scheme "://" host [ ":" port ]``, lowercase, with no path. A system's list may also hold
``https://*.example.com``, which covers every subdomain of example.com (at any depth) but
not example.com itself, the way Segment, PostHog and browsers' own site lists read a
leading ``*.``. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from pipeline.domain.errors import InvalidValue

__all__ = ["MAX_ORIGINS", "MAX_ORIGIN_LENGTH", "normalise", "origin_allowed", "origins"]

MAX_ORIGINS = 50
MAX_ORIGIN_LENGTH = 200
_DEFAULT_PORT = {"http": 80, "https": 443}
_ORIGIN_RE = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[^\]]*\]|[^:/]*)(?::(?P<port>[0-9]{1,5}))?"
)
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _host(text: str, *, wildcard: bool) -> str | None:
    """The host in its one spelling, or None if it is not one."""
    if text.startswith("[") and text.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(text[1:-1]).compressed}]"
        except ValueError:
            return None
    if wildcard and text.startswith("*."):
        rest = _host(text[2:], wildcard=False)
        # two labels at least: "*.com" would let every .com site send the system's events
        if rest is None or rest.startswith("[") or "." not in rest:
            return None
        return f"*.{rest}"
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        return None
    return text


def normalise(raw: str, *, wildcard: bool = False) -> str | None:
    """``raw``'s one spelling (lowercase, default port dropped, one trailing ``/`` allowed
    and dropped), or None if it is not an http(s) origin. ``wildcard``: a leading ``*.``
    in the host is allowed (lists may hold it, requests never do)."""
    text = raw.strip().lower()
    if text.endswith("/"):
        text = text[:-1]
    match = _ORIGIN_RE.fullmatch(text)
    if match is None or match["scheme"] not in _DEFAULT_PORT:
        return None
    host = _host(match["host"], wildcard=wildcard)
    if host is None:
        return None
    port = match["port"]
    if port is not None:
        number = int(port)
        if not 1 <= number <= 65535:
            return None
        if number != _DEFAULT_PORT[match["scheme"]]:
            return f"{match['scheme']}://{host}:{number}"
    return f"{match['scheme']}://{host}"


def _parts(spelled: str) -> tuple[str, str, str | None]:
    match = _ORIGIN_RE.fullmatch(spelled)
    if match is None:  # not a normalised origin: matches nothing
        return "", "", None
    return match["scheme"], match["host"], match["port"]


def origins(raw: object) -> tuple[str, ...]:
    """The normalised list a ``SetAllowedOrigins`` command may set: at most
    ``MAX_ORIGINS`` http(s) origins of at most ``MAX_ORIGIN_LENGTH`` characters, each
    ``scheme://host[:port]`` (``*.`` allowed before the host), duplicates dropped in order.
    Raises ``InvalidValue("origins", ...)`` naming the first bad entry."""
    if not isinstance(raw, list | tuple):
        raise InvalidValue("origins", "must be a list of origins")
    if len(raw) > MAX_ORIGINS:
        raise InvalidValue("origins", f"at most {MAX_ORIGINS} origins")
    seen: dict[str, None] = {}
    for index, item in enumerate(raw):
        spelled = (
            normalise(item, wildcard=True)
            if isinstance(item, str) and len(item) <= MAX_ORIGIN_LENGTH
            else None
        )
        if spelled is None:
            shown = repr(item)[:80]
            raise InvalidValue(
                "origins",
                f"entry {index} ({shown}) is not an origin: write scheme://host[:port] "
                "with http or https and no path, e.g. https://shop.example.com",
            )
        seen.setdefault(spelled, None)
    return tuple(seen)


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request from ``origin`` (its ``Origin`` header; None = not sent) may send a
    system's events, given the system's normalised ``allowed`` list. An empty list allows
    every origin. No ``Origin`` is a server-side sender, which a web origin list does not
    govern. ``null`` (sandboxed frames, ``file:``) or anything unreadable matches nothing.
    """
    if not allowed or origin is None:
        return True
    spelled = normalise(origin)
    if spelled is None:
        return False
    if spelled in allowed:
        return True
    scheme, host, port = _parts(spelled)
    for pattern in allowed:
        p_scheme, p_host, p_port = _parts(pattern)
        if p_host.startswith("*.") and (p_scheme, p_port) == (scheme, port):
            if host.endswith(p_host[1:]):  # ".example.com": a subdomain, never the domain
                return True
    return False
