"""Command ids and results per caller (issue 7, section 4): an ``Idempotency-Key`` names a
command only together with its caller, and a result is shown to its issuer and admins."""

from __future__ import annotations

import uuid

from api.routes.commands import may_read
from api.security import Principal
from pipeline.domain.handling import CommandResult
from pipeline.write.routing import command_id_for

ADA, BOB = str(uuid.uuid4()), str(uuid.uuid4())


def test_one_key_from_two_callers_names_two_commands() -> None:
    for key in ("retry-1", str(uuid.uuid4())):
        mine, theirs = command_id_for(key, caller=ADA), command_id_for(key, caller=BOB)
        assert mine != theirs
        assert command_id_for(key, caller=ADA) == mine  # a retry is the same command
        assert uuid.UUID(mine).version == 5


def test_the_key_and_caller_cannot_be_shifted_into_each_other() -> None:
    assert command_id_for("b\nc", caller="a") != command_id_for("c", caller="a\nb")


def test_without_a_key_every_command_is_new() -> None:
    assert command_id_for(None, caller=ADA) != command_id_for(None, caller=ADA)


def test_unscoped_ids_keep_their_old_meaning() -> None:
    """Ids the API derives from another id (a partner's system id) call without a caller."""
    key = str(uuid.uuid4())
    assert command_id_for(key) == key
    assert command_id_for("system:x") == command_id_for("system:x")


def result(actor: str | None) -> CommandResult:
    return CommandResult(
        command_id="c", status="accepted", aggregate_type="user", aggregate_id="u",
        version=1, actor=actor,
    )  # fmt: skip


def test_a_result_is_for_its_issuer_and_admins() -> None:
    assert may_read(Principal(ADA, "student"), result(ADA))  # the issuer, whatever its role
    assert not may_read(Principal(BOB, "teacher"), result(ADA))
    assert may_read(Principal(BOB, "admin"), result(ADA))
    # a tool's command, or a result stored before results carried their actor
    assert not may_read(Principal(BOB, "student"), result(None))
    assert may_read(Principal(BOB, "admin"), result(None))
