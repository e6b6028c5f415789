"""Ingestion at the edge: one SDK request in, one reply out (``Ingest.accept``).

The routes (``api/routes/ingest.py``) hand over the body and what the HTTP layer knows (the
key from the headers, the ``Origin``, the call type of the path); everything else is here,
in order: the body (gzip, size, JSON), the key (headers or ``writeKey``) and its system,
the system's allowed origins, the batch size, the rate limits, the SDK rules
(``pipeline.domain.tracking``), the decision to record (``pipeline.edge.recording``), Kafka,
and the answer. Refusals are ``Problem`` (RFC 9457), which the API renders.

Statuses follow the retry logic of Segment's libraries (segment-analytics-python 2.4
``consumer.py``; analytics-next 1.84 ``shared-dispatcher.js``): 2xx is done, and Segment's
own API answers 200 ``{"success": true}``, so this does too (a 202 made one SDK log an
error for every batch); 408, 410, 429, 460 and 5xx other than 501/505 are retried,
honouring ``Retry-After``; any other 4xx drops the whole batch. So a batch with refused
events is still a 200 that lists them, never a 4xx that would drop the good ones; a
whole-request 4xx (bad key, not JSON, corrupt gzip, too large) is one a retry cannot fix;
a rate limit (429) and an unavailable Kafka (503) are retried.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors import metrics
from connectors.exceptions import KafkaDeliveryError
from connectors.kafka import AsyncProducer, Deliveries
from connectors.ratelimit import Buckets, Decision, Limit
from pipeline.common import topics
from pipeline.common.problems import RETRY_AFTER_S, Problem
from pipeline.domain import jsontext
from pipeline.domain.errors import InvalidValue
from pipeline.domain.partners.origins import origin_allowed
from pipeline.domain.tracking import (
    MAX_EVENT_BYTES,
    CallType,
    EventRejection,
    RejectReason,
    SdkRequest,
    TrackedEvent,
    decode_events,
    read_request,
    rejection_record,
)
from pipeline.edge.recording import Recorder
from pipeline.projections.partner_keys.lookups import (
    API_KEY_PREFIX,
    READ_TOKEN_PREFIX,
    KeyResolver,
    SystemKey,
)

log = structlog.get_logger(__name__)

MAX_BATCH_EVENTS = 1000
_GZIP = frozenset({"gzip", "x-gzip"})  # RFC 9110 8.4.1.3: x-gzip is an alias of gzip
_IDENTITY = frozenset({"", "identity"})
# A single call's refused event, by reason; any other reason is a 400.
_REJECTION_STATUS = {RejectReason.TOO_LARGE: 413, RejectReason.TIMESTAMP_OUT_OF_RANGE: 422}
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Refused = tuple[Any, EventRejection]
"""An event refused at the edge: (the event as sent, why)."""


@dataclass(frozen=True, slots=True)
class SdkCall:
    """One ingestion request as the edge sees it. body: as received (gzip or not);
    content_encoding: the header, lowercased (``""`` if none); key: the key the headers
    carry (``Authorization``, ``X-API-Key``), None if none; origin: the ``Origin`` header,
    None if none (a server); call_type: the type the path sets (``/v1/identify``), None
    where each event names its own (``/v1/batch``)."""

    body: bytes
    content_encoding: str = ""
    key: str | None = None
    origin: str | None = None
    call_type: CallType | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer: HTTP status and a JSON body (UTF-8 bytes)."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A request's events decoded by the Python path (``raw`` and ``parsed``, in order) or
    by the compiled core (``outcomes``: one tuple per event, see ``streamfold_edge``)."""

    system: SystemKey
    raw: list[Any]
    parsed: list[TrackedEvent | EventRejection]
    received_at: datetime
    outcomes: list[tuple[Any, ...]] | None = None

    @property
    def accepted(self) -> list[TrackedEvent]:
        return [p for p in self.parsed if isinstance(p, TrackedEvent)]

    @property
    def refused(self) -> list[Refused]:
        return [(r, p) for r, p in zip(self.raw, self.parsed, strict=True)
                if isinstance(p, EventRejection)]  # fmt: skip


def gunzip(data: bytes, limit: int) -> bytes:
    """The decompressed ``data`` (RFC 1952 gzip; members one after another are concatenated,
    as gzip does), refused past ``limit`` bytes.

    Incremental: zlib is asked for at most ``limit + 1`` bytes, so a decompression bomb
    (kilobytes that inflate to gigabytes) costs at most that much memory and work.
    Raises ``Problem`` 413 ``too-large`` past the limit, 400 ``malformed-gzip`` for data
    that is not gzip, fails its CRC or is cut short.
    """
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
        try:
            # max_length >= 1 here (0 would mean "no limit"): out never passes limit below.
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise Problem(400, "malformed-gzip", f"the body is not valid gzip: {exc}") from exc
        if len(out) > limit:
            raise Problem(413, "too-large", f"the decompressed body is over {limit} bytes")
        if not inflater.eof:
            raise Problem(400, "malformed-gzip", "the gzip body is cut short")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)


def _json(status: int, body: dict[str, Any]) -> Reply:
    return Reply(status, jsontext.dumps(body))


class Ingest:
    """Takes SDK requests (:meth:`accept`): authenticates them by their system's write
    key, charges them to the system's and its partner's token buckets and publishes the
    accepted events (key = system id): recorded, to ``tracking.events``; what ``recorder``
    refuses, to ``tracking.raw``, where the validation consumer takes a second look and
    dead-letters it with the reasons; events refused at the edge, to ``tracking.dlq``."""

    def __init__(
        self,
        producer: AsyncProducer,
        buckets: Buckets,
        *,
        recorder: Recorder,
        keys: KeyResolver,
        per_system: Limit,
        per_partner: Limit,
        max_body_bytes: int,
        core: Any = None,
        fingerprint: bytes = b"",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``core``: the compiled module (``pipeline.common.compiled.load``), None for the Python
        path only; ``fingerprint``: the writer fingerprint of the TrackingEventRecorded
        layout both paths write, which the core stamps on each record; ``clock``: the
        received time of a request (tz-aware UTC)."""
        self.core = core
        self.clock = clock
        self.fingerprint = fingerprint
        self.producer = producer
        self.buckets = buckets
        self.recorder = recorder
        self.keys = keys
        self.per_system = per_system
        self.per_partner = per_partner
        self.max_body_bytes = max_body_bytes

    async def accept(self, call: SdkCall) -> Reply:
        """The reply to one SDK request: 200 ``{"success": true, ...}`` once every
        accepted event is in Kafka (acks=all): a batch lists a result per event, in
        order, ``{"index", "message_id", "status": "accepted"}`` or ``{"index", "status":
        "rejected", "reason", "message"}``; a single call answers its ``message_id``.

        Raises ``Problem``: 400 (not JSON, corrupt gzip, malformed shape; a single call's
        refused event), 401 (no, unknown, revoked or conflicting key), 403 (a read token;
        an ``Origin`` the system does not allow), 413 (too large, too many events), 415
        (an encoding other than gzip), 422 (a single call's time out of range), 429 (rate
        limited, ``Retry-After``), 503 (Kafka did not acknowledge, ``Retry-After``); and
        what Redis raises when it does not answer (the API answers 503).
        """
        decoded = await self._decode(call)
        await self._admit(decoded)
        if decoded.outcomes is not None:
            return self._compiled_reply(decoded.outcomes, call.call_type)
        if call.call_type is not None:
            (result,) = decoded.parsed
            if isinstance(result, EventRejection):
                # 422: well-formed, but a time the store does not hold (the message names
                # the accepted range); a retry of the same event cannot succeed either
                status = _REJECTION_STATUS.get(result.reason, 400)
                slug = result.reason.replace("_", "-")
                raise Problem(status, slug, result.message, reason=result.reason)
            return _json(200, {"success": True, "message_id": result.message_id,
                               "status": "accepted"})  # fmt: skip
        results: list[dict[str, Any]] = []
        for index, p in enumerate(decoded.parsed):
            if isinstance(p, TrackedEvent):
                results.append({"index": index, "message_id": p.message_id, "status": "accepted"})
            else:
                results.append({"index": index, "status": "rejected", "reason": str(p.reason),
                                "message": p.message})  # fmt: skip
        accepted = len(decoded.accepted)
        return _json(200, {"success": True, "accepted": accepted,
                           "rejected": len(results) - accepted, "results": results})  # fmt: skip

    def _compiled_reply(self, outcomes: list[tuple[Any, ...]], call_type: CallType | None) -> Reply:
        """The reply ``accept`` makes, from the compiled core's outcomes."""
        if call_type is None:
            return Reply(200, self.core.batch_response(outcomes))
        ((kind, first, second, *_),) = outcomes
        if kind == "rejected":  # (kind, reason, message, raw): as the Python path refuses
            reason = RejectReason(first)
            raise Problem(_REJECTION_STATUS.get(reason, 400), first.replace("_", "-"), second,
                          reason=first)  # fmt: skip
        return _json(200, {"success": True, "message_id": first, "status": "accepted"})

    def _bytes(self, call: SdkCall) -> bytes:
        """The request body after ``Content-Encoding`` (gzip or none). The limit applies to
        what is parsed: the body as sent and, for gzip, decompressed."""
        raw, limit = call.body, self.max_body_bytes
        if len(raw) > limit:
            raise Problem(413, "too-large", f"body is {len(raw)} bytes; the limit is {limit}")
        if call.content_encoding in _GZIP:
            raw = gunzip(raw, limit)
        elif call.content_encoding not in _IDENTITY:
            message = (
                f"Content-Encoding {call.content_encoding!r} is not supported; send gzip or none"
            )
            raise Problem(415, "unsupported-encoding", message)
        return raw

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return jsontext.loads(raw)
        except RecursionError as exc:
            # nesting deeper than the parser's stack: still a malformed request, and
            # Python's own message ("maximum recursion depth exceeded ...") says nothing
            raise Problem(400, "malformed-json", "request body is nested too deeply") from exc
        except ValueError as exc:  # the message names the line and column: for the client
            raise Problem(400, "malformed-json", f"request body is not valid JSON: {exc}") from exc

    async def system_of(
        self, key: str | None, write_key: str | None, origin: str | None
    ) -> SystemKey:
        """The active system whose write key authenticates the request: the headers' key,
        else ``write_key`` (Segment's ``writeKey`` in the body), from a page of an
        ``origin`` the system allows (``pipeline.domain.partners.origins``).

        Raises ``Problem`` 401 (``WWW-Authenticate``): no key (``unauthorized``), a header
        key and a different write key (``conflicting-keys``: whose events these are is
        unknowable), an unknown key (``unknown-key``), a deactivated system
        (``revoked-key``); 403 ``read-token-cannot-write`` for a read token, 403
        ``origin-not-allowed`` for a page the system does not allow.
        """
        if key and write_key and write_key != key:
            message = "the writeKey in the body is not the API key in the headers"
            raise Problem(401, "conflicting-keys", message, headers=_UNAUTHORIZED)
        key = key or write_key
        if not key:
            raise Problem(401, "unauthorized", "an API key is required", headers=_UNAUTHORIZED)
        if key.startswith(READ_TOKEN_PREFIX):
            raise Problem(
                403, "read-token-cannot-write",
                "a read token only reads analytics; send events with the system's write key "
                f"({API_KEY_PREFIX}…)", use="write-key",
            )  # fmt: skip
        system = await self.keys.resolve(key)
        if system is None:
            raise Problem(401, "unknown-key", "unknown API key", headers=_UNAUTHORIZED)
        if not system.active:
            raise Problem(401, "revoked-key", "this API key is revoked", headers=_UNAUTHORIZED)
        if not origin_allowed(origin, system.allowed_origins):
            # Stores nothing: checked before the rate limit and before any event is decoded.
            raise Problem(
                403, "origin-not-allowed",
                f"pages from {(origin or '')[:200]!r} may not send this system's events; an "
                "admin adds the origin to the system's allowed origins",
            )  # fmt: skip
        return system

    async def _decode(self, call: SdkCall) -> _Decoded:
        """Authenticate, check and charge ``call``, then decode its events: with the
        compiled core when it takes the request, else (not built, or a request it leaves
        to Python: ``streamfold_edge.Fallback``) with the Python path, which is the
        reference the core is held equal to (``tests/unit/edge``)."""
        body = self._bytes(call)
        compiled = self._parse_compiled(body, call.call_type)
        if compiled is not None:
            write_key, count = compiled.write_key, compiled.count
        else:
            sdk_request = self._read(body, call.call_type)
            write_key, count = sdk_request.write_key, len(sdk_request.events)
        system = await self.system_of(call.key, write_key, call.origin)
        if count > MAX_BATCH_EVENTS:
            message = f"batch has {count} events; the limit is {MAX_BATCH_EVENTS}"
            raise Problem(413, "too-many-events", message)
        await self._charge(system, count)
        received_at = self.clock()
        if compiled is not None:
            outcomes = await self._decode_compiled(compiled, system, received_at)
            if outcomes is not None:
                self._count_refusals(o[1] for o in outcomes if o[0] == "rejected")
                return _Decoded(system, [], [], received_at, outcomes)
            sdk_request = self._read(body, call.call_type)  # rare: a structure left to Python
        parsed = decode_events(
            sdk_request,
            system_id=system.system_id,
            partner_id=system.partner_id,
            received_at=received_at,
        )
        self._count_refusals(str(p.reason) for p in parsed if isinstance(p, EventRejection))
        return _Decoded(system, sdk_request.events, parsed, received_at)

    @staticmethod
    def _count_refusals(reasons: Any) -> None:
        for reason, count in Counter(reasons).items():
            metrics.TRACKING_EVENTS.labels("ingest", "rejected", reason).inc(count)

    def _read(self, body: bytes, call_type: CallType | None) -> SdkRequest:
        """The Python path's request: JSON, then ``read_request``. Raises ``Problem`` 400."""
        try:
            return read_request(self._json(body), call_type)
        except InvalidValue as exc:
            raise Problem(400, "malformed", exc.message) from exc

    def _parse_compiled(self, body: bytes, call_type: CallType | None) -> Any:
        """The compiled core's request, or None: no core, or one it leaves to Python (the
        Python path then answers it, refusals and their messages included)."""
        if self.core is None:
            return None
        try:
            return self.core.parse_request(body, None if call_type is None else call_type.value)
        except self.core.Fallback:
            metrics.EDGE_PATH.labels("python").inc()
            return None

    async def _decode_compiled(
        self, request: Any, system: SystemKey, received_at: datetime
    ) -> list[tuple[Any, ...]] | None:
        """The compiled core's outcome of each event, or None when the system's view or
        one of its structures is left to Python. Raises what Redis raises when the view is
        not cached and Redis does not answer."""
        structures = self.recorder.structures
        view = await structures.view(system.system_id)
        compiled = None if view is None else structures.compiled(system.system_id, view)
        if compiled is None:
            metrics.EDGE_PATH.labels("python").inc()
            return None
        try:
            outcomes = request.decode(
                system_id=system.system_id,
                partner_id=system.partner_id,
                received_at_us=_micros(received_at),
                producer=self.recorder.producer_name,
                max_event_bytes=MAX_EVENT_BYTES,
                fingerprint=self.fingerprint,
                structures=compiled,
                reject_unknown=view["unknown_events"] == "reject",
            )
        except self.core.Fallback:
            metrics.EDGE_PATH.labels("python").inc()
            return None
        metrics.EDGE_PATH.labels("compiled").inc()
        return outcomes

    async def _charge(self, system: SystemKey, events: int) -> None:
        """Charge a request's events, accepted or not (a request without events costs
        one), before any is decoded: a flood of invalid events costs its sender like valid
        ones. Raises ``Problem`` 429 ``rate-limited`` with ``Retry-After`` (whole seconds,
        >= 1) and ``limit`` ("system" or "partner": which bucket ran dry)."""
        decision = await self.charge(system, max(1, events))
        if decision.allowed:
            return
        retry = max(1, round(decision.retry_after_s + 0.5))
        whose = "this partner's systems" if decision.limited_by == "partner" else "this key"
        raise Problem(
            429, "rate-limited", f"rate limit for {whose} exceeded; retry in {retry} s",
            headers={"Retry-After": str(retry)}, limit=decision.limited_by,
        )  # fmt: skip

    async def _admit(self, decoded: _Decoded) -> None:
        """Produce the accepted events and the refusals and wait for every ack. Raises
        ``Problem`` 503 with ``Retry-After`` when Kafka did not take them all."""
        if decoded.outcomes is not None:
            produce = self.publish_outcomes(decoded.outcomes, decoded.system, decoded.received_at)
            accepted = [o for o in decoded.outcomes if o[0] != "rejected"]
        else:
            accepted, refused = decoded.accepted, decoded.refused
            if not accepted and not refused:
                return
            produce = self.publish(
                accepted, refused, system=decoded.system, received_at=decoded.received_at
            )
        try:
            recorded = await produce
        except (KafkaDeliveryError, BufferError) as exc:
            # the client learns to retry; the driver's text (brokers, internals) is logged
            log.warning("tracking events not stored", events=len(accepted), error=repr(exc))
            raise Problem(
                503, "kafka-unavailable",
                "events not stored: Kafka did not acknowledge them; retry shortly",
                headers={"Retry-After": RETRY_AFTER_S},
            ) from exc  # fmt: skip
        metrics.TRACKING_EVENTS.labels("ingest", "accepted", "").inc(len(accepted))
        # validation's verdict, made here; the rest get theirs from the validation consumer
        metrics.TRACKING_EVENTS.labels("validation", "accepted", "").inc(recorded)

    async def charge(self, system: SystemKey, events: int) -> Decision:
        """Take ``events`` tokens (events submitted, accepted or not) from the bucket of
        ``system`` (its API key) and from its partner's, shared by all the partner's
        systems: from both or, when either is short, from neither. ``limited_by`` of a
        refusal is ``"system"`` or ``"partner"``.

        Raises ``redis`` connection/timeout errors when Redis does not answer (the API
        turns them into a 503).
        """
        decision = await self.buckets.take(
            {
                f"ingest:system:{system.system_id}": self.per_system,
                f"ingest:partner:{system.partner_id}": self.per_partner,
            },
            cost=events,
        )
        if decision.limited_by is None:
            return decision
        kind = "partner" if decision.limited_by.startswith("ingest:partner:") else "system"
        return Decision(False, decision.tokens_left, decision.retry_after_s, kind)

    async def publish_outcomes(
        self, outcomes: Sequence[tuple[Any, ...]], system: SystemKey, received_at: datetime
    ) -> int:
        """Produce the compiled core's outcomes as :meth:`publish` produces the Python
        path's: recorded -> ``tracking.events``, raw -> ``tracking.raw``, rejected ->
        ``tracking.dlq`` (``rejection_record``); then wait once for every ack. Returns how
        many were recorded here. Raises ``KafkaDeliveryError`` as :meth:`publish` does."""
        batch = self.producer.deliveries()
        key = system.system_id.encode()
        recorded = 0
        for kind, first, second, *rest in outcomes:
            if kind == "recorded":
                batch.produce(topics.TRACKING_EVENTS, second, key=key)
                recorded += 1
            elif kind == "raw":
                batch.produce(topics.TRACKING_RAW, second, key=key)
            else:
                rejection = EventRejection(RejectReason(first), second)
                _dead_letter(batch, rest[0], rejection, system, received_at)
        await batch.wait()
        return recorded

    async def publish(
        self,
        events: list[TrackedEvent],
        refused: Sequence[Refused] = (),
        *,
        system: SystemKey | None = None,
        received_at: Any = None,
    ) -> int:
        """Enqueue all, then wait once for every ack. Returns how many were recorded here
        (the rest went to ``tracking.raw``). ``refused`` (events the edge refused, from
        ``system`` at ``received_at``) go to ``tracking.dlq`` with the reasons
        (``rejection_record``), in the same wait: a 200 means they are listed too.

        Recording at the edge skips a Kafka round trip and a consumer for nearly every
        event: at B=1000 the validation consumer was the slowest stage (~55 µs an event
        of CPU, decoding JSON the API had just encoded).

        Raises:
            KafkaDeliveryError: some event was not acknowledged; the SDK should retry
                the request (message ids make the retry harmless).
            redis errors: a system's structures are not cached and Redis does not
                answer (the API answers 503).
        """
        batch = self.producer.deliveries()
        recorded = 0
        for e in events:
            key = e.system_id.encode()
            outcome = await self.recorder.record(e)
            if isinstance(outcome, bytes):
                batch.produce(topics.TRACKING_EVENTS, outcome, key=key)
                recorded += 1
            else:
                batch.produce(topics.TRACKING_RAW, e.to_json(), key=key)
        if refused:
            if system is None or received_at is None:
                raise ValueError("refused events need the system and the received time")
            for raw, rejection in refused:
                _dead_letter(batch, raw, rejection, system, received_at)
        await batch.wait()
        return recorded


def _dead_letter(
    batch: Deliveries, raw: Any, rejection: EventRejection, system: SystemKey, at: datetime
) -> None:
    """Queue the ``tracking.dlq`` record of an event refused at the edge."""
    body = rejection_record(raw, rejection, system_id=system.system_id,
                            partner_id=system.partner_id, received_at=at)  # fmt: skip
    headers = [("reason", rejection.message.encode()[:4000]), ("agent", b"ingest")]
    batch.produce(topics.TRACKING_DLQ, _dead_letter_json(body), key=system.system_id.encode(),
                  headers=headers)  # fmt: skip


def _micros(t: datetime) -> int:
    """Microseconds since the Unix epoch of tz-aware ``t``, exactly (no float)."""
    return (t - _EPOCH) // timedelta(microseconds=1)


def _dead_letter_json(body: dict[str, Any]) -> bytes:
    """``body`` as JSON, whatever its refused payload holds: what made an event malformed
    (NaN, a lone surrogate, nesting past the encoder's stack) must not make its dead letter
    unwritable, so such a payload is written as its ``repr`` (bounded) instead."""
    try:
        return jsontext.dumps(body)
    except (TypeError, ValueError, RecursionError):
        payload = body["event"]["payload"]
        try:
            shown = repr(payload)[:65536]
        except RecursionError:
            shown = "(nested too deeply to show)"
        event = {**body["event"], "payload": shown}
        return jsontext.dumps({**body, "event": event}, sort_keys=False)
