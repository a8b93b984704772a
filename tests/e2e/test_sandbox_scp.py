"""The sandbox's service control policy: a region deny per member account, enforced.

Plain boto3 against the session sandbox, as an operator's own scripts would see AWS: the
member role assumed from the central account, then one call per service in a denied region
(AWS's 403 in that service's protocol, parsed by botocore into a ClientError with AWS's code)
and in an allowed one (answered). Every test restores the rule: the sandbox is shared by the
whole session.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from opsagent.sandbox.scp import MODELS, RegionDenials, ScpDenial, region_deny_policy

PROD = "222222222222"
STAGING = "333333333333"
DENIED, ALLOWED = "us-west-2", "us-east-1"
SESSION = "scp-test"
CALLER = f"arn:aws:sts::{PROD}:assumed-role/OpsAgentReadOnly/{SESSION}"
SCP_DENY = "with an explicit deny in a service control policy"


@pytest.fixture
def deny(sandbox):
    """deny(account, regions) for this test only: each account's rule is put back after it."""
    before: dict[str, frozenset[str]] = {}

    def _deny(account_id: str, regions) -> None:
        before.setdefault(account_id, sandbox.denied_regions(account_id))
        sandbox.deny_regions(account_id, regions)

    yield _deny
    for account_id, regions in before.items():
        sandbox.allow_all_regions(account_id)
        if regions:
            sandbox.deny_regions(account_id, regions)


@pytest.fixture(scope="module")
def member(sandbox):
    """A boto3 session of production's read-only role, assumed from the central identity."""
    sessions: dict[str, boto3.Session] = {}

    def _session(account_id: str = PROD) -> boto3.Session:
        if account_id not in sessions:
            sts = sandbox.central_session().client("sts", endpoint_url=sandbox.aws_endpoint)
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account_id}:role/OpsAgentReadOnly",
                RoleSessionName=SESSION,
            )["Credentials"]
            sessions[account_id] = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        return sessions[account_id]

    return _session


@pytest.fixture
def client(sandbox, member):
    def _client(service: str, region: str, account_id: str = PROD):
        return member(account_id).client(
            service, region_name=region, endpoint_url=sandbox.aws_endpoint
        )

    return _client


def denied(call) -> dict:
    """The error of a call that must be refused with HTTP 403."""
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return response["Error"]


def scp_message(action: str) -> str:
    return f"User: {CALLER} is not authorized to perform: {action} {SCP_DENY}"


def test_ec2_in_a_denied_region_is_unauthorized_and_the_other_region_answers(
    sandbox, deny, client, truth
):
    east = truth.ec2_instances(PROD, regions=(ALLOWED,))
    west = truth.ec2_instances(PROD, regions=(DENIED,))
    assert east and west  # production has instances in both regions
    deny(PROD, [DENIED])
    assert sandbox.denied_regions(PROD) == {DENIED}

    error = denied(lambda: client("ec2", DENIED).describe_instances())
    assert error["Code"] == "UnauthorizedOperation"
    assert error["Message"] == (
        "You are not authorized to perform this operation. " + scp_message("ec2:DescribeInstances")
    )
    answered = client("ec2", ALLOWED).describe_instances()["Reservations"]
    assert {i["InstanceId"] for r in answered for i in r["Instances"]} == set(east)
    # The rule is production's: staging's us-west-2 still answers.
    client("ec2", DENIED, STAGING).describe_instances()

    sandbox.allow_all_regions(PROD)
    answered = client("ec2", DENIED).describe_instances()["Reservations"]
    assert {i["InstanceId"] for r in answered for i in r["Instances"]} == set(west)


def test_s3_signed_for_a_denied_region_is_access_denied(deny, client, truth):
    buckets = truth.buckets(PROD)
    deny(PROD, [DENIED])
    s3 = client("s3", DENIED)
    error = denied(s3.list_buckets)
    assert (error["Code"], error["Message"]) == ("AccessDenied", scp_message("s3:ListAllMyBuckets"))
    bucket = sorted(buckets)[0]
    error = denied(lambda: s3.get_bucket_location(Bucket=bucket))
    assert (error["Code"], error["Message"]) == (
        "AccessDenied",
        scp_message("s3:GetBucketLocation"),
    )
    # A HEAD has no body: S3 answers 403 alone, and botocore's code is the status.
    assert denied(lambda: s3.head_bucket(Bucket=bucket))["Code"] == "403"
    assert {b["Name"] for b in client("s3", ALLOWED).list_buckets()["Buckets"]} == buckets


@pytest.mark.parametrize(
    ("service", "call", "code", "action"),
    [
        # json protocol
        ("dynamodb", lambda c: c.list_tables(), "AccessDeniedException", "dynamodb:ListTables"),
        ("ecs", lambda c: c.list_clusters(), "AccessDeniedException", "ecs:ListClusters"),
        # json, awsQueryCompatible: the query code comes in x-amzn-query-error
        ("sqs", lambda c: c.list_queues(), "AccessDenied", "sqs:ListQueues"),
        # rest-json
        ("lambda", lambda c: c.list_functions(), "AccessDeniedException", "lambda:ListFunctions"),
        ("eks", lambda c: c.list_clusters(), "AccessDeniedException", "eks:ListClusters"),
        # query
        ("rds", lambda c: c.describe_db_instances(), "AccessDenied", "rds:DescribeDBInstances"),
        (
            "cloudformation",
            lambda c: c.describe_stacks(),
            "AccessDenied",
            "cloudformation:DescribeStacks",
        ),
        # smithy-rpc-v2-cbor (CloudWatch, awsQueryCompatible; signed as "monitoring")
        ("cloudwatch", lambda c: c.list_metrics(), "AccessDenied", "cloudwatch:ListMetrics"),
    ],
)
def test_each_protocol_answers_the_deny_with_its_own_code(
    deny, client, service, call, code, action
):
    deny(PROD, [DENIED])
    error = denied(lambda: call(client(service, DENIED)))
    assert (error["Code"], error["Message"]) == (code, scp_message(action))


@pytest.mark.parametrize(
    ("service", "call"),
    [
        ("dynamodb", lambda c: c.list_tables()),
        ("lambda", lambda c: c.list_functions()),
        ("eks", lambda c: c.list_clusters()),
        ("rds", lambda c: c.describe_db_instances()),
    ],
)
def test_the_allowed_region_still_answers(deny, client, service, call):
    deny(PROD, [DENIED])
    call(client(service, ALLOWED))


def test_global_services_are_signed_in_us_east_1_and_sts_is_exempt(sandbox, deny, client):
    deny(PROD, [ALLOWED])
    # IAM is global and signed for us-east-1: a plain region deny of us-east-1 reaches it.
    error = denied(lambda: client("iam", ALLOWED).list_roles())
    assert (error["Code"], error["Message"]) == ("AccessDenied", scp_message("iam:ListRoles"))
    # STS is the policy's NotAction: the central account still assumes the member role...
    sts = sandbox.central_session().client("sts", endpoint_url=sandbox.aws_endpoint)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{PROD}:role/OpsAgentReadOnly", RoleSessionName="scp-exempt"
    )["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    # ...and the member's own STS calls in the denied region answer.
    identity = session.client(
        "sts", region_name=ALLOWED, endpoint_url=sandbox.aws_endpoint
    ).get_caller_identity()
    assert identity["Account"] == PROD
    assert (
        denied(
            lambda: session.client(
                "ec2", region_name=ALLOWED, endpoint_url=sandbox.aws_endpoint
            ).describe_instances()
        )["Code"]
        == "UnauthorizedOperation"
    )


def test_deny_adds_regions_and_allow_all_lifts_them(sandbox, deny):
    deny(PROD, ["us-west-2"])
    deny(PROD, ("eu-west-1",))
    assert sandbox.denied_regions(PROD) == {"us-west-2", "eu-west-1"}
    sandbox.allow_all_regions(PROD)
    assert sandbox.denied_regions(PROD) == frozenset()


@pytest.mark.parametrize(
    ("account", "regions", "error"),
    [
        ("2222", ["us-west-2"], ValueError),
        (PROD, ["us-west"], ValueError),
        (PROD, ["US-WEST-2"], ValueError),
        (PROD, "us-west-2", TypeError),  # one string is not a list of regions
    ],
)
def test_a_malformed_rule_is_refused(account, regions, error):
    with pytest.raises(error):
        RegionDenials().deny(account, regions)


def test_the_rule_is_the_documented_region_deny_scp():
    rules = RegionDenials()
    assert rules.policy(PROD) is None
    rules.deny(PROD, ["us-west-2", "eu-west-1"])
    assert (
        rules.policy(PROD)
        == region_deny_policy(["eu-west-1", "us-west-2"])
        == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyRegions",
                    "Effect": "Deny",
                    "NotAction": ["sts:*"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-west-2"]}
                    },
                }
            ],
        }
    )
    rules.set(PROD, [])
    assert rules.policy(PROD) is None and not rules.may_deny("us-west-2")


def test_the_ec2_and_query_bodies_are_awss():
    status, headers, body = ScpDenial("ec2", "no <way>").render()
    assert status == "403 Forbidden"
    assert b"<Response><Errors><Error><Code>UnauthorizedOperation</Code>" in body
    assert b"<Message>no &lt;way&gt;</Message></Error></Errors><RequestID>" in body
    _, _, body = ScpDenial(
        "query", "no", xml_namespace="https://iam.amazonaws.com/doc/2010-05-08/"
    ).render()
    assert body.startswith(
        b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        b"<Error><Type>Sender</Type><Code>AccessDenied</Code>"
    )
    _, headers, body = ScpDenial("rest-json", "no").render()
    assert ("x-amzn-ErrorType", "AccessDeniedException") in headers
    assert body == b'{"message": "no"}'


@pytest.mark.parametrize(
    ("signing_name", "environ", "protocol", "service"),
    [
        ("ec2", {"CONTENT_TYPE": "application/x-www-form-urlencoded"}, "ec2", "ec2"),
        ("iam", {"CONTENT_TYPE": "application/x-www-form-urlencoded"}, "query", "iam"),
        ("s3", {}, "rest-xml", "s3"),
        ("lambda", {}, "rest-json", "lambda"),
        ("dynamodb", {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.ListTables"}, "json", "dynamodb"),
        # Signing names that are no service's name, and services of several protocols.
        ("monitoring", {"HTTP_SMITHY_PROTOCOL": "rpc-v2-cbor"}, "smithy-rpc-v2-cbor", "cloudwatch"),
        (
            "monitoring",
            {"CONTENT_TYPE": "application/x-www-form-urlencoded"},
            "query",
            "cloudwatch",
        ),
        (
            "states",
            {"HTTP_X_AMZ_TARGET": "AWSStepFunctions.ListStateMachines"},
            "json",
            "stepfunctions",
        ),
        (
            "elasticloadbalancing",
            {"CONTENT_TYPE": "application/x-www-form-urlencoded"},
            "query",
            "elb",
        ),
    ],
)
def test_the_protocol_is_the_signing_services_model_s(signing_name, environ, protocol, service):
    resolved = MODELS.resolve(signing_name, environ)
    assert resolved.protocol == protocol
    assert resolved.services[0].name == service


def test_the_code_is_what_botocore_reads_from_each_answer():
    assert ScpDenial("ec2", "m").code == "UnauthorizedOperation"
    assert ScpDenial("query", "m").code == ScpDenial("rest-xml", "m").code == "AccessDenied"
    assert (
        ScpDenial("json", "m").code == ScpDenial("rest-json", "m").code == ("AccessDeniedException")
    )
    assert ScpDenial("json", "m", query_compatible=True).code == "AccessDenied"
