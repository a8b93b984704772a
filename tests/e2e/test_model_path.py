"""The model path: the model planner and the freeform worker, driven by fake chat models.

No test reaches a model provider: a scripted fake chat model stands in for Bedrock, emitting
the structured output (a PlanOutput tool call) and the tool calls a real model would. The
sandbox tests run the freeform loop through the real MCP session and read-only guard, and
check moto with plain boto3 afterwards.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from opsagent.access import AccountAccessDenied, Asker, ReadOnlyViolation
from opsagent.graph.freeform_worker import ToolLoopWorker
from opsagent.graph.models import Plan, Refusal, ResourceQuery
from opsagent.graph.planner.model import (
    ModelPlanner,
    PlanOutput,
    bedrock_chat_model,
    validate_output,
)
from opsagent.registry import load_registry
from tests.conftest import ROOT, sandbox_pool

DEMO_REGISTRY = ROOT / "opsagent" / "sandbox" / "demo-registry.json"
PROD, STAGING, DEV, CENTRAL = "222222222222", "333333333333", "444444444444", "111111111111"
WORKLOAD = [PROD, STAGING, DEV]


# ----- fixtures: a scripted chat model that can bind tools and give structured output -----


class ScriptedChatModel(BaseChatModel):
    """Answers with the scripted messages in order, records every prompt and bound tool.

    ``bind_tools`` returns the model itself, so LangChain's own ``with_structured_output``
    (bind the schema as a tool, parse the tool call) runs unchanged, as it does for Bedrock.
    An exception in the script is raised instead of answering (throttling, credentials).
    """

    script: list[BaseMessage | Exception]
    delay: float = 0.0  # seconds before each answer, for a model that hangs
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    tool_names: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        self.tool_names = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.prompts.append(list(messages))
        if not self.script:
            raise AssertionError("the model was called more often than scripted")
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return ChatResult(generations=[ChatGeneration(message=step)])

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        await asyncio.sleep(self.delay)
        return self._generate(messages, stop, **kwargs)


def plan_call(**args: Any) -> AIMessage:
    """The model's structured answer: a call of the PlanOutput tool."""
    return AIMessage(
        content="",
        tool_calls=[{"name": "PlanOutput", "args": args, "id": f"call_{uuid.uuid4().hex[:8]}"}],
    )


def aws_call(
    operation: str, region: str = "us-east-1", service: str = "ec2", **params: Any
) -> AIMessage:
    """The model's call of the structured read tool."""
    return AIMessage(
        content="",
        tool_calls=[
            {
                "name": "aws_read",
                "args": {
                    "service": service,
                    "operation": operation,
                    "region": region,
                    "params": params,
                },
                "id": f"call_{uuid.uuid4().hex[:8]}",
            }
        ],
    )


class RecordingFallback:
    """Stands in for the rule planner where a test only needs to know it was asked."""

    def __init__(self, outcome: Plan | Refusal | None = None):
        self.calls: list[str] = []
        self.outcome = outcome or Plan(
            accounts=[PROD],
            queries=[ResourceQuery(resource_type="ec2:instance")],
            summary="EC2 instances in production",
        )

    async def __call__(self, question, registry, previous):
        self.calls.append(question)
        return self.outcome


@pytest.fixture(scope="module")
def registry():
    return load_registry(DEMO_REGISTRY)


async def plan_with(registry, *replies, previous=None, fallback=None):
    model = ScriptedChatModel(script=list(replies))
    planner = ModelPlanner(model, fallback or RecordingFallback())
    return await planner("the question", registry, previous), model


# ----- the model planner -----


async def test_structured_output_becomes_a_plan(registry):
    outcome, model = await plan_with(
        registry,
        plan_call(
            outcome="plan",
            accounts=["staging", PROD, "prod"],
            regions=["us-west-2"],
            queries=[
                {
                    "resource_type": "ec2:instance",
                    "intent": "count",
                    "states": ["Running"],
                    "tags": {"team": "payments"},
                }
            ],
            group_by="account",
            summary="running EC2 instances tagged team=payments in prod and staging",
        ),
    )
    assert outcome == Plan(
        accounts=[PROD, STAGING],
        regions=["us-west-2"],
        queries=[
            ResourceQuery(
                resource_type="ec2:instance",
                intent="count",
                states=["running"],
                tags={"team": "payments"},
            )
        ],
        group_by="account",
        summary="running EC2 instances tagged team=payments in prod and staging",
    )
    assert model.tool_names == ["PlanOutput"]
    system = model.prompts[0][0]
    assert isinstance(system, SystemMessage)
    # The prompt carries every account (id, name, alias, environment, central or workload),
    # the resource types, the conditions and the read-only rule.
    for text in (
        CENTRAL,
        PROD,
        "Central Operations",
        "prod",
        "production",
        "central",
        "workload",
        "ec2:instance",
        "iam:role",
        "open-to-world",
        "read_only",
    ):
        assert text in system.content


async def test_attribute_fields_of_the_structured_output_become_the_plan(registry):
    """The model's plan covers the same fields as the rule planner's: attribute filters,
    tags present and absent, ranking, groups and totals, and "the most"."""
    outcome, model = await plan_with(
        registry,
        plan_call(
            outcome="plan",
            accounts=[],
            queries=[
                {
                    "resource_type": "lambda:function",
                    "intent": "count",
                    "filters": [
                        {"attribute": "runtime_deprecated", "op": "eq", "value": True},
                        {"attribute": "memory_mb", "op": "gte", "value": 1024},
                    ],
                    "missing_tags": ["owner"],
                    "group_by": "runtime",
                }
            ],
            rank="most",
        ),
    )
    assert isinstance(outcome, Plan), outcome
    [query] = outcome.queries
    assert [(f.attribute, f.op, f.value) for f in query.filters] == [
        ("runtime_deprecated", "eq", True),
        ("memory_mb", "gte", 1024),
    ]
    assert query.missing_tags == ["owner"] and query.group_by == "runtime"
    assert outcome.rank == "most" and outcome.accounts == WORKLOAD
    # The prompt lists each type's attributes, its age attribute and today's date.
    system = str(model.prompts[0][0].content)
    for text in ("runtime_deprecated (bool)", "launch_time (time, age)", "size_gb (number, GiB"):
        assert text in system
    assert "Today is " in system


@pytest.mark.parametrize(
    ("query", "says"),
    [
        (
            {
                "resource_type": "ec2:volume",
                "filters": [{"attribute": "runtime", "op": "eq", "value": "python3.8"}],
            },
            "EBS volumes have no attribute 'runtime'",
        ),
        ({"resource_type": "ec2:volume", "limit": 3}, "a limit needs"),
        ({"resource_type": "ec2:volume", "total": "volume_type"}, "has no total"),
    ],
)
async def test_attribute_fields_the_type_lacks_are_refused(registry, query, says):
    outcome, _ = await plan_with(
        registry, plan_call(outcome="plan", accounts=[PROD], queries=[query])
    )
    assert isinstance(outcome, Refusal) and outcome.kind == "unsupported"
    assert says in outcome.message


async def test_all_accounts_and_no_account_mean_the_workload_accounts(registry):
    for accounts in (["all"], []):
        outcome, _ = await plan_with(
            registry,
            plan_call(outcome="plan", accounts=accounts, queries=[{"resource_type": "s3:bucket"}]),
        )
        assert isinstance(outcome, Plan)
        assert outcome.accounts == WORKLOAD


@pytest.mark.parametrize("invented", ["999999999999", "payments-prod", "qa"])
async def test_an_invented_account_is_refused(registry, invented):
    outcome, _ = await plan_with(
        registry,
        plan_call(
            outcome="plan", accounts=[PROD, invented], queries=[{"resource_type": "ec2:instance"}]
        ),
    )
    assert isinstance(outcome, Refusal)
    assert outcome.kind == "unknown_account"
    assert invented in outcome.message
    for known in ("Production", "Staging", "Development"):
        assert known in outcome.message


@pytest.mark.parametrize(
    "query, regions, says",
    [
        ({"resource_type": "ec2:ami"}, None, "ec2:ami"),
        ({"resource_type": "ec2:instance", "conditions": ["open-to-world"]}, None, "open-to-world"),
        ({"resource_type": "ec2:instance"}, ["us-middle-9"], "us-middle-9"),
        ({"resource_type": "ec2:instance"}, ["Oregon"], "Oregon"),
    ],
)
async def test_what_the_agent_cannot_read_is_refused(registry, query, regions, says):
    outcome, _ = await plan_with(
        registry, plan_call(outcome="plan", accounts=[PROD], regions=regions, queries=[query])
    )
    assert isinstance(outcome, Refusal)
    assert outcome.kind == "unsupported"
    assert says in outcome.message


async def test_conditions_of_their_own_type_and_region_codes_pass(registry):
    outcome, _ = await plan_with(
        registry,
        plan_call(
            outcome="plan",
            accounts=["dev"],
            regions=["EU-West-1", "eu-west-1"],
            queries=[{"resource_type": "ec2:volume", "conditions": ["unattached"]}],
        ),
    )
    assert isinstance(outcome, Plan)
    assert outcome.accounts == [DEV]
    assert outcome.regions == ["eu-west-1"]
    assert outcome.queries[0].conditions == ["unattached"]


async def test_a_model_refusal_is_a_refusal(registry):
    outcome, _ = await plan_with(
        registry,
        plan_call(
            outcome="refuse",
            refusal_kind="read_only",
            refusal_message="I can't terminate instances; I am read-only.",
        ),
    )
    assert outcome == Refusal(
        kind="read_only", message="I can't terminate instances; I am read-only."
    )


async def test_a_model_unknown_account_refusal_names_the_known_accounts(registry):
    outcome, _ = await plan_with(
        registry,
        plan_call(
            outcome="refuse",
            refusal_kind="unknown_account",
            refusal_message="No account 'qa'.",
        ),
    )
    assert isinstance(outcome, Refusal) and outcome.kind == "unknown_account"
    assert "Production (222222222222, production)" in outcome.message


async def test_a_freeform_task_sets_plan_freeform(registry):
    outcome, _ = await plan_with(
        registry,
        plan_call(
            outcome="plan",
            accounts=["prod"],
            queries=[],
            freeform="Find the security groups that no network interface uses.",
            summary="unused security groups in production",
        ),
    )
    assert isinstance(outcome, Plan)
    assert outcome.accounts == [PROD]
    assert outcome.queries == []
    assert outcome.freeform == "Find the security groups that no network interface uses."


async def test_a_plan_with_nothing_to_do_is_refused(registry):
    outcome, _ = await plan_with(registry, plan_call(outcome="plan", accounts=["prod"]))
    assert isinstance(outcome, Refusal) and outcome.kind == "unsupported"


async def test_one_query_per_resource_type(registry):
    outcome, _ = await plan_with(
        registry,
        plan_call(
            outcome="plan",
            accounts=["prod"],
            queries=[
                {"resource_type": "ec2:instance", "states": ["running"]},
                {"resource_type": "ec2:instance", "states": ["stopped"]},
            ],
        ),
    )
    assert isinstance(outcome, Refusal) and outcome.kind == "unsupported"


async def test_a_follow_up_sees_the_previous_plan(registry):
    previous = Plan(
        accounts=[PROD],
        queries=[ResourceQuery(resource_type="rds:db-instance")],
        summary="RDS instances in production",
    )
    outcome, model = await plan_with(
        registry,
        plan_call(
            outcome="plan",
            accounts=[STAGING],
            queries=[{"resource_type": "rds:db-instance"}],
        ),
        previous=previous,
    )
    assert isinstance(outcome, Plan) and outcome.accounts == [STAGING]
    system = model.prompts[0][0].content
    assert "Previous plan" in system and "rds:db-instance" in system
    assert "RDS instances in production" in system


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Converse"
    )


@pytest.mark.parametrize(
    "failure, reason",
    [
        (throttled(), "ThrottlingException"),
        (NoCredentialsError(), "NoCredentialsError"),
        (AIMessage(content="I think you want EC2 instances."), "ValueError"),  # no tool call
        (
            AIMessage(
                content="",
                tool_calls=[{"name": "PlanOutput", "args": {"outcome": "maybe"}, "id": "c1"}],
            ),
            "ValidationError",
        ),
    ],
)
async def test_model_failures_fall_back_to_the_rule_planner(registry, failure, reason):
    fallback = RecordingFallback()
    outcome, _ = await plan_with(registry, failure, fallback=fallback)
    assert fallback.calls == ["the question"]
    assert isinstance(outcome, Plan) and outcome.accounts == [PROD]
    assert outcome.summary == (
        f"EC2 instances in production (model unavailable ({reason}); planned by the rule planner)"
    )


async def test_a_fallback_refusal_says_the_model_was_unavailable(registry):
    fallback = RecordingFallback(Refusal(kind="unsupported", message="I cannot parse that."))
    outcome, _ = await plan_with(registry, throttled(), fallback=fallback)
    assert isinstance(outcome, Refusal) and outcome.kind == "unsupported"
    assert outcome.message.startswith("I cannot parse that. (model unavailable")


async def test_a_hanging_model_falls_back(registry):
    model = ScriptedChatModel(script=[], delay=60)
    fallback = RecordingFallback()
    outcome = await ModelPlanner(model, fallback, timeout_s=0.05)("q", registry, None)
    assert isinstance(outcome, Plan) and "timed out" in outcome.summary


def test_validate_output_accepts_ids_only_from_the_registry(registry):
    output = PlanOutput(
        outcome="plan", accounts=["111111111111"], queries=[{"resource_type": "iam:role"}]
    )
    assert validate_output(output, registry).accounts == [CENTRAL]


def test_bedrock_model_from_the_setting(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    model = bedrock_chat_model("bedrock:eu.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert type(model).__name__ == "ChatBedrockConverse"
    assert model.model_id == "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert model.region_name == "eu-central-1"


def test_bedrock_model_needs_a_known_setting_and_a_region(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="bedrock:<model id>"):
        bedrock_chat_model("openai:gpt-4o")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ValueError, match="AWS_REGION"):
        bedrock_chat_model("bedrock:anthropic.claude-3-haiku-20240307-v1:0")


# ----- the freeform worker, on stand-in tools -----


def fake_aws_tool(calls: list[str], *, deny_account: bool = False) -> BaseTool:
    """A stand-in for the guarded aws_read tool: refuses writes the way the guard does."""

    async def aws_read(
        service: str, operation: str, region: str, params: dict | None = None
    ) -> str:
        if deny_account:
            raise AccountAccessDenied(PROD, "AssumeRole was denied")
        label = f"{service} {operation} {region}"
        if operation == "TerminateInstances":
            raise ReadOnlyViolation(label, "changes resources", operation=operation)
        calls.append(label + (f" {params}" if params else ""))
        return json.dumps({"Reservations": [{"Instances": [{"InstanceId": "i-0abc"}]}]})

    return StructuredTool.from_function(
        coroutine=aws_read, name="aws_read", description="Run one read-only AWS API call."
    )


def prod(registry):
    return registry.get(PROD)


async def test_freeform_loop_runs_tools_and_returns_the_answer(registry):
    calls: list[str] = []
    model = ScriptedChatModel(
        script=[
            aws_call("DescribeInstances"),
            AIMessage(content="Production has 1 instance: i-0abc."),
        ]
    )
    worker = ToolLoopWorker(model, lambda account, user: [fake_aws_tool(calls)])
    note = await worker(prod(registry), Asker("alice"), "Which instances have no owner tag?")
    assert note == "Production has 1 instance: i-0abc."
    assert calls == ["ec2 DescribeInstances us-east-1"]
    assert model.tool_names == ["aws_read"]
    assert PROD in model.prompts[0][0].content  # the account it works in
    tool_result = model.prompts[1][-1]
    assert isinstance(tool_result, ToolMessage) and "i-0abc" in tool_result.content


async def test_a_refused_command_goes_back_to_the_model(registry):
    calls: list[str] = []
    model = ScriptedChatModel(
        script=[
            aws_call("TerminateInstances", InstanceIds=["i-0abc"]),
            AIMessage(content="I cannot terminate instances: I am read-only."),
        ]
    )
    worker = ToolLoopWorker(model, lambda account, user: [fake_aws_tool(calls)])
    note = await worker(prod(registry), Asker("alice"), "Terminate i-0abc")
    assert note == "I cannot terminate instances: I am read-only."
    assert calls == []
    refusal = model.prompts[1][-1]
    assert isinstance(refusal, ToolMessage) and refusal.status == "error"
    assert json.loads(refusal.content)["error"].startswith("REFUSED: opsagent is read-only")


async def test_the_loop_stops_at_its_step_bound(registry):
    calls: list[str] = []
    model = ScriptedChatModel(
        script=[aws_call("DescribeInstances", MaxResults=5 + n) for n in range(10)]
    )

    async def tools(account, user):  # AccountSessions.tools may be async
        return [fake_aws_tool(calls)]

    worker = ToolLoopWorker(model, tools, max_steps=3)
    note = await worker(prod(registry), Asker("alice"), "keep going")
    assert note == "(stopped after 3 steps without a final answer)"
    assert len(model.prompts) == 3 and len(calls) == 2  # the third step's call never ran


async def test_an_unreachable_account_is_the_accounts_status(registry):
    model = ScriptedChatModel(script=[aws_call("DescribeInstances")])
    worker = ToolLoopWorker(model, lambda account, user: [fake_aws_tool([], deny_account=True)])
    with pytest.raises(AccountAccessDenied):
        await worker(prod(registry), Asker("alice"), "anything")


# ----- through the supervisor graph, offline -----


class RecordingRun:
    """A run_reads that records what the graph would have sent to an account."""

    def __init__(self):
        self.calls: list[tuple[str, list]] = []

    async def __call__(self, account, user, reads, *, allowed=None, fresh=True):
        from opsagent.access import ReadResult

        self.calls.append((account.id, list(reads)))
        return [ReadResult(result={}) for _ in reads]


async def test_an_invented_account_is_never_queried(registry):
    from opsagent.graph.context import Context
    from opsagent.graph.graph import build_graph

    run = RecordingRun()
    freeform_calls: list[str] = []

    async def freeform(account, user, task):
        freeform_calls.append(account.id)
        return "should not run"

    model = ScriptedChatModel(
        script=[
            plan_call(
                outcome="plan",
                accounts=["777777777777"],
                queries=[{"resource_type": "ec2:instance"}],
                freeform="look around",
            )
        ]
    )
    context = Context(
        registry=registry,
        run_reads=run,
        planner=ModelPlanner(model, RecordingFallback()),
        freeform_worker=freeform,
    )
    state = await build_graph().ainvoke(
        {"question": "EC2 in account 777777777777?"}, context=context
    )
    answer = state["answer"]
    assert answer.refusal is not None and answer.refusal.kind == "unknown_account"
    assert "777777777777" in answer.text and "Production" in answer.text
    assert answer.results == [] and run.calls == [] and freeform_calls == []


async def test_a_freeform_plan_runs_the_tool_loop_in_each_planned_account(registry):
    from opsagent.graph.context import Context
    from opsagent.graph.graph import build_graph

    calls: list[str] = []
    planner_model = ScriptedChatModel(
        script=[
            plan_call(
                outcome="plan",
                accounts=["prod"],
                freeform="Which instances have no owner tag?",
                summary="instances without an owner tag in production",
            )
        ]
    )
    worker_model = ScriptedChatModel(
        script=[
            aws_call("DescribeInstances"),
            AIMessage(content="i-0abc has no owner tag."),
        ]
    )
    context = Context(
        registry=registry,
        run_reads=RecordingRun(),
        planner=ModelPlanner(planner_model, RecordingFallback()),
        freeform_worker=ToolLoopWorker(worker_model, lambda a, u: [fake_aws_tool(calls)]),
    )
    state = await build_graph().ainvoke(
        {"question": "Which prod instances lack an owner?"}, context=context
    )
    answer = state["answer"]
    assert answer.plan.freeform == "Which instances have no owner tag?"
    assert [r.status for r in answer.results] == ["ok"]
    assert answer.results[0].note == "i-0abc has no owner tag."
    assert "i-0abc has no owner tag." in answer.text
    assert calls == ["ec2 DescribeInstances us-east-1"]


# ----- on the sandbox: the real MCP session, the real guard, moto behind them -----


@pytest.fixture(scope="module")
async def sandbox_sessions(sandbox):
    sessions = sandbox_pool(sandbox)
    yield sessions
    await sessions.aclose()


@pytest.fixture(scope="module")
def sandbox_registry(sandbox):
    return load_registry(sandbox.registry_path)


def first_instance(truth, account_id: str) -> tuple[str, str, str]:
    """(instance id, region, state) of one seeded instance in the account."""
    for region in ("us-east-1", "us-west-2"):
        found = truth.ec2_instances(account_id, regions=(region,))
        for instance_id, state in sorted(found.items()):
            return instance_id, region, state
    raise AssertionError(f"the seed must give {account_id} an EC2 instance")


async def test_freeform_tool_calls_go_through_the_real_mcp_session(
    sandbox_sessions, sandbox_registry, truth
):
    instance_id, region, _ = first_instance(truth, PROD)
    expected = truth.ec2_instances(PROD, regions=(region,))
    model = ScriptedChatModel(
        script=[
            aws_call("DescribeInstances", region),
            AIMessage(content=f"Production has {len(expected)} instances in {region}."),
        ]
    )
    worker = ToolLoopWorker(model, sandbox_sessions.tools)
    note = await worker(sandbox_registry.get(PROD), Asker("alice"), "How many instances, really?")
    assert note == f"Production has {len(expected)} instances in {region}."
    assert "aws_read" in model.tool_names and "aws___run_script" not in model.tool_names
    result = model.prompts[1][-1]
    assert isinstance(result, ToolMessage) and result.status != "error"
    for seeded in expected:  # what moto holds is what the model was shown
        assert seeded in str(result.content)


async def test_a_mutating_tool_call_is_refused_and_nothing_reaches_moto(
    sandbox_sessions, sandbox_registry, truth, caplog
):
    instance_id, region, state = first_instance(truth, PROD)
    model = ScriptedChatModel(
        script=[
            aws_call("TerminateInstances", region, InstanceIds=[instance_id]),
            AIMessage(content="I cannot terminate instances: opsagent is read-only."),
        ]
    )
    worker = ToolLoopWorker(model, sandbox_sessions.tools)
    with caplog.at_level("INFO", logger="opsagent.audit"):
        note = await worker(
            sandbox_registry.get(PROD), Asker("mallory"), f"Terminate {instance_id}"
        )
    assert note == "I cannot terminate instances: opsagent is read-only."
    refusal = model.prompts[1][-1]
    assert isinstance(refusal, ToolMessage) and refusal.status == "error"
    assert "read-only" in str(refusal.content) and "TerminateInstances" in str(refusal.content)
    # The guard refused it before anything was sent, and the instance is untouched in moto.
    records = [
        r.audit
        for r in caplog.records
        if getattr(r, "audit", {}).get("operation") == "TerminateInstances"
    ]
    assert [r["event"] for r in records] == ["guard.refused"]
    assert records[0]["user"] == "mallory" and records[0]["account_id"] == PROD
    # Refused before any script was built: no run_script went out for this user.
    assert not [
        r
        for r in caplog.records
        if getattr(r, "audit", {}).get("event") == "aws.script" and r.audit.get("user") == "mallory"
    ]
    assert truth.ec2_instances(PROD, regions=(region,)).get(instance_id) == state


async def test_the_model_path_end_to_end_on_the_sandbox(sandbox_sessions, sandbox_registry, truth):
    """Model planner → freeform worker in the planned account → the merged answer."""
    from opsagent.graph.context import Context
    from opsagent.graph.graph import build_graph

    instance_id, region, state = first_instance(truth, STAGING)
    planner_model = ScriptedChatModel(
        script=[
            plan_call(
                outcome="plan",
                accounts=["staging"],
                regions=[region],
                queries=[{"resource_type": "ec2:instance", "intent": "count"}],
                freeform=f"Tell me about {instance_id}, and stop it if it is idle.",
            )
        ]
    )
    worker_model = ScriptedChatModel(
        script=[
            aws_call("DescribeInstances", region, InstanceIds=[instance_id]),
            aws_call("StopInstances", region, InstanceIds=[instance_id]),
            AIMessage(content=f"{instance_id} is {state}; I may not stop it."),
        ]
    )
    context = Context(
        registry=sandbox_registry,
        run_reads=sandbox_sessions.run_reads,
        planner=ModelPlanner(planner_model, RecordingFallback()),
        user="alice",
        freeform_worker=ToolLoopWorker(worker_model, sandbox_sessions.tools),
    )
    state_ = await build_graph().ainvoke({"question": "anything"}, context=context)
    answer = state_["answer"]
    [result] = answer.results
    assert result.account_id == STAGING and result.status == "ok"
    assert {row.id for row in result.rows} == set(truth.ec2_instances(STAGING, (region,)))
    assert result.note == f"{instance_id} is {state}; I may not stop it."
    assert instance_id in str(worker_model.prompts[1][-1].content)
    stop_refused = worker_model.prompts[2][-1]
    assert isinstance(stop_refused, ToolMessage) and stop_refused.status == "error"
    assert truth.ec2_instances(STAGING, (region,))[instance_id] == state


# ----- the runtime: which planner runs -----


async def test_no_model_configured_means_the_rule_planner(sandbox_sessions, monkeypatch):
    from opsagent.service.runtime import model_deps, rule_planner
    from opsagent.service.settings import Settings

    monkeypatch.delenv("OPSAGENT_MODEL", raising=False)
    planner, freeform = model_deps(Settings(), sandbox_sessions)
    assert planner is rule_planner and freeform is None


async def test_a_configured_model_gives_the_model_path(sandbox_sessions):
    from opsagent.service.runtime import ConfigurationError, model_deps, rule_planner
    from opsagent.service.settings import Settings

    made: list[str] = []

    def make_model(setting: str) -> BaseChatModel:
        made.append(setting)
        return ScriptedChatModel(script=[])

    settings = Settings(model="bedrock:anthropic.claude-3-haiku-20240307-v1:0")
    planner, freeform = model_deps(settings, sandbox_sessions, make_model=make_model)
    assert made == ["bedrock:anthropic.claude-3-haiku-20240307-v1:0"]
    assert isinstance(planner, ModelPlanner) and planner is not rule_planner
    assert isinstance(freeform, ToolLoopWorker)
    with pytest.raises(ConfigurationError, match="bedrock:<model id>"):
        model_deps(Settings(model="gpt-4o"), sandbox_sessions)


async def test_without_a_model_questions_are_answered_by_the_rule_planner(
    sandbox_sessions, sandbox_registry, truth, monkeypatch
):
    from opsagent.graph.context import Context
    from opsagent.graph.graph import build_graph
    from opsagent.service.runtime import model_deps
    from opsagent.service.settings import Settings

    monkeypatch.delenv("OPSAGENT_MODEL", raising=False)
    planner, freeform = model_deps(Settings(), sandbox_sessions)
    context = Context(
        registry=sandbox_registry,
        run_reads=sandbox_sessions.run_reads,
        planner=planner,
        freeform_worker=freeform,
    )
    state = await build_graph().ainvoke(
        {"question": "List EC2 instances in production"}, context=context
    )
    answer = state["answer"]
    assert answer.plan is not None and answer.plan.freeform is None
    assert answer.plan.accounts == [PROD]
    assert {row.id for row in answer.resources} == set(truth.ec2_instances(PROD))


async def test_a_model_failure_falls_back_to_the_real_rule_planner(sandbox_registry):
    from opsagent.service.runtime import rule_planner

    planner = ModelPlanner(ScriptedChatModel(script=[throttled()]), rule_planner)
    outcome = await planner(
        "How many EC2 instances are running in production?", sandbox_registry, None
    )
    assert isinstance(outcome, Plan)
    assert outcome.accounts == [PROD]
    assert [q.resource_type for q in outcome.queries] == ["ec2:instance"]
    assert "model unavailable (ThrottlingException); planned by the rule planner" in (
        outcome.summary
    )
