"""POST /api/auth/token: throttled per account and per address before any hashing, and the
same argon2id work whether or not the account exists (issue 7, section 2, item 1).

The app runs in process with fakes behind it: the read model is a dict, and Redis is a
Python model of the Lua script of ``connectors/ratelimit.py`` with a clock the test
moves (the scripts themselves run against Redis in tests/e2e/test_auth_hardening.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from api.app import create_api
from api.deps import Services
from api.routes import auth
from api.security import dummy_password_hash
from connectors import ratelimit
from pipeline.common.settings import Settings
from pipeline.domain.handling import CommandResult
from pipeline.domain.values import HashedPassword, hash_password
from pipeline.projections.users import LOGIN_SQL, VERSION_SQL

PASSWORD = "correct horse battery"
PROBLEM = "application/problem+json"


class BucketsRedis:
    """The token-bucket script of ``connectors/ratelimit.py`` in Python, on a fake clock."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.buckets: dict[str, tuple[float, float]] = {}

    def register_script(self, script: str) -> Callable[..., Any]:
        assert script == ratelimit._TAKE

        async def run(keys: list[str], args: list[float]) -> Any:
            cost, shapes = float(args[0]), [float(a) for a in args[1:]]
            left = []
            for i, key in enumerate(keys):
                rate, burst = shapes[2 * i], shapes[2 * i + 1]
                tokens, ts = self.buckets.get(key, (burst, self.now))
                left.append(min(burst, tokens + max(0.0, self.now - ts) * rate))
            allowed = all(tokens >= cost for tokens in left)  # from every bucket, or none
            for i, key in enumerate(keys):
                if allowed:  # a negative cost gives tokens back
                    left[i] = min(shapes[2 * i + 1], left[i] - cost)
                self.buckets[key] = (left[i], self.now)
            return [int(allowed), *(str(tokens) for tokens in left)]

        return run


@dataclass
class ReadModel:
    """The login query's answer by login name."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        assert sql == LOGIN_SQL
        row = self.users.get((params or {})["login"])
        return [row] if row else []


class Bus:
    async def send(self, command: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stored_hash() -> str:
    return hash_password(PASSWORD).value


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hash the login route verified against, in order."""
    seen: list[str] = []
    real = auth.verify_password

    def counting(hashed: HashedPassword, plain: str) -> bool:
        seen.append(hashed.value)
        return real(hashed, plain)

    monkeypatch.setattr(auth, "verify_password", counting)
    return seen


def user(stored_hash: str, *, status: str = "active") -> dict[str, Any]:
    return {"user_id": "u-1", "role": "student", "status": status, "password_hash": stored_hash}


class Api:
    def __init__(self, read_model: ReadModel, bus: Any = None, **limits: Any) -> None:
        settings = Settings(env="test", jwt_secret="s" * 32, **limits)
        self.redis = BucketsRedis()
        services = Services(
            settings=settings, clickhouse=read_model, redis=self.redis, bus=bus or Bus(),
            keys=None, ingest=None,
        )  # type: ignore[arg-type]  # fmt: skip
        self.app = create_api(services)

    async def login(self, name: str, password: str, *, address: str = "198.51.100.1") -> Any:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(
                "/api/auth/token", data={"username": name, "password": password}
            )


async def test_the_try_after_the_account_limit_is_a_429_before_any_hashing(
    stored_hash: str, hashes: list[str]
) -> None:
    api = Api(ReadModel({"ada@example.org": user(stored_hash)}), login_tries_per_account=3)
    for _ in range(3):
        assert (await api.login("ada@example.org", "wrong password")).status_code == 401
    assert len(hashes) == 3
    # the right password, another spelling of the name, another address: still refused
    refused = await api.login("  ADA@example.org ", PASSWORD, address="198.51.100.2")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"] == "/problems/too-many-logins"
    # 3 tries a minute: the next one in 20 s
    assert refused.headers["retry-after"] == "20"
    assert len(hashes) == 3, "a refused try must not hash"

    api.redis.now += 20  # one try has refilled
    assert (await api.login("ada@example.org", PASSWORD)).status_code == 200
    assert len(hashes) == 4


async def test_the_address_limit_spans_accounts(hashes: list[str]) -> None:
    api = Api(ReadModel(), login_tries_per_address=5)
    for i in range(5):
        assert (await api.login(f"nobody{i}@example.org", "guess")).status_code == 401
    refused = await api.login("nobody5@example.org", "guess")
    assert refused.status_code == 429 and re.fullmatch(r"\d+", refused.headers["retry-after"])
    assert len(hashes) == 5
    # another address is not limited by this one
    assert (await api.login("nobody5@example.org", "guess", address="192.0.2.9")).status_code == 401


async def test_a_try_the_account_refuses_costs_the_address_nothing(stored_hash: str) -> None:
    api = Api(
        ReadModel({"ada": user(stored_hash)}), login_tries_per_account=2, login_tries_per_address=4
    )
    for _ in range(2):
        assert (await api.login("ada", "wrong password")).status_code == 401
    for _ in range(3):
        assert (await api.login("ada", "wrong password")).status_code == 429
    # the address spent 2 of 4: two more tries on other accounts, then refused
    assert (await api.login("bob", "guess")).status_code == 401
    assert (await api.login("eve", "guess")).status_code == 401
    assert (await api.login("mallory", "guess")).status_code == 429


async def test_successful_logins_do_not_use_up_the_limits(stored_hash: str) -> None:
    api = Api(
        ReadModel({"ada": user(stored_hash)}), login_tries_per_account=2, login_tries_per_address=2
    )
    for _ in range(6):
        assert (await api.login("ada", PASSWORD)).status_code == 200
    assert (await api.login("ada", "wrong password")).status_code == 401


@pytest.mark.parametrize("case", ["unknown", "inactive", "deleted", "malformed hash"])
async def test_every_refused_login_verifies_one_argon2id_hash(
    case: str, stored_hash: str, hashes: list[str]
) -> None:
    rows = {
        "unknown": {},
        "inactive": {"ada": user(stored_hash, status="inactive")},
        "deleted": {"ada": user(stored_hash, status="deleted")},
        "malformed hash": {"ada": {**user(stored_hash), "password_hash": "plain"}},
    }[case]
    api = Api(ReadModel(rows))
    response = await api.login("ada", PASSWORD)
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/invalid-credentials"
    assert len(hashes) == 1
    expected = stored_hash if case in ("inactive", "deleted") else dummy_password_hash().value
    assert hashes == [expected]


def test_the_dummy_hash_has_the_parameters_of_real_ones(stored_hash: str) -> None:
    def parameters(phc: str) -> str:
        return phc.split("$")[3]  # $argon2id$v=19$m=19456,t=2,p=1$salt$hash

    dummy = dummy_password_hash().value
    assert dummy.startswith("$argon2id$v=19$")
    assert parameters(dummy) == parameters(stored_hash) == "m=19456,t=2,p=1"
    assert dummy_password_hash() is dummy_password_hash()


class AppliedEverything:
    """A users read model that has applied every version asked about."""

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        assert sql == VERSION_SQL
        return [{"version": 1}]


class RegisteringBus(Bus):
    """Answers every submitted registration as accepted (its user id), and counts them."""

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    async def submit(self, command: Any, **_: Any) -> CommandResult:
        self.submitted.append(command)
        return CommandResult(command_id=command.command_id, status="accepted",
                             aggregate_type="user", aggregate_id=command.aggregate_id,
                             version=1, event_ids=("e-1",))  # fmt: skip


async def test_registration_is_throttled_per_address_before_any_hashing() -> None:
    """Seed 001 (issue 25): past ``register_per_address`` a registration is a 429 with
    ``Retry-After`` and is neither hashed nor sent; another address is not affected."""
    bus = RegisteringBus()
    api = Api(AppliedEverything(), bus, register_per_address=2, register_window_s=60)  # type: ignore[arg-type]

    async def register(n: int, address: str) -> httpx.Response:
        body = {"username": f"reg{n}", "email": f"reg{n}@example.org",
                "password": PASSWORD, "display_name": "Reg Ister"}  # fmt: skip
        transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/api/users/register", json=body)

    answers = [await register(n, "198.51.100.7") for n in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429], [a.text for a in answers]
    assert answers[2].headers["content-type"] == PROBLEM
    assert answers[2].json()["type"] == "/problems/too-many-registrations"
    assert answers[2].headers["Retry-After"] == "30"  # one registration per 30 s refills
    assert len(bus.submitted) == 2
    assert (await register(9, "203.0.113.5")).status_code == 201
