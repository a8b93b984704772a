"""Registry: the operators' existing file shape, validation errors, account references."""

import json

import pytest

from opsagent.registry import RegistryError, UnknownAccountError, load_registry, parse_registry
from tests.conftest import ROOT

ORIGINAL_SHAPE = {
    "accounts": [
        {
            "id": "111111111111",
            "name": "Central Operations",
            "environment": "operations",
            "role": "central",
        },
        {
            "id": "222222222222",
            "name": "Production",
            "environment": "production",
            "role": "workload",
        },
        {"id": "333333333333", "name": "Staging", "environment": "staging", "role": "workload"},
        {
            "id": "444444444444",
            "name": "Development",
            "environment": "development",
            "role": "workload",
        },
    ]
}


def registry_with(**changes):
    raw = json.loads(json.dumps(ORIGINAL_SHAPE))
    raw.update(changes)
    return raw


def test_original_shape_is_accepted_unchanged_with_documented_defaults():
    registry = parse_registry(ORIGINAL_SHAPE)
    assert [a.id for a in registry.workload_accounts] == [
        "222222222222",
        "333333333333",
        "444444444444",
    ]
    assert registry.central.id == "111111111111"
    prod = registry.get("222222222222")
    assert prod.role_arn == "arn:aws:iam::222222222222:role/OpsAgentReadOnly"
    assert prod.regions == ["us-east-1"]
    assert prod.alias == "production"


def test_template_and_demo_registry_load():
    template = load_registry(ROOT / "infrastructure" / "account-registry.template.json")
    assert template.get("222222222222").external_id == "opsagent-prod-7f3c"
    demo = load_registry(ROOT / "opsagent" / "sandbox" / "demo-registry.json")
    assert demo.get("333333333333").regions == ["us-east-1", "us-west-2"]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("production", ["222222222222"]),
        ("prod", ["222222222222"]),
        ("Staging", ["333333333333"]),
        ("dev", ["444444444444"]),
        ("222222222222", ["222222222222"]),
        ("all accounts", ["222222222222", "333333333333", "444444444444"]),
        ("each account", ["222222222222", "333333333333", "444444444444"]),
        ("Central Operations", ["111111111111"]),
    ],
)
def test_references_resolve(reference, expected):
    registry = parse_registry(ORIGINAL_SHAPE)
    assert [a.id for a in registry.resolve(reference)] == expected


def test_unknown_reference_names_the_known_accounts():
    registry = parse_registry(ORIGINAL_SHAPE)
    with pytest.raises(UnknownAccountError) as info:
        registry.resolve("sandbox-42")
    assert "Production (222222222222, production)" in str(info.value)
    assert "sandbox-42" in str(info.value)


def test_per_account_overrides():
    raw = registry_with(default_regions=["eu-west-1"], role_name="Reader", external_id="x1")
    raw["accounts"][1].update(
        regions=["us-west-2"], role_name="Special", external_id="p9", aliases=["prd"]
    )
    registry = parse_registry(raw)
    prod = registry.get("222222222222")
    assert (prod.regions, prod.role_arn, prod.external_id, prod.alias) == (
        ["us-west-2"],
        "arn:aws:iam::222222222222:role/Special",
        "p9",
        "prd",
    )
    stage = registry.get("333333333333")
    assert (stage.regions, stage.role_arn, stage.external_id) == (
        ["eu-west-1"],
        "arn:aws:iam::333333333333:role/Reader",
        "x1",
    )
    assert [a.id for a in registry.resolve("PRD")] == ["222222222222"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["accounts"][1].update(id="22222"), "12 digits"),
        (lambda r: r["accounts"][2].update(id="222222222222"), "duplicate account id"),
        (lambda r: r["accounts"][2].update(aliases=["production"]), "used by both"),
        (lambda r: r["accounts"][1].update(colour="blue"), "accounts.1.colour: unknown field"),
        (lambda r: r.update(color="blue"), "color: unknown field"),
        (lambda r: r["accounts"][0].update(role="workload"), "no central account"),
        (lambda r: r.update(accounts=r["accounts"][:1]), "no workload account"),
        (lambda r: r["accounts"][1].update(role="boss"), "accounts.1.role"),
        (lambda r: r["accounts"][1].update(regions=["Oregon"]), "not an AWS region code"),
        (lambda r: r.update(groups={"devs": ["qa"]}), "group 'devs'"),
    ],
)
def test_validation_errors_are_clear(mutate, message):
    raw = registry_with()
    mutate(raw)
    with pytest.raises(RegistryError) as info:
        parse_registry(raw)
    assert message in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(RegistryError, match="not found"):
        load_registry(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{accounts: ")
    with pytest.raises(RegistryError, match="not valid JSON"):
        load_registry(bad)


def test_groups_decide_visibility():
    registry = parse_registry(registry_with(groups={"payments": ["staging", "dev"]}))
    assert registry.visible_to(["payments"]) == {"333333333333", "444444444444"}
    assert registry.visible_to(["nobody"]) == set()
    assert len(parse_registry(ORIGINAL_SHAPE).visible_to([])) == 4
