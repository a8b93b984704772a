"""Regions an account has not enabled (opt-in regions), refused as AWS refuses them.

First through the agent's own path: ``AccountSessions.run_reads`` sends one account's reads,
one per region, as ONE aws___run_script over a SigV4-signed MCP session to the stand-in,
whose call_boto3 reaches moto as the account's role session. Then with plain boto3 per
protocol, as an operator's own scripts would see AWS. Every test enables again what it
disabled: the sandbox is shared by the whole session.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from opsagent.access import Asker, Read
from opsagent.registry import Registry, load_registry
from opsagent.sandbox.aws_errors import ProtocolContext
from opsagent.sandbox.optin import OPT_IN_ERROR_CODES, DisabledRegions, opt_in_failure
from tests.conftest import sandbox_pool

PROD, STAGING = "222222222222", "333333333333"
OPT_IN, HOME = "af-south-1", "us-east-1"
INVALID_TOKEN = "The security token included in the request is invalid"


@pytest.fixture(scope="module")
def registry(sandbox) -> Registry:
    return load_registry(sandbox.registry_path)


@pytest.fixture
def disable(sandbox):
    """disable(account, regions) for this test only: enabled again after it."""
    disabled: list[tuple[str, list[str]]] = []

    def _disable(account_id: str, regions: list[str]) -> None:
        sandbox.disable_regions(account_id, regions)
        disabled.append((account_id, regions))

    yield _disable
    for account_id, regions in disabled:
        sandbox.enable_regions(account_id, regions)


def read(service: str, operation: str, region: str) -> Read:
    return Read(service=service, operation=operation, region=region, params={})


def instance_ids(response: dict) -> set[str]:
    return {i["InstanceId"] for r in response["Reservations"] for i in r["Instances"]}


async def test_the_disabled_regions_reads_fail_as_aws_fails_them_and_the_other_region_answers(
    sandbox, disable, registry, truth
):
    production = registry.get(PROD)
    reads = [
        read("ec2", "DescribeInstances", HOME),
        read("ec2", "DescribeInstances", OPT_IN),
        read("eks", "ListClusters", OPT_IN),  # rest-json
        read("dynamodb", "ListTables", OPT_IN),  # json
        read("cloudformation", "ListStacks", OPT_IN),  # query
    ]
    disable(PROD, [OPT_IN])
    assert sandbox.disabled_regions(PROD) == {OPT_IN}
    pool = sandbox_pool(sandbox)
    try:
        sandbox.scripts.clear()
        home, ec2, eks, dynamodb, stacks = await pool.run_reads(production, Asker("alice"), reads)
        assert list(sandbox.scripts) == [(PROD, len(reads))]  # one script, every read in it

        assert home.ok
        assert instance_ids(home.result) == set(truth.ec2_instances(PROD, regions=(HOME,)))
        assert instance_ids(home.result)  # production has instances at home
        assert (ec2.error.code, ec2.error.message) == (
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        )
        assert (eks.error.code, eks.error.message) == (
            "UnrecognizedClientException",
            INVALID_TOKEN + ".",
        )
        assert (dynamodb.error.code, dynamodb.error.message) == (
            "UnrecognizedClientException",
            INVALID_TOKEN,
        )
        assert (stacks.error.code, stacks.error.message) == (
            "InvalidClientTokenId",
            INVALID_TOKEN + ".",
        )
        assert all(r.result is None for r in (ec2, eks, dynamodb, stacks))

        # Staging has not disabled it: its af-south-1 answers.
        [staging] = await pool.run_reads(registry.get(STAGING), Asker("alice"), [reads[1]])
        assert staging.ok and staging.result["Reservations"] == []

        sandbox.enable_regions(PROD, [OPT_IN])
        assert sandbox.disabled_regions(PROD) == frozenset()
        again = await pool.run_reads(production, Asker("alice"), reads)
        assert [r.error for r in again] == [None] * len(reads)
        assert instance_ids(again[0].result) == instance_ids(home.result)
        assert again[1].result["Reservations"] == []
    finally:
        await pool.aclose()


# ----- plain boto3, one service per protocol -----


@pytest.fixture(scope="module")
def member(sandbox):
    """boto3 sessions of a member account's read-only role, assumed from the central identity."""
    sessions: dict[str, boto3.Session] = {}

    def _session(account_id: str = PROD) -> boto3.Session:
        if account_id not in sessions:
            sts = sandbox.central_session().client("sts", endpoint_url=sandbox.aws_endpoint)
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account_id}:role/OpsAgentReadOnly",
                RoleSessionName="optin-test",
            )["Credentials"]
            sessions[account_id] = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        return sessions[account_id]

    return _session


def client(sandbox, member, service: str, region: str = OPT_IN, account_id: str = PROD):
    return member(account_id).client(service, region_name=region, endpoint_url=sandbox.aws_endpoint)


def refused(call) -> tuple[int, dict]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]


@pytest.mark.parametrize(
    ("service", "call", "status", "code"),
    [
        ("ec2", lambda c: c.describe_vpcs(), 401, "AuthFailure"),
        ("cloudformation", lambda c: c.list_stacks(), 403, "InvalidClientTokenId"),
        ("sts", lambda c: c.get_caller_identity(), 403, "InvalidClientTokenId"),
        ("dynamodb", lambda c: c.list_tables(), 400, "UnrecognizedClientException"),
        # json, awsQueryCompatible: the query code comes in x-amzn-query-error
        ("sqs", lambda c: c.list_queues(), 400, "InvalidClientTokenId"),
        ("lambda", lambda c: c.list_functions(), 403, "UnrecognizedClientException"),
        ("eks", lambda c: c.list_clusters(), 403, "UnrecognizedClientException"),
        ("s3", lambda c: c.list_buckets(), 403, "InvalidAccessKeyId"),
    ],
)
def test_each_protocol_answers_awss_code(sandbox, disable, member, service, call, status, code):
    client(sandbox, member, service)  # the session is assumed before the region goes
    disable(PROD, [OPT_IN])
    got_status, error = refused(lambda: call(client(sandbox, member, service)))
    assert (got_status, error["Code"]) == (status, code)
    # The account's other regions, and other accounts in this one, answer.
    call(client(sandbox, member, service, region=HOME))
    call(client(sandbox, member, service, account_id=STAGING))


def test_s3_names_the_unknown_key_and_a_head_gets_the_status_alone(sandbox, disable, member):
    s3 = client(sandbox, member, "s3")
    key = member(PROD).get_credentials().access_key
    bucket = next(iter(client(sandbox, member, "s3", region=HOME).list_buckets()["Buckets"]))
    disable(PROD, [OPT_IN])
    _, error = refused(s3.list_buckets)
    assert error["Message"] == "The AWS Access Key Id you provided does not exist in our records."
    assert error["AWSAccessKeyId"] == key
    assert refused(lambda: s3.head_bucket(Bucket=bucket["Name"]))[1]["Code"] == "403"


def test_authentication_fails_before_an_scp_deny_and_assume_role_still_works(
    sandbox, disable, member
):
    disable(PROD, [OPT_IN])
    sandbox.deny_regions(PROD, [OPT_IN])
    try:
        _, error = refused(lambda: client(sandbox, member, "ec2").describe_vpcs())
        assert error["Code"] == "AuthFailure"  # not the SCP's UnauthorizedOperation
    finally:
        sandbox.allow_all_regions(PROD)
    # AssumeRole into the account is signed by the central identity, whose regions are all on.
    sts = sandbox.central_session().client(
        "sts", region_name=OPT_IN, endpoint_url=sandbox.aws_endpoint
    )
    sts.assume_role(RoleArn=f"arn:aws:iam::{PROD}:role/OpsAgentReadOnly", RoleSessionName="opt")


# ----- the rule and the answers, without a server -----


def test_enable_lifts_only_the_regions_named_and_bad_input_is_refused():
    rule = DisabledRegions()
    rule.disable(PROD, [OPT_IN, "ap-east-1"])
    rule.enable(PROD, ["ap-east-1", "me-south-1"])
    assert rule.regions(PROD) == {OPT_IN} and rule.applies(PROD, OPT_IN)
    assert not rule.applies(STAGING, OPT_IN) and not rule.may_apply("ap-east-1")
    with pytest.raises(ValueError):
        rule.disable("2222", [OPT_IN])
    with pytest.raises(TypeError):
        rule.disable(PROD, OPT_IN)


def test_the_answers_per_protocol():
    def context(protocol: str, **options) -> ProtocolContext:
        fields = {
            "query_compatible": False,
            "json_version": "1.0",
            "xml_namespace": None,
            "s3_style": False,
        }
        return ProtocolContext(protocol=protocol, **(fields | options))

    status, _, body = opt_in_failure(context("ec2"), "ASIAKEY").render()
    assert status == "401 Unauthorized"
    assert b"<Errors><Error><Code>AuthFailure</Code>" in body
    status, headers, body = opt_in_failure(context("json"), "ASIAKEY").render()
    assert status == "400 Bad Request"
    assert ("x-amzn-ErrorType", "UnrecognizedClientException") in headers
    _, headers, _ = opt_in_failure(context("json", query_compatible=True), "ASIAKEY").render()
    assert ("x-amzn-query-error", "InvalidClientTokenId;Sender") in headers
    s3 = opt_in_failure(context("rest-xml", s3_style=True), "ASIAKEY")
    assert b"<AWSAccessKeyId>ASIAKEY</AWSAccessKeyId>" in s3.render()[2]
    assert s3.render("HEAD")[2] == b""
    assert OPT_IN_ERROR_CODES == {
        "ec2": "AuthFailure",
        "query": "InvalidClientTokenId",
        "rest-xml": "InvalidClientTokenId",
        "json": "UnrecognizedClientException",
        "smithy-rpc-v2-cbor": "UnrecognizedClientException",
        "rest-json": "UnrecognizedClientException",
        "s3": "InvalidAccessKeyId",
    }
