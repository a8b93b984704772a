"""The shapes of an AWS account id and an AWS region code, defined once for the package.

``ACCOUNT_ID_PATTERN`` and ``REGION_PATTERN`` are the canonical definitions, unanchored so
that other patterns can be built from them (an availability zone, a role ARN);
``ACCOUNT_ID_RE`` and ``REGION_RE`` are those patterns anchored to the whole string, so
``match``, ``fullmatch`` and ``search`` all mean "the whole value has this shape".

A region code is two letters, an optional partition (``-gov``, ``-iso``, ``-isob``…), a
direction or area and a number: ``us-east-1``, ``us-gov-west-1``, ``us-isob-east-1``.
"""

from __future__ import annotations

import re

ACCOUNT_ID_PATTERN = r"\d{12}"
REGION_PATTERN = r"[a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d+"

ACCOUNT_ID_RE = re.compile(rf"\A{ACCOUNT_ID_PATTERN}\Z")
REGION_RE = re.compile(rf"\A{REGION_PATTERN}\Z")


def is_account_id(value: object) -> bool:
    """Whether ``value`` is a string of exactly twelve digits."""
    return isinstance(value, str) and ACCOUNT_ID_RE.match(value) is not None


def is_region(value: object) -> bool:
    """Whether ``value`` is a string shaped like an AWS region code (``us-east-1``)."""
    return isinstance(value, str) and REGION_RE.match(value) is not None
