"""Reads as data: every AWS call the agent makes is a value, never code.

A ``Read`` names one API operation (botocore's service name and the PascalCase operation
name, as ``call_boto3`` of the AWS MCP Server's ``aws___run_script`` takes them), the region
and the parameters. The read-only guard (``guard.py``) checks each one against botocore's
service models before anything leaves the process, and the script builder (``script.py``)
carries them to ``aws___run_script`` as a data literal inside one fixed template.

Some inventory needs a second read per item of a first one (``ListClusters`` then
``DescribeCluster`` per name). That is data too: a ``FanOut`` says where the items are in
the parent's result (``each``) and which reads to run per item (or per batch of items);
each child read names in ``bind`` which of its parameters come from the item or from the
parent read's parameters. The values are filled in by the template at run time, from what
AWS answered; their names and types are checked by the guard beforehand like any other
parameter.

Paths (``each`` and the right-hand side of ``bind``) are dotted keys; a list on the way is
mapped over and flattened: ``"Functions"`` is every function of a ListFunctions answer,
``"item.FunctionArn"`` the ARN of the current item, ``"parent.clusterName"`` the
``clusterName`` parameter of the read that produced the item (a scalar: where that
parameter is a list, the first value). ``FanOut.unless`` skips items that already carry a
value at that path, so a per-item read runs only where the list answer lacked it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Where a bound value may come from: the current item (or batch) or the parent's params.
BIND_ROOTS = ("item", "parent")


class FanOut(BaseModel):
    """For each item found at ``each`` in the parent's result, run ``reads``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    each: str  # dotted path into the parent read's (merged) result
    reads: list[Read]
    # Group items in lists of this size (DescribeClusters takes up to 100 ARNs); the bound
    # value is then the list.
    batch: int | None = Field(default=None, ge=1, le=100)
    # At most this many items are fanned out to; the rest are reported as truncated.
    limit: int = Field(default=500, ge=1, le=5000)
    # Skip items that already carry this path (ListBuckets answers BucketRegion on real S3,
    # so GetBucketLocation is only needed where it is missing).
    unless: str | None = None


class Read(BaseModel):
    """One AWS API read in one account and region."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str  # botocore service name: "ec2", "s3", "lambda", "dynamodb"
    operation: str  # API operation name: "DescribeInstances"
    region: str
    params: dict[str, Any] = Field(default_factory=dict)
    # Parameter name -> "item", "item.<path>" or "parent.<param>"; filled at run time.
    bind: dict[str, str] = Field(default_factory=dict)
    # Follow pagination (token names from botocore's paginator model) up to the page cap.
    paginate: bool = True
    # AWS error codes that are an answer, not a failure (S3's NoSuchTagSet: "no tags").
    expected_errors: tuple[str, ...] = ()
    then: list[FanOut] = Field(default_factory=list)

    @field_validator("bind")
    @classmethod
    def _bind_roots(cls, bind: dict[str, str]) -> dict[str, str]:
        for param, source in bind.items():
            if source.split(".", 1)[0] not in BIND_ROOTS:
                raise ValueError(f"bind {param!r}: {source!r} must start with item or parent")
        return bind

    def label(self) -> str:
        """``ec2 DescribeInstances us-east-1``: how a read is named in messages and audit."""
        return f"{self.service} {self.operation} {self.region}"

    def walk(self) -> Iterator[Read]:
        """This read and every read below it, depth first."""
        yield self
        for fan in self.then:
            for child in fan.reads:
                yield from child.walk()


FanOut.model_rebuild()


class ReadError(BaseModel):
    """Why one read failed: AWS's error code (``AccessDenied``) and message."""

    model_config = ConfigDict(frozen=True)

    code: str | None = None
    message: str = ""


class ReadResult(BaseModel):
    """What one read (one execution of it, for a fanned-out read) returned."""

    operation: str = ""  # which read of its FanOut this is
    params: dict[str, Any] = Field(default_factory=dict)  # as sent, bound values included
    result: dict[str, Any] | None = None  # the merged pages, None when the read failed
    error: ReadError | None = None
    truncated: bool = False  # the page cap or fan-out limit stopped it early
    # One entry per FanOut of the read, in order: the results of its reads for every item
    # (or batch), item by item.
    children: list[list[ReadResult]] = Field(default_factory=list)
    # When AWS answered it (UTC); a result reused from ``read_cache`` keeps its first time.
    read_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def data(self) -> dict[str, Any]:
        """The merged answer, or an empty one when the read failed."""
        return self.result or {}

    def walk(self) -> Iterator[ReadResult]:
        yield self
        for group in self.children:
            for child in group:
                yield from child.walk()


__all__ = ["BIND_ROOTS", "FanOut", "Read", "ReadError", "ReadResult"]
