"""Shared fixtures: one seeded sandbox per test session, and ground truth read from moto.

Ground truth is read with plain boto3 (AssumeRole into each account, then describe/list),
never through the agent's own code, so a test compares the agent with what AWS holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
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


# ----- the product's five example questions, checked against moto on every path -----

EXAMPLE_QUESTIONS = [
    "List all EC2 instances in the production account",
    "Show me S3 buckets across all accounts",
    "What Lambda functions exist in staging?",
    "Describe EKS clusters in account 222222222222",
    "How many RDS instances are running in each account?",
]
EXAMPLE_ACCOUNTS = ["222222222222", "333333333333", "444444444444"]
DEMO_REGISTRY = ROOT / "opsagent" / "sandbox" / "demo-registry.json"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180):
    """`opsagent ARGS` as a child process, from the project's root, its output captured."""
    return subprocess.run(
        [OPSAGENT, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def ask_sandbox(
    sandbox,
    env: dict[str, str],
    *questions: str,
    options: tuple[str, ...] = (),
    registry: Path = DEMO_REGISTRY,
):
    """`opsagent ask --json` on a registry (the demo one), pointed at the session sandbox as
    at any AWS-compatible endpoint (``env``: external_env); one JSON line per question."""
    return run_cli(
        "ask",
        "--json",
        *options,
        "--registry",
        str(registry),
        "--mcp-endpoint",
        sandbox.mcp_endpoint,
        *questions,
        env=env,
    )


def ids_by_account(answer: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in answer["resources"]:
        found.setdefault(row["account_id"], set()).add(row["id"])
    return found


def statuses(answer: dict) -> dict[str, str]:
    return {a["account_id"]: a["status"] for a in answer["accounts"]}


def check_example_answer(question: str, answer: dict, truth) -> None:
    """The answer JSON to one of the five example questions against what moto holds, on any
    path (direct, through the Gateway, with enterprise identity)."""
    if question == EXAMPLE_QUESTIONS[0]:
        assert statuses(answer) == {"222222222222": "ok"}
        expected = truth.ec2_instances("222222222222")
        assert expected
        assert {r["id"]: r["state"] for r in answer["resources"]} == expected
    elif question == EXAMPLE_QUESTIONS[1]:
        assert statuses(answer) == dict.fromkeys(EXAMPLE_ACCOUNTS, "ok")
        assert ids_by_account(answer) == {a: truth.buckets(a) for a in EXAMPLE_ACCOUNTS}
    elif question == EXAMPLE_QUESTIONS[2]:
        assert statuses(answer) == {"333333333333": "ok"}
        expected = truth.lambda_functions("333333333333")
        assert expected
        assert ids_by_account(answer) == {"333333333333": expected}
    elif question == EXAMPLE_QUESTIONS[3]:
        assert statuses(answer) == {"222222222222": "ok"}
        assert ids_by_account(answer) == {"222222222222": truth.eks_clusters("222222222222")}
        for row in answer["resources"]:
            cluster = truth.client("222222222222", "eks", row["region"]).describe_cluster(
                name=row["id"]
            )["cluster"]
            assert row["details"]["version"] == cluster["version"]
            assert row["details"]["endpoint"] == cluster["endpoint"]
    else:
        expected = {
            a: sum(1 for s in truth.rds_instances(a).values() if s == "available")
            for a in EXAMPLE_ACCOUNTS
        }
        assert sum(expected.values()) > 0
        assert {a["account_id"]: a["count"] for a in answer["accounts"]} == expected
        assert Counter(r["account_id"] for r in answer["resources"]) == +Counter(expected)
        assert f"There are {sum(expected.values())}" in answer["answer"]
