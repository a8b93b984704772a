"""When AWS stops supporting a Lambda runtime or an EKS Kubernetes version: the table
``lifecycle.toml`` (data, with its sources and the date it was checked), read here.

"Deprecated runtime" means the runtime's deprecation date (after which Lambda no longer
patches it) is on or before the day of the question; "outdated Kubernetes version" means
the version's end of standard support is. A runtime or version the table does not list is
neither: the answer says so rather than guess (``None``).

The dates come from AWS's "Lambda runtimes" page
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html, column "Deprecation
date") and "Understand the Kubernetes version lifecycle on EKS"
(https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html, release
calendar, column "End of standard support"), read through the copies the TOML's comments
name, with which rows rest on fewer sources; ``checked`` says when. The TOML ships in the
package (pyproject.toml package-data ``**/*.toml``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Lifecycle:
    checked: date  # when the table was last compared with its sources
    sources: tuple[str, ...]
    runtimes: dict[str, date | None]  # runtime -> deprecation date (None: none announced)
    kubernetes: dict[str, date | None]  # version -> end of standard support


def _dates(table: dict[str, Any]) -> dict[str, date | None]:
    return {str(k): (v if isinstance(v, date) else None) for k, v in table.items()}


@cache
def lifecycle() -> Lifecycle:
    raw = tomllib.loads(
        resources.files("opsagent.graph.catalogue").joinpath("lifecycle.toml").read_text()
    )
    return Lifecycle(
        checked=raw["checked"],
        sources=tuple(raw["lambda"]["sources"]) + tuple(raw["eks"]["sources"]),
        runtimes=_dates(raw["lambda"]["deprecation"]),
        kubernetes=_dates(raw["eks"]["end_of_standard_support"]),
    )


def _ended(table: dict[str, date | None], key: str | None, on: date) -> bool | None:
    """Whether the date the table gives ``key`` is on or before ``on``; None when the
    table does not list it."""
    if not key or key not in table:
        return None
    ended = table[key]
    return ended is not None and ended <= on


def runtime_deprecated(runtime: str | None, on: date) -> bool | None:
    """Whether Lambda has deprecated ``runtime`` by ``on``; None for a runtime not in the table."""
    return _ended(lifecycle().runtimes, runtime, on)


def kubernetes_outdated(version: str | None, on: date) -> bool | None:
    """Whether EKS's standard support for ``version`` ("1.29") has ended by ``on``; None for
    a version not in the table."""
    return _ended(lifecycle().kubernetes, version, on)
