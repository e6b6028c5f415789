"""The social app through the HTTP API, against a real serve process (issue 10):
registration, chirps, follows, feeds, the celebrity pull, live feeds over SSE.

The session's serve process draws the celebrity line at 3 followers (tests/conftest.py),
so a celebrity takes four registrations, not ten thousand.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis

from pipeline.domain.chirps.commands import PostChirp
from pipeline.domain.follows.aggregate import follow_id
from pipeline.domain.follows.commands import FollowUser
from pipeline.domain.users.commands import DeactivateUser
from pipeline.write.aggregates import aggregate_of
from pipeline.write.codecs import encode_command
from pipeline.write.command_bus import CommandBus
from pipeline.write.routing import ClaimKeys
from tests.support import Endpoints, ServeProcess

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


class User:
    def __init__(self, server: ServeProcess, name: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.username = f"{name}_{tag}"
        base = server.settings.api_url
        body = {
            "username": self.username,
            "email": f"{name}.{tag}@example.org",
            "password": "correct horse battery",
            "display_name": f"{name.title()} Example",
        }
        created = httpx.post(f"{base}/api/users/register", json=body, timeout=30)
        assert created.status_code == 201, created.text
        self.id = created.json()["id"]
        token = httpx.post(
            f"{base}/api/auth/token",
            data={"username": self.username, "password": body["password"]},
            timeout=30,
        )
        assert token.status_code == 200, token.text
        self.token = token.json()["access_token"]
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def chirp(self, text: str) -> str:
        response = self.http.post("/api/chirps", json={"text": text})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def follow(self, other: User) -> httpx.Response:
        return self.http.post(f"/api/users/{other.id}/follow")

    def feed(self, **params: Any) -> list[dict[str, Any]]:
        response = self.http.get(f"/api/users/{self.id}/feed", params=params)
        assert response.status_code == 200, response.text
        return response.json()["items"]


@pytest.fixture
def make(server: ServeProcess) -> Iterator[Any]:
    made: list[User] = []

    def new(name: str) -> User:
        made.append(User(server, name))
        return made[-1]

    yield new
    for user in made:
        user.http.close()


@pytest.fixture
def store(endpoints: Endpoints) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(endpoints.redis_url)
    yield client
    client.close()


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


def test_fan_out_backfill_unfollow_delete(make: Any, store: redis.Redis) -> None:
    alice, bob, carol = make("alice"), make("bob"), make("carol")
    assert bob.follow(alice).status_code == 201
    first = alice.chirp("hello, followers")
    # answered once projected: in bob's timeline already, hydrated
    [item] = bob.feed()
    assert item["id"] == first and item["text"] == "hello, followers"
    assert item["author"] == {
        "id": alice.id,
        "username": alice.username,
        "display_name": "Alice Example",
    }
    assert store.zscore(f"tl:home:{bob.id}", first) is not None

    second = alice.chirp("second")
    assert carol.follow(alice).status_code == 201
    assert ids(carol.feed()) == [second, first]  # backfilled, newest first

    page = carol.feed(limit=1)
    response = carol.http.get(f"/api/users/{carol.id}/feed", params={"limit": 1})
    cursor = response.json()["next_cursor"]
    rest = carol.http.get(f"/api/users/{carol.id}/feed", params={"limit": 1, "cursor": cursor})
    assert ids(page) + ids(rest.json()["items"]) == [second, first]

    unfollowed = carol.http.delete(f"/api/users/{alice.id}/follow")
    assert unfollowed.status_code == 200, unfollowed.text
    assert carol.feed() == []

    deleted = alice.http.delete(f"/api/chirps/{first}")
    assert deleted.status_code == 200, deleted.text
    assert ids(bob.feed()) == [second]
    assert ids(alice.http.get(f"/api/users/{alice.id}/chirps").json()["items"]) == [second]
    assert alice.http.get(f"/api/chirps/{first}").status_code == 404
    assert store.zscore(f"tl:home:{bob.id}", first) is None

    followers = alice.http.get(f"/api/users/{alice.id}/followers").json()
    assert followers["count"] == 1 and followers["items"][0]["username"] == bob.username
    following = bob.http.get(f"/api/users/{bob.id}/following").json()
    assert [u["id"] for u in following["items"]] == [alice.id]


def test_a_follow_backfills_up_to_the_timeline_cap(make: Any, store: redis.Redis) -> None:
    """Seed 001: following copies the followee's chirps into the timeline up to its cap
    (800 by default), not only the newest hundred."""
    alice, bob = make("alice"), make("bob")
    posted = [alice.chirp(f"chirp {n}") for n in range(120)]
    assert bob.follow(alice).status_code == 201  # answered once the backfill is applied
    assert store.zcard(f"tl:home:{bob.id}") == len(posted)
    assert ids(bob.feed(limit=3)) == posted[:-4:-1]


def test_celebrity_chirps_are_pulled_not_fanned_out(make: Any, store: redis.Redis) -> None:
    star = make("star")
    fans = [make(f"fan{i}") for i in range(3)]
    for fan in fans:
        assert fan.follow(star).status_code == 201
    assert store.sismember("tl:celebrities", star.id)
    chirp = star.chirp("to all my fans")
    for fan in fans:
        assert store.zscore(f"tl:home:{fan.id}", chirp) is None  # no fan-out
        assert ids(fan.feed()) == [chirp]  # pulled at read time
    # a new follower of a celebrity: no backfill, the pull shows the chirp
    late = make("late")
    assert late.follow(star).status_code == 201
    assert store.zcard(f"tl:home:{late.id}") == 0
    assert ids(late.feed()) == [chirp]


def test_refusals(make: Any) -> None:
    alice, bob = make("alice"), make("bob")
    empty = alice.http.post("/api/chirps", json={"text": "   "})
    assert empty.status_code == 422 and empty.headers["content-type"] == PROBLEM
    long = alice.http.post("/api/chirps", json={"text": "x" * 281})
    assert long.status_code == 422, long.text
    # 280 code points after NFC: e + combining accent composes to one
    assert alice.http.post("/api/chirps", json={"text": "e\u0301" * 280}).status_code == 201
    assert alice.http.post("/api/chirps", content=b"{not json").status_code == 422
    assert alice.follow(alice).status_code == 422
    assert alice.follow(bob).status_code == 201
    again = alice.follow(bob)
    assert again.status_code == 409 and again.json()["reason"] == "already_exists"
    assert alice.http.delete(f"/api/users/{bob.id}/follow").status_code == 200
    assert alice.http.delete(f"/api/users/{bob.id}/follow").status_code == 404
    assert alice.http.post(f"/api/users/{uuid.uuid4()}/follow").status_code == 404
    mine = alice.chirp("mine")
    assert bob.http.delete(f"/api/chirps/{mine}").status_code == 403
    assert bob.http.get(f"/api/users/{alice.id}/feed").status_code == 403
    bad = alice.http.get(f"/api/users/{alice.id}/feed", params={"cursor": "nope"})
    assert bad.status_code == 422
    assert httpx.post(f"{alice.http.base_url}/api/chirps", json={"text": "x"}).status_code == 401


async def test_a_deactivated_user_is_neither_followed_nor_posts_even_before_the_read_model_knows(
    make: Any, endpoints: Endpoints
) -> None:
    """Issue 22, race 2: the followee (the author) admits a follow (a chirp) in its own
    command order, so a follow or chirp decided after a deactivation is refused however
    far behind the read models are. The commands go straight to Kafka, each after the
    deactivation, with no wait for any read model; on a main that checked the users
    read model in the API, both were accepted."""
    alice, bob = make("alice"), make("bob")
    bus = CommandBus(
        endpoints.kafka_bootstrap,
        client_id="test-admission",
        timeout_s=30.0,
        claim_keys=ClaimKeys(b"k" * 32),  # none of these commands claims anything
    )
    await bus.start()

    def fields(aggregate_id: str) -> dict[str, Any]:
        command_id = str(uuid.uuid4())
        return {"command_id": command_id, "aggregate_id": aggregate_id,
                "issued_at": datetime.now(UTC), "actor": alice.id}  # fmt: skip

    async def straight(command: Any) -> Any:
        """Produce to the command's own topic, as a script would, and wait for its result."""
        topic = aggregate_of(command).spec.commands_topic
        await bus.producer.produce(
            topic, encode_command(command), key=command.aggregate_id.encode()
        )
        result = await bus.result_of(command.command_id)
        assert result is not None, f"no result for {command}"
        return result

    try:
        accepted = await straight(
            FollowUser(**fields(follow_id(bob.id, alice.id)), follower_id=bob.id,
                       followee_id=alice.id)
        )  # fmt: skip
        assert accepted.status == "accepted", accepted  # an active followee admits
        await bus.send(DeactivateUser(**fields(bob.id)))
        follow = await straight(
            FollowUser(**fields(follow_id(alice.id, bob.id)), follower_id=alice.id,
                       followee_id=bob.id)
        )  # fmt: skip
        assert (follow.status, follow.reason) == ("rejected", "user_inactive"), follow
        chirp = await straight(
            PostChirp(**fields(str(uuid.uuid4())), author_id=bob.id, text="after the end")
        )
        assert (chirp.status, chirp.reason) == ("rejected", "user_inactive"), chirp
    finally:
        await bus.stop()
    again = alice.follow(bob)  # through the API: refused whichever check sees it first
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("/user-inactive"), again.text


def _events(lines: Iterator[str], want: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The next ``want`` events, (event, id, data); comments (heartbeats) skipped."""
    got: list[tuple[str, str, dict[str, Any]]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            if name:  # "" is a comment line
                fields[name] = value.strip()
            continue
        if "data" in fields:
            got.append((fields.get("event", ""), fields.get("id", ""), json.loads(fields["data"])))
            if len(got) == want:
                return got
        fields = {}
    raise AssertionError(f"stream ended after {got}")


def _in_background(fn: Any) -> threading.Thread:
    thread = threading.Thread(target=fn)
    thread.start()
    return thread


def test_live_feed_pushes_and_resumes(make: Any) -> None:
    alice, bob = make("alice"), make("bob")
    assert bob.follow(alice).status_code == 201
    url = f"/api/users/{bob.id}/feed/stream"
    with bob.http.stream("GET", url, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        [(kind, _, _)] = _events(lines, 1)
        assert kind == "ready"  # subscribed: what is posted from now on is pushed
        poster = _in_background(lambda: alice.chirp("live one"))
        [(kind, first_id, first)] = _events(lines, 1)
        poster.join()
    assert kind == "chirp" and first["text"] == "live one"
    assert first["author"]["id"] == alice.id
    missed = alice.chirp("while you were away")
    with bob.http.stream("GET", url, headers={"Last-Event-ID": first_id}) as response:
        [ready, (kind, _, resumed)] = _events(response.iter_lines(), 2)
    assert ready[0] == "ready" and kind == "chirp" and resumed["id"] == missed
    assert bob.http.get(url, headers={"Last-Event-ID": "garbage"}).status_code == 422
    assert alice.http.get(url).status_code == 403
