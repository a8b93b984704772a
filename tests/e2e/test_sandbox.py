"""The sandbox as a local AWS: loopback only, AWS's AssumeRole rules, a seeded organization.

Ground truth is always read from moto with boto3; expectations about the seed come from the
seed's own tables, never from counts written here.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import urllib.parse
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import httpx
import pytest

from opsagent.registry import load_registry
from opsagent.sandbox import Sandbox, seed
from opsagent.sandbox.moto_server import MotoServer
from opsagent.sandbox.seed import (
    ADMIN_ROLE,
    ALL_ACCOUNTS,
    CENTRAL,
    CENTRAL_USER,
    MEMBER_ACCOUNTS,
    READ_ONLY_ROLE,
    REGIONS,
)

REGION = "us-east-1"


# ----- helpers -----


def _session(creds: dict[str, str] | None = None, **keys: str) -> boto3.Session:
    if creds is not None:
        keys = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
    return boto3.Session(region_name=REGION, **keys)


@pytest.fixture(scope="module")
def central(sandbox: Sandbox) -> boto3.Session:
    creds = sandbox.central_credentials
    return _session(aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)


def _sts(sandbox: Sandbox, session: boto3.Session):  # type: ignore[no-untyped-def]
    return session.client("sts", endpoint_url=sandbox.aws_endpoint)


def _assume(
    sandbox: Sandbox,
    session: boto3.Session,
    account: str,
    role: str = READ_ONLY_ROLE,
    **extra: str,
) -> dict[str, str]:
    return _sts(sandbox, session).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="sandbox-test", **extra
    )["Credentials"]


def _instances(sandbox: Sandbox, session: boto3.Session, region: str) -> dict[str, dict]:
    ec2 = session.client("ec2", region_name=region, endpoint_url=sandbox.aws_endpoint)
    return {
        inst["InstanceId"]: inst
        for reservation in ec2.describe_instances()["Reservations"]
        for inst in reservation["Instances"]
    }


def _name(resource: dict) -> str | None:
    return next((t["Value"] for t in resource.get("Tags", []) if t["Key"] == "Name"), None)


# ----- loopback only -----


def test_servers_listen_on_loopback_only(sandbox: Sandbox) -> None:
    for url in (sandbox.aws_endpoint, sandbox.mcp_endpoint):
        assert urlsplit(url).hostname == "127.0.0.1"
    # The listening sockets themselves are bound to 127.0.0.1, not to every interface.
    assert sandbox._moto is not None and sandbox._moto.address[0] == "127.0.0.1"
    port = urlsplit(sandbox.aws_endpoint).port
    outside = _non_loopback_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address to try")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        assert probe.connect_ex((outside, port)) != 0


def _non_loopback_address() -> str | None:
    # Route lookup only (UDP connect sends nothing): the address other hosts would reach.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect(("10.255.255.255", 1))
            address = udp.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_servers_refuse_other_interfaces() -> None:
    with pytest.raises(ValueError, match="loopback"):
        MotoServer(host="0.0.0.0")


def test_a_second_sandbox_in_the_same_process_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(RuntimeError, match="another Sandbox"):
        Sandbox().start()
    # The refused one did not disturb the running one.
    assert sandbox.running


# ----- STS: AWS's AssumeRole rules -----


def test_central_identity_is_the_opsagent_user(sandbox: Sandbox, central: boto3.Session) -> None:
    me = _sts(sandbox, central).get_caller_identity()
    assert me["Account"] == CENTRAL
    assert me["Arn"] == f"arn:aws:iam::{CENTRAL}:user/{CENTRAL_USER}"


@pytest.mark.parametrize("account", MEMBER_ACCOUNTS)
def test_assume_role_into_each_member_account(
    sandbox: Sandbox, central: boto3.Session, account: str
) -> None:
    creds = _assume(sandbox, central, account)
    me = _sts(sandbox, _session(creds)).get_caller_identity()
    assert me["Account"] == account
    assert me["Arn"] == f"arn:aws:sts::{account}:assumed-role/{READ_ONLY_ROLE}/sandbox-test"


def test_assume_missing_role_is_access_denied_as_aws_says_it(
    sandbox: Sandbox, central: boto3.Session
) -> None:
    role_arn = f"arn:aws:iam::{MEMBER_ACCOUNTS[2]}:role/NoSuchRole"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        _sts(sandbox, central).assume_role(RoleArn=role_arn, RoleSessionName="sandbox-test")
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDenied"
    assert error["Error"]["Message"] == (
        f"User: arn:aws:iam::{CENTRAL}:user/{CENTRAL_USER} is not authorized to perform: "
        f"sts:AssumeRole on resource: {role_arn}"
    )


def test_assume_role_into_an_account_that_does_not_exist(
    sandbox: Sandbox, central: boto3.Session
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        _assume(sandbox, central, "999999999999")
    assert info.value.response["Error"]["Code"] == "AccessDenied"


@pytest.fixture
def guarded_role(sandbox: Sandbox, central: boto3.Session) -> Iterator[tuple[str, str, str]]:
    """A role in the development account that trusts the central account with an ExternalId."""
    account = MEMBER_ACCOUNTS[2]
    admin = _session(_assume(sandbox, central, account, ADMIN_ROLE))
    iam = admin.client("iam", endpoint_url=sandbox.aws_endpoint)
    name = f"ExternalIdRole-{uuid.uuid4().hex[:8]}"
    external_id = "opsagent-sandbox-test"
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=seed.trust_policy(
            principal=f"arn:aws:iam::{CENTRAL}:root", external_id=external_id
        ),
    )
    yield account, name, external_id
    iam.delete_role(RoleName=name)


def test_assume_role_checks_the_external_id(
    sandbox: Sandbox, central: boto3.Session, guarded_role: tuple[str, str, str]
) -> None:
    account, role, external_id = guarded_role
    for wrong in ({"ExternalId": "not-the-one"}, {}):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            _assume(sandbox, central, account, role, **wrong)
        assert info.value.response["Error"]["Code"] == "AccessDenied"
    creds = _assume(sandbox, central, account, role, ExternalId=external_id)
    assert _sts(sandbox, _session(creds)).get_caller_identity()["Account"] == account


def test_assume_role_checks_the_trusted_principal(sandbox: Sandbox, central: boto3.Session) -> None:
    # OrganizationAccountAccessRole of production trusts the central account only: a role
    # session of another member account is refused, as AWS refuses it.
    staging = _session(_assume(sandbox, central, MEMBER_ACCOUNTS[1]))
    with pytest.raises(botocore.exceptions.ClientError) as info:
        _assume(sandbox, staging, MEMBER_ACCOUNTS[0], ADMIN_ROLE)
    message = info.value.response["Error"]["Message"]
    assert message.startswith(
        f"User: arn:aws:sts::{MEMBER_ACCOUNTS[1]}:assumed-role/{READ_ONLY_ROLE}/sandbox-test "
        "is not authorized to perform: sts:AssumeRole"
    )


def test_unknown_access_key_cannot_assume_roles(sandbox: Sandbox) -> None:
    stranger = _session(aws_access_key_id="AKIAUNKNOWNKEY000000", aws_secret_access_key="x")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        _assume(sandbox, stranger, MEMBER_ACCOUNTS[0])
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_unsigned_assume_role_is_refused(sandbox: Sandbox) -> None:
    body = urllib.parse.urlencode(
        {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": f"arn:aws:iam::{MEMBER_ACCOUNTS[0]}:role/{READ_ONLY_ROLE}",
            "RoleSessionName": "anonymous",
        }
    )
    answer = httpx.post(
        sandbox.aws_endpoint,
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 403
    assert "<Code>MissingAuthenticationToken</Code>" in answer.text


def test_the_moto_account_header_cannot_pick_an_account(
    sandbox: Sandbox, central: boto3.Session
) -> None:
    sts = _sts(sandbox, central)

    def pick_production(request, **_):  # type: ignore[no-untyped-def]
        request.headers["x-moto-account-id"] = MEMBER_ACCOUNTS[0]

    sts.meta.events.register("before-send.sts.GetCallerIdentity", pick_production)
    assert sts.get_caller_identity()["Account"] == CENTRAL


def test_assumed_credentials_see_only_their_own_account(
    sandbox: Sandbox, central: boto3.Session
) -> None:
    seen: dict[str, set[str]] = {}
    for account in MEMBER_ACCOUNTS:
        session = _session(_assume(sandbox, central, account))
        ids: set[str] = set()
        for region in REGIONS:
            ec2 = session.client("ec2", region_name=region, endpoint_url=sandbox.aws_endpoint)
            for reservation in ec2.describe_instances()["Reservations"]:
                assert reservation["OwnerId"] == account
                ids.update(i["InstanceId"] for i in reservation["Instances"])
        s3 = session.client("s3", endpoint_url=sandbox.aws_endpoint)
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert buckets and all(name.endswith(account) for name in buckets)
        assert ids
        seen[account] = ids
    for a in MEMBER_ACCOUNTS:
        for b in MEMBER_ACCOUNTS:
            if a != b:
                assert not seen[a] & seen[b]


# ----- the seeded organization -----


def test_registry_describes_the_seeded_accounts(sandbox: Sandbox, central: boto3.Session) -> None:
    registry = load_registry(sandbox.registry_path)
    assert {a.id for a in registry.all_accounts} == set(ALL_ACCOUNTS)
    assert registry.central.id == CENTRAL
    for account in registry.all_accounts:
        # Every account's role ARN in the registry is assumable by the central identity.
        creds = _sts(sandbox, central).assume_role(
            RoleArn=account.role_arn, RoleSessionName="registry-check"
        )["Credentials"]
        assert _sts(sandbox, _session(creds)).get_caller_identity()["Account"] == account.id


@pytest.mark.parametrize("account", ALL_ACCOUNTS)
def test_seed_tables_are_what_moto_holds(
    sandbox: Sandbox, central: boto3.Session, account: str
) -> None:
    session = central if account == CENTRAL else _session(_assume(sandbox, central, account))

    def client(service: str, region: str = REGION):  # type: ignore[no-untyped-def]
        return session.client(service, region_name=region, endpoint_url=sandbox.aws_endpoint)

    for region in REGIONS:
        rows = [r for r in seed.INSTANCES if r.account == account and r.region == region]
        want = {r.name: r for r in rows if r.tagged}
        instances = _instances(sandbox, session, region).values()
        have = {_name(i): i for i in instances if i.get("Tags")}
        assert set(have) == set(want)
        for name, row in want.items():
            assert have[name]["State"]["Name"] == row.state
            assert {t["Key"]: t["Value"] for t in have[name]["Tags"]} == row.tags()
        # An untagged row is an instance without a single tag, not even Name.
        untagged = sorted(i["State"]["Name"] for i in instances if not i.get("Tags"))
        assert untagged == sorted(r.state for r in rows if not r.tagged)

        dbs = client("rds", region).describe_db_instances()["DBInstances"]
        assert {d["DBInstanceIdentifier"]: d["DBInstanceStatus"] for d in dbs} == {
            r.identifier: r.state
            for r in seed.DB_INSTANCES
            if r.account == account and r.region == region
        }
        functions = client("lambda", region).list_functions()["Functions"]
        assert {f["FunctionName"] for f in functions} == {
            r.name for r in seed.FUNCTIONS if r.account == account and r.region == region
        }
        ecs = client("ecs", region)
        clusters = {arn.rsplit("/", 1)[-1] for arn in ecs.list_clusters()["clusterArns"]}
        assert clusters == {
            r.name for r in seed.ECS_CLUSTERS if r.account == account and r.region == region
        }
        services = {
            (cluster, arn.rsplit("/", 1)[-1])
            for cluster in clusters
            for arn in ecs.list_services(cluster=cluster)["serviceArns"]
        }
        assert services == {
            (r.cluster, r.name)
            for r in seed.ECS_SERVICES
            if r.account == account and r.region == region
        }
        eks = client("eks", region)
        eks_clusters = set(eks.list_clusters()["clusters"])
        assert eks_clusters == {
            r.name for r in seed.EKS_CLUSTERS if r.account == account and r.region == region
        }
        nodegroups = {
            (cluster, group)
            for cluster in eks_clusters
            for group in eks.list_nodegroups(clusterName=cluster)["nodegroups"]
        }
        assert nodegroups == {
            (r.cluster, r.name)
            for r in seed.EKS_NODEGROUPS
            if r.account == account and r.region == region
        }
        tables = set(client("dynamodb", region).list_tables()["TableNames"])
        assert tables == {
            r.name for r in seed.DYNAMODB_TABLES if r.account == account and r.region == region
        }
        stacks = client("cloudformation", region).describe_stacks()["Stacks"]
        assert {s["StackName"]: s["StackStatus"] for s in stacks} == {
            r.name: "CREATE_COMPLETE"
            for r in seed.STACKS
            if r.account == account and r.region == region
        }
        _check_network(client("ec2", region), account, region)

    buckets = client("s3").list_buckets()["Buckets"]
    assert {b["Name"] for b in buckets} == {r.name for r in seed.BUCKETS if r.account == account}
    for row in (r for r in seed.BUCKETS if r.account == account):
        location = client("s3").get_bucket_location(Bucket=row.name)["LocationConstraint"]
        assert (location or "us-east-1") == row.region
    roles = {r["RoleName"] for r in client("iam").list_roles()["Roles"]}
    expected_roles = {r.name for r in seed.IAM_ROLES if r.account == account} | {READ_ONLY_ROLE}
    if account != CENTRAL:
        expected_roles.add(ADMIN_ROLE)
    assert expected_roles <= roles


def _check_network(ec2, account: str, region: str) -> None:  # type: ignore[no-untyped-def]
    volumes = {_name(v): v for v in ec2.describe_volumes()["Volumes"] if _name(v)}
    want_volumes = {r.name: r for r in seed.VOLUMES if r.account == account and r.region == region}
    assert set(volumes) == set(want_volumes)
    for name, row in want_volumes.items():
        assert volumes[name]["State"] == ("in-use" if row.attached_to else "available")
    addresses = {_name(a): a for a in ec2.describe_addresses()["Addresses"]}
    want_ips = {r.name: r for r in seed.ELASTIC_IPS if r.account == account and r.region == region}
    assert set(addresses) == set(want_ips)
    for name, row in want_ips.items():
        assert ("AssociationId" in addresses[name]) == (row.associated_with is not None)
    vpcs = {_name(v) for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]}
    assert vpcs == {r.name for r in seed.VPCS if r.account == account and r.region == region}
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups()["SecurityGroups"]}
    for row in (r for r in seed.SECURITY_GROUPS if r.account == account and r.region == region):
        ranges = [
            ip["CidrIp"]
            for permission in groups[row.name]["IpPermissions"]
            if permission.get("FromPort") == row.port
            for ip in permission["IpRanges"]
        ]
        assert ranges == [row.source_cidr]


# ----- start, stop, start -----


def test_start_stop_start_in_a_fresh_process() -> None:
    """A second process, because this one's moto state belongs to the session sandbox."""
    script = textwrap.dedent(
        """
        import json, socket, threading, boto3
        from opsagent.sandbox import start_sandbox
        from urllib.parse import urlsplit

        def ports(box):
            return [urlsplit(u).port for u in (box.aws_endpoint, box.mcp_endpoint)]

        def free(port):
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) != 0

        first = start_sandbox()
        creds = first.central_credentials
        first_ports = ports(first)
        first.stop()
        released = all(free(p) for p in first_ports)
        threads_after_stop = sorted(
            t.name for t in threading.enumerate() if t.name.startswith("opsagent-sandbox")
        )
        second = start_sandbox()
        sts = boto3.client("sts", endpoint_url=second.aws_endpoint, region_name="us-east-1",
                           aws_access_key_id=second.central_credentials.access_key,
                           aws_secret_access_key=second.central_credentials.secret_key)
        account = sts.get_caller_identity()["Account"]
        old_key_forgotten = second.central_credentials.access_key != creds.access_key
        timings = second.timings
        second.stop()
        print(json.dumps({"released": released, "threads": threads_after_stop,
                          "account": account, "fresh": old_key_forgotten,
                          "timings": timings}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["released"] is True
    assert report["threads"] == []
    assert report["account"] == CENTRAL
    assert report["fresh"] is True
