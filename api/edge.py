"""Which paths are the partner-facing edge: the routes Segment's SDKs call (ingestion, the
settings analytics.js loads, the analytics.js bundle). One predicate, so CORS
(``api.cors``) and the error bodies SDKs read (``api.problems``) agree on it.
"""

from __future__ import annotations

_READ_PREFIX = "/v1/analytics"
_EDGE_PREFIXES = ("/v1/", "/analytics.js/", "/analytics-next/")


def is_edge_path(path: str) -> bool:
    """True for ``/v1/*`` (but not ``/v1/analytics*``, which reads with a secret),
    ``/analytics.js/*`` and ``/analytics-next/*``."""
    if path == _READ_PREFIX or path.startswith(_READ_PREFIX + "/"):
        return False
    return path.startswith(_EDGE_PREFIXES)
