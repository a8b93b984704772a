"""Words read by their shape: account ids, resource ids, ARNs, region codes, key=value
pairs, and changes spelled out as code ("aws ec2 terminate-instances")."""

from __future__ import annotations

import re

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.planner.items import Kind
from opsagent.graph.planner.operations import change_operation, change_verb, operation_words
from opsagent.graph.planner.phrase_index import STATIC
from opsagent.graph.planner.scan_state import ScanState, clean_name
from opsagent.graph.planner.tokens import KV, WORD, kv_parts, word_token
from opsagent.graph.planner.vocabulary import (
    ACCOUNT_ID_RE,
    ARN_TYPES,
    ID_SHAPES,
    REGION_CODE_RE,
    REGIONS,
)

_ARN_RE = re.compile(
    r"^arn:aws[\w-]*:(?P<service>[\w-]+):(?P<region>[\w-]*):(?P<account>\d*):(?P<resource>.+)$"
)


class ShapeScanner(ScanState):
    def operation(self, i: int) -> int | None:
        """A change spelled out as code, wherever it stands: "aws ec2 terminate-instances",
        "aws s3 rm", "terminate-instances", "TerminateInstances", "ec2:TerminateInstances"."""
        token = self.tokens[i]
        if (
            token.norm == "aws"
            and i + 2 < len(self.tokens)
            and self.tokens[i + 1].kind == WORD
            and self.tokens[i + 2].kind == WORD
        ):
            verb = change_verb(operation_words(self.tokens[i + 2].raw))
            if verb is not None:
                return self.emit(Kind.MUTATION, i, i + 3, verb, verb_position=True)
        verb = change_operation(token.raw, kv=token.kind == KV)
        if verb is not None:
            return self.emit(Kind.MUTATION, i, i + 1, verb, verb_position=True)
        return None

    def shaped(self, i: int) -> int | None:
        """An account id, a resource id, an ARN or an unknown region code at i."""
        token = self.tokens[i]
        norm = token.norm
        if ACCOUNT_ID_RE.fullmatch(norm):
            ids = self.account_words.get(norm)
            if ids:
                return self.emit(Kind.ACCOUNT, i, i + 1, ",".join(ids))
            return self.emit(Kind.UNKNOWN_ACCOUNT, i, i + 1, norm)
        for pattern, resource_type in ID_SHAPES:
            if pattern.match(norm):
                return self.emit(Kind.ID, i, i + 1, token.raw, (resource_type,))
        arn = _ARN_RE.match(token.raw)
        if arn is not None:
            return self.arn(i, arn)
        if REGION_CODE_RE.match(norm) and norm not in REGIONS:
            return self.emit(Kind.PROBLEM, i, i + 1, f"I don't know the region {token.raw!r}.")
        return None

    def arn(self, i: int, arn: re.Match[str]) -> int:
        service, resource = arn.group("service"), arn.group("resource")
        kind, _, rest = resource.partition("/") if "/" in resource else resource.partition(":")
        if (service, "") in ARN_TYPES:  # S3: the whole resource part is the bucket's name
            kind, rest = "", resource
        resource_type = ARN_TYPES.get((service, kind))
        if resource_type is None:
            return self.emit(
                Kind.PROBLEM, i, i + 1, f"I can't read {service} resources ({arn.group(0)})."
            )
        parts = [part for part in re.split(r"[/:]", rest) if part]
        # The id the workers match on: the name, or its part of a path-like ARN.
        name_part = CATALOGUE[resource_type].arn_name_part
        if not parts:
            natural = rest
        elif -len(parts) <= name_part < len(parts):
            natural = parts[name_part]
        else:
            natural = parts[-1]
        account = arn.group("account")
        if account:
            ids = self.account_words.get(account)
            if not ids:
                return self.emit(Kind.UNKNOWN_ACCOUNT, i, i + 1, account)
            self.emit(Kind.ACCOUNT, i, i, ",".join(ids), ("from-arn",))
        if arn.group("region") and arn.group("region") in REGIONS:
            self.emit(Kind.REGION, i, i, arn.group("region"), ("from-arn",))
        return self.emit(Kind.ID, i, i + 1, natural, (resource_type,))

    def key_value(self, i: int) -> int:
        """ "state=running", "name=web", "region=us-west-2", "account=prod", "team=payments" """
        key, value = kv_parts(self.tokens[i].raw)
        lower = key.lower()
        if lower in {"state", "status"}:
            found = STATIC.match([word_token(value)], 0)
            if found is not None and Kind.STATE in found.meanings:
                meaning = found.meanings[Kind.STATE]
                return self.emit(Kind.STATE, i, i + 1, meaning.value, meaning.extra)
        if lower == "name":
            return self.emit(Kind.NAME, i, i + 1, clean_name(value), ("name",))
        if lower == "region" and value.lower() in REGIONS:
            return self.emit(Kind.REGION, i, i + 1, value.lower())
        if lower in {"account", "acct"}:
            ids = self.account_words.get(value.lower())
            if ids:
                return self.emit(Kind.ACCOUNT, i, i + 1, ",".join(ids))
            return self.emit(Kind.UNKNOWN_ACCOUNT, i, i + 1, value)
        return self.emit(Kind.TAG, i, i + 1, key, (value,))
