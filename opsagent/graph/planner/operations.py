"""Changes spelled out as code: an AWS API operation (TerminateInstances,
ec2:TerminateInstances), its AWS CLI or boto3 name (terminate-instances,
terminate_instances) or an AWS CLI command ("aws s3 rm"). Any of them anywhere in a
question is a change request; only real operations count, so a resource named
'start-instances-scheduler' stays a name."""

from __future__ import annotations

import functools
import re

from opsagent.graph.planner.vocabulary import OPERATION_CHANGE_WORDS, OPERATION_SERVICES

_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# The AWS CLI's own short commands, as verbs a sentence can say.
_COMMAND_VERBS = {"rm": "delete", "rb": "delete", "mb": "create", "mv": "move", "cp": "copy"}


def operation_words(text: str) -> list[str]:
    """'TerminateInstances', 'terminate-instances', 'terminate_instances' -> their words."""
    if "-" in text or "_" in text:
        return [word.lower() for word in re.split(r"[-_]+", text) if word]
    return [word.lower() for word in _CAMEL_RE.findall(text)]


def change_verb(words: list[str]) -> str | None:
    """The verb of an operation's words when the operation changes something."""
    if words[:1] == ["batch"]:
        words = words[1:]  # BatchWriteItem, BatchDeleteImage
    if not words or words[0] not in OPERATION_CHANGE_WORDS or words[0] == "batch":
        return None
    return _COMMAND_VERBS.get(words[0], words[0])


@functools.cache
def change_operations() -> dict[str, str]:
    """'terminateinstances' -> 'terminate': the change operations of OPERATION_SERVICES,
    from botocore's models (read once, on the first word shaped like an operation)."""
    from botocore.loaders import create_loader

    loader = create_loader()
    found: dict[str, str] = {}
    for service in OPERATION_SERVICES:
        try:
            operations = loader.load_service_model(service, "service-2").get("operations", {})
        except Exception:  # a botocore without that service: the others still count
            continue
        for name in operations:
            verb = change_verb(operation_words(name))
            if verb is not None:
                found[name.lower()] = verb
    return found


def change_operation(raw: str, kv: bool = False) -> str | None:
    """The verb of the AWS change operation a word spells out ('terminate-instances',
    'TerminateInstances', 'terminate_instances', 'ec2:TerminateInstances'), else None.

    Only real operations count, so a resource named 'start-instances-scheduler' or
    'backup-bucket' stays a name."""
    if raw.lower().startswith("arn:"):
        return None
    segments = re.split(r"[:./]", raw)
    if kv:  # "ec2:TerminateInstances" (an IAM action); "team:delete-me" is a tag
        if len(segments) != 2 or segments[0].lower() not in OPERATION_SERVICES:
            return None
        segments = segments[1:]
    for segment in segments:
        segment = segment.strip("-_")
        if not ("-" in segment or "_" in segment or any(c.isupper() for c in segment[1:])):
            continue
        words = operation_words(segment)
        if len(words) < 2 or change_verb(words) is None:
            continue  # most words never need the operation table
        verb = change_operations().get("".join(words))
        if verb is not None:
            return verb
    return None
