"""Shared fixtures: one seeded sandbox per test session, and ground truth read from moto.

Ground truth is read with plain boto3 (AssumeRole into each account, then describe/list),
never through the agent's own code, so a test compares the agent with what AWS holds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[1]
OPSAGENT = str(Path(sys.executable).with_name("opsagent"))


@pytest.fixture(scope="session")
def sandbox():
    from opsagent.sandbox import start_sandbox

    box = start_sandbox()
    yield box
    box.stop()


class GroundTruth:
    """Reads an account's resources straight from moto with boto3."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.central = sandbox.central_session()

    def session(self, account_id: str) -> boto3.Session:
        sts = self.central.client("sts", endpoint_url=self.sandbox.aws_endpoint)
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/OpsAgentReadOnly",
            RoleSessionName="ground-truth",
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def client(self, account_id: str, service: str, region: str = "us-east-1"):
        return self.session(account_id).client(
            service, region_name=region, endpoint_url=self.sandbox.aws_endpoint
        )

    def ec2_instances(self, account_id: str, regions=("us-east-1", "us-west-2")) -> dict:
        """instance id -> state name."""
        found = {}
        for region in regions:
            for res in self.client(account_id, "ec2", region).describe_instances()["Reservations"]:
                for inst in res["Instances"]:
                    found[inst["InstanceId"]] = inst["State"]["Name"]
        return found

    def buckets(self, account_id: str) -> set[str]:
        return {b["Name"] for b in self.client(account_id, "s3").list_buckets()["Buckets"]}

    def lambda_functions(self, account_id: str, regions=("us-east-1", "us-west-2")) -> set[str]:
        return {
            f["FunctionName"]
            for region in regions
            for f in self.client(account_id, "lambda", region).list_functions()["Functions"]
        }

    def eks_clusters(self, account_id: str, regions=("us-east-1", "us-west-2")) -> set[str]:
        return {
            name
            for region in regions
            for name in self.client(account_id, "eks", region).list_clusters()["clusters"]
        }

    def rds_instances(self, account_id: str, regions=("us-east-1", "us-west-2")) -> dict:
        """DB instance id -> status."""
        return {
            db["DBInstanceIdentifier"]: db["DBInstanceStatus"]
            for region in regions
            for db in self.client(account_id, "rds", region).describe_db_instances()["DBInstances"]
        }


def sandbox_pool(sandbox, **options):
    """AccountSessions on the session sandbox, the way the runtime builds them; ``options``
    override the endpoint, timeout and the rest."""
    from opsagent.access import AccountSessions

    return AccountSessions(
        mcp_endpoint=options.pop("mcp_endpoint", sandbox.mcp_endpoint),
        central=options.pop("central", None) or sandbox.central_session(),
        sts_endpoint_url=sandbox.aws_endpoint,
        mcp_service=sandbox.mcp_service,
        mcp_region=sandbox.mcp_region,
        **options,
    )


@pytest.fixture(scope="session")
def truth(sandbox) -> GroundTruth:
    return GroundTruth(sandbox)


@pytest.fixture(scope="session")
def external_env(sandbox) -> dict[str, str]:
    """Environment for an `opsagent` process pointed at the session sandbox as if it were any
    AWS: the central identity and endpoint the way boto3 reads them."""
    creds = sandbox.central_credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSAGENT_"))}
    env.update(
        AWS_ACCESS_KEY_ID=creds.access_key,
        AWS_SECRET_ACCESS_KEY=creds.secret_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=sandbox.aws_endpoint,
        OPSAGENT_CHECKPOINT_URL="memory://",
    )
    if creds.token:
        env["AWS_SESSION_TOKEN"] = creds.token
    return env
