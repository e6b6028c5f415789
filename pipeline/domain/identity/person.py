"""What the person aggregates (students and instructors) share: a contact that a conversion
creates and an update changes field by field, the e-mail it claims, and the table form.

A person is created by a conversion (its id is ``prospects.person_id(prospect, role)``) or
directly by an admin (no prospect: ``prospect_id`` is empty) and holds a
:class:`~pipeline.domain.identity.profile.Contact`. :class:`Person` names one
aggregate's classes and id field; its ``decide``/``evolve`` do the shared part and hand
every other command or event to the aggregate's own rules (students: courses; instructors:
deactivation). All pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.identity.profile import Contact
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import canonical_uuid, email_claim

__all__ = [
    "CreatePerson",
    "Person",
    "UpdatePerson",
    "claims_for",
    "claims_held",
    "person_from_dict",
    "person_to_dict",
]

S = TypeVar("S")
Decision = list[Any] | Rejection


class CreatePerson(Command):
    """Create the person a conversion asked for, with the prospect's contact values (raw:
    validated again by ``decide``), or one an admin creates directly (``prospect_id``
    empty). A subclass narrows ``type`` to its own literal."""

    type: str
    prospect_id: str = ""
    first_name: str
    last_name: str
    email: str
    phone: str | None = None


class UpdatePerson(Command):
    """Replace the fields given (None: unchanged; a blank phone removes it). A subclass
    narrows ``type`` to its own literal."""

    type: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Person(Generic[S]):
    """One person aggregate's own names.

    noun: the aggregate type, in rejection messages ("student not found"). id_field: its
    id's name in the state and in every event (``"student_id"``). state: the state class,
    built as ``state(id, prospect_id, contact, created_at, updated_at)``. create/update:
    its :class:`CreatePerson`/:class:`UpdatePerson` commands; created/updated: their
    events, whose fields are the id, (created only) ``prospect_id``, and the contact's.
    """

    noun: str
    id_field: str
    state: Callable[..., S]
    create: type[CreatePerson]
    update: type[UpdatePerson]
    created: type
    updated: type

    def decide(
        self,
        state: S | None,
        command: Command,
        rules: Mapping[type, Callable[[S, Any], Decision]],
        refusal: Callable[[S], Rejection | None] = lambda _state: None,
    ) -> Decision:
        """Create -> created; update -> updated (no event when nothing changes); any other
        command -> ``rules[type(command)](state, command)`` on an existing person that
        ``refusal`` lets through.

        Rejections: ALREADY_EXISTS (a second create), NOT_FOUND (anything else on no
        person), ``refusal(state)``'s (before an update or a rule), INVALID (an
        ``InvalidValue`` from a parse or a rule; ``field`` set). Raises TypeError for a
        command with no rule.
        """
        try:
            return self._decide(state, command, rules, refusal)
        except InvalidValue as exc:
            return Rejection(RejectionReason.INVALID, exc.message, exc.field)

    def _decide(
        self,
        state: S | None,
        command: Command,
        rules: Mapping[type, Callable[[S, Any], Decision]],
        refusal: Callable[[S], Rejection | None],
    ) -> Decision:
        if isinstance(command, self.create):
            if state is not None:
                return Rejection(RejectionReason.ALREADY_EXISTS, f"{self.noun} already exists")
            # the contact first: a command with several bad values is rejected naming a
            # contact field, as it always was
            c = Contact.parse(command.first_name, command.last_name, command.email, command.phone)
            ids = {
                self.id_field: canonical_uuid("aggregate_id", command.aggregate_id),
                "prospect_id": canonical_uuid("prospect_id", command.prospect_id)
                if command.prospect_id
                else "",
            }
            return [self.created(**ids, **asdict(c))]
        if state is None:
            return Rejection(RejectionReason.NOT_FOUND, f"{self.noun} not found")
        rejection = refusal(state)
        if rejection is not None:
            return rejection
        if isinstance(command, self.update):
            contact: Contact = state.contact
            c = contact.updated(command.first_name, command.last_name, command.email, command.phone)
            if c == contact:
                return []
            return [self.updated(**{self.id_field: getattr(state, self.id_field)}, **asdict(c))]
        rule = rules.get(type(command))
        if rule is None:
            raise TypeError(f"no decide rule for {type(command).__name__}")
        return rule(state, command)

    def evolve(
        self,
        state: S | None,
        event: Any,
        occurred_at: datetime,
        rules: Mapping[type, Callable[[S, Any, datetime], S]],
    ) -> S:
        """Created -> a new state (``created_at`` = ``updated_at`` = ``occurred_at`` in UTC);
        updated -> the new contact; any other event -> ``rules[type(event)](state, event,
        at)`` with ``at`` in UTC. Raises InvalidTransition for an event the state cannot
        take (a create on an existing person, anything else before it, no rule)."""
        at = occurred_at.astimezone(UTC)
        if isinstance(event, self.created):
            if state is not None:
                existing = getattr(state, self.id_field)
                raise InvalidTransition(f"{event.event_type} for existing {self.noun} {existing}")
            contact = Contact(event.first_name, event.last_name, event.email, event.phone)
            return self.state(getattr(event, self.id_field), event.prospect_id, contact, at, at)
        if state is None:
            raise InvalidTransition(f"{event.event_type} before {self.created.__name__}")
        if isinstance(event, self.updated):
            contact = Contact(event.first_name, event.last_name, event.email, event.phone)
            return replace(state, contact=contact, updated_at=at)
        rule = rules.get(type(event))
        if rule is None:
            raise InvalidTransition(f"no evolve rule for {type(event).__name__}")
        return rule(state, event, at)


def claims_for(command: Command) -> tuple[str, ...]:
    """The e-mail a create or an update sets (``values.email_claim``): e-mail is unique
    per aggregate type (issue 11)."""
    if isinstance(command, CreatePerson | UpdatePerson):
        return email_claim(command.email)
    return ()


def claims_held(state: Any) -> frozenset[str]:
    """The person's e-mail, whatever its state: a deactivated instructor keeps it (an
    operator may reactivate it). Empty for None."""
    return frozenset() if state is None else frozenset({f"email:{state.contact.email}"})


def person_to_dict(id_field: str, state: Any) -> dict[str, Any]:
    """The keys every person state has in its table form: ``id_field``, ``prospect_id``,
    the contact's four (flat), ``created_at``/``updated_at`` as ISO-8601 text."""
    return {
        id_field: getattr(state, id_field),
        "prospect_id": state.prospect_id,
        **asdict(state.contact),
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
    }


def person_from_dict(id_field: str, d: dict[str, Any]) -> dict[str, Any]:
    """The state class's keyword arguments from :func:`person_to_dict`'s keys. Raises
    KeyError or ValueError on malformed input."""
    return {
        id_field: d[id_field],
        "prospect_id": d["prospect_id"],
        "contact": Contact(d["first_name"], d["last_name"], d["email"], d["phone"]),
        "created_at": datetime.fromisoformat(d["created_at"]),
        "updated_at": datetime.fromisoformat(d["updated_at"]),
    }
