"""``uuid5_text`` is ``str(uuid.uuid5(...))``: event ids already on Kafka and in ClickHouse
were made by the standard library, and a replayed event must get the same id again."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.tracking import MESSAGE_NAMESPACE, TRACKING_EVENT_NAMESPACE
from schemas.envelope import EVENT_NAMESPACE
from schemas.uuids import uuid5_text


@given(
    namespace=st.sampled_from([EVENT_NAMESPACE, MESSAGE_NAMESPACE, TRACKING_EVENT_NAMESPACE])
    | st.uuids(),
    name=st.text(),
)
def test_uuid5_text_is_the_standard_librarys_uuid5(namespace: uuid.UUID, name: str) -> None:
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


def test_a_known_id_stays_the_same() -> None:
    # RFC 9562 appendix A.4: "www.example.com" in the DNS namespace
    assert (
        uuid5_text(uuid.NAMESPACE_DNS, "www.example.com") == "2ed6657d-e927-568b-95e1-2665a8aea6a2"
    )
