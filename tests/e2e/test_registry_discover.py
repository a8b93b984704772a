"""Registry discovery from AWS Organizations, against the sandbox's moto.

The demo organization (opsagent/sandbox/seed_org.py) must read back as demo-registry.json.
Edge cases build their own organizations in the same moto, each managed by an account of
its own (moto keeps one organization per management account), so they touch neither the
demo organization nor each other. Errors AWS sends that moto does not (AccessDenied to a
member, throttling) are answered on the wire by a botocore before-send hook, so they go
through botocore's retry logic and error parsing as AWS's would.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
import typer
from botocore.awsrequest import AWSResponse
from botocore.credentials import CredentialResolver
from moto.iam.models import iam_backends
from typer.testing import CliRunner

from opsagent.registry import Registry, load_registry
from opsagent.registry.discovery import Discovery, DiscoveryError, discover, discover_registry
from opsagent.sandbox import REGISTRY_PATH
from opsagent.sandbox.seed_org import CLOSED_ACCOUNT

REGION = "us-east-1"
DEMO = load_registry(REGISTRY_PATH)
DEMO_OUS = {
    "111111111111": "Root/Operations",
    "222222222222": "Root/Workloads/Prod",
    "333333333333": "Root/Workloads/NonProd",
    "444444444444": "Root/Workloads/NonProd",
}
# Management accounts of the edge cases' own organizations: one per test, never reused.
_managers = itertools.count(900_000_000_101)


# ----- helpers -----


def assert_same_accounts(found: Registry, expected: Registry) -> None:
    """Same ids, names, environments, central account; aliases a superset; the same
    alias the agent shows for each account."""
    assert [a.id for a in found.accounts] == [a.id for a in expected.accounts]
    for got, want in zip(found.accounts, expected.accounts, strict=True):
        assert (got.name, got.environment, got.role) == (want.name, want.environment, want.role)
        assert set(want.aliases) <= set(got.aliases)
        assert found.get(got.id).alias == expected.get(want.id).alias


def fresh_manager() -> tuple[str, boto3.Session]:
    """A new account with an IAM user and its key, in no organization yet."""
    account = str(next(_managers))
    iam = iam_backends[account]["aws"]
    iam.create_user(region_name=REGION, user_name="discoverer")
    key = iam.create_access_key("discoverer")
    return account, boto3.Session(
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
        region_name=REGION,
    )


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"Key": k.replace("_", ":"), "Value": v} for k, v in pairs.items()]


class Org:
    """An organization of its own in the sandbox's moto, built through the API."""

    def __init__(self, sandbox: Any) -> None:
        self.manager, self.session = fresh_manager()
        self.endpoint = sandbox.aws_endpoint
        self.client = self.session.client("organizations", endpoint_url=self.endpoint)
        self.client.create_organization(FeatureSet="ALL")
        self.root = self.client.list_roots()["Roots"][0]["Id"]

    def ou(self, name: str, parent: str | None = None) -> str:
        answer = self.client.create_organizational_unit(ParentId=parent or self.root, Name=name)
        return str(answer["OrganizationalUnit"]["Id"])

    def account(
        self, name: str, *, ou: str | None = None, tag_list: list[dict[str, str]] | None = None
    ) -> str:
        status = self.client.create_account(
            AccountName=name, Email=f"{name.replace(' ', '')}@example.com", Tags=tag_list or []
        )["CreateAccountStatus"]
        account_id = str(status["AccountId"])
        if ou is not None:
            self.client.move_account(
                AccountId=account_id, SourceParentId=self.root, DestinationParentId=ou
            )
        return account_id

    def discover(self, **options: Any) -> Discovery:
        return discover(self.session, endpoint_url=self.endpoint, **options)


@pytest.fixture
def org(sandbox) -> Org:  # type: ignore[no-untyped-def]
    return Org(sandbox)


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def answer_on_the_wire(session: boto3.Session, operation: str, code: str, times: int) -> list[str]:
    """The first ``times`` requests of ``operation`` get AWS's JSON error ``code`` (HTTP 400)
    instead of reaching moto; returns the log of every attempt at it ("error" or "sent")."""
    attempts: list[str] = []

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        if len([a for a in attempts if a == "error"]) < times:
            attempts.append("error")
            body = json.dumps({"__type": code, "Message": f"{code} from the test"}).encode()
            return AWSResponse(
                request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Body(body)
            )
        attempts.append("sent")
        return None

    session.events.register(f"before-send.organizations.{operation}", before_send)
    return attempts


# ----- the demo organization -----


def test_the_sandbox_organization_reads_back_as_the_demo_registry(sandbox) -> None:
    found = discover(
        sandbox.central_session(),
        endpoint_url=sandbox.aws_endpoint,
        default_regions=DEMO.default_regions,
    )
    assert_same_accounts(found.registry, DEMO)
    assert found.registry.central.id == "111111111111"
    assert {a.id: a.ou for a in found.registry.accounts} == DEMO_OUS
    assert found.registry.default_regions == DEMO.default_regions
    assert found.registry.role_name == DEMO.role_name


def test_a_closed_account_is_skipped_and_named(sandbox) -> None:
    found = discover(sandbox.central_session(), endpoint_url=sandbox.aws_endpoint)
    assert CLOSED_ACCOUNT.id not in {a.id for a in found.registry.accounts}
    assert [(s.id, s.state) for s in found.skipped] == [(CLOSED_ACCOUNT.id, "SUSPENDED")]
    # It sits in NonProd with environment=development: neither reference reaches it.
    assert CLOSED_ACCOUNT.id not in {a.id for a in found.registry.resolve("development")}
    assert CLOSED_ACCOUNT.id not in {a.id for a in found.registry.resolve("ou:Workloads")}


def test_ou_paths_work_as_account_references_and_groups(sandbox) -> None:
    registry = discover_registry(sandbox.central_session(), endpoint_url=sandbox.aws_endpoint)

    def ids(reference: str) -> set[str]:
        return {a.id for a in registry.resolve(reference)}

    assert ids("ou:Root/Workloads") == {"222222222222", "333333333333", "444444444444"}
    assert ids("ou:workloads/nonprod") == {"333333333333", "444444444444"}
    assert ids("ou:Operations") == {"111111111111"}
    with_groups = Registry.model_validate(
        {**registry.model_dump(), "groups": {"devs": ["ou:Workloads/NonProd"]}}
    )
    assert with_groups.visible_to(["devs"]) == {"333333333333", "444444444444"}


def test_a_member_account_that_is_no_administrator_is_told_whose_credentials_to_use(
    sandbox, truth
) -> None:
    member = truth.session("222222222222")
    with pytest.raises(DiscoveryError) as caught:
        discover(member, endpoint_url=sandbox.aws_endpoint)
    message = str(caught.value)
    assert "222222222222" in message
    assert "management account 111111111111 or a delegated administrator" in message


# ----- errors AWS sends -----


def test_not_in_an_organization(sandbox) -> None:
    account, session = fresh_manager()
    with pytest.raises(DiscoveryError) as caught:
        discover(session, endpoint_url=sandbox.aws_endpoint)
    message = str(caught.value)
    assert f"account {account}" in message
    assert "not in an AWS Organizations organization" in message
    assert "account-registry.template.json" in message


def test_access_denied_says_who_may_list_the_accounts(sandbox) -> None:
    session = sandbox.central_session()
    attempts = answer_on_the_wire(session, "ListAccounts", "AccessDeniedException", times=1)
    with pytest.raises(DiscoveryError) as caught:
        discover(session, endpoint_url=sandbox.aws_endpoint)
    message = str(caught.value)
    assert "may not call organizations:ListAccounts" in message
    assert "management account 111111111111 or a delegated administrator" in message
    assert attempts == ["error"]  # a denial is not retried


def test_throttling_is_retried_by_botocore(sandbox) -> None:
    session = sandbox.central_session()
    attempts = answer_on_the_wire(session, "ListAccounts", "TooManyRequestsException", times=2)
    registry = discover_registry(session, endpoint_url=sandbox.aws_endpoint)
    assert attempts == ["error", "error", "sent"]
    assert_same_accounts(registry, DEMO)


def test_no_credentials(sandbox) -> None:
    bare = botocore.session.get_session()
    bare.register_component("credential_provider", CredentialResolver([]))
    with pytest.raises(DiscoveryError) as caught:
        discover(boto3.Session(botocore_session=bare, region_name=REGION))
    assert "no AWS credentials" in str(caught.value)


def test_a_bad_region_is_refused_before_any_aws_call(sandbox) -> None:
    with pytest.raises(DiscoveryError, match="'moon-1' is not an AWS region code"):
        discover(
            sandbox.central_session(), endpoint_url="http://127.0.0.1:9", default_regions=["moon-1"]
        )


# ----- what the organization's own data decides -----


def test_shared_names_keep_the_id(org: Org) -> None:
    first = org.account("Sandbox")
    second = org.account("sandbox")
    found = org.discover()
    names = {a.id: a.name for a in found.registry.accounts}
    assert names[first] == f"Sandbox ({first})"
    assert names[second] == f"sandbox ({second})"
    assert [a.id for a in found.registry.resolve(f"Sandbox ({first})")] == [first]
    assert any("2 accounts are named 'Sandbox'" in note for note in found.notes)


def test_environment_tag_keys_in_order_then_the_ou_then_unknown(org: Org) -> None:
    team = org.ou("Team Apps")
    by_env = org.account("a", tag_list=tags(env="prod"))
    by_upper = org.account("b", tag_list=tags(Environment="Staging"))
    both = org.account("c", tag_list=tags(environment="dev", env="prod"))
    by_ou = org.account("d", ou=org.ou("Sandbox", parent=team))
    nothing = org.account("e")
    found = org.discover()
    environments = {a.id: a.environment for a in found.registry.accounts}
    assert environments[by_env] == "production"  # canonical, as questions say it
    assert environments[by_upper] == "staging"
    assert environments[both] == "development"  # "environment" comes first
    assert environments[by_ou] == "sandbox"
    assert environments[nothing] == "unknown"
    assert environments[org.manager] == "unknown"  # directly under the root
    assert {a.id: a.ou for a in found.registry.accounts}[by_ou] == "Root/Team Apps/Sandbox"

    custom = org.discover(environment_tag_keys=["env"])
    assert {a.id: a.environment for a in custom.registry.accounts}[both] == "production"


def test_alias_tag_keys_and_ambiguous_aliases(org: Org) -> None:
    web = org.account("Web", tag_list=tags(alias="frontend shared", opsagent_alias="www"))
    api = org.account("Api", tag_list=tags(alias="backend shared web"))
    found = org.discover()
    aliases = {a.id: a.aliases for a in found.registry.accounts}
    assert aliases[web] == ["frontend", "www"]  # "shared" names two accounts: left out
    assert aliases[api] == ["backend"]  # "web" is another account's name
    assert [a.id for a in found.registry.resolve("www")] == [web]
    assert any("'shared'" in note for note in found.notes)

    custom = org.discover(alias_tag_keys=["opsagent:alias"])
    assert {a.id: a.aliases for a in custom.registry.accounts}[web] == ["www"]


def test_an_organization_of_one_account_has_nothing_to_query(org: Org) -> None:
    with pytest.raises(DiscoveryError, match="no active account besides the caller's"):
        org.discover()


# ----- the command -----


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsagent.service.registry_cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_command_writes_a_registry_file_the_agent_loads(
    external_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "registry.json"
    done = _run(
        ["discover", "--out", str(out), "--region", "us-east-1", "--region", "us-west-2"],
        external_env,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    written = load_registry(out)
    assert_same_accounts(written, DEMO)
    assert written.default_regions == ["us-east-1", "us-west-2"]
    assert f"skipped {CLOSED_ACCOUNT.id}" in done.stderr
    assert not list(tmp_path.glob(".*partial"))


def test_the_command_prints_json_and_takes_the_options(
    external_env: dict[str, str], tmp_path: Path
) -> None:
    done = _run(
        [
            "discover",
            "--role-name",
            "AuditRead",
            "--external-id",
            "xyz-1",
            "--alias-tag-key",
            "none",
        ],
        external_env,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["role_name"] == "AuditRead"
    assert printed["external_id"] == "xyz-1"
    assert all("aliases" not in a or a["aliases"] == [] for a in printed["accounts"])


def _bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No AWS or agent settings at all, and no shared files or instance metadata to find."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSAGENT_"))}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


def test_with_no_configuration_the_command_discovers_the_sandbox(tmp_path: Path) -> None:
    done = _run(["discover"], _bare_env(tmp_path), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no AWS configuration: discovering the embedded sandbox" in done.stderr
    printed = Registry.model_validate(json.loads(done.stdout))
    assert_same_accounts(printed, DEMO)
    assert printed.default_regions == DEMO.default_regions


def test_pointed_at_real_accounts_without_credentials_is_one_error_line(tmp_path: Path) -> None:
    env = _bare_env(tmp_path, OPSAGENT_REGISTRY=str(tmp_path / "registry.json"))
    done = _run(["discover"], env, tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: no AWS credentials")
    assert done.stderr.count("\n") == 1


def test_errors_from_aws_are_one_line(external_env: dict[str, str], tmp_path: Path) -> None:
    # An access key moto does not know is moto's default account, in no organization.
    env = {**external_env, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000"}
    done = _run(["discover", "--out", str(tmp_path / "r.json")], env, tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: account ")
    assert "not in an AWS Organizations organization" in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


def test_an_unwritable_out_file_is_one_error_line(
    external_env: dict[str, str], tmp_path: Path
) -> None:
    done = _run(["discover", "--out", str(tmp_path / "missing" / "r.json")], external_env, tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot write the registry to ")


def test_mounted_as_opsagent_registry_discover(sandbox) -> None:  # type: ignore[no-untyped-def]
    from opsagent.service.registry_cli import registry_app

    app = typer.Typer()
    app.add_typer(registry_app, name="registry")
    creds = sandbox.central_credentials
    env = {
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_SESSION_TOKEN": creds.token,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": sandbox.aws_endpoint,
        "AWS_PROFILE": None,
    }
    done = CliRunner().invoke(app, ["registry", "discover"], env=env, prog_name="opsagent")
    assert done.exit_code == 0, done.output
    assert_same_accounts(Registry.model_validate(json.loads(done.stdout)), DEMO)

    refused = CliRunner().invoke(app, ["registry", "discover", "--region", "moon-1"], env=env)
    assert refused.exit_code == 1
    assert refused.stderr == "error: --region 'moon-1' is not an AWS region code (like us-east-1)\n"
