"""The identity request models' phone: a blank one is no phone (a create without one, an
update that removes it), never the text "None" (found by the issue 20 clean-up)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.models.identity import ProspectCreate, StudentUpdate


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_phone_is_no_phone(blank: str) -> None:
    created = ProspectCreate(first_name="Ada", last_name="L", email="ada@example.org", phone=blank)
    assert created.phone is None
    assert StudentUpdate(phone=blank).phone == ""  # removes it (None: leaves it as it is)


def test_a_phone_is_normalised_and_a_bad_one_refused() -> None:
    assert StudentUpdate(phone="504-621-8927").phone == "+15046218927"
    with pytest.raises(ValidationError):
        StudentUpdate(phone="not a phone")
