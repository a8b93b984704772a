"""End to end through the `opsagent` CLI on the sandbox, checked against moto's ground truth."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import DEMO_REGISTRY, ask_sandbox, ids_by_account, run_cli, statuses

WORKLOAD = ["222222222222", "333333333333", "444444444444"]


@pytest.fixture(scope="module")
def ask(sandbox, external_env, tmp_path_factory):
    """Ask through the CLI, pointed at the session sandbox like any AWS-compatible endpoint."""

    def _ask(question: str, registry=DEMO_REGISTRY) -> dict:
        done = ask_sandbox(sandbox, external_env, question, registry=registry)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return _ask


def test_list_ec2_instances_in_production(ask, truth):
    answer = ask("List all EC2 instances in the production account")
    assert statuses(answer) == {"222222222222": "ok"}
    expected = truth.ec2_instances("222222222222")
    assert expected, "the seed must give production some instances"
    assert ids_by_account(answer) == {"222222222222": set(expected)}
    assert {r["resource_type"] for r in answer["resources"]} == {"ec2:instance"}
    assert {r["id"]: r["state"] for r in answer["resources"]} == expected
    assert str(len(expected)) in answer["answer"]


def test_s3_buckets_across_all_accounts(ask, truth):
    answer = ask("Show me S3 buckets across all accounts")
    assert statuses(answer) == dict.fromkeys(WORKLOAD, "ok")
    assert ids_by_account(answer) == {a: truth.buckets(a) for a in WORKLOAD}
    counts = {a["account_id"]: a["count"] for a in answer["accounts"]}
    assert counts == {a: len(truth.buckets(a)) for a in WORKLOAD}
    # The central account is queried only when a question names it.
    assert "111111111111" not in statuses(answer)


def test_lambda_functions_in_staging(ask, truth):
    answer = ask("What Lambda functions exist in staging?")
    assert statuses(answer) == {"333333333333": "ok"}
    assert ids_by_account(answer) == {"333333333333": truth.lambda_functions("333333333333")}


def test_describe_eks_clusters_in_account(ask, truth):
    answer = ask("Describe EKS clusters in account 222222222222")
    assert statuses(answer) == {"222222222222": "ok"}
    assert ids_by_account(answer) == {"222222222222": truth.eks_clusters("222222222222")}
    assert all(r["resource_type"] == "eks:cluster" for r in answer["resources"])
    # Describe carries each cluster's details, as EKS reports them.
    for row in answer["resources"]:
        cluster = truth.client("222222222222", "eks", row["region"]).describe_cluster(
            name=row["id"]
        )["cluster"]
        assert row["details"]["version"] == cluster["version"]
        assert row["details"]["endpoint"] == cluster["endpoint"]


def test_lists_stay_compact(ask):
    answer = ask("Show me S3 buckets across all accounts")
    assert all("details" not in row for row in answer["resources"])


def test_count_running_rds_per_account(ask, truth):
    answer = ask("How many RDS instances are running in each account?")
    expected = {
        a: sum(1 for s in truth.rds_instances(a).values() if s == "available") for a in WORKLOAD
    }
    counts = {a["account_id"]: a["count"] for a in answer["accounts"]}
    assert counts == expected
    assert sum(expected.values()) > 0
    assert all(r["state"] == "available" for r in answer["resources"])
    assert Counter(r["account_id"] for r in answer["resources"]) == +Counter(expected)
    assert f"There are {sum(expected.values())}" in answer["answer"]


@pytest.mark.parametrize(
    ("question", "resource_type", "accounts"),
    [
        ("list the VMs in prod", "ec2:instance", ["222222222222"]),
        ("which buckets do we have?", "s3:bucket", WORKLOAD),
        ("count running databases per account", "rds:db-instance", WORKLOAD),
    ],
)
def test_paraphrases(ask, question, resource_type, accounts):
    answer = ask(question)
    assert sorted(statuses(answer)) == sorted(accounts)
    assert {r["resource_type"] for r in answer["resources"]} <= {resource_type}


def test_partial_failure_denied_account_keeps_the_others(ask, truth, tmp_path):
    registry = json.loads(DEMO_REGISTRY.read_text())
    # Development's role name is wrong: AssumeRole is refused there, as AWS would.
    registry["accounts"][3]["role_name"] = "NoSuchRole"
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(registry))
    answer = ask("Show me S3 buckets across all accounts", registry=path)
    by_id = {a["account_id"]: a for a in answer["accounts"]}
    assert by_id["444444444444"]["status"] == "denied"
    assert "AssumeRole" in by_id["444444444444"]["error"]
    assert by_id["222222222222"]["status"] == by_id["333333333333"]["status"] == "ok"
    found = ids_by_account(answer)
    assert found == {a: truth.buckets(a) for a in ("222222222222", "333333333333")}
    assert "development" in answer["answer"] and "denied" in answer["answer"]


def test_mcp_session_failure_is_an_account_error(sandbox, external_env, truth):
    # Nothing listens here: every account's MCP session fails, and the answer says so. With
    # no account answered there is no answer, not "0 found": exit 5.
    done = run_cli(
        "ask",
        "--json",
        "--registry",
        str(DEMO_REGISTRY),
        "--mcp-endpoint",
        "http://127.0.0.1:9/mcp",
        "What Lambda functions exist in staging?",
        env=external_env,
    )
    assert done.returncode == 5, done.stderr
    answer = json.loads(done.stdout)
    assert statuses(answer) == {"333333333333": "error"}
    assert answer["resources"] == []
    assert answer["answer"].startswith(
        "The account could not be queried, so I have no answer about Lambda functions."
    )


def test_read_only_refusals_make_no_aws_call(sandbox, external_env, truth):
    before = truth.ec2_instances("333333333333"), truth.buckets("222222222222")
    for question in ("terminate all EC2 instances in staging", "delete the buckets"):
        done = run_cli(
            "ask",
            "--registry",
            str(DEMO_REGISTRY),
            "--mcp-endpoint",
            sandbox.mcp_endpoint,
            question,
            env=external_env,
        )
        assert done.returncode == 3, (question, done.stdout, done.stderr)
        assert "read-only" in done.stdout
    assert (truth.ec2_instances("333333333333"), truth.buckets("222222222222")) == before


def test_unparsable_question_and_unknown_account(sandbox, external_env):
    done = run_cli(
        "ask",
        "--registry",
        str(DEMO_REGISTRY),
        "--mcp-endpoint",
        sandbox.mcp_endpoint,
        "what is the meaning of life?",
        env=external_env,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    done = run_cli(
        "ask",
        "--registry",
        str(DEMO_REGISTRY),
        "--mcp-endpoint",
        sandbox.mcp_endpoint,
        "list instances in the qa account",
        env=external_env,
    )
    assert done.returncode == 2
    assert "Production" in done.stdout and "Traceback" not in done.stderr


def test_bad_registry_is_a_clear_error(sandbox, external_env, tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"accounts": [{"id": "12", "name": "x", "environment": "y"}]}))
    done = run_cli(
        "ask",
        "--registry",
        str(path),
        "--mcp-endpoint",
        sandbox.mcp_endpoint,
        "list buckets",
        env=external_env,
    )
    assert done.returncode == 1
    assert "12 digits" in done.stderr and "Traceback" not in done.stderr


def test_embedded_sandbox_with_no_configuration(truth, tmp_path):
    # No registry, no endpoint: the CLI starts its own sandbox and stops it on exit. Bucket
    # names are deterministic, so the session sandbox's names are the ground truth here too.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPSAGENT_CHECKPOINT_URL": "memory://"}
    done = run_cli("ask", "--json", "Show me S3 buckets across all accounts", env=env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert ids_by_account(answer) == {a: truth.buckets(a) for a in WORKLOAD}


def test_follow_up_across_invocations_with_a_named_thread(sandbox, external_env, truth, tmp_path):
    env = {**external_env, "OPSAGENT_CHECKPOINT_URL": f"sqlite:///{tmp_path}/threads.sqlite"}
    common = [
        "ask",
        "--json",
        "--registry",
        str(DEMO_REGISTRY),
        "--mcp-endpoint",
        sandbox.mcp_endpoint,
        "--thread",
        "cli-thread-1",
    ]
    first = run_cli(*common, "List EC2 instances in production", env=env)
    assert first.returncode == 0, first.stderr
    follow_up = run_cli(*common, "only the running ones", env=env)
    assert follow_up.returncode == 0, follow_up.stderr
    answer = json.loads(follow_up.stdout)
    running = {i for i, s in truth.ec2_instances("222222222222").items() if s == "running"}
    assert ids_by_account(answer) == {"222222222222": running}


def test_bad_mcp_endpoint_is_a_clear_error(external_env):
    done = run_cli(
        "ask",
        "--registry",
        str(DEMO_REGISTRY),
        "--mcp-endpoint",
        "ftp://x",
        "list buckets",
        env=external_env,
    )
    assert done.returncode == 1
    assert "Only HTTPS" in done.stderr and "Traceback" not in done.stderr


def test_no_central_credentials_is_a_clear_error(sandbox, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = run_cli(
        "ask",
        "--registry",
        str(DEMO_REGISTRY),
        "--mcp-endpoint",
        sandbox.mcp_endpoint,
        "list buckets in prod",
        env=env,
    )
    assert done.returncode == 1
    assert "no AWS credentials" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("fresh", [False, True])
def test_several_questions_are_one_conversation_and_follow_ups_reuse_reads(
    sandbox, external_env, truth, fresh
):
    """`opsagent ask Q1 Q2`: Q2 is a follow-up of Q1 that only narrows it, answered from Q1's
    reads unless --fresh; one JSON line per question."""
    done = ask_sandbox(
        sandbox,
        external_env,
        "List EC2 instances in staging",
        "only the stopped ones",
        options=("--fresh",) if fresh else (),
    )
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    stopped = {i for i, s in truth.ec2_instances("333333333333").items() if s == "stopped"}
    assert {r["id"] for r in second["resources"]} == stopped
    assert second["accounts"][0]["reused"] is (not fresh)
    assert ("reused from an earlier question" in second["answer"]) is (not fresh)
    assert first["accounts"][0]["reused"] is False


def test_the_registry_can_come_live_from_aws_organizations(sandbox, external_env, truth):
    """No registry file: OPSAGENT_REGISTRY_SOURCE=organizations discovers the accounts (the
    sandbox's moto holds the demo organization, with a suspended account that is skipped)."""
    env = {
        **external_env,
        "OPSAGENT_REGISTRY_SOURCE": "organizations",
        "OPSAGENT_REGISTRY_REGIONS": '["us-east-1", "us-west-2"]',
    }
    done = run_cli(
        "ask",
        "--json",
        "--mcp-endpoint",
        sandbox.mcp_endpoint,
        "Show me S3 buckets in prod and staging",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert statuses(answer) == {"222222222222": "ok", "333333333333": "ok"}
    for account in ("222222222222", "333333333333"):
        assert ids_by_account(answer)[account] == truth.buckets(account)


def test_organizations_and_a_registry_file_together_is_one_clear_error(external_env):
    env = {**external_env, "OPSAGENT_REGISTRY_SOURCE": "organizations"}
    done = run_cli("ask", "--registry", str(DEMO_REGISTRY), "list buckets", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: invalid settings")
    assert "set one of them" in done.stderr


@pytest.fixture
def opt_in_region(sandbox, tmp_path):
    """A registry asking af-south-1 too, enabled in production only (as opt-in regions are
    until someone enables them)."""
    registry = json.loads(DEMO_REGISTRY.read_text())
    registry["default_regions"] = ["us-east-1", "us-west-2", "af-south-1"]
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(registry))
    for account in ("333333333333", "444444444444"):
        sandbox.disable_regions(account, ["af-south-1"])
    yield path
    for account in ("333333333333", "444444444444"):
        sandbox.enable_regions(account, ["af-south-1"])


def test_a_region_an_account_has_not_enabled_is_reported_and_not_a_failure(
    ask, truth, opt_in_region
):
    answer = ask("List EC2 instances across all accounts", registry=opt_in_region)
    assert set(statuses(answer).values()) == {"ok"}
    off = {a["account_id"]: a["regions_not_enabled"] for a in answer["accounts"]}
    assert off == {
        "222222222222": [],
        "333333333333": ["af-south-1"],
        "444444444444": ["af-south-1"],
    }
    assert all(a["error"] is None for a in answer["accounts"])
    assert "af-south-1 is not enabled in staging, development" in answer["answer"]
    for account, ids in ids_by_account(answer).items():
        assert ids == set(truth.ec2_instances(account))
