"""What a web page loads to send events with Segment's browser SDK (analytics.js 2.0,
``@segment/analytics-next``), served here so that ``cdnURL`` can point at this API:

- ``GET /v1/projects/{writeKey}/settings``: the settings analytics.js fetches first
  (``browser/index.js: loadCDNSettings``), with the ``Segment.io`` integration's
  ``apiHost`` pointing at this API's ``/v1``, so each call goes to ``/v1/t``, ``/v1/p``...
- ``GET /analytics.js/v1/{writeKey}/analytics.min.js``: the standalone build, with the
  write key embedded as Segment's CDN does (its ``window.analyticsWriteKey``).
- ``GET /analytics-next/bundles/{name}``: the chunks that build loads on demand (its
  webpack public path is ``<cdn>/analytics-next/bundles/``).

The build is vendored from npm, unmodified (``api/static/vendor/analytics-next``, MIT);
``tests/e2e/test_browser_sdk.py`` holds it equal to the npm package it installs, and
drives both builds in Chromium. An unknown or deactivated key gets 404, as Segment's CDN answers.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from api.deps import ServicesDep
from api.problems import Problem
from pipeline.projections.partner_keys.lookups import API_KEY_PREFIX

router = APIRouter(tags=["ingestion"])

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor" / "analytics-next"
ANALYTICS_NEXT_VERSION = "1.84.3"
_BUNDLE_RE = re.compile(r"[A-Za-z0-9_-]+\.bundle\.[0-9a-f]{20}\.js")
_EMBEDDED_KEY = b'"__WRITE_KEY__"'
# Settings change with an admin's action (a key rotated away): a minute at most in a cache.
_SETTINGS_CACHE = {"Cache-Control": "public, max-age=60"}
# Chunk names carry their content hash: never stale.
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


async def _active_key(services: Any, write_key: str) -> None:
    """Raises ``Problem`` 404 unless ``write_key`` is an active system's write key."""
    system = await services.keys.resolve(write_key)
    if system is None or not system.active:
        raise Problem(404, "not-found", "no active source with this write key")


def _api_host(request: Request, public_url: str) -> tuple[str, str]:
    """(protocol, host + ``/v1``) as analytics.js wants them (``plugins/segmentio``:
    ``protocol + "://" + apiHost + "/" + first letter of the call``)."""
    base = public_url.rstrip("/") if public_url else str(request.base_url).rstrip("/")
    protocol, _, host = base.partition("://")
    return protocol, f"{host}/v1"


def settings_for(write_key: str, protocol: str, api_host: str) -> dict[str, Any]:
    """The CDN settings of one source: only the ``Segment.io`` destination (this API), no
    device-mode destinations, middleware or remote plugins (nothing else is loaded), and
    analytics.js's own metrics off (``sampleRate`` 0: they would go to ``<apiHost>/m``)."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


@router.get("/v1/projects/{write_key}/settings")
async def source_settings(write_key: str, request: Request, services: ServicesDep) -> Response:
    """analytics.js's settings for the source whose write key is ``write_key``: its
    ``Segment.io`` integration sends to this API. 404 for an unknown or deactivated key."""
    await _active_key(services, write_key)
    protocol, host = _api_host(request, services.settings.public_url)
    return JSONResponse(settings_for(write_key, protocol, host), headers=_SETTINGS_CACHE)


@cache
def _standalone() -> bytes:
    return (VENDOR / "standalone.js").read_bytes()


@router.get("/analytics.js/v1/{write_key}/analytics.min.js", include_in_schema=False)
async def analytics_js(write_key: str, services: ServicesDep) -> Response:
    """The standalone analytics.js with ``write_key`` embedded; 404 for an unknown key."""
    await _active_key(services, write_key)
    if not write_key.startswith(API_KEY_PREFIX):  # resolved, so ASCII and key-shaped
        raise Problem(404, "not-found", "no active source with this write key")
    script = _standalone().replace(_EMBEDDED_KEY, orjson.dumps(write_key), 1)
    return Response(script, media_type="text/javascript", headers=_SETTINGS_CACHE)


@router.get("/analytics-next/bundles/{name}", include_in_schema=False)
async def analytics_js_chunk(name: str) -> Response:
    """One of the chunks the standalone build loads on demand (content-hashed names)."""
    path = VENDOR / name
    if not _BUNDLE_RE.fullmatch(name) or not path.is_file():
        raise Problem(404, "not-found", f"no bundle {name[:100]!r}")
    return FileResponse(path, media_type="text/javascript", headers=_IMMUTABLE)
