"""Types of the compiled ingestion core (``src/lib.rs`` documents each call)."""

from typing import Literal, final

class Fallback(Exception):
    """The input is outside what the compiled path reproduces exactly: run the Python path
    (for the whole request, or, raised by ``Validator()``, for that system's requests)."""

@final
class Validator:
    """A structure's JSON Schema, compiled; raises ``Fallback`` for schemas left to Python."""

    def __init__(self, schema_json: str) -> None: ...
    def is_valid_json(self, instance_json: str) -> bool: ...

Outcome = (
    tuple[Literal["recorded"], str, bytes]
    | tuple[Literal["raw"], str, bytes]
    | tuple[Literal["rejected"], str, str, object]
)

@final
class Request:
    """A request body split as ``tracking.read_request`` splits it."""

    @property
    def write_key(self) -> str | None: ...
    @property
    def count(self) -> int: ...
    def decode(
        self,
        *,
        system_id: str,
        partner_id: str,
        received_at_us: int,
        producer: str,
        max_event_bytes: int,
        fingerprint: bytes,
        structures: dict[str, tuple[Validator, bool, int]],
        reject_unknown: bool,
    ) -> list[Outcome]: ...

def parse_request(body: bytes, call_type: str | None) -> Request: ...
def batch_response(outcomes: list[Outcome]) -> bytes: ...
