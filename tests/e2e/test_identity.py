"""Identity (issue 11) through the HTTP API and the live stream, against a real serve
process: prospects (create, update, search, merge, convert), students, instructors, who
may do what, and ``/ws/events`` / ``/api/events/stream`` (auth, filtering, resume)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from deploy.secrets import with_jwt_secret
from tests.support import ServeProcess, wait_for

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery"


def tag() -> str:
    return uuid.uuid4().hex[:10]


def prospect_body(**over: Any) -> dict[str, Any]:
    t = tag()
    return {
        "first_name": f"Ada{t[:4]}",
        "last_name": f"Lovelace{t[4:]}",
        "email": f"ada.{t}@example.org",
        "phone": "(504) 621-8927",
        "source": "web",
        "notes": f"asked about evening classes {t}",
        **over,
    }


def user_client(server: ServeProcess, admin: httpx.Client, role: str, email: str | None = None):
    """A new user of ``role`` (created by the admin, logged in): (client, token, email)."""
    t = tag()
    email = email or f"{role}.{t}@example.org"
    body = {
        "username": f"{role}_{t}", "email": email, "first_name": "Test", "last_name": role,
        "role": role, "password": PASSWORD,
    }  # fmt: skip
    created = admin.post("/api/admin/users", json=body)
    assert created.status_code == 201, created.text

    def login() -> str | None:
        answer = httpx.post(
            f"{server.settings.api_url}/api/auth/token",
            data={"username": body["username"], "password": PASSWORD},
            timeout=30,
        )
        return answer.json()["access_token"] if answer.status_code == 200 else None

    token = wait_for(login, timeout_s=30, what=f"{role} login")
    client = httpx.Client(
        base_url=server.settings.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    return client, token, email


def converted_login(
    server: ServeProcess, staff: httpx.Client, pid: str
) -> tuple[httpx.Client, str]:
    """The login conversion gave prospect ``pid``, its password set through a one-time
    link and signed in: (client, token)."""
    from pipeline.domain.identity.reactions import account_id

    base, uid = server.settings.api_url, account_id(pid)

    def link() -> str | None:  # the login is on its way through its reservations
        answer = staff.post("/api/auth/password-links", json={"user_id": uid})
        return answer.json()["token"] if answer.status_code == 201 else None

    token = wait_for(link, timeout_s=30, what="the converted person's login")
    done = httpx.post(f"{base}/api/auth/password", json={"token": token, "password": PASSWORD})
    assert done.status_code == 200, done.text
    row = httpx.post(f"{base}/api/auth/token", timeout=30,
                     data={"username": _email_of(staff, pid), "password": PASSWORD})  # fmt: skip
    assert row.status_code == 200, row.text
    bearer = row.json()["access_token"]
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {bearer}"}, timeout=60)
    return client, bearer


def _email_of(staff: httpx.Client, pid: str) -> str:
    return str(staff.get(f"/api/prospects/{pid}").json()["email"])


@pytest.fixture(scope="module")
def teacher(server: ServeProcess, admin: httpx.Client) -> Iterator[tuple[httpx.Client, str]]:
    client, token, _ = user_client(server, admin, "teacher")
    with client:
        yield client, token


def create(client: httpx.Client, **over: Any) -> tuple[str, dict[str, Any]]:
    body = prospect_body(**over)
    answer = client.post("/api/prospects", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"], body


def problem(answer: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["type"].endswith(kind), body
    return body


def test_create_read_update_search(teacher: tuple[httpx.Client, str]) -> None:
    client, _ = teacher
    pid, body = create(client)
    # the 201 came once the read model had it: readable at once
    got = client.get(f"/api/prospects/{pid}")
    assert got.status_code == 200, got.text
    row = got.json()
    assert (row["email"], row["phone"], row["status"]) == (body["email"], "+15046218927", "active")
    assert row["version"] == 1 and row["converted"] == []

    updated = client.put(f"/api/prospects/{pid}", json={"notes": "called back", "phone": ""})
    assert updated.status_code == 200, updated.text
    row = client.get(f"/api/prospects/{pid}").json()
    assert (row["notes"], row["phone"], row["version"]) == ("called back", None, 2)
    # an update that changes nothing is accepted, and makes no event
    same = client.put(f"/api/prospects/{pid}", json={"notes": "called back"})
    assert same.status_code == 200 and same.json()["event_ids"] == []

    for query in (body["first_name"][:6], body["last_name"].lower(), body["email"][:9]):
        found = client.get("/api/prospects", params={"search": query}).json()
        assert [p["prospect_id"] for p in found["items"]] == [pid], query
    # the phone was removed: its digits find nothing any more
    other, _ = create(client, phone="+1 312 555 0199")
    for query in ("312555", "+1 312-555", "1312555"):
        found = client.get("/api/prospects", params={"search": query, "page_size": 200}).json()
        assert other in [p["prospect_id"] for p in found["items"]], query
        assert pid not in [p["prospect_id"] for p in found["items"]]
    page = client.get("/api/prospects", params={"page": 1, "page_size": 1}).json()
    assert page["total"] >= 2 and len(page["items"]) == 1


def test_bad_input_gets_a_precise_problem(teacher: tuple[httpx.Client, str]) -> None:
    client, _ = teacher
    pid, body = create(client)
    for bad in ({"email": "nope"}, {"extra": 1}, {"phone": "12"}, {"first_name": ""}):
        problem(client.post("/api/prospects", json={**prospect_body(), **bad}), 422, "validation")
    raw = {"content-type": "application/json"}
    problem(client.post("/api/prospects", content=b"{not json", headers=raw), 400, "malformed-json")
    dup = client.post("/api/prospects", json=prospect_body(email=body["email"].upper()))
    assert problem(dup, 409, "duplicate-email")["field"] == "email"
    problem(client.put(f"/api/prospects/{uuid.uuid4()}", json={"notes": "x"}), 404, "not-found")
    problem(client.get(f"/api/prospects/{uuid.uuid4()}"), 404, "not-found")
    problem(client.post(f"/api/prospects/{pid}/merge", json={"into": pid}), 422, "invalid")
    nowhere = {"into": str(uuid.uuid4())}
    problem(client.post(f"/api/prospects/{pid}/merge", json=nowhere), 404, "not-found")
    problem(client.post(f"/api/prospects/{pid}/convert", json={"role": "dean"}), 422, "validation")


def test_merge_keeps_the_union_and_resolves_to_the_survivor(
    teacher: tuple[httpx.Client, str],
) -> None:
    client, _ = teacher
    survivor, s_body = create(client, phone=None, source=None)
    merged, m_body = create(client, phone="+1 312 555 0178", source="fair")
    answer = client.post(f"/api/prospects/{merged}/merge", json={"into": survivor})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "merged"

    tomb = client.get(f"/api/prospects/{merged}").json()
    assert (tomb["status"], tomb["into_id"]) == ("merged", survivor)
    kept = client.get(f"/api/prospects/{survivor}").json()
    assert kept["email"] == s_body["email"] and m_body["email"] in kept["other_emails"]
    assert kept["phone"] == "+13125550178" and kept["source"] == "fair"
    assert f"{m_body['first_name']} {m_body['last_name']}" in kept["other_names"]
    assert m_body["notes"] in kept["notes"] and s_body["notes"] in kept["notes"]
    # searching the merged one's e-mail finds the survivor
    found = client.get("/api/prospects", params={"search": m_body["email"]}).json()
    assert [p["prospect_id"] for p in found["items"]] == [survivor]

    problem(client.post(f"/api/prospects/{merged}/merge", json={"into": survivor}), 409, "deleted")
    problem(client.put(f"/api/prospects/{merged}", json={"notes": "x"}), 409, "deleted")
    third, _ = create(client)
    refused = client.post(f"/api/prospects/{third}/merge", json={"into": merged})
    problem(refused, 409, "merge-refused")
    assert client.get(f"/api/prospects/{third}").json()["status"] == "active"
    # the merged prospect's e-mail stays taken: a new record of it is a third one
    again = client.post("/api/prospects", json=prospect_body(email=m_body["email"]))
    problem(again, 409, "duplicate-email")


def test_two_opposite_merges_never_form_a_cycle(teacher: tuple[httpx.Client, str]) -> None:
    import concurrent.futures

    client, _ = teacher
    a, _ = create(client)
    b, _ = create(client)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        ab = pool.submit(client.post, f"/api/prospects/{a}/merge", json={"into": b})
        ba = pool.submit(client.post, f"/api/prospects/{b}/merge", json={"into": a})
        codes = sorted([ab.result().status_code, ba.result().status_code])
    assert codes in ([200, 409], [409, 409]), codes
    rows = [client.get(f"/api/prospects/{p}").json() for p in (a, b)]
    assert sum(r["status"] == "merged" for r in rows) <= 1
    assert all(r["status"] in ("active", "merged") for r in rows)


def test_convert_once_per_role_then_students_and_instructors(
    server: ServeProcess, admin: httpx.Client, teacher: tuple[httpx.Client, str]
) -> None:
    client, _ = teacher
    pid, body = create(client)
    made = client.post(f"/api/prospects/{pid}/convert", json={"role": "student"})
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    assert made.headers["location"] == f"/api/students/{sid}"
    twice = client.post(f"/api/prospects/{pid}/convert", json={"role": "student"})
    problem(twice, 409, "already-exists")
    assert client.get(f"/api/prospects/{pid}").json()["converted"] == ["student"]
    student = client.get(f"/api/students/{sid}").json()
    assert (student["prospect_id"], student["email"]) == (pid, body["email"])
    assert student["courses"] == []

    def course(action: str, code: str) -> httpx.Response:
        return client.post(f"/api/students/{sid}/{action}", json={"course": code})

    assert course("enrollments", "cs-101").status_code == 200
    problem(course("enrollments", "CS-101"), 409, "already-exists")
    problem(course("enrollments", "101"), 422, "validation")
    assert client.get(f"/api/students/{sid}").json()["courses"] == ["CS-101"]
    assert course("withdrawals", "CS-101").status_code == 200
    problem(course("withdrawals", "CS-101"), 404, "not-found")
    assert client.put(f"/api/students/{sid}", json={"first_name": "Augusta"}).status_code == 200
    assert client.get(f"/api/students/{sid}").json()["first_name"] == "Augusta"

    made = client.post(f"/api/prospects/{pid}/convert", json={"role": "instructor"})
    assert made.status_code == 201, made.text
    iid = made.json()["id"]
    assert client.put(f"/api/instructors/{iid}", json={"phone": "312-555-0143"}).status_code == 200
    off = client.post(f"/api/instructors/{iid}/deactivate", json={"reason": "left"})
    assert off.status_code == 200, off.text
    assert client.get(f"/api/instructors/{iid}").json()["active"] is False
    problem(client.put(f"/api/instructors/{iid}", json={"first_name": "X"}), 409, "invalid-state")
    listed = client.get("/api/instructors", params={"page_size": 200}).json()
    assert iid in [i["instructor_id"] for i in listed["items"]]

    # a student reads only themselves; writes and prospects are for staff
    own, _ = converted_login(server, client, pid)
    other, _, _ = user_client(server, admin, "student")
    with own, other:
        assert own.get(f"/api/students/{sid}").status_code == 200
        assert [s["student_id"] for s in own.get("/api/students").json()["items"]] == [sid]
        problem(other.get(f"/api/students/{sid}"), 404, "not-found")
        assert other.get("/api/students").json()["items"] == []
        problem(own.get(f"/api/prospects/{pid}"), 403, "forbidden")
        problem(own.post("/api/prospects", json=prospect_body()), 403, "forbidden")
        problem(own.put(f"/api/students/{sid}", json={"first_name": "Me"}), 403, "forbidden")
        problem(own.get(f"/api/instructors/{iid}"), 403, "forbidden")


# -- live ---------------------------------------------------------------------------------


def ws_url(server: ServeProcess, query: str = "") -> str:
    return server.settings.api_url.replace("http", "ws", 1) + "/ws/events" + query


def receive(ws: ClientConnection, timeout: float = 30) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    while True:
        frame = json.loads(ws.recv(timeout=timeout))
        if frame["type"] != "heartbeat":
            return frame


def notes_until(ws: ClientConnection, subject: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Notifications received until one about ``subject``, inclusive."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not any(n["subject"] == subject for n in seen):
        frame = receive(ws, max(0.1, deadline - time.monotonic()))
        assert frame["type"] == "notifications", frame
        seen += frame["items"]
    return seen


def close_code(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=15)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def test_websocket_pushes_changes_and_resumes(
    server: ServeProcess, teacher: tuple[httpx.Client, str]
) -> None:
    client, token = teacher
    with connect(ws_url(server), subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"
        assert receive(ws)["type"] == "ready"
        pid, _ = create(client)
        [note] = [
            n for n in notes_until(ws, f"prospect/{pid}") if n["subject"] == f"prospect/{pid}"
        ]
        assert (note["event_type"], note["aggregate_version"]) == ("ProspectCreated", 1)
        assert set(note) == {"id", "event_type", "subject", "aggregate_version", "at"}
        last_id = note["id"]
    # changes while away are sent first after a reconnect with last_id (first-message auth)
    client.put(f"/api/prospects/{pid}", json={"notes": "while away"})
    with connect(ws_url(server)) as ws:
        ws.send(json.dumps({"type": "auth", "token": token, "last_id": last_id}))
        assert receive(ws)["type"] == "ready"
        missed = [
            n for n in notes_until(ws, f"prospect/{pid}") if n["subject"] == f"prospect/{pid}"
        ]
        assert [(n["event_type"], n["aggregate_version"]) for n in missed] == [
            ("ProspectUpdated", 2)
        ]


def test_websocket_refuses_bad_auth_and_filters_by_role(
    server: ServeProcess, admin: httpx.Client, teacher: tuple[httpx.Client, str]
) -> None:
    client, _ = teacher
    with connect(ws_url(server)) as ws:  # no token: the first message is not an auth
        ws.send(json.dumps({"type": "hello"}))
        assert close_code(ws) == 4401
    with connect(ws_url(server), subprotocols=["bearer", "not.a.jwt"]) as ws:  # type: ignore[list-item]
        assert close_code(ws) == 4401
    settings = with_jwt_secret(server.settings, create=False)
    secret = settings.jwt_secret.get_secret_value()  # type: ignore[union-attr]
    now = int(time.time())
    expired = jwt.encode(
        {"sub": "x", "role": "admin", "iat": now - 600, "exp": now - 60,
         "iss": settings.jwt_issuer, "aud": settings.jwt_audience},
        secret, algorithm="HS256",
    )  # fmt: skip
    with connect(ws_url(server)) as ws:
        ws.send(json.dumps({"type": "auth", "token": expired}))
        assert close_code(ws) == 4401
    with connect(ws_url(server, "?last_id=yesterday"), subprotocols=["bearer", teacher[1]]) as ws:  # type: ignore[list-item]
        assert close_code(ws) == 4400

    # a student: refused prospects, sees only their own student record
    pid, _ = create(client)
    sid = client.post(f"/api/prospects/{pid}/convert", json={"role": "student"}).json()["id"]
    own, own_token = converted_login(server, client, pid)
    own.close()
    with connect(ws_url(server, "?types=prospect"), subprotocols=["bearer", own_token]) as ws:  # type: ignore[list-item]
        assert close_code(ws) == 4403
    other_pid, _ = create(client)
    other_sid = client.post(f"/api/prospects/{other_pid}/convert", json={"role": "student"}).json()[
        "id"
    ]
    with connect(ws_url(server), subprotocols=["bearer", own_token]) as ws:  # type: ignore[list-item]
        assert receive(ws)["type"] == "ready"
        client.post(f"/api/students/{other_sid}/enrollments", json={"course": "MA-201"})
        client.post(f"/api/prospects/{pid}/merge", json={"into": other_pid})
        client.post(f"/api/students/{sid}/enrollments", json={"course": "MA-201"})
        seen = notes_until(ws, f"student/{sid}")
        assert {n["subject"] for n in seen} == {f"student/{sid}"}
        assert [n["event_type"] for n in seen] == ["StudentEnrolled"]


def test_server_sent_events_carry_the_same_notifications(
    server: ServeProcess, teacher: tuple[httpx.Client, str]
) -> None:
    client, token = teacher
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{server.settings.api_url}/api/events/stream"
    assert httpx.get(url, params={"types": "nonsense"}, headers=headers).status_code == 403
    assert httpx.get(url).status_code == 401
    with httpx.stream("GET", url, params={"types": "prospect"}, headers=headers, timeout=30) as sse:
        assert sse.status_code == 200
        lines = sse.iter_lines()
        events: list[tuple[str, dict[str, Any]]] = []
        event = ""
        pid = None
        for line in lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
                if event == "ready":
                    pid, _ = create(client)
                elif events[-1][1].get("subject") == f"prospect/{pid}":
                    break
        assert events[0][0] == "ready"
        assert events[-1][0] == "notification"
        assert events[-1][1]["event_type"] == "ProspectCreated"


def test_a_conversion_refused_for_a_taken_email_can_be_retried(
    teacher: tuple[httpx.Client, str],
) -> None:
    """The student a conversion asks for is refused when another student has the
    e-mail; the prospect is then convertible again (the refusal undoes the conversion)."""
    client, _ = teacher
    first, _ = create(client)
    second, second_body = create(client)
    sid = client.post(f"/api/prospects/{first}/convert", json={"role": "student"}).json()["id"]
    # the first student takes the second prospect's e-mail
    moved = client.put(f"/api/students/{sid}", json={"email": second_body["email"]})
    assert moved.status_code == 200, moved.text
    refused = client.post(f"/api/prospects/{second}/convert", json={"role": "student"})
    assert problem(refused, 409, "duplicate-email")["field"] == "email"
    wait_for(
        lambda: client.get(f"/api/prospects/{second}").json()["converted"] == [],
        timeout_s=30,
        what="the refused conversion undone",
    )
    assert (
        client.put(f"/api/students/{sid}", json={"email": f"moved.{tag()}@example.org"}).status_code
        == 200
    )
    again = client.post(f"/api/prospects/{second}/convert", json={"role": "student"})
    assert again.status_code == 201, again.text
    assert client.get(f"/api/prospects/{second}").json()["converted"] == ["student"]


def test_a_converted_student_signs_in_after_setting_a_password_through_a_one_time_link(
    server: ServeProcess, admin: httpx.Client, teacher: tuple[httpx.Client, str]
) -> None:
    """Issue 22: conversion gives the person a login (no usable password); staff issue a
    one-time link; the person sets a password with it, signs in and sees their record."""
    from pipeline.domain.identity.reactions import account_id

    client, _ = teacher
    pid, body = create(client)
    made = client.post(f"/api/prospects/{pid}/convert", json={"role": "student"})
    assert made.status_code == 201, made.text
    sid, uid = made.json()["id"], made.json()["login_id"]
    assert uid == account_id(pid)
    base = server.settings.api_url
    # the answer came once the login was readable: a link at once
    issued = client.post("/api/auth/password-links", json={"user_id": uid})
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]

    def sign_in(password: str) -> httpx.Response:
        return httpx.post(f"{base}/api/auth/token", timeout=30,
                          data={"username": body["email"], "password": password})  # fmt: skip

    assert sign_in(PASSWORD).status_code == 401  # no password yet
    short = httpx.post(f"{base}/api/auth/password", json={"token": token, "password": "short"})
    problem(short, 422, "validation")  # refused before the link is used up
    done = httpx.post(f"{base}/api/auth/password", json={"token": token, "password": PASSWORD})
    assert done.status_code == 200, done.text
    signed = sign_in(PASSWORD)
    assert signed.status_code == 200, signed.text
    me = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    mine = httpx.get(f"{base}/api/students/{sid}", headers=me, timeout=30)
    assert mine.status_code == 200 and mine.json()["email"] == body["email"], mine.text
    # single use; an unknown token; a login with a password gets no new link
    again = httpx.post(f"{base}/api/auth/password", json={"token": token, "password": "x" * 12})
    problem(again, 409, "link-used")
    unknown = httpx.post(f"{base}/api/auth/password", json={"token": "nope", "password": "x" * 12})
    problem(unknown, 410, "link-expired")
    problem(client.post("/api/auth/password-links", json={"user_id": uid}), 409, "password-set")
    nobody = client.post("/api/auth/password-links", json={"user_id": str(uuid.uuid4())})
    problem(nobody, 404, "not-found")
    student_asks = httpx.post(f"{base}/api/auth/password-links", json={"user_id": uid},
                              headers=me, timeout=30)  # fmt: skip
    problem(student_asks, 403, "forbidden")


def test_admins_create_students_and_instructors_directly_and_reactivate_instructors(
    admin: httpx.Client, teacher: tuple[httpx.Client, str]
) -> None:
    """Seed 003: a student or instructor with no prospect behind it (admins only), and an
    instructor deactivated then reactivated."""
    staff, _ = teacher
    body = {"first_name": "Dana", "last_name": "Direct", "email": f"dana.{tag()}@example.org"}
    made = admin.post("/api/students", json=body)
    assert made.status_code == 201, made.text
    student = admin.get(made.headers["Location"])
    assert student.status_code == 200, student.text
    assert (student.json()["email"], student.json()["prospect_id"]) == (body["email"], "")
    problem(admin.post("/api/students", json=body), 409, "duplicate-email")
    problem(
        staff.post("/api/students", json={**body, "email": f"t.{tag()}@x.org"}), 403, "forbidden"
    )

    made = admin.post("/api/instructors", json={**body, "email": f"ira.{tag()}@example.org"})
    assert made.status_code == 201, made.text
    iid = made.json()["id"]
    problem(staff.post(f"/api/instructors/{iid}/reactivate"), 409, "invalid-state")  # active
    assert (
        staff.post(f"/api/instructors/{iid}/deactivate", json={"reason": "sabbatical"}).status_code
        == 200
    )
    problem(staff.put(f"/api/instructors/{iid}", json={"last_name": "X"}), 409, "invalid-state")
    back = staff.post(f"/api/instructors/{iid}/reactivate")
    assert back.status_code == 200, back.text
    assert staff.get(f"/api/instructors/{iid}").json()["active"] is True
    assert staff.put(f"/api/instructors/{iid}", json={"last_name": "Back"}).status_code == 200
