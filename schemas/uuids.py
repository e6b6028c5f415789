"""Name-based UUIDs as text, on the hot path.

Every tracking event gets a UUIDv5 event id (and an id-less one a UUIDv5 message id), so
this runs once or twice per event in the API. ``str(uuid.uuid5(ns, name))`` builds a
``UUID`` (an int from the digest, version bits set on the int) only to format it again:
about 2.5x the cost of hashing and formatting the bytes directly, ~5 us of ~70 us per event
in an API worker under load (py-spy, issue 8; docs/benchmarks.md, "Smaller measurements").
"""

from __future__ import annotations

import hashlib
import uuid


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``, byte for byte (RFC 9562 §5.5: SHA-1 of the
    namespace's 16 bytes and the UTF-8 name, first 16 bytes, version 5, variant 10xx),
    as lowercase 8-4-4-4-12 hex."""
    octets = bytearray(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])
    octets[6] = (octets[6] & 0x0F) | 0x50
    octets[8] = (octets[8] & 0x3F) | 0x80
    text = octets.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
