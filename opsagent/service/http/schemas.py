"""The HTTP contract's bodies, as /docs publishes them.

The request is the service's own. The answer's models are derived from the domain models
(``opsagent.graph.models``: Resource, AccountResult, Answer), the shape ``Answer.to_json()``
writes, so the schema at /docs is the JSON a caller gets: a resource row has every field of
``Resource``, ``details`` only when the question asked to describe or asked about an
attribute (it is not required);
an account is ``AccountResult`` with its rows counted. tests/unit/test_service_schema.py checks
these models against ``Answer.to_json()`` both ways.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from opsagent.graph.models import AccountResult, Answer, Plan, Resource
from opsagent.service.questions import question_problem

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
THREAD_HEADER = "X-Opsagent-Thread-Id"
# Thread ids end up in SQL rows and DynamoDB keys ("CHECKPOINT_<id>", "<id>#<ns>#..."): no '#'.
THREAD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


class InvocationRequest(BaseModel):
    """What AgentCore passes through from the caller: a question and, optionally, a thread."""

    # AgentCore forwards the caller's payload as is; keys we do not know are not an error.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"prompt": "Show me S3 buckets across all accounts"}]},
    )

    prompt: str | None = Field(
        default=None, description="The question (AgentCore's usual key). Up to 2,000 characters."
    )
    question: str | None = Field(default=None, description="The question, if `prompt` is unset.")
    fresh: bool = Field(
        default=False,
        description="Read every account again, even if recent reads (younger than "
        "OPSAGENT_DATA_MAX_AGE) could answer.",
    )
    thread_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=THREAD_ID_PATTERN,
        description="Continue this conversation. Ignored when the AgentCore session header is "
        "set; a new thread is started when neither is given.",
    )

    @model_validator(mode="after")
    def _one_question(self) -> InvocationRequest:
        prompt, question = (self.prompt or "").strip(), (self.question or "").strip()
        if prompt and question and prompt != question:
            raise ValueError("send the question as either 'prompt' or 'question', not both")
        if not (prompt or question):
            raise ValueError('the question is missing or empty: send {"prompt": "your question"}')
        problem = question_problem(prompt or question)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def text(self) -> str:
        return (self.prompt or "").strip() or (self.question or "").strip()


# ----------------------------------------------------------------------------- the answer


def _always(
    model: type[BaseModel],
    name: str,
    description: str | None = None,
) -> tuple[Any, Any]:
    """`model`'s field as a key the answer JSON always has (possibly null)."""
    field = model.model_fields[name]
    return field.annotation, Field(description=description or field.description)


def _sometimes(model: type[BaseModel], name: str, description: str) -> tuple[Any, Any]:
    """`model`'s field as a key the answer JSON has only sometimes."""
    field = model.model_fields[name]
    return field.annotation, Field(default_factory=dict, description=description)


_FORBID = ConfigDict(extra="forbid")

# Answer.to_json() writes `details` for the resource types the question asked to describe, and
# the attributes a question asked about (a filter's, a ranking's...) for the others.
_DESCRIBE_ONLY = {
    "details": "In a describe answer: engine, version, size, endpoint, ...; otherwise only the "
    "attributes the question asked about (runtime, size_gb, launch_time...), when any."
}

# mypy cannot match create_model's overloads when fields come as **mapping; pydantic does.
ResourceOut: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "ResourceOut",
    __config__=_FORBID,
    __doc__="One row of the answer table (Resource).",
    **{
        name: (
            _sometimes(Resource, name, _DESCRIBE_ONLY[name])
            if name in _DESCRIBE_ONLY
            else _always(Resource, name)
        )
        for name in Resource.model_fields
    },
)

# An account's rows are listed once, under `resources`; here they are counted. A freeform
# worker's `note` is not part of the answer JSON.
_ACCOUNT_NOT_WRITTEN = {"rows", "note"}

AccountOut: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "AccountOut",
    __config__=_FORBID,
    __doc__="What one account did (AccountResult): status, rows found, time, error.",
    **{
        name: _always(AccountResult, name)
        for name in AccountResult.model_fields
        if name not in _ACCOUNT_NOT_WRITTEN
    },
    count=(int, Field(description="Rows found in this account.")),
)

AnswerOut: type[BaseModel] = create_model(
    "AnswerOut",
    __config__=_FORBID,
    __doc__="The merged answer: the same JSON as `opsagent ask --json` (Answer.to_json()).",
    question=_always(Answer, "question"),
    answer=_always(Answer, "text", "The answer in a sentence or a few."),
    plan=_always(Answer, "plan"),
    refusal=_always(Answer, "refusal"),
    sandbox=(
        bool,
        Field(description="True when the accounts are the embedded sandbox's made-up demo."),
    ),
    # mypy cannot see models built at run time as types; pydantic can.
    accounts=(
        list[AccountOut],  # type: ignore[valid-type]
        Field(description="Per account: status, count, time, error."),
    ),
    resources=(
        list[ResourceOut],  # type: ignore[valid-type]
        Field(description="Every account's rows."),
    ),
)


class InvocationResponse(AnswerOut):  # type: ignore[misc, valid-type]
    """The answer, with the conversation's thread id."""

    thread_id: str


# ----------------------------------------------------------------------------- the rest


class PingResponse(BaseModel):
    status: Literal["Healthy", "HealthyBusy"] = Field(
        description="HealthyBusy while any question is being answered."
    )
    time_of_last_update: int = Field(
        description="Unix seconds of the last change of status (not of this ping)."
    )


class TurnOut(BaseModel):
    question: str
    answer: str
    plan: Plan | None


class ThreadResponse(BaseModel):
    thread_id: str
    turns: list[TurnOut]


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable code, e.g. question_too_long (see the table).")
    message: str = Field(description="What went wrong and what to send instead.")
    thread_id: str | None = None
    answer: AnswerOut | None = Field(  # type: ignore[valid-type]
        default=None, description="For refusals: the answer JSON."
    )


SSE_DESCRIPTION = """With `Accept: text/event-stream`, Server-Sent Events while the work happens:

* `thread` `{"thread_id"}`: first, always
* `plan`: the Plan (accounts, regions, queries, summary) as soon as it exists
* `account_started` `{"account_id", "alias"}`, one per account, once it has a fan-out slot
  (OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT)
* `account_finished` `{"account_id", "alias", "status", "count", "elapsed_ms", "error"}`
* `answer`: the answer JSON (as `opsagent ask --json`)
* `error` `{"error", "message"}`: only if the run itself failed
* `done` `{"thread_id", "status": "ok" | "refused" | "error"}`: last, always

Comment lines (`: ping`) keep a quiet stream open. Closing the connection cancels the run.
Errors found before the run starts (bad input, refusals) are answered as JSON with a 4xx."""
