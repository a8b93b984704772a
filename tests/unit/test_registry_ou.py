"""OU paths as account references: "ou:<path>" in questions' references and in groups."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opsagent.registry import RegistryError, UnknownAccountError, parse_registry
from tests.conftest import ROOT

ACCOUNTS: list[dict[str, Any]] = [
    {
        "id": "111111111111",
        "name": "Central Operations",
        "environment": "operations",
        "role": "central",
        "ou": "Root/Operations",
    },
    {
        "id": "222222222222",
        "name": "Production",
        "environment": "production",
        "ou": "Root/Workloads/Prod",
    },
    {
        "id": "333333333333",
        "name": "Staging",
        "environment": "staging",
        "ou": "Root/Workloads/NonProd",
    },
    {
        "id": "444444444444",
        "name": "Development",
        "environment": "development",
        "ou": "Root/Workloads/NonProd/Team Apps",
    },
    # Written by hand, without an OU: no "ou:" reference reaches it.
    {"id": "555555555555", "name": "Legacy", "environment": "production"},
]


def registry(**top: Any) -> Any:
    return parse_registry({"accounts": ACCOUNTS, **top})


def ids(reference: str, **top: Any) -> set[str]:
    return {a.id for a in registry(**top).resolve(reference)}


def test_a_path_covers_every_account_at_and_below_it() -> None:
    assert ids("ou:Root/Workloads") == {"222222222222", "333333333333", "444444444444"}
    assert ids("ou:Root/Workloads/NonProd") == {"333333333333", "444444444444"}
    assert ids("ou:Root/Workloads/NonProd/Team Apps") == {"444444444444"}
    assert ids("ou:Root") == {"111111111111", "222222222222", "333333333333", "444444444444"}


def test_the_root_may_be_left_out() -> None:
    assert ids("ou:Workloads/NonProd") == {"333333333333", "444444444444"}
    assert ids("ou:Workloads") == ids("ou:Root/Workloads")


def test_case_spacing_and_slashes_do_not_matter() -> None:
    assert ids("OU:root/WORKLOADS/nonprod/") == {"333333333333", "444444444444"}
    assert ids("ou: /Workloads/NonProd/team  apps") == {"444444444444"}


def test_segments_match_whole_never_as_a_prefix_of_a_name() -> None:
    with pytest.raises(UnknownAccountError):
        registry().resolve("ou:Work")
    with pytest.raises(UnknownAccountError):
        registry().resolve("ou:Workloads/Non")
    # A path further down is not the beginning of a path: "NonProd" alone is not an OU at
    # the top (it is under Workloads).
    with pytest.raises(UnknownAccountError):
        registry().resolve("ou:NonProd")


def test_an_ou_names_the_central_account_too() -> None:
    assert ids("ou:Operations") == {"111111111111"}
    assert registry().resolve("ou:Operations")[0].is_central


def test_an_unknown_ou_names_the_known_ones() -> None:
    with pytest.raises(UnknownAccountError) as caught:
        registry().resolve("ou:Root/Sandbox")
    message = str(caught.value)
    assert "ou:Root/Workloads/Prod" in message
    assert "ou:Root/Workloads/NonProd/Team Apps" in message
    with pytest.raises(UnknownAccountError):
        registry().resolve("ou:")


def test_groups_may_name_ou_paths() -> None:
    reg = registry(groups={"nonprod-devs": ["ou:Workloads/NonProd"], "sre": ["ou:Root", "Legacy"]})
    assert reg.visible_to(["nonprod-devs"]) == {"333333333333", "444444444444"}
    assert reg.visible_to(["sre"]) == {a["id"] for a in ACCOUNTS}


def test_a_group_naming_an_unknown_ou_is_a_registry_error() -> None:
    with pytest.raises(RegistryError, match=r"group 'devs': Unknown account 'ou:Workloads/Dev'"):
        registry(groups={"devs": ["ou:Workloads/Dev"]})


def test_registries_without_ous_still_load_and_ou_is_kept(tmp_path: Any) -> None:
    plain = [{k: v for k, v in a.items() if k != "ou"} for a in ACCOUNTS]
    assert parse_registry({"accounts": plain}).resolve("staging")[0].id == "333333333333"
    with pytest.raises(UnknownAccountError):
        parse_registry({"accounts": plain}).resolve("ou:Root")
    dumped = registry().model_dump(mode="json")
    assert dumped["accounts"][1]["ou"] == "Root/Workloads/Prod"
    assert parse_registry(json.loads(json.dumps(dumped))).resolve("ou:Workloads/Prod")[0].id == (
        "222222222222"
    )


def test_the_template_documents_ou_and_an_ou_group() -> None:
    from opsagent.registry import load_registry

    template = load_registry(ROOT / "infrastructure" / "account-registry.template.json")
    assert {a.ou for a in template.accounts} >= {"Root/Workloads/Prod"}
    assert any(ref.startswith("ou:") for refs in template.groups.values() for ref in refs)
    assert template.visible_to(["sre-oncall"]) == {"222222222222"}
