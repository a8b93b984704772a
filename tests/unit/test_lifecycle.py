"""The lifecycle table (lifecycle.toml): when Lambda deprecates a runtime and EKS ends a
Kubernetes version's standard support, and what "deprecated" / "outdated" mean on a day."""

from __future__ import annotations

from datetime import date

from opsagent.graph.catalogue.lifecycle import (
    _dates,
    kubernetes_outdated,
    lifecycle,
    runtime_deprecated,
)

TODAY = date(2026, 12, 7)


def _newest_kubernetes() -> str:
    return max(lifecycle().kubernetes, key=lambda v: tuple(int(p) for p in v.split(".")))


def test_the_table_loads_with_its_sources_and_check_date():
    table = lifecycle()
    assert table.checked == TODAY
    assert any("lambda-runtimes" in s for s in table.sources)
    assert any("kubernetes-versions" in s for s in table.sources)
    assert "python3.8" in table.runtimes and "1.29" in table.kubernetes


def test_every_eks_version_from_1_23_on_is_listed():
    newest_minor = int(_newest_kubernetes().split(".")[1])
    assert newest_minor >= 34
    for minor in range(23, newest_minor + 1):
        assert f"1.{minor}" in lifecycle().kubernetes


def test_python38_is_deprecated_today():
    assert runtime_deprecated("python3.8", TODAY) is True


def test_python312_is_not_deprecated_today():
    assert runtime_deprecated("python3.12", TODAY) is False


def test_a_runtime_not_in_the_table_is_unknown():
    assert runtime_deprecated("cobol85", TODAY) is None
    assert runtime_deprecated(None, TODAY) is None
    assert runtime_deprecated("", TODAY) is None


def test_a_day_before_the_deprecation_date_is_not_deprecated():
    deprecated_on = lifecycle().runtimes["python3.8"]
    assert deprecated_on == date(2024, 10, 14)
    assert runtime_deprecated("python3.8", date(2024, 10, 13)) is False
    assert runtime_deprecated("python3.8", deprecated_on) is True  # on the day itself


def test_eks_129_is_outdated_today():
    assert kubernetes_outdated("1.29", TODAY) is True


def test_the_newest_listed_eks_version_is_not_outdated_today():
    assert kubernetes_outdated(_newest_kubernetes(), TODAY) is False


def test_a_day_before_end_of_standard_support_is_not_outdated():
    ends = lifecycle().kubernetes["1.29"]
    assert ends == date(2025, 3, 23)
    assert kubernetes_outdated("1.29", date(2025, 3, 22)) is False
    assert kubernetes_outdated("1.29", ends) is True


def test_an_eks_version_not_in_the_table_is_unknown():
    assert kubernetes_outdated("1.99", TODAY) is None
    assert kubernetes_outdated(None, TODAY) is None


def test_an_empty_date_means_none_announced_never_deprecated():
    assert _dates({"python9.9": "", "python3.8": date(2024, 10, 14)}) == {
        "python9.9": None,
        "python3.8": date(2024, 10, 14),
    }


def test_every_entry_is_a_date_or_none_announced():
    table = lifecycle()
    for value in (*table.runtimes.values(), *table.kubernetes.values()):
        assert value is None or isinstance(value, date)
