"""Faults: what the service does when what it depends on misbehaves (issue 8).

Every server here is real and on loopback. The agent is `opsagent serve` in a child process,
pointed at the session sandbox (tests/conftest.py) as if it were any AWS: moto for STS, and a
second copy of the sandbox's AWS MCP Server stand-in (the real class, over the same moto, so
its injected script latency can be set here). Between the agent and each of them sits a
fault-injecting reverse proxy (``FaultProxy``) that, per account, passes a request through,
delays it, answers HTTP 500/403/429, answers garbage (not JSON, truncated JSON-RPC, a tool
result that is not the script template's shape), drops the connection before or in the middle
of its answer, or is killed outright. The account is the one the request acts for: the SigV4
access key of an MCP request (resolved by moto, in this process), the role ARN of an
AssumeRole. Checkpoints are PostgreSQL (the machine's server, a schema of our own) or SQLite.

For every fault the test checks that the process stays up, that the faulty account has the
right status and a readable one-line message, that every other account's rows are moto's
ground truth, and that a follow-up on the same thread ("how many?") answers from the last
completed turn, correctly, once the fault is gone. Also: STS throttling one account's
AssumeRole; a client hanging up while MCP requests are in flight (the thread and /ping are
free within a second); a checkpoint database that refuses writes mid-run; `kill -9` of the
service at each event of a question's stream, then a new process on the same SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from httpx_sse import aconnect_sse

from tests.service_helpers import (
    ALL_ACCOUNTS,
    DEVELOPMENT,
    POSTGRES_URL,
    PRODUCTION,
    ROOT,
    STAGING,
    USER_HEADER,
    ServiceProcess,
    clean_env,
    stream,
)

DEMO_REGISTRY = ROOT / "opsagent" / "sandbox" / "demo-registry.json"
WORKLOAD = (PRODUCTION, STAGING, DEVELOPMENT)
TARGET = STAGING  # the account a fault hits
OTHERS = (PRODUCTION, DEVELOPMENT)
# The agent's OPSAGENT_ACCOUNT_TIMEOUT (an account's whole work: AssumeRole, session, script):
# short, so that the slow server's test is short, yet long enough for a healthy account on a
# busy machine.
ACCOUNT_TIMEOUT = 8.0

# ----------------------------------------------------------------------------- the proxy

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "accept-encoding",
    "proxy-connection",
    "te",
    "upgrade",
}
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


@dataclass(frozen=True)
class Fault:
    """What the proxy does with an account's requests.

    kind: ``delay`` (wait ``seconds``, then pass through), ``status`` (answer ``status`` with
    ``body``), ``garbage`` (200, JSON content type, an HTML page), ``truncated`` (200, a
    JSON-RPC answer cut in half, complete as HTTP), ``wrong_shape`` (200, a well-formed tool
    result that is not what the script template returns), ``drop`` (close the connection
    without answering), ``cut`` (pass through, but close the connection half way through the
    answer's body). ``calls_only``: only MCP ``tools/call`` requests, so the account's session
    still opens.
    """

    kind: str
    status: int = 500
    body: bytes = b""
    content_type: str = "application/json"
    seconds: float = 0.0
    calls_only: bool = False


Request = tuple[str, str, list[tuple[str, str]], bytes]  # method, target, headers, body


class FaultProxy:
    """An HTTP/1.1 reverse proxy on loopback, in a thread with its own event loop.

    ``faults[account_id]`` says how to misbehave for that account; anything else passes
    through untouched (the Host header included, so SigV4 signatures still verify upstream).
    ``kill()`` closes the listener and every open connection, as a crashed server does;
    ``start()`` serves again on the same port.
    """

    def __init__(
        self,
        upstream: str,
        account_of: Callable[[Request], str | None],
        is_call: Callable[[Request], bool] = lambda request: True,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.account_of = account_of
        self.is_call = is_call
        self.faults: dict[str, Fault] = {}
        self.port = 0
        self.log: list[tuple[str | None, str]] = []  # (account, what was done)
        # Requests being handled (delayed, forwarded) and not yet answered, per account.
        self.in_flight: Counter[str | None] = Counter()
        self.calls_in_flight: Counter[str | None] = Counter()  # of them, MCP tools/call
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="fault-proxy"
        )
        self._thread.start()
        self._client: httpx.AsyncClient = self._run(self._make_client())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=120, follow_redirects=False)

    def start(self) -> FaultProxy:
        self._run(self._start())
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def kill(self) -> None:
        self._run(self._kill())

    async def _kill(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers))

    def close(self) -> None:
        self.kill()
        self._run(self._client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                reply = await self._answer(request)
                if reply is None:  # drop: close without a word
                    return
                data, keep_open = reply
                writer.write(data)
                await writer.drain()
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, request: Request) -> tuple[bytes, bool] | None:
        account = self.account_of(request)
        call = self.is_call(request)
        fault = self.faults.get(account) if account is not None else None
        if fault is not None and fault.calls_only and not call:
            fault = None
        self.log.append((account, fault.kind if fault else "pass"))
        self.in_flight[account] += 1
        self.calls_in_flight[account] += call
        try:
            return await self._misbehave(request, fault)
        finally:
            self.in_flight[account] -= 1
            self.calls_in_flight[account] -= call

    async def _misbehave(self, request: Request, fault: Fault | None) -> tuple[bytes, bool] | None:
        if fault is None or fault.kind in ("delay", "cut"):
            if fault is not None and fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            status, headers, body = await self._forward(request)
            if fault is not None and fault.kind == "cut":  # promise it all, send half, hang up
                whole = _response(status, headers, body)
                return whole[: len(whole) - len(body) // 2], False
            return _response(status, headers, body), True
        if fault.kind == "drop":
            return None
        if fault.kind == "status":
            return _response(fault.status, [("Content-Type", fault.content_type)], fault.body), True
        if fault.kind == "garbage":
            return _response(
                200,
                [("Content-Type", "application/json")],
                b"<html><body><h1>It works!</h1></body></html>",
            ), True
        request_id = json.loads(request[3] or b"{}").get("id", 1)
        if fault.kind == "truncated":
            whole = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "result": {
                        "content": [{"type": "text", "text": json.dumps({"status": "success"})}],
                        "isError": False,
                    },
                }
            ).encode()
            return _response(
                200, [("Content-Type", "application/json")], whole[: len(whole) // 2]
            ), True
        if fault.kind == "wrong_shape":
            payload = {
                "status": "success",
                "return_value": {"buckets": ["not", "rows"]},
                "api_calls": [],
            }
            answer = {
                "jsonrpc": "2.0",
                "id": request_id,
                "result": {
                    "content": [{"type": "text", "text": json.dumps(payload)}],
                    "structuredContent": payload,
                    "isError": False,
                },
            }
            return _response(
                200, [("Content-Type", "application/json")], json.dumps(answer).encode()
            ), True
        raise AssertionError(f"unknown fault {fault}")

    async def _forward(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        method, target, headers, body = request
        sent = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        response = await self._client.request(
            method, self.upstream + target, headers=sent, content=body
        )
        return response.status_code, list(response.headers.items()), response.content


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = [
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines if line)
    ]
    lookup = {name.lower(): value for name, value in headers}
    if lookup.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(int(lookup.get("content-length") or 0))
    return method, target, headers, body


def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    reason = http.HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def mcp_account(request: Request) -> str | None:
    """The account an MCP request acts for: its SigV4 access key, as moto knows it."""
    from opsagent.sandbox.identity import resolve_access_key

    authorization = dict((k.lower(), v) for k, v in request[2]).get("authorization", "")
    match = _CREDENTIAL.search(authorization)
    identity = resolve_access_key(match.group(1)) if match else None
    return identity.account_id if identity else None


def mcp_is_call(request: Request) -> bool:
    try:
        return json.loads(request[3]).get("method") == "tools/call"
    except (ValueError, AttributeError):
        return False


def sts_account(request: Request) -> str | None:
    """The account an AssumeRole wants into, from its role ARN."""
    params = dict(urllib.parse.parse_qsl(request[3].decode("utf-8", "replace")))
    if params.get("Action") != "AssumeRole":
        return None
    match = re.match(r"arn:aws:iam::(\d{12}):role/", params.get("RoleArn", ""))
    return match.group(1) if match else None


STS_THROTTLING = Fault(
    "status",
    status=400,
    content_type="text/xml",
    body=(
        b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        b"<Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
        b"<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
    ),
)

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stand_in(sandbox):
    """The AWS MCP Server stand-in (the sandbox's own class) over the session sandbox's moto,
    ours to slow down with its injected script latency."""
    from opsagent.sandbox.mcp_server import McpServer

    server = McpServer(sandbox.aws_endpoint)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mcp_proxy(stand_in) -> Iterator[FaultProxy]:
    proxy = FaultProxy(stand_in.endpoint.removesuffix("/mcp"), mcp_account, mcp_is_call).start()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def sts_proxy(sandbox) -> Iterator[FaultProxy]:
    proxy = FaultProxy(sandbox.aws_endpoint, sts_account).start()
    yield proxy
    proxy.close()


@pytest.fixture(autouse=True)
def no_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts and ends with every server healthy and fast."""
    yield
    for name in ("mcp_proxy", "sts_proxy"):
        if name in request.fixturenames:
            proxy: FaultProxy = request.getfixturevalue(name)
            proxy.faults.clear()
            if not proxy.running:
                proxy.start()
    if "stand_in" in request.fixturenames:
        request.getfixturevalue("stand_in").script_latency_ms = 0


def agent_env(
    sandbox, mcp_proxy: FaultProxy, sts_proxy: FaultProxy, checkpoint_url: str, **extra: str
) -> dict[str, str]:
    """`opsagent serve` on the demo registry, reaching the sandbox through the proxies."""
    creds = sandbox.central_credentials
    env = clean_env(
        **{
            "OPSAGENT_REGISTRY": str(DEMO_REGISTRY),
            "OPSAGENT_MCP_ENDPOINT": f"{mcp_proxy.url}/mcp",
            "OPSAGENT_CHECKPOINT_URL": checkpoint_url,
            "OPSAGENT_ACCOUNT_TIMEOUT": str(ACCOUNT_TIMEOUT),
            # Every question reads: a fault must meet a read, not a reused answer.
            "OPSAGENT_DATA_MAX_AGE": "0",
            "OPSAGENT_SSE_PING_SECONDS": "1",
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": sandbox.aws_endpoint,
            "AWS_ENDPOINT_URL_STS": sts_proxy.url,
            **extra,
        }
    )
    if creds.token:
        env["AWS_SESSION_TOKEN"] = creds.token
    return env


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A schema of our own in the test database: the checkpointer creates its tables there."""
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{joiner}options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module")
def service(
    sandbox,
    mcp_proxy: FaultProxy,
    sts_proxy: FaultProxy,
    pg_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    workdir = tmp_path_factory.mktemp("faults")
    with ServiceProcess(agent_env(sandbox, mcp_proxy, sts_proxy, pg_url), workdir) as proc:
        yield proc


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as http_client:
        yield http_client


# ----------------------------------------------------------------------------- checks


def as_user(name: str) -> dict[str, str]:
    """A caller of our own: its own credentials and MCP sessions in the agent."""
    return {USER_HEADER: f"{name}-{uuid.uuid4().hex[:8]}"}


def readable(message: str | None) -> str:
    assert message, "no message"
    assert "\n" not in message and "Traceback" not in message and 'File "' not in message, message
    assert len(message) < 1500, message
    return message


def accounts_of(answer: dict) -> dict[str, dict]:
    return {a["account_id"]: a for a in answer["accounts"]}


def names_in(answer: dict, account_id: str, resource_type: str) -> set[str]:
    return {
        r["name"]
        for r in answer["resources"]
        if r["account_id"] == account_id and r["resource_type"] == resource_type
    }


Truth = Callable[[str, str], frozenset[str]]  # (resource type, account) -> names


@pytest.fixture(scope="module")
def expected(truth) -> Truth:
    """moto's ground truth (tests/conftest.py), read once per resource type and account:
    the agent is read-only, nothing here changes it."""
    readers = {"s3:bucket": truth.buckets, "lambda:function": truth.lambda_functions}
    return functools.cache(lambda kind, account: frozenset(readers[kind](account)))


def assert_rows_are_truth(answer: dict, truth: Truth, accounts=WORKLOAD) -> None:
    """S3 buckets or Lambda functions of these accounts: exactly moto's."""
    kind = answer["plan"]["queries"][0]["resource_type"]
    found = accounts_of(answer)
    for account_id in accounts:
        names = truth(kind, account_id)
        assert names, f"the sandbox holds no {kind} in {account_id}"
        assert found[account_id]["status"] == "ok", found[account_id]
        assert found[account_id]["error"] is None, found[account_id]
        assert found[account_id]["count"] == len(names)
        if answer["plan"]["queries"][0]["intent"] != "count":
            assert names_in(answer, account_id, kind) == names


async def alive(client: httpx.AsyncClient, service: ServiceProcess) -> None:
    assert service.proc is not None and service.proc.poll() is None, service.log()[-3000:]
    ping = await client.get("/ping")
    assert ping.status_code == 200 and ping.json()["status"] == "Healthy", ping.text


async def ask(
    client: httpx.AsyncClient, question: str, thread_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        "/invocations", json={"prompt": question, "thread_id": thread_id}, headers=headers
    )


async def follow_up_is_right(
    client: httpx.AsyncClient,
    thread_id: str,
    headers: dict[str, str],
    truth: Truth,
    resource_type: str = "s3:bucket",
) -> dict:
    """'how many?' on the thread builds on its last completed turn, and is right."""
    response = await ask(client, "how many?", thread_id, headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["plan"]["queries"][0]["resource_type"] == resource_type, answer["plan"]
    assert answer["plan"]["queries"][0]["intent"] == "count", answer["plan"]
    assert set(answer["plan"]["accounts"]) == set(WORKLOAD)
    assert_rows_are_truth(answer, truth)
    return answer


async def until(check: Callable[[], Any], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


# ----------------------------------------------------------------------------- MCP faults

EVERY_REQUEST = {  # the account's MCP session cannot even open
    "http-500": (
        Fault("status", status=500, content_type="text/plain", body=b"Internal Server Error"),
        "error",
        "500",
    ),
    "http-403": (Fault("status", status=403, body=b'{"message": "Forbidden"}'), "denied", "403"),
    "http-429": (Fault("status", status=429, body=b'{"message": "Rate exceeded"}'), "error", "429"),
    "garbage": (Fault("garbage"), "error", "not"),
    "drop": (Fault("drop"), "error", "could not open an MCP session"),
}
ON_CALLS = {  # the session is open and warm; the run_script call itself fails
    "slow": (
        Fault("delay", seconds=ACCOUNT_TIMEOUT + 3, calls_only=True),
        "timeout",
        f"within {ACCOUNT_TIMEOUT:g}s (OPSAGENT_ACCOUNT_TIMEOUT)",
    ),
    "http-500": (
        Fault(
            "status",
            status=500,
            content_type="text/plain",
            body=b"Internal Server Error",
            calls_only=True,
        ),
        "error",
        "500",
    ),
    "http-403": (
        Fault("status", status=403, body=b'{"message": "Forbidden"}', calls_only=True),
        "denied",
        "403",
    ),
    "http-429": (
        Fault("status", status=429, body=b'{"message": "Rate exceeded"}', calls_only=True),
        "error",
        "429",
    ),
    "garbage": (Fault("garbage", calls_only=True), "error", "not"),
    "truncated": (Fault("truncated", calls_only=True), "error", "not"),
    "wrong-shape": (Fault("wrong_shape", calls_only=True), "error", "one result per read"),
    "drop": (Fault("drop", calls_only=True), "error", "connection"),
    "cut-mid-answer": (Fault("cut", calls_only=True), "error", "connection"),
}


async def _one_fault(
    client: httpx.AsyncClient,
    service: ServiceProcess,
    mcp_proxy: FaultProxy,
    truth: Truth,
    fault: Fault,
    status: str,
    says: str,
    *,
    warm: bool,
) -> None:
    headers, thread_id = as_user("fault"), f"fault-{uuid.uuid4()}"
    if warm:  # a first turn opens every account's session
        first = await ask(client, ALL_ACCOUNTS, thread_id, headers)
        assert first.status_code == 200, first.text
        assert_rows_are_truth(first.json(), truth)
    mcp_proxy.faults[TARGET] = fault
    events = await stream(client, ALL_ACCOUNTS, thread_id=thread_id, headers={**headers})
    names = [name for name, _ in events]
    assert names[:2] == ["thread", "plan"] and names[-2:] == ["answer", "done"], names
    answer = dict(events)["answer"]
    faulty = accounts_of(answer)[TARGET]
    assert faulty["status"] == status, faulty
    assert says in readable(faulty["error"]), faulty
    assert faulty["count"] == 0 and not names_in(answer, TARGET, "s3:bucket")
    finished = [
        data for name, data in events if name == "account_finished" and data["account_id"] == TARGET
    ]
    assert finished and finished[0]["status"] == status and finished[0]["error"] == faulty["error"]
    assert_rows_are_truth(answer, truth, OTHERS)
    await alive(client, service)

    mcp_proxy.faults.clear()
    await follow_up_is_right(client, thread_id, headers, truth)
    turns = (await client.get(f"/threads/{thread_id}", headers=headers)).json()["turns"]
    assert [t["question"] for t in turns] == [ALL_ACCOUNTS] * (1 + warm) + ["how many?"]
    await alive(client, service)


@pytest.mark.parametrize("case", list(EVERY_REQUEST))
async def test_an_mcp_fault_on_every_request_of_one_account(
    case: str, client: httpx.AsyncClient, service: ServiceProcess, mcp_proxy: FaultProxy, expected
) -> None:
    fault, status, says = EVERY_REQUEST[case]
    await _one_fault(client, service, mcp_proxy, expected, fault, status, says, warm=False)


@pytest.mark.parametrize("case", list(ON_CALLS))
async def test_an_mcp_fault_on_one_accounts_run_script(
    case: str, client: httpx.AsyncClient, service: ServiceProcess, mcp_proxy: FaultProxy, expected
) -> None:
    fault, status, says = ON_CALLS[case]
    await _one_fault(client, service, mcp_proxy, expected, fault, status, says, warm=True)


async def test_the_mcp_server_killed_mid_flight_then_back(
    client: httpx.AsyncClient, service: ServiceProcess, mcp_proxy: FaultProxy, expected
) -> None:
    headers, thread_id = as_user("killed"), f"killed-{uuid.uuid4()}"
    for account in WORKLOAD:
        mcp_proxy.faults[account] = Fault("delay", seconds=2, calls_only=True)
    asking = asyncio.create_task(ask(client, ALL_ACCOUNTS, thread_id, headers))
    await until(lambda: all(mcp_proxy.calls_in_flight[a] >= 1 for a in WORKLOAD))
    mcp_proxy.kill()  # every connection reset, nothing listening
    response = await asyncio.wait_for(asking, ACCOUNT_TIMEOUT + 5)
    assert response.status_code == 200, response.text
    answer = response.json()
    for account in WORKLOAD:
        result = accounts_of(answer)[account]
        assert result["status"] == "error", result
        assert "MCP" in readable(result["error"]), result
    assert answer["answer"].startswith("None of the 3 accounts could be queried"), answer
    await alive(client, service)

    mcp_proxy.faults.clear()
    mcp_proxy.start()  # the server is back, on the same port
    await follow_up_is_right(client, thread_id, headers, expected)

    # Killed and back again between two questions: the sessions the agent holds still work.
    mcp_proxy.kill()
    mcp_proxy.start()
    again = await ask(client, ALL_ACCOUNTS, thread_id, headers)
    assert again.status_code == 200, again.text
    assert_rows_are_truth(again.json(), expected)
    await alive(client, service)


async def test_sts_throttling_one_account(
    client: httpx.AsyncClient, service: ServiceProcess, sts_proxy: FaultProxy, expected
) -> None:
    headers, thread_id = as_user("throttled"), f"throttled-{uuid.uuid4()}"
    sts_proxy.faults[TARGET] = STS_THROTTLING
    events = await stream(client, ALL_ACCOUNTS, thread_id=thread_id, headers={**headers})
    answer = dict(events)["answer"]
    faulty = accounts_of(answer)[TARGET]
    assert faulty["status"] == "error", faulty
    assert "Throttling" in readable(faulty["error"]) and "Rate exceeded" in faulty["error"]
    assert_rows_are_truth(answer, expected, OTHERS)
    assert sum(1 for a, k in sts_proxy.log if a == TARGET and k == "status") >= 1
    await alive(client, service)

    sts_proxy.faults.clear()
    await follow_up_is_right(client, thread_id, headers, expected)


# ----------------------------------------------------------------------------- cancelling


@pytest.mark.parametrize("while_", ["scripts-run", "sessions-open"])
async def test_a_client_that_leaves_mid_flight_frees_the_thread_within_a_second(
    while_: str,
    client: httpx.AsyncClient,
    service: ServiceProcess,
    mcp_proxy: FaultProxy,
    stand_in,
    expected,
) -> None:
    """Issue 8 item 6: a client that hung up while MCP calls were in flight left its thread
    busy (409) and /ping HealthyBusy for about 5 s."""
    headers, thread_id = as_user("leaver"), f"leaver-{uuid.uuid4()}"
    if while_ == "scripts-run":  # the real server's shape: a script takes a while
        stand_in.script_latency_ms = 10_000
        in_flight = mcp_proxy.calls_in_flight
    else:  # the MCP server is slow to answer anything: sessions are still opening
        for account in WORKLOAD:
            mcp_proxy.faults[account] = Fault("delay", seconds=10)
        in_flight = mcp_proxy.in_flight
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as leaver:
        async with aconnect_sse(
            leaver,
            "POST",
            "/invocations",
            headers={**headers},
            json={"prompt": ALL_ACCOUNTS, "thread_id": thread_id},
        ) as source:
            assert source.response.status_code == 200

            async def read() -> None:
                async for sse in source.aiter_sse():
                    seen.append(sse.event)

            reader = asyncio.create_task(read())
            await until(lambda: seen.count("account_started") == 3)
            # Every account has a request in flight at the MCP server.
            await until(lambda: all(in_flight[a] >= 1 for a in WORKLOAD))
            busy = (await client.get("/ping")).json()["status"]
            assert busy == "HealthyBusy"
            reader.cancel()
    left = time.monotonic()  # the connection is closed
    stand_in.script_latency_ms = 0
    mcp_proxy.faults.clear()

    await until(lambda: _ping_is(client, "Healthy"), within=5)
    healthy_after = time.monotonic() - left
    async with aconnect_sse(
        client,
        "POST",
        "/invocations",
        headers={**headers},
        json={"prompt": ALL_ACCOUNTS, "thread_id": thread_id},
    ) as source:
        accepted_after = time.monotonic() - left
        assert source.response.status_code == 200, await source.response.aread()  # not 409
        events = [(sse.event, json.loads(sse.data)) async for sse in source.aiter_sse()]
    assert healthy_after < 1.0, healthy_after
    assert accepted_after < 1.0, accepted_after
    assert "answer" not in seen
    assert_rows_are_truth(dict(events)["answer"], expected)
    turns = (await client.get(f"/threads/{thread_id}", headers=headers)).json()["turns"]
    assert len(turns) == 1  # the abandoned question left no turn
    await alive(client, service)


async def _ping_is(client: httpx.AsyncClient, status: str) -> bool:
    return (await client.get("/ping")).json()["status"] == status


# ----------------------------------------------------------------------------- checkpoints


@contextlib.contextmanager
def read_only_checkpoints(pg_url: str) -> Iterator[None]:
    """Every write to the checkpointer's tables fails, as on a database gone read-only."""
    tables = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("""
            CREATE OR REPLACE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the checkpoint database is read-only'; END $$""")
        for table in tables:
            conn.execute(
                f"CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE OR DELETE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION refuse_writes()"
            )
        try:
            yield
        finally:
            for table in tables:
                conn.execute(f"DROP TRIGGER refuse_writes ON {table}")


async def test_a_checkpoint_store_that_fails_on_write(
    client: httpx.AsyncClient, service: ServiceProcess, mcp_proxy: FaultProxy, pg_url: str, expected
) -> None:
    headers, thread_id = as_user("readonly"), f"readonly-{uuid.uuid4()}"
    first = await ask(client, ALL_ACCOUNTS, thread_id, headers)
    assert first.status_code == 200, first.text

    # The database goes read-only while a question is in flight: the stream says so.
    for account in WORKLOAD:
        mcp_proxy.faults[account] = Fault("delay", seconds=0.5, calls_only=True)
    events: list[tuple[str, Any]] = []
    stack = contextlib.ExitStack()
    read_only = False
    try:
        async with aconnect_sse(
            client,
            "POST",
            "/invocations",
            headers={**headers},
            json={"prompt": "what about Lambda?", "thread_id": thread_id},
        ) as source:
            assert source.response.status_code == 200
            async for sse in source.aiter_sse():
                events.append((sse.event, json.loads(sse.data)))
                if sse.event == "account_started" and not read_only:
                    await asyncio.to_thread(stack.enter_context, read_only_checkpoints(pg_url))
                    read_only = True
        names = [name for name, _ in events]
        assert names[-2:] == ["error", "done"], events
        error, done = events[-2][1], events[-1][1]
        assert error["error"] == "internal" and "read-only" in readable(error["message"])
        assert done["status"] == "error"
        await alive(client, service)

        # Read-only from the start: JSON gets the documented 500, a stream its error event.
        response = await ask(client, "what about Lambda?", thread_id, headers)
        assert response.status_code == 500, response.text
        body = response.json()
        assert body["error"] == "internal" and "read-only" in readable(body["message"])
        assert body["thread_id"] == thread_id
        await alive(client, service)
        again = await stream(client, "what about Lambda?", thread_id=thread_id, headers={**headers})
        assert [name for name, _ in again][-2:] == ["error", "done"], again
        assert "read-only" in readable(again[-2][1]["message"])
        await alive(client, service)
        # Reading still works, and shows only the completed turn.
        turns = (await client.get(f"/threads/{thread_id}", headers=headers)).json()["turns"]
        assert [t["question"] for t in turns] == [ALL_ACCOUNTS]
    finally:
        await asyncio.to_thread(stack.close)
        mcp_proxy.faults.clear()

    # Writes work again: the thread is usable and its earlier turn intact.
    await follow_up_is_right(client, thread_id, headers, expected)
    turns = (await client.get(f"/threads/{thread_id}", headers=headers)).json()["turns"]
    assert [t["question"] for t in turns] == [ALL_ACCOUNTS, "how many?"]
    await alive(client, service)


# ----------------------------------------------------------------------------- SIGKILL

KILL_AT = ["thread", "plan", "account_started", "account_finished", "answer", "done"]
SECOND = "what about Lambda?"


async def test_sigkill_at_each_stream_event(
    sandbox, mcp_proxy: FaultProxy, sts_proxy: FaultProxy, expected, tmp_path: Path
) -> None:
    """kill -9 when each event of a question's stream arrives; a new process on the same
    SQLite file shows the thread's completed turns, and a follow-up builds on the last one."""
    env = agent_env(
        sandbox,
        mcp_proxy,
        sts_proxy,
        f"sqlite:///{tmp_path}/checkpoints.sqlite",
        OPSAGENT_ACCOUNT_TIMEOUT="90",
    )
    process = await asyncio.to_thread(ServiceProcess(env, tmp_path).start)
    try:
        for event in KILL_AT:
            thread_id = f"kill-at-{event}-{uuid.uuid4()}"
            async with httpx.AsyncClient(base_url=process.url, timeout=60) as http_client:
                first = await ask(http_client, ALL_ACCOUNTS, thread_id, {})
                assert first.status_code == 200, first.text
                # Production answers last, so one account_finished comes while it still runs.
                mcp_proxy.faults.update(
                    {
                        PRODUCTION: Fault("delay", seconds=1.2, calls_only=True),
                        STAGING: Fault("delay", seconds=0.2, calls_only=True),
                        DEVELOPMENT: Fault("delay", seconds=0.2, calls_only=True),
                    }
                )
                seen: list[str] = []
                async with aconnect_sse(
                    http_client,
                    "POST",
                    "/invocations",
                    json={"prompt": SECOND, "thread_id": thread_id},
                ) as src:
                    async for sse in src.aiter_sse():
                        seen.append(sse.event)
                        if sse.event == event:
                            assert process.proc is not None
                            process.proc.kill()
                            break
                mcp_proxy.faults.clear()
            assert process.proc is not None
            await asyncio.to_thread(process.proc.wait, 10)
            assert event in seen, seen

            process = await asyncio.to_thread(ServiceProcess(env, tmp_path).start)
            async with httpx.AsyncClient(base_url=process.url, timeout=60) as http_client:
                history = await http_client.get(f"/threads/{thread_id}")
                assert history.status_code == 200, history.text
                questions = [t["question"] for t in history.json()["turns"]]
                completed = event in ("answer", "done")
                assert questions == ([ALL_ACCOUNTS, SECOND] if completed else [ALL_ACCOUNTS]), (
                    event,
                    questions,
                )
                await follow_up_is_right(
                    http_client,
                    thread_id,
                    {},
                    expected,
                    "lambda:function" if completed else "s3:bucket",
                )
                assert (await http_client.get("/ping")).json()["status"] == "Healthy"
    finally:
        await asyncio.to_thread(process.stop)
