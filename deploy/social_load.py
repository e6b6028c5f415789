"""Loading a real follower network through the public API: registrations, follows and
chirps, each user acting with their own token (``streamfold load-social``).

The network is an anonymised Twitter ego network (``deploy/data/hersheycareers.json``,
MIT; ``[src, trg]`` read as "src follows trg"). Only the ``users`` best-connected
accounts and the follows among them are loaded: each registration costs an argon2 hash,
and a first run should take a minute, not an hour. Chirp texts are the tweets of
``../shared/data/social`` when that folder exists (read, never copied into the repo),
else the fortunes of Debian's ``fortune-mod``.

Idempotent: Idempotency-Keys derive from the node ids, and the generated passwords are
kept in ``<home>/social-users.json``, so a second run creates nothing new.
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from deploy.api_calls import ApiCalls
from deploy.binaries import ensure_debian_binary
from pipeline.common.settings import Settings

NETWORK = Path("deploy/data/hersheycareers.json")
TWEETS = Path("../shared/data/social/tweets_emoji_train.txt")
FORTUNES = Path("/usr/share/games/fortunes/fortunes")
PASSWORD_BYTES = 12


@dataclass
class Member:
    node: str
    username: str
    password: str
    id: str = ""
    token: str = ""


def subnetwork(path: Path, size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """The ``size`` nodes of highest degree (ties by id) and the edges among them."""
    data = orjson.loads(path.read_bytes())
    degree: Counter[str] = Counter()
    for src, trg in data["edges"]:
        degree[str(src)] += 1
        degree[str(trg)] += 1
    nodes = sorted(degree, key=lambda n: (-degree[n], int(n)))[:size]
    kept = set(nodes)
    edges = [(str(s), str(t)) for s, t in data["edges"] if str(s) in kept and str(t) in kept]
    return nodes, edges


def chirp_texts() -> list[str]:
    """Tweets when ``../shared/data`` is there, else Debian's fortunes (installed on
    first use). Blank and over-long lines are left out."""
    if TWEETS.exists():
        lines = TWEETS.read_text(errors="replace").splitlines()
    else:
        ensure_debian_binary("fortune", "fortune-mod")
        lines = [" ".join(f.split()) for f in FORTUNES.read_text(errors="replace").split("\n%\n")]
    return [t.strip() for t in lines if t.strip() and len(t.strip()) <= 280]


class SocialLoader(ApiCalls):
    """Registers, signs in, follows and chirps, ``concurrency`` requests at a time."""

    def __init__(self, settings: Settings, token: str, concurrency: int) -> None:
        super().__init__(settings.api_url, concurrency)
        self.settings = settings
        self.admin = {"Authorization": f"Bearer {token}"}

    async def register(self, m: Member) -> None:
        """Create ``m`` as a student through the admin route (an operator loading data is
        not a self-registration: those are throttled per address), then sign in as them."""
        body = {
            "username": m.username,
            "email": f"{m.username}@social.example.org",
            "password": m.password,
            "first_name": "Chirper",
            "last_name": m.node,
            "role": "student",
        }
        headers = {**self.admin, "Idempotency-Key": f"social-network:{m.node}"}
        r = await self._call("create", "POST", "/api/admin/users", json=body, headers=headers)
        if r.status_code < 300:
            m.id = r.json()["id"]
        elif r.status_code == 409 and r.json().get("reason") == "duplicate_username":
            # registered by an earlier run (before loads went through the admin route)
            self.outcomes[f"create: {r.status_code} duplicate-username"] -= 1
            self.outcomes["create: already there"] += 1
        login = {"username": m.username, "password": m.password}
        r = await self._call("sign in", "POST", "/api/auth/token", data=login)
        if r.status_code == 200:
            m.token = r.json()["access_token"]
            m.id = m.id or _subject(m.token)

    async def follow(self, follower: Member, followee: Member) -> None:
        headers = {
            "Authorization": f"Bearer {follower.token}",
            "Idempotency-Key": f"social-follow:{follower.node}:{followee.node}",
        }
        await self._call("follow", "POST", f"/api/users/{followee.id}/follow", headers=headers)

    async def chirp(self, author: Member, n: int, text: str) -> None:
        headers = {
            "Authorization": f"Bearer {author.token}",
            "Idempotency-Key": f"social-chirp:{author.node}:{n}",
        }
        await self._call("chirp", "POST", "/api/chirps", json={"text": text}, headers=headers)


def _subject(token: str) -> str:
    # the registration was answered in an earlier run: the token names the user
    payload = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def _members(settings: Settings, nodes: list[str]) -> list[Member]:
    # passwords made once per install and kept with its other local secrets
    path = settings.home.resolve() / "social-users.json"
    saved: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
    for node in nodes:
        saved.setdefault(node, secrets.token_urlsafe(PASSWORD_BYTES))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(saved))
    path.chmod(0o600)
    return [Member(node, f"hs_{node}", saved[node]) for node in nodes]


async def _load(settings: Settings, token: str, size: int, per_user: int, concurrency: int) -> Any:
    nodes, edges = subnetwork(NETWORK, size)
    members = _members(settings, nodes)
    by_node = {m.node: m for m in members}
    texts = chirp_texts()
    rng = random.Random(7)  # the same texts on every run: reruns are duplicates
    loader = SocialLoader(settings, token, concurrency)
    async with loader.client:
        with Progress(transient=False) as progress:
            await loader._each(progress, "registering", [loader.register(m) for m in members])
            ready = [m for m in members if m.token]
            follows = [
                loader.follow(by_node[s], by_node[t])
                for s, t in edges
                if by_node[s].token and by_node[t].id
            ]
            await loader._each(progress, "following", follows)
            chirps = [loader.chirp(m, n, rng.choice(texts)) for m in ready for n in range(per_user)]
            await loader._each(progress, "chirping", chirps)
        reader = max(ready, key=lambda m: sum(1 for s, _ in edges if s == m.node))
        feed = await loader.client.get(
            f"/api/users/{reader.id}/feed",
            params={"limit": 5},
            headers={"Authorization": f"Bearer {reader.token}"},
        )
    return loader.outcomes, reader, feed.json().get("items", []), len(edges)


def load_social(
    settings: Settings, token: str, *, users: int, chirps_per_user: int, concurrency: int
) -> int:
    """Load the network, print the outcomes and a sample feed. Returns the number of
    refused requests (a rerun answers with the first run's results: none)."""
    outcomes, reader, items, edges = asyncio.run(
        _load(settings, token, users, chirps_per_user, concurrency)
    )
    out = Console()
    out.print(f"social network: {users} users, {edges} follows among them")
    for outcome, count in sorted(outcomes.items()):
        out.print(f"  {count:6d}  {outcome}")
    table = Table(title=f"feed of @{reader.username} (newest 5)")
    for column in ("when (UTC)", "author", "chirp"):
        table.add_column(column)
    for item in items:
        when = datetime.fromtimestamp(item["at_ms"] / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
        table.add_row(when, "@" + item["author"]["username"], item["text"])
    out.print(table)
    out.print(
        f"Sign in at {settings.api_url}/timeline as {reader.username} "
        f"(password in {settings.home}/social-users.json, node {reader.node})"
    )
    return sum(n for k, n in outcomes.items() if not k.endswith(": ok"))
