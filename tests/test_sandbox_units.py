"""The sandbox's rules on their own: trust policies, SigV4 checks, AWS CLI parsing.

No server here: these run in milliseconds and pin the edge cases the end-to-end tests
only touch once.
"""

from __future__ import annotations

import datetime
import json

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from opsagent.sandbox.aws_cli import CliParser, CommandError, to_jsonable
from opsagent.sandbox.identity import KeyIdentity
from opsagent.sandbox.sigv4 import SignatureError, SigV4Verifier
from opsagent.sandbox.trust import AssumeRoleRequest, trust_allows

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
    caller = _request(
        caller_account="333333333333", caller_principal_arn=role, caller_arn=session
    )
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
    lenient = _allow(
        {"AWS": CENTRAL}, Condition={"StringEqualsIfExists": {"sts:ExternalId": "x"}}
    )
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
        (lambda: _sign(when=NOW - datetime.timedelta(minutes=16)), BODY,
         "InvalidSignatureException"),
        (lambda: _sign(when=NOW + datetime.timedelta(minutes=16)), BODY,
         "InvalidSignatureException"),
        (lambda: [h for h in _sign() if h[0] != "Authorization"], BODY,
         "MissingAuthenticationToken"),
        (lambda: [h for h in _sign() if h[0] != "X-Amz-Security-Token"], BODY,
         "InvalidSignatureException"),
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


# ----- AWS CLI parsing -----


@pytest.fixture(scope="module")
def parser() -> CliParser:
    return CliParser()


def test_cli_arguments_become_api_parameters(parser: CliParser) -> None:
    parsed = parser.parse(
        "aws --region us-west-2 ec2 describe-instances "
        "--filters Name=tag:team,Values=web,api Name=instance-state-name,Values=running "
        "--max-items 5 --query 'Reservations[].Instances[].InstanceId'"
    )
    assert parsed.service_name == "ec2"
    assert parsed.operation_name == "DescribeInstances"
    assert parsed.region == "us-west-2"
    assert parsed.parameters == {
        "Filters": [
            {"Name": "tag:team", "Values": ["web", "api"]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    }
    assert parsed.pagination_config == {"MaxItems": 5}
    assert parsed.query == "Reservations[].Instances[].InstanceId"


def test_cli_json_values_and_renamed_services(parser: CliParser) -> None:
    parsed = parser.parse(
        "aws s3api list-objects-v2 --bucket prod-web-assets-222222222222 --no-paginate"
    )
    assert (parsed.service_cli_name, parsed.service_name) == ("s3api", "s3")
    assert parsed.paginate is False
    parsed = parser.parse(
        'aws dynamodb get-item --table-name t --key \'{"pk": {"S": "a"}}\' --region eu-west-1'
    )
    assert parsed.parameters == {"TableName": "t", "Key": {"pk": {"S": "a"}}}


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("aws", "name a service"),
        ("aws --version ec2 describe-instances", "--version"),
        ("aws ec2 describe-instances --profile prod", "--profile"),
        ("aws ec2 describe-instances --no-sign-request", "--no-sign-request"),
        ("aws ec2 describe-instances --generate-cli-skeleton", "skeleton"),
        ("aws ec2 describe-instances --cli-input-json file://in.json", "file://"),
        ("aws ec2 describe-instances --max-results nine", "nine"),
        ("aws ec2 describe-instances $(whoami)", "Shell operators"),
        ("aws lambda invoke", "required"),
    ],
)
def test_commands_that_cannot_run(parser: CliParser, command: str, why: str) -> None:
    with pytest.raises(CommandError) as info:
        parser.parse(command)
    assert why in str(info.value)


def test_json_conversion_never_fails() -> None:
    import decimal

    value = {
        "when": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        "blob": b"\x00\x01",
        "count": decimal.Decimal("3"),
        "ratio": decimal.Decimal("0.5"),
        "odd": object(),
    }
    converted = to_jsonable(value)
    assert json.loads(json.dumps(converted))["count"] == 3
    assert converted["when"] == "2026-01-01T00:00:00+00:00"
    assert converted["blob"] == "AAE="
    assert converted["ratio"] == 0.5
