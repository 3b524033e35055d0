"""The fake GitHub behaves like GitHub where our code depends on it (auth, pagination, limits, 422s)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from tests.fakes.github import FakeGitHub, commentable_lines, file_patch, serve_fake, shared_app_keys

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def app_jwt(app_id: int = 1, *, lifetime: int = 540) -> str:
    now = int(time.time()) - 60
    payload = {"iss": str(app_id), "iat": now, "exp": now + lifetime}
    return jwt.encode(payload, shared_app_keys().private_pem, algorithm="RS256")


@pytest.fixture
def fake() -> FakeGitHub:
    fake = FakeGitHub(1, shared_app_keys().public_pem)
    repo = fake.add_repo("octo", "hello", installation_id=7)
    fake.add_pull(
        repo,
        1,
        base={"a.py": "".join(f"line {i}\n" for i in range(1, 41))},
        head={"a.py": "".join(f"line {i}\n" if i != 20 else "changed\n" for i in range(1, 41)), "b.py": "new\n"},
    )
    fake.add_repo("other", "private", installation_id=8)
    return fake


@pytest.fixture
async def client(fake: FakeGitHub) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=fake.transport(), base_url="http://github.test") as c:
        yield c


async def token_for(client: httpx.AsyncClient, installation_id: int = 7) -> dict[str, str]:
    r = await client.post(
        f"/app/installations/{installation_id}/access_tokens", headers={"Authorization": f"Bearer {app_jwt()}"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"].endswith("Z")
    return {"Authorization": f"token {r.json()['token']}"}


async def test_app_endpoints_need_a_valid_app_jwt(client: httpx.AsyncClient) -> None:
    assert (await client.get("/app")).status_code == 401
    other_key = jwt.encode(
        {"iss": "1", "iat": 0, "exp": 1}, "a-shared-secret-that-is-long-enough-32b", algorithm="HS256"
    )
    assert (await client.get("/app", headers={"Authorization": f"Bearer {other_key}"})).status_code == 401
    assert (await client.get("/app", headers={"Authorization": f"Bearer {app_jwt(2)}"})).status_code == 401
    too_long = app_jwt(lifetime=3600)
    assert (await client.get("/app", headers={"Authorization": f"Bearer {too_long}"})).status_code == 401
    ok = await client.get("/app", headers={"Authorization": f"Bearer {app_jwt()}"})
    assert ok.status_code == 200
    assert ok.json()["slug"] == "diffwise"


async def test_repo_endpoints_need_an_installation_token_for_that_repo(client: httpx.AsyncClient) -> None:
    assert (await client.get("/repos/octo/hello")).status_code == 401
    bad = await client.get("/repos/octo/hello", headers={"Authorization": "token ghs_nope"})
    assert bad.status_code == 401
    assert bad.json()["message"] == "Bad credentials"
    # the App JWT is not an installation token
    assert (await client.get("/repos/octo/hello", headers={"Authorization": f"Bearer {app_jwt()}"})).status_code == 401
    auth = await token_for(client)
    assert (await client.get("/repos/octo/hello", headers=auth)).json()["default_branch"] == "main"
    assert (await client.get("/repos/other/private", headers=auth)).status_code == 404


async def test_expired_token_is_refused(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    fake.token_ttl = 0
    auth = await token_for(client)
    assert (await client.get("/repos/octo/hello", headers=auth)).status_code == 401


async def test_files_are_paginated_with_link_headers(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    repo = fake.repo("octo/hello")
    fake.add_pull(repo, 2, head={f"f{i:03}.txt": f"{i}\n" for i in range(250)})
    auth = await token_for(client)
    first = await client.get("/repos/octo/hello/pulls/2/files", params={"per_page": 100}, headers=auth)
    assert len(first.json()) == 100
    assert 'rel="next"' in first.headers["link"]
    assert "page=2" in first.headers["link"]
    assert 'rel="last"' in first.headers["link"]
    assert "page=3" in first.headers["link"]
    last = await client.get("/repos/octo/hello/pulls/2/files", params={"per_page": 100, "page": 3}, headers=auth)
    assert len(last.json()) == 50
    assert 'rel="next"' not in last.headers["link"]


async def test_diff_media_type_and_its_300_file_limit(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    auth = await token_for(client)
    diff = await client.get("/repos/octo/hello/pulls/1", headers=auth | {"Accept": "application/vnd.github.diff"})
    assert diff.status_code == 200
    assert "diff --git a/a.py b/a.py" in diff.text
    assert "+changed" in diff.text
    assert "--- /dev/null" in diff.text
    fake.add_pull(fake.repo("octo/hello"), 3, head={f"g{i}.txt": "x\n" for i in range(301)})
    refused = await client.get("/repos/octo/hello/pulls/3", headers=auth | {"Accept": "application/vnd.github.diff"})
    assert refused.status_code == 406
    assert "maximum number of files (300)" in refused.json()["message"]


async def test_contents_json_raw_and_absent(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    auth = await token_for(client)
    pull = fake.repo("octo/hello").pulls[1]
    as_json = await client.get("/repos/octo/hello/contents/b.py", params={"ref": pull.head_sha}, headers=auth)
    assert base64.b64decode(as_json.json()["content"]) == b"new\n"
    raw = await client.get(
        "/repos/octo/hello/contents/b.py",
        params={"ref": pull.head_sha},
        headers=auth | {"Accept": "application/vnd.github.raw"},
    )
    assert raw.content == b"new\n"
    assert (await client.get("/repos/octo/hello/contents/b.py", headers=auth)).status_code == 404  # not on main
    fake.set_file(fake.repo("octo/hello"), "main", "big.bin", b"x" * 1_100_000)
    big = (await client.get("/repos/octo/hello/contents/big.bin", headers=auth)).json()
    assert big["encoding"] == "none"
    assert big["content"] == ""
    assert big["size"] == 1_100_000


async def test_review_comment_outside_the_diff_is_a_422(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    auth = await token_for(client)
    url = "/repos/octo/hello/pulls/1/reviews"
    outside = {"event": "COMMENT", "body": "x", "comments": [{"path": "a.py", "line": 5, "body": "no"}]}
    r = await client.post(url, json=outside, headers=auth)
    assert r.status_code == 422
    assert r.json()["message"] == "Unprocessable Entity"
    assert r.json()["errors"] == ["Pull request review thread line must be part of the diff"]
    assert fake.repo("octo/hello").reviews == []
    inside = {
        "event": "COMMENT",
        "body": "summary",
        "comments": [
            {"path": "a.py", "line": 20, "side": "RIGHT", "body": "changed line"},
            {"path": "a.py", "start_line": 18, "line": 22, "body": "context range in one hunk"},
            {"path": "a.py", "line": 20, "side": "LEFT", "body": "removed line"},
        ],
    }
    r = await client.post(url, json=inside, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "COMMENTED"
    repo = fake.repo("octo/hello")
    assert len(repo.reviews) == 1
    assert len(repo.review_comments) == 3
    too_long = {"event": "COMMENT", "body": "x" * 65_537}
    assert (await client.post(url, json=too_long, headers=auth)).status_code == 422


async def test_replies_use_in_reply_to(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    auth = await token_for(client)
    first = await client.post(
        "/repos/octo/hello/pulls/1/comments",
        json={"body": "root", "path": "a.py", "line": 20, "side": "RIGHT", "commit_id": "x"},
        headers=auth,
    )
    assert first.status_code == 201
    reply = await client.post(
        "/repos/octo/hello/pulls/1/comments", json={"body": "reply", "in_reply_to": first.json()["id"]}, headers=auth
    )
    assert reply.status_code == 201
    assert reply.json()["in_reply_to_id"] == first.json()["id"]
    assert reply.json()["path"] == "a.py"
    listed = await client.get("/repos/octo/hello/pulls/1/comments", headers=auth)
    assert [c["body"] for c in listed.json()] == ["root", "reply"]


async def test_issue_comments_reactions_and_permissions(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    auth = await token_for(client)
    made = await client.post("/repos/octo/hello/issues/1/comments", json={"body": "hi"}, headers=auth)
    cid = made.json()["id"]
    edited = await client.patch(f"/repos/octo/hello/issues/comments/{cid}", json={"body": "hello"}, headers=auth)
    assert edited.json()["body"] == "hello"
    react = await client.post(
        f"/repos/octo/hello/issues/comments/{cid}/reactions", json={"content": "eyes"}, headers=auth
    )
    assert react.status_code == 201
    assert fake.repo("octo/hello").reactions[0]["content"] == "eyes"
    assert (await client.delete(f"/repos/octo/hello/issues/comments/{cid}", headers=auth)).status_code == 204
    assert (await client.get("/repos/octo/hello/issues/1/comments", headers=auth)).json() == []
    fake.repo("octo/hello").collaborators["dev"] = "maintain"
    perm = await client.get("/repos/octo/hello/collaborators/dev/permission", headers=auth)
    assert perm.json()["role_name"] == "maintain"
    assert perm.json()["permission"] == "write"
    assert (await client.get("/repos/octo/hello/collaborators/nobody/permission", headers=auth)).status_code == 404


async def test_check_runs_limit_annotations_per_request(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    auth = await token_for(client)
    sha = fake.repo("octo/hello").pulls[1].head_sha
    note = {"path": "a.py", "start_line": 1, "end_line": 1, "annotation_level": "warning", "message": "m"}
    too_many = {
        "name": "diffwise",
        "head_sha": sha,
        "output": {"title": "t", "summary": "s", "annotations": [note] * 51},
    }
    assert (await client.post("/repos/octo/hello/check-runs", json=too_many, headers=auth)).status_code == 422
    made = await client.post("/repos/octo/hello/check-runs", json={"name": "diffwise", "head_sha": sha}, headers=auth)
    rid = made.json()["id"]
    update = {
        "status": "completed",
        "conclusion": "success",
        "output": {"title": "t", "summary": "s", "annotations": [note] * 50},
    }
    assert (await client.patch(f"/repos/octo/hello/check-runs/{rid}", json=update, headers=auth)).status_code == 200
    run = fake.repo("octo/hello").check_runs[0]
    assert run["conclusion"] == "success"
    assert len(run["annotations"]) == 50


async def test_fault_injection_and_deliveries(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    auth = await token_for(client)
    fake.fail_next(1, status=403, retry_after=7, secondary=True)
    limited = await client.get("/repos/octo/hello", headers=auth)
    assert limited.status_code == 403
    assert limited.headers["retry-after"] == "7"
    assert "secondary rate limit" in limited.json()["message"]
    fake.fail_next(1, status=502)
    assert (await client.get("/repos/octo/hello", headers=auth)).status_code == 502
    assert (await client.get("/repos/octo/hello", headers=auth)).status_code == 200
    fake.add_delivery("guid-1", "pull_request", "opened", status_code=500)
    listed = await client.get("/app/hook/deliveries", headers={"Authorization": f"Bearer {app_jwt()}"})
    did = listed.json()[0]["id"]
    again = await client.post(f"/app/hook/deliveries/{did}/attempts", headers={"Authorization": f"Bearer {app_jwt()}"})
    assert again.status_code == 202
    assert fake.redelivered == [did]


async def test_graphql_subset_and_compare(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    auth = await token_for(client)
    query = "mutation($threadId: ID!) { resolveReviewThread(input: {threadId: $threadId}) { thread { id } } }"
    r = await client.post("/graphql", json={"query": query, "variables": {"threadId": "T1"}}, headers=auth)
    assert r.json()["data"]["resolveReviewThread"]["thread"]["isResolved"] is True
    pull = fake.repo("octo/hello").pulls[1]
    compared = await client.get(f"/repos/octo/hello/compare/{pull.base_sha}...{pull.head_sha}", headers=auth)
    assert sorted(f["filename"] for f in compared.json()["files"]) == ["a.py", "b.py"]


def test_loopback_server_with_a_ghes_prefix() -> None:
    fake = FakeGitHub(1, shared_app_keys().public_pem, prefix="/api/v3")
    fake.add_repo("octo", "hello", installation_id=7)
    with serve_fake(fake) as base_url:
        assert base_url.endswith("/api/v3")
        with httpx.Client() as c:
            assert c.get(base_url + "/app", headers={"Authorization": f"Bearer {app_jwt()}"}).status_code == 200
            assert c.get(base_url.replace("/api/v3", "") + "/app").status_code == 404


def test_patch_and_commentable_lines_agree() -> None:
    patch = file_patch(b"a\nb\nc\n", b"a\nB\nc\nd\n")
    assert patch is not None
    assert patch.startswith("@@ -1,3 +1,4 @@")
    [(right, left)] = commentable_lines(patch)
    assert right == {1, 2, 3, 4}
    assert left == {1, 2, 3}
    assert file_patch(b"\0bin", b"\0bin2") is None


async def test_pending_reviews_are_one_per_pull_and_can_be_deleted_or_submitted(
    fake: FakeGitHub, client: httpx.AsyncClient
) -> None:
    auth = await token_for(client)
    url = "/repos/octo/hello/pulls/1/reviews"
    comment = {"path": "a.py", "line": 20, "body": "pending"}
    pending = (await client.post(url, json={"comments": [comment]}, headers=auth)).json()
    assert pending["state"] == "PENDING"
    second = await client.post(url, json={"comments": [comment]}, headers=auth)
    assert second.status_code == 422
    repo = fake.repo("octo/hello")
    assert repo.review_comments == []  # pending comments are not visible yet
    assert (await client.delete(f"{url}/{pending['id']}", headers=auth)).status_code == 200
    assert repo.reviews == []
    again = (await client.post(url, json={"comments": [comment]}, headers=auth)).json()
    submitted = await client.post(f"{url}/{again['id']}/events", json={"event": "COMMENT", "body": "b"}, headers=auth)
    assert submitted.json()["state"] == "COMMENTED"
    assert [c["body"] for c in repo.review_comments] == ["pending"]
    refused = await client.delete(f"{url}/{again['id']}", headers=auth)
    assert refused.status_code == 422


async def test_installations_and_their_repositories(client: httpx.AsyncClient) -> None:
    listed = await client.get("/app/installations", headers={"Authorization": f"Bearer {app_jwt()}"})
    assert [i["id"] for i in listed.json()] == [7, 8]
    auth = await token_for(client, 8)
    repos = (await client.get("/installation/repositories", headers=auth)).json()
    assert [r["full_name"] for r in repos["repositories"]] == ["other/private"]


async def test_seeded_threads_and_reactions_are_served(fake: FakeGitHub, client: httpx.AsyncClient) -> None:
    repo = fake.repo("octo/hello")
    root = fake.add_review_comment(repo, 1, "finding", path="a.py", line=20)
    reply = fake.add_review_comment(repo, 1, "thanks", path="a.py", line=20, user="dev", in_reply_to=root["id"])
    fake.add_reaction(repo, "pull_request_review_comment", root["id"], "-1", user="dev")
    auth = await token_for(client)
    listed = (await client.get("/repos/octo/hello/pulls/1/comments", headers=auth)).json()
    assert [(c["id"], c["user"]["type"]) for c in listed] == [(root["id"], "Bot"), (reply["id"], "User")]
    assert listed[1]["in_reply_to_id"] == root["id"]
    assert repo.reactions[0]["user"]["login"] == "dev"
