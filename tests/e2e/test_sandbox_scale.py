"""More member accounts in the sandbox (seed_member_accounts), as organization-scale work needs."""

from __future__ import annotations

import boto3
import pytest

from opsagent.sandbox.seed import (
    READ_ONLY_ROLE,
    REGIONS,
    member_account_ids,
    member_bucket_name,
    member_instance_name,
    seed_member_accounts,
)

# Accounts of their own, so what this module seeds changes no other test's ground truth.
FIRST = 700_000_000_001
COUNT = 5


@pytest.fixture(scope="module")
def members(sandbox) -> list[str]:
    return seed_member_accounts(
        sandbox.aws_endpoint, sandbox.central_credentials, COUNT, first_id=FIRST
    )


def _as_read_only(sandbox, account: str) -> boto3.Session:
    sts = sandbox.central_session().client("sts", endpoint_url=sandbox.aws_endpoint)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{READ_ONLY_ROLE}", RoleSessionName="scale-test"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_ids_are_twelve_digits_counting_up(members) -> None:
    assert members == [f"{FIRST + n:012d}" for n in range(COUNT)]
    assert member_account_ids(2) == ["100000000001", "100000000002"]
    with pytest.raises(ValueError):
        member_account_ids(2, first_id=999_999_999_999)


def test_each_account_is_assumable_by_the_central_identity_and_holds_its_resources(
    sandbox, members
) -> None:
    for account in members:
        session = _as_read_only(sandbox, account)
        identity = session.client(
            "sts", region_name="us-east-1", endpoint_url=sandbox.aws_endpoint
        ).get_caller_identity()
        assert identity["Account"] == account
        for region in REGIONS:
            ec2 = session.client("ec2", region_name=region, endpoint_url=sandbox.aws_endpoint)
            instances = [
                i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            ]
            assert [
                (i["State"]["Name"], {t["Key"]: t["Value"] for t in i["Tags"]}["Name"])
                for i in instances
            ] == [("running", member_instance_name(account, region))]
        s3 = session.client("s3", region_name="us-east-1", endpoint_url=sandbox.aws_endpoint)
        assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {
            member_bucket_name(account, region) for region in REGIONS
        }


def test_an_account_is_not_seeded_twice(sandbox, members) -> None:
    with pytest.raises(ValueError, match="already seeded"):
        seed_member_accounts(
            sandbox.aws_endpoint, sandbox.central_credentials, 1, first_id=FIRST + COUNT - 1
        )
