"""The questions operators ask next, end to end through `opsagent ask --json` on the sandbox:
attributes, lifecycle, tags present or absent, time, top N, the account with the most,
groups and totals. Rows are checked against moto's ground truth (opsagent/evals/truth.py,
which reads moto with boto3 on its own), and the sentence against the rows."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from opsagent.evals.truth import GroundTruth
from opsagent.registry import load_registry
from tests.conftest import DEMO_REGISTRY, ask_sandbox, statuses

WORKLOAD = ["222222222222", "333333333333", "444444444444"]


@pytest.fixture(scope="module")
def ask(sandbox, external_env):
    def _ask(question: str) -> dict:
        done = ask_sandbox(sandbox, external_env, question)
        answer = json.loads(done.stdout)
        # exit 2 is a refusal; anything else but 0 is a failure
        assert done.returncode == (2 if answer["refusal"] else 0), done.stderr
        return answer

    return _ask


@pytest.fixture(scope="module")
def moto_truth(sandbox) -> GroundTruth:
    return GroundTruth.for_sandbox(sandbox, load_registry(DEMO_REGISTRY))


def _expected(moto_truth: GroundTruth, query: dict, accounts=WORKLOAD) -> list:
    return moto_truth.rows(accounts, None, query)


def _ids(answer: dict) -> list[str]:
    return [r["id"] for r in answer["resources"]]


def test_deprecated_runtimes_are_named_with_their_runtime(ask, moto_truth):
    answer = ask("Which Lambda functions still run a deprecated runtime?")
    query = {
        "resource_type": "lambda:function",
        "filters": [{"attribute": "runtime_deprecated", "op": "eq", "value": True}],
    }
    expected = _expected(moto_truth, query)
    assert expected, "the seed must hold functions on deprecated runtimes"
    assert sorted(_ids(answer)) == sorted(r.id for r in expected)
    runtimes = Counter(r.attribute_dict["runtime"] for r in expected)
    # The sentence and the rows name each runtime: "By runtime: python3.8 1, nodejs16.x 1".
    for runtime, n in runtimes.items():
        assert f"{runtime} {n}" in answer["answer"]
    for row in answer["resources"]:
        assert row["details"]["runtime"] in runtimes
        assert row["details"]["runtime_deprecated"] is True


def test_unencrypted_public_databases_in_production(ask, moto_truth):
    answer = ask("publicly accessible RDS databases in prod that aren't encrypted")
    assert statuses(answer) == {"222222222222": "ok"}
    query = {
        "resource_type": "rds:db-instance",
        "filters": [
            {"attribute": "publicly_accessible", "op": "eq", "value": True},
            {"attribute": "storage_encrypted", "op": "eq", "value": False},
        ],
    }
    expected = _expected(moto_truth, query, ["222222222222"])
    assert expected
    assert sorted(_ids(answer)) == sorted(r.id for r in expected)


def test_instances_without_an_owner_tag(ask, moto_truth):
    answer = ask("EC2 instances without an owner tag")
    query = {"resource_type": "ec2:instance", "missing_tags": ["owner"]}
    expected = _expected(moto_truth, query)
    assert sorted(_ids(answer)) == sorted(r.id for r in expected)
    assert all("owner" not in {k.lower() for k in r["tags"]} for r in answer["resources"])


def test_instances_launched_in_the_last_week(ask, moto_truth):
    answer = ask("instances launched in the last 7 days")
    query = {
        "resource_type": "ec2:instance",
        "filters": [{"attribute": "launch_time", "op": "within_days", "value": 7}],
    }
    expected = _expected(moto_truth, query)
    assert expected
    assert sorted(_ids(answer)) == sorted(r.id for r in expected)
    assert all(r["details"]["launch_time"] for r in answer["resources"])


def test_top_five_largest_volumes_across_accounts(ask, moto_truth):
    answer = ask("top 5 largest EBS volumes")
    query = {
        "resource_type": "ec2:volume",
        "sort_by": "size_gb",
        "descending": True,
        "limit": 5,
    }
    expected = _expected(moto_truth, query)
    assert _ids(answer) == [r.id for r in expected]  # in order, over every account
    sizes = [r["details"]["size_gb"] for r in answer["resources"]]
    assert sizes == sorted(sizes, reverse=True)
    assert f"{sizes[0]:,} GiB" in answer["answer"]


def test_which_account_has_the_most_stopped_instances(ask, moto_truth):
    answer = ask("Which account has the most stopped instances?")
    query = {"resource_type": "ec2:instance", "states": ["stopped"]}
    counts = Counter(r.account_id for r in _expected(moto_truth, query))
    most = max(counts.get(a, 0) for a in WORKLOAD)
    leaders = [a["alias"] for a in answer["accounts"] if counts.get(a["account_id"], 0) == most]
    assert answer["answer"].startswith(" and ".join(leaders))
    assert f"the most stopped EC2 instances ({most}" in answer["answer"]


def test_instances_by_type(ask, moto_truth):
    answer = ask("how many instances of each type do we have?")
    by_type = Counter(
        r.attribute_dict["instance_type"]
        for r in _expected(moto_truth, {"resource_type": "ec2:instance"})
    )
    for instance_type, n in by_type.items():
        assert f"{instance_type} {n}" in answer["answer"]


def test_total_ebs_storage_per_account(ask, moto_truth):
    answer = ask("total EBS storage per account")
    for account in answer["accounts"]:
        rows = _expected(moto_truth, {"resource_type": "ec2:volume"}, [account["account_id"]])
        size = sum(r.attribute_dict.get("size_gb", 0) for r in rows)
        assert f"{account['alias']} {size:,} GiB" in answer["answer"]


def test_an_attribute_the_type_does_not_have_is_refused(ask):
    answer = ask("EBS volumes on a deprecated runtime")
    assert answer["refusal"]["kind"] == "unsupported"
    assert not answer["accounts"]
