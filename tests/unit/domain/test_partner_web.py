"""A system's allowed web origins and a partner's read tokens, decided and folded (issue 19).
Pure: no services."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.partners.aggregate import ReadToken, decide, evolve
from pipeline.domain.partners.commands import (
    DeactivatePartner,
    IssueReadToken,
    RevokeReadToken,
    SetAllowedOrigins,
)
from pipeline.domain.partners.events import (
    AllowedOriginsSet,
    PartnerDeactivated,
    ReadTokenIssued,
    ReadTokenRevoked,
    SystemDeactivated,
)
from pipeline.domain.partners.origins import MAX_ORIGINS, normalise, origin_allowed, origins
from pipeline.domain.partners.rules import MAX_READ_TOKENS
from pipeline.domain.partners.state import state_from_dict, state_to_dict
from pipeline.domain.results import RejectionReason
from tests.unit.domain.test_partners_decide import (
    KEY1,
    SYSTEM_ID,
    T0,
    base,
    partner,
    rejected,
    system,
)

TOKEN_ID = "3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b"
TOKEN = hashlib.sha256(b"rt_live_secret").hexdigest()


def issue(**kw: Any) -> IssueReadToken:
    fields = {"token_id": TOKEN_ID, "name": " Grafana ", "token_hash": TOKEN,
              "token_prefix": "rt_live_Abcd"}  # fmt: skip
    return IssueReadToken(**base(**(fields | kw)))


def token(**kw: Any) -> ReadToken:
    fields = {"token_id": TOKEN_ID, "name": "Grafana", "token_hash": TOKEN,
              "token_prefix": "rt_live_Abcd", "active": True, "issued_at": T0}  # fmt: skip
    return ReadToken(**(fields | kw))


class TestOrigins:
    @pytest.mark.parametrize(
        ("raw", "spelled"),
        [
            ("https://Shop.Example.com/", "https://shop.example.com"),
            ("https://shop.example.com:443", "https://shop.example.com"),
            ("http://localhost:80", "http://localhost"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[0:0::1]:3000", "http://[::1]:3000"),
            ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ],
    )
    def test_one_spelling(self, raw: str, spelled: str) -> None:
        assert normalise(raw) == spelled

    @pytest.mark.parametrize(
        "raw",
        ["shop.example.com", "ftp://x.com", "https://x.com/path", "https://x.com?q",
         "https://user@x.com", "https://x.com:0", "https://x.com:65536", "https://-x.com",
         "https://bücher.example", "null", "", "https://", "https://*.example.com"],
    )  # fmt: skip
    def test_not_an_origin(self, raw: str) -> None:
        assert normalise(raw) is None

    def test_wildcards_only_in_lists_and_over_two_labels(self) -> None:
        assert normalise("https://*.Example.com", wildcard=True) == "https://*.example.com"
        assert normalise("https://*.com", wildcard=True) is None
        assert normalise("https://*.*.x.com", wildcard=True) is None

    def test_a_list_is_normalised_and_deduplicated_in_order(self) -> None:
        given_ = ["https://B.example", "https://a.example", "https://b.example:443/"]
        assert origins(given_) == ("https://b.example", "https://a.example")

    @pytest.mark.parametrize("raw", ["https://x.com", ["https://x.com", 7], ["x.com"],
                                     ["https://x.com"] * 0 + ["h" * 300]])  # fmt: skip
    def test_a_bad_list_names_the_entry(self, raw: Any) -> None:
        from pipeline.domain.errors import InvalidValue

        with pytest.raises(InvalidValue) as info:
            origins(raw)
        assert info.value.field == "origins"

    def test_at_most_fifty(self) -> None:
        from pipeline.domain.errors import InvalidValue

        many = [f"https://s{i}.example.com" for i in range(MAX_ORIGINS + 1)]
        assert len(origins(many[:MAX_ORIGINS])) == MAX_ORIGINS
        with pytest.raises(InvalidValue):
            origins(many)

    @pytest.mark.parametrize(
        ("origin", "allowed"),
        [
            (None, True),  # a server-side SDK sends no Origin
            ("https://shop.example.com", True),
            ("HTTPS://SHOP.EXAMPLE.COM:443", True),
            ("https://a.b.example.org", True),
            ("https://example.org", False),  # *. is subdomains, not the domain
            ("https://badexample.org", False),
            ("http://a.example.org", False),  # scheme counts
            ("https://a.example.org:8443", False),  # so does the port
            ("https://shop.example.com.evil.net", False),
            ("null", False),
            ("not an origin", False),
        ],
    )
    def test_the_match(self, origin: str | None, allowed: bool) -> None:
        rules = origins(["https://shop.example.com", "https://*.example.org"])
        assert origin_allowed(origin, rules) is allowed

    @given(st.one_of(st.none(), st.text(max_size=60)))
    def test_an_empty_list_allows_every_origin(self, origin: str | None) -> None:
        assert origin_allowed(origin, ()) is True

    @given(st.from_regex(r"https?://[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}(:[1-9][0-9]{0,3})?",
                         fullmatch=True))  # fmt: skip
    def test_a_listed_origin_always_matches_itself(self, origin: str) -> None:
        assert origin_allowed(origin, origins([origin]))
        assert origin_allowed(origin.upper(), origins([origin + "/"]))


class TestSetAllowedOrigins:
    def test_emits_the_normalised_list(self) -> None:
        command = SetAllowedOrigins(**base(system_id=SYSTEM_ID, origins=["https://A.example/"]))
        assert decide(partner(), command) == [
            AllowedOriginsSet(system_id=SYSTEM_ID, origins=("https://a.example",))
        ]

    def test_the_same_list_again_is_a_no_op(self) -> None:
        state = partner(system(allowed_origins=("https://a.example",)))
        command = SetAllowedOrigins(**base(system_id=SYSTEM_ID, origins=["https://A.example"]))
        assert decide(state, command) == []

    def test_refusals(self) -> None:
        bad = SetAllowedOrigins(**base(system_id=SYSTEM_ID, origins=["shop.example.com"]))
        rejected(decide(partner(), bad), RejectionReason.INVALID, "origins")
        unknown = SetAllowedOrigins(**base(system_id="nope", origins=[]))
        rejected(decide(partner(), unknown), RejectionReason.NOT_FOUND, "system_id")

    def test_evolve_and_the_table_form(self) -> None:
        event = AllowedOriginsSet(system_id=SYSTEM_ID, origins=("https://a.example",))
        state = evolve(partner(), event, T0 + timedelta(seconds=1))
        assert state.systems[SYSTEM_ID].allowed_origins == ("https://a.example",)
        assert state_from_dict(state_to_dict(state)) == state


class TestReadTokens:
    def test_issue(self) -> None:
        assert decide(partner(), issue()) == [
            ReadTokenIssued(
                token_id=TOKEN_ID, name="Grafana", token_hash=TOKEN, token_prefix="rt_live_Abcd"
            )
        ]

    @pytest.mark.parametrize(
        ("command", "reason", "field"),
        [
            (issue(token_hash="nope"), RejectionReason.INVALID, "token_hash"),
            (issue(token_prefix="x"), RejectionReason.INVALID, "token_prefix"),
            (issue(name=" "), RejectionReason.INVALID, "name"),
            (issue(token_id="not-a-uuid"), RejectionReason.INVALID, "token_id"),
            (issue(token_hash=KEY1), RejectionReason.ALREADY_EXISTS, "token_hash"),
        ],
    )
    def test_issue_refusals(self, command: IssueReadToken, reason: RejectionReason,
                            field: str) -> None:  # fmt: skip
        rejected(decide(partner(), command), reason, field)

    def test_the_same_id_or_hash_twice(self) -> None:
        state = partner(read_tokens={TOKEN_ID: token()})
        rejected(decide(state, issue()), RejectionReason.ALREADY_EXISTS, "token_id")
        other = "4f5a6b7c-8d9e-4f0a-9b1c-2d3e4f5a6b7c"
        rejected(decide(state, issue(token_id=other)), RejectionReason.ALREADY_EXISTS, "token_hash")

    def test_at_most_twenty_active(self) -> None:
        def nth(i: int) -> ReadToken:
            return token(token_id=f"00000000-0000-4000-8000-{i:012d}",
                         token_hash=hashlib.sha256(f"t{i}".encode()).hexdigest())  # fmt: skip

        full = {t.token_id: t for t in map(nth, range(MAX_READ_TOKENS))}
        rejected(decide(partner(read_tokens=full), issue()), RejectionReason.INVALID_STATE,
                 "token_id")  # fmt: skip
        first = next(iter(full))
        full[first] = token(**{**vars_of(full[first]), "active": False})
        assert decide(partner(read_tokens=full), issue())  # a revoked one frees a place

    def test_revoke(self) -> None:
        state = partner(read_tokens={TOKEN_ID: token()})
        revoke = RevokeReadToken(**base(token_id=TOKEN_ID))
        assert decide(state, revoke) == [ReadTokenRevoked(token_id=TOKEN_ID, token_hash=TOKEN)]
        revoked = evolve(state, ReadTokenRevoked(token_id=TOKEN_ID, token_hash=TOKEN), T0)
        assert revoked.read_tokens[TOKEN_ID] == token(active=False, revoked_at=T0)
        rejected(decide(revoked, revoke), RejectionReason.INVALID_STATE)
        unknown = RevokeReadToken(**base(token_id="x"))
        rejected(decide(state, unknown), RejectionReason.NOT_FOUND, "token_id")

    def test_deactivating_the_partner_revokes_its_tokens(self) -> None:
        state = partner(read_tokens={TOKEN_ID: token()})
        assert decide(state, DeactivatePartner(**base())) == [
            SystemDeactivated(system_id=SYSTEM_ID, key_hash=KEY1),
            ReadTokenRevoked(token_id=TOKEN_ID, token_hash=TOKEN),
            PartnerDeactivated(),
        ]

    def test_the_table_form_keeps_tokens_and_reads_old_states(self) -> None:
        issued = evolve(partner(), ReadTokenIssued(token_id=TOKEN_ID, name="G", token_hash=TOKEN,
                                                   token_prefix="rt_live_Ab"), T0)  # fmt: skip
        assert state_from_dict(state_to_dict(issued)) == issued
        old = state_to_dict(partner())
        del old["read_tokens"]
        for s in old["systems"]:
            del s["allowed_origins"]
        assert state_from_dict(old) == partner()


def vars_of(t: ReadToken) -> dict[str, Any]:
    return {f: getattr(t, f) for f in t.__slots__}  # type: ignore[attr-defined]


class TestReadModelWrites:
    """What ``partner_keys`` puts in Redis for the edge (its ``lookups``)."""

    def test_origins_ride_on_the_key_and_tokens_get_their_own_record(self) -> None:
        import json

        from pipeline.projections.partner_keys.fold import writes
        from pipeline.projections.partner_keys.lookups import KEY, READ_TOKEN

        state = partner(system(allowed_origins=("https://a.example",)),
                        read_tokens={TOKEN_ID: token()})  # fmt: skip
        sets, deletes = writes(None, state, 3)
        key = json.loads(sets[KEY.format(key_hash=KEY1)])
        assert key["origins"] == ["https://a.example"] and key["active"] is True
        grant = json.loads(sets[READ_TOKEN.format(token_hash=TOKEN)])
        assert grant == {"token_id": TOKEN_ID, "partner_id": state.partner_id, "active": True}
        assert deletes == []

        revoked = evolve(state, ReadTokenRevoked(token_id=TOKEN_ID, token_hash=TOKEN), T0)
        sets, _ = writes(state, revoked, 4)
        assert json.loads(sets[READ_TOKEN.format(token_hash=TOKEN)])["active"] is False

        ended = evolve(state, PartnerDeactivated(), T0)
        sets, _ = writes(state, ended, 4)
        assert json.loads(sets[READ_TOKEN.format(token_hash=TOKEN)])["active"] is False
