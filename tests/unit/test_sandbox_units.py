"""The sandbox's rules on their own: trust policies, SigV4 checks, run_script's sandbox.

No server here: these run in milliseconds and pin the edge cases the end-to-end tests
only touch once.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import time

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from opsagent.sandbox.identity import KeyIdentity
from opsagent.sandbox.script_runner import (
    CallerCredentials,
    ScriptRefused,
    ScriptRunner,
    prepare,
    to_jsonable,
)
from opsagent.sandbox.sigv4 import SignatureError, SigV4Verifier
from opsagent.sandbox.trust import AssumeRoleRequest, first_denied_action, trust_allows

CENTRAL = "111111111111"
USER_ARN = f"arn:aws:iam::{CENTRAL}:user/opsagent"


def _request(**overrides: str | None) -> AssumeRoleRequest:
    values: dict = {
        "caller_account": CENTRAL,
        "caller_principal_arn": USER_ARN,
        "caller_arn": USER_ARN,
        "external_id": None,
    }
    values.update(overrides)
    return AssumeRoleRequest(**values)


def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(principal: object, **extra: object) -> dict:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


# ----- trust policies -----


def test_naming_the_caller_and_tagging_the_session_need_their_own_actions() -> None:
    principal = {"AWS": f"arn:aws:iam::{CENTRAL}:root"}
    attributed = AssumeRoleRequest(
        caller_account=CENTRAL,
        caller_principal_arn=USER_ARN,
        caller_arn=USER_ARN,
        source_identity="alice",
        tags={"opsagent:user": "alice"},
    )
    only_assume = _policy(_allow(principal))
    assert first_denied_action(only_assume, _request()) is None  # nothing else asked for
    assert first_denied_action(only_assume, attributed) == "sts:SetSourceIdentity"
    both = _policy(_allow(principal), _allow(principal, Action="sts:SetSourceIdentity"))
    assert first_denied_action(both, attributed) == "sts:TagSession"
    everything = _policy(
        _allow(principal, Action=["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"])
    )
    assert first_denied_action(everything, attributed) is None
    required = _policy(
        _allow(
            principal,
            Action=["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            Condition={"StringLike": {"sts:SourceIdentity": "*"}},
        )
    )
    assert first_denied_action(required, attributed) is None
    assert first_denied_action(required, _request()) == "sts:AssumeRole"  # no one named


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": f"arn:aws:iam::{CENTRAL}:root"},
        {"AWS": CENTRAL},
        {"AWS": [USER_ARN, "arn:aws:iam::999999999999:root"]},
        {"AWS": "*"},
        "*",
    ],
)
def test_trust_allows_the_named_caller(principal: object) -> None:
    assert trust_allows(_policy(_allow(principal)), _request())


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "arn:aws:iam::222222222222:root"},
        {"AWS": "arn:aws:iam::111111111111:user/someone-else"},
        {"Service": "lambda.amazonaws.com"},
        {"Federated": "cognito-identity.amazonaws.com"},
    ],
)
def test_trust_refuses_other_principals(principal: object) -> None:
    assert not trust_allows(_policy(_allow(principal)), _request())


def test_role_sessions_match_their_role_arn() -> None:
    role = "arn:aws:iam::333333333333:role/OpsAgentReadOnly"
    session = "arn:aws:sts::333333333333:assumed-role/OpsAgentReadOnly/agent"
    caller = _request(caller_account="333333333333", caller_principal_arn=role, caller_arn=session)
    assert trust_allows(_policy(_allow({"AWS": role})), caller)
    assert trust_allows(_policy(_allow({"AWS": session})), caller)
    assert not trust_allows(_policy(_allow({"AWS": f"arn:aws:iam::{CENTRAL}:root"})), caller)


def test_external_id_condition() -> None:
    statement = _allow(
        {"AWS": f"arn:aws:iam::{CENTRAL}:root"},
        Condition={"StringEquals": {"sts:ExternalId": "abc-123"}},
    )
    policy = _policy(statement)
    assert trust_allows(policy, _request(external_id="abc-123"))
    assert not trust_allows(policy, _request(external_id="abc-124"))
    assert not trust_allows(policy, _request())


def test_deny_wins_and_actions_must_match() -> None:
    allow = _allow({"AWS": CENTRAL})
    deny = {"Effect": "Deny", "Principal": {"AWS": USER_ARN}, "Action": "sts:*"}
    assert not trust_allows(_policy(allow, deny), _request())
    other_action = {**allow, "Action": "sts:AssumeRoleWithSAML"}
    assert not trust_allows(_policy(other_action), _request())
    wildcard = {**allow, "Action": ["sts:Assume*"]}
    assert trust_allows(_policy(wildcard), _request())


def test_unknown_condition_operators_fail_closed() -> None:
    statement = _allow(
        {"AWS": CENTRAL}, Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}}
    )
    assert not trust_allows(_policy(statement), _request())


def test_if_exists_and_negated_operators() -> None:
    lenient = _allow({"AWS": CENTRAL}, Condition={"StringEqualsIfExists": {"sts:ExternalId": "x"}})
    assert trust_allows(_policy(lenient), _request())
    assert not trust_allows(_policy(lenient), _request(external_id="y"))
    negated = _allow({"AWS": CENTRAL}, Condition={"StringNotLike": {"sts:ExternalId": "bad*"}})
    assert trust_allows(_policy(negated), _request())
    assert not trust_allows(_policy(negated), _request(external_id="bad-one"))


def test_url_encoded_and_broken_documents() -> None:
    from urllib.parse import quote

    assert trust_allows(quote(_policy(_allow({"AWS": CENTRAL}))), _request())
    assert not trust_allows("{not json", _request())


# ----- SigV4 -----

NOW = datetime.datetime(2026, 1, 15, 12, 0, 0, tzinfo=datetime.UTC)
URL = "http://127.0.0.1:8765/mcp"
BODY = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
KEY = KeyIdentity(
    access_key_id="ASIAEXAMPLEKEY000001",
    secret_access_key="secret/key/value",
    account_id="222222222222",
    kind="assumed-role",
    arn="arn:aws:sts::222222222222:assumed-role/OpsAgentReadOnly/agent",
    principal_arn="arn:aws:iam::222222222222:role/OpsAgentReadOnly",
    session_token="session-token-value",
)


def _sign(
    when: datetime.datetime = NOW,
    secret: str = KEY.secret_access_key,
    token: str | None = KEY.session_token,
    service: str = "aws-mcp",
    body: bytes = BODY,
) -> list[tuple[str, str]]:
    request = AWSRequest(
        method="POST",
        url=URL,
        data=body,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    signer = SigV4Auth(Credentials(KEY.access_key_id, secret, token), service, "us-east-1")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    if token:
        request.headers["X-Amz-Security-Token"] = token
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    signer._inject_signature_to_request(request, signature)
    # A client sends a Host header; botocore signed the one from the URL.
    return [*request.headers.items(), ("Host", "127.0.0.1:8765")]


def _verifier(resolver=lambda key: KEY if key == KEY.access_key_id else None):  # type: ignore[no-untyped-def]
    return SigV4Verifier("aws-mcp", "us-east-1", resolver, clock=lambda: NOW)


def test_a_correct_signature_names_the_caller() -> None:
    caller = _verifier().verify("POST", URL, _sign(), BODY)
    assert caller.signature_verified
    assert caller.account_id == "222222222222"
    assert caller.secret_access_key == KEY.secret_access_key


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        (lambda: _sign(secret="wrong"), BODY, "InvalidSignatureException"),
        (lambda: _sign(), BODY + b" ", "InvalidSignatureException"),
        (lambda: _sign(service="execute-api"), BODY, "InvalidSignatureException"),
        (lambda: _sign(token="other-token"), BODY, "UnrecognizedClientException"),
        (
            lambda: _sign(when=NOW - datetime.timedelta(minutes=16)),
            BODY,
            "InvalidSignatureException",
        ),
        (
            lambda: _sign(when=NOW + datetime.timedelta(minutes=16)),
            BODY,
            "InvalidSignatureException",
        ),
        (
            lambda: [h for h in _sign() if h[0] != "Authorization"],
            BODY,
            "MissingAuthenticationToken",
        ),
        (
            lambda: [h for h in _sign() if h[0] != "X-Amz-Security-Token"],
            BODY,
            "InvalidSignatureException",
        ),
    ],
)
def test_bad_signatures_are_refused(headers, body: bytes, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureError) as info:
        _verifier().verify("POST", URL, headers(), body)
    assert info.value.code == code


def test_within_fifteen_minutes_is_accepted() -> None:
    signed = _sign(when=NOW - datetime.timedelta(minutes=14))
    assert _verifier().verify("POST", URL, signed, BODY).signature_verified


def test_unknown_key_is_refused_when_secrets_resolve() -> None:
    with pytest.raises(SignatureError) as info:
        _verifier(resolver=lambda key: None).verify("POST", URL, _sign(), BODY)
    assert info.value.code == "UnrecognizedClientException"


def test_without_a_resolver_only_the_structure_is_checked() -> None:
    caller = _verifier(resolver=None).verify("POST", URL, _sign(secret="anything"), BODY)
    assert not caller.signature_verified
    assert caller.access_key_id == KEY.access_key_id
    assert caller.session_token == KEY.session_token
    with pytest.raises(SignatureError):
        _verifier(resolver=None).verify(
            "POST", URL, _sign(when=NOW - datetime.timedelta(hours=1)), BODY
        )


# ----- run_script: checking a script before it runs -----


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("import os", "import of module 'os'"),
        ("import os.path", "import of module 'os.path'"),
        ("import json, socket", "import of module 'socket'"),
        ("from . import x", "import from module '.'"),
        ("from pathlib import Path", "import from module 'pathlib'"),
        ("from asyncio import subprocess", "'asyncio.subprocess' is not available"),
        ("from json import *", "import *"),
        ("import asyncio\nasyncio.to_thread(print)", "to_thread"),
        ("import asyncio as a\na.events", "'asyncio.events' is not available"),
        ("import operator\noperator.attrgetter('x')", "attrgetter"),
        ("import string\nstring.Formatter()", "Formatter"),
        ("import functools\nfunctools.update_wrapper", "update_wrapper"),
        ("open('/etc/passwd')", "'open' is not allowed"),
        ("compile('1', 's', 'eval')", "'compile' is not allowed"),
        ("globals()", "'globals' is not allowed"),
        ("vars()", "'vars' is not allowed"),
        ("setattr(print, 'x', 1)", "'setattr' is not allowed"),
        ("breakpoint()", "'breakpoint' is not allowed"),
        ("memoryview(b'x')", "'memoryview' is not allowed"),
        ("type(1)", "builtin 'type' is not available"),
        ("object()", "builtin 'object' is not available"),
        ("().__class__.__bases__[0].__subclasses__()", "'__class__'"),
        ("__builtins__", "'__builtins__'"),
        ("_secret = 1", "'_secret'"),
        ("def f(_x):\n    return _x", "argument '_x'"),
        ("def _f():\n    pass", "function '_f'"),
        ("dict(_x=1)", "keyword '_x'"),
        ("try:\n    pass\nexcept Exception as _e:\n    pass", "'_e'"),
        ("async def f():\n    yield 1\nf().ag_frame", "ag_frame"),
        ("c = call_boto3(service_name='s', operation_name='o')\nc.cr_frame", "cr_frame"),
        ("x = (i for i in [1])\nx.gi_frame.f_globals", "gi_frame"),
        ("'{0.gi_frame.f_back}'.format(x)", "format field"),
        ("'{0.__class__}'.format(1)", "format field"),
        ("print.x = 1", "assigning or deleting attributes"),
        ("del print.x", "assigning or deleting attributes"),
        ("class A:\n    pass", "class definitions"),
        ("match 1:\n    case int(real=r): pass\n    case str(__class__=c): pass", "'__class__'"),
    ],
)
def test_scripts_refused_before_running(code: str, why: str) -> None:
    with pytest.raises(ScriptRefused) as info:
        prepare(code)
    assert why in str(info.value)
    assert str(info.value).startswith("line ")


@pytest.mark.parametrize(
    "code",
    [
        "for _ in range(3):\n    pass",
        "input = {'Filters': []}\ntype = 'ec2'\n(input, type)",  # names the script binds
        "import asyncio, json, re, math, itertools, functools, collections, operator, string\n"
        "import datetime as dt, decimal\nfrom collections import Counter, defaultdict",
        "from asyncio import gather, sleep, Semaphore\nsem = Semaphore(4)",
        "def helper(rows, *, key='Name'):\n    return [r[key] for r in rows if key in r]\n"
        "helper([{'Name': 'a'}])",
        "f'{len([1, 2])} items, {\"x\"!r}'",
        "'{0[Name]} / {name}'.format({'Name': 'a'}, name='b')",
        '\'{"json": "literal"}\'',
        "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n    str(exc)",
        "match {'a': 1}:\n    case {'a': value}:\n        value",
    ],
)
def test_ordinary_scripts_compile(code: str) -> None:
    prepare(code)


def test_many_problems_are_reported_together_but_briefly() -> None:
    with pytest.raises(ScriptRefused) as info:
        prepare("import os\nimport sys\nopen('x')\n" + "x.__a\n" * 10)
    text = str(info.value)
    assert "line 1: import of module 'os'" in text
    assert "line 2: import of module 'sys'" in text
    assert "line 3: 'open'" in text
    assert "more" in text


def test_json_conversion_never_fails() -> None:
    import decimal

    value = {
        "when": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "count": decimal.Decimal("3"),
        "nested": ({"set": {1}}, [b"\x00"]),
        7: "int key",
        ("t", 1): "tuple key",
        "odd": object,
    }
    converted = to_jsonable(value)
    assert json.loads(json.dumps(converted)) == converted
    assert converted["when"] == "2026-01-01T00:00:00+00:00"
    assert converted["day"] == "2026-01-02"
    assert converted["count"] == "3"
    assert converted["nested"] == [{"set": [1]}, ["b'\\x00'"]]
    assert converted["7"] == "int key"
    assert converted["('t', 1)"] == "tuple key"
    assert converted["odd"] == "<class 'object'>"


# ----- run_script: running a script (no AWS call here) -----

NOBODY = CallerCredentials("AKIAEXAMPLE000000000", "secret")


def _script_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "opsagent-sandbox-script"]


@pytest.fixture
async def runner():  # type: ignore[no-untyped-def]
    # No AWS endpoint is ever reached by these scripts.
    script_runner = ScriptRunner("http://127.0.0.1:9", timeout_s=1.0)
    yield script_runner
    script_runner.close()


async def test_last_expression_and_top_level_await(runner: ScriptRunner) -> None:
    code = (
        "import asyncio\n"
        "async def twice(x):\n"
        "    await asyncio.sleep(0)\n"
        "    return 2 * x\n"
        "values = await asyncio.gather(*(twice(n) for n in range(3)))\n"
        "print('not part of the answer')\n"
        "{'values': values, 'none': None}\n"
    )
    outcome = await runner.run(code, NOBODY)
    assert outcome.payload() == {
        "status": "success",
        "return_value": {"values": [0, 2, 4], "none": None},
        "api_calls": [],
    }
    assert outcome.output == "not part of the answer\n"


async def test_sandboxed_modules_are_fresh_and_limited(runner: ScriptRunner) -> None:
    # A module a script gets is its own copy: changing it cannot reach the next script.
    code = "import json\njson.dumps({'a': 1})"
    first = await runner.run(code, NOBODY)
    assert first.return_value == '{"a": 1}'
    blocked = await runner.run("import asyncio\nx = asyncio\nx.run", NOBODY)
    assert blocked.error is not None
    assert blocked.error.startswith("AttributeError: ")


async def test_script_errors_are_values(runner: ScriptRunner) -> None:
    outcome = await runner.run("{}['missing']", NOBODY)
    assert outcome.payload() == {
        "status": "error",
        "error": "KeyError: 'missing'",
        "api_calls": [],
    }
    refused = await runner.run("import os", NOBODY)
    assert refused.status == "error"
    assert refused.error is not None and refused.error.startswith("ScriptNotAllowed: ")


async def test_scripts_that_run_too_long_are_stopped(runner: ScriptRunner) -> None:
    started = time.perf_counter()
    sleeping, spinning, stubborn = await asyncio.gather(
        runner.run("import asyncio\nawait asyncio.sleep(60)", NOBODY),
        runner.run("while True:\n    pass", NOBODY),
        # Catching Exception does not catch the interruption.
        runner.run(
            "while True:\n    try:\n        sum(range(1000))\n    except Exception:\n        pass",
            NOBODY,
        ),
    )
    assert time.perf_counter() - started < 5
    for outcome in (sleeping, spinning, stubborn):
        assert outcome.error is not None and outcome.error.startswith("TimeoutError: ")
    # And their threads end: the spinning ones are interrupted.
    for thread in _script_threads():
        await asyncio.to_thread(thread.join, 15)
    assert not _script_threads()


async def test_latency_is_waited_without_blocking(runner: ScriptRunner) -> None:
    runner.latency_ms = 200
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(runner.run(str(n), NOBODY) for n in range(5)))
    took = time.perf_counter() - started
    assert [o.return_value for o in outcomes] == [0, 1, 2, 3, 4]
    assert 0.2 <= took < 1.5
