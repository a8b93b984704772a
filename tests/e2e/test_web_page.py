"""The web page (GET /) in a real browser: headless Chromium driven by Playwright.

Debian's Chromium (`/usr/bin/chromium`, or OPSAGENT_TEST_CHROMIUM), never a browser that
Playwright downloads; `.ci/run` installs it when it is missing. Without it, or without the
`playwright` package, every test here is skipped with the reason.

Two real `opsagent serve` processes on the session sandbox, so what the page shows is checked
against moto's ground truth (`truth`): one on the demo registry, in which production also
has eu-west-3, where an EC2 instance is named `<img src=x onerror=alert(1)>`; and one with
bearer-token auth on, in which development's role does not exist (its AssumeRole is denied).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsagent.sandbox.seed_builder import AccountBuilder
from opsagent.sandbox.seed_data import ADMIN_ROLE
from tests.service_helpers import (
    DEVELOPMENT,
    PRODUCTION,
    ROOT,
    STAGING,
    ServiceProcess,
    demo_registry,
    token,
)

CHROMIUM = os.environ.get("OPSAGENT_TEST_CHROMIUM") or shutil.which("chromium") or ""
try:
    from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
except ImportError:  # the dev extras bring it: `make install`
    sync_playwright = None  # type: ignore[assignment]

if sync_playwright is None:
    pytestmark = pytest.mark.skip(reason="playwright is not installed (pip install -e '.[dev]')")
elif not CHROMIUM or not Path(CHROMIUM).exists():
    pytestmark = pytest.mark.skip(
        reason="no Chromium: apt-get install chromium (.ci/run does as root), "
        "or point OPSAGENT_TEST_CHROMIUM at one"
    )

# What headless Chromium needs here (Playwright adds --headless): as root no sandbox, and no
# background connections to Google's services (refused on a closed network, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSWER_TIMEOUT_MS = 90_000
WORKLOAD = (PRODUCTION, STAGING, DEVELOPMENT)
REGIONS = ("us-east-1", "us-west-2")
# In no other test's registry regions: no other test that counts instances sees this one.
XSS_REGION = "eu-west-3"
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_TAG = "<script>alert(2)</script>"
SECRET = "web-page-test-secret-that-is-long-enough-for-hs256"
GROUPS = {"staging-team": ["staging"], "operators": ["all"]}
STAGING_USER = token(SECRET, "sam", ["staging-team"], claim="groups")
OPERATOR = token(SECRET, "olivia", ["operators"], claim="groups")

# Every change of an account line's status, as the page makes it (attributeOldValue: the
# value before each change; the last value is read from the page afterwards).
STATUS_LOG = """
window.__statusLog = [];
new MutationObserver((records) => {
  for (const record of records) {
    window.__statusLog.push([record.target.dataset.accountId, record.oldValue]);
  }
}).observe(document, {
  subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ["data-status"],
});
"""


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(STATUS_LOG)
    opened = context.new_page()
    opened.set_default_timeout(ANSWER_TIMEOUT_MS)
    dialogs: list[str] = []
    errors: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", dismiss)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert dialogs == [], f"the page opened dialogs: {dialogs}"
    assert errors == [], f"the page's script failed: {errors}"


@pytest.fixture(scope="module")
def planted(sandbox) -> str:
    """An EC2 instance in production, eu-west-3, named (and tagged) with markup; its id."""
    sts = sandbox.central_session().client("sts", endpoint_url=sandbox.aws_endpoint)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{PRODUCTION}:role/{ADMIN_ROLE}", RoleSessionName="plant-markup"
    )["Credentials"]
    ec2 = sandbox.central_session().client(
        "ec2",
        region_name=XSS_REGION,
        endpoint_url=sandbox.aws_endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return ec2.run_instances(
        ImageId=AccountBuilder.public_image(ec2, XSS_REGION),
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": XSS_NAME}, {"Key": "team", "Value": XSS_TAG}],
            }
        ],
    )["Instances"][0]["InstanceId"]


def _serve(
    sandbox, external_env, workdir: Path, registry: dict[str, Any], **settings: str
) -> ServiceProcess:
    path = workdir / "registry.json"
    path.write_text(json.dumps(registry))
    env = {
        **external_env,
        "OPSAGENT_REGISTRY": str(path),
        "OPSAGENT_MCP_ENDPOINT": sandbox.mcp_endpoint,
        "OPSAGENT_AUDIT_LOG": "off",
        **settings,
    }
    return ServiceProcess(env, workdir)


@pytest.fixture(scope="module")
def service(
    sandbox, external_env, planted: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """No auth; production's regions include eu-west-3, where the planted instance is."""
    registry = demo_registry()
    for account in registry["accounts"]:
        if account["id"] == PRODUCTION:
            account["regions"] = [*REGIONS, XSS_REGION]
    workdir = tmp_path_factory.mktemp("web-page")
    with _serve(sandbox, external_env, workdir, registry) as proc:
        yield proc


@pytest.fixture(scope="module")
def guarded(
    sandbox, external_env, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """Bearer tokens on; development's role does not exist, so AssumeRole is denied there."""
    registry = demo_registry(GROUPS)
    for account in registry["accounts"]:
        if account["id"] == DEVELOPMENT:
            account["role_name"] = "NoSuchRole"
    workdir = tmp_path_factory.mktemp("web-page-auth")
    with _serve(
        sandbox,
        external_env,
        workdir,
        registry,
        OPSAGENT_JWT_SECRET=SECRET,
        OPSAGENT_JWT_GROUPS_CLAIM="groups",
    ) as proc:
        yield proc


# ----------------------------------------------------------------------------- the page


def ask(page: Page, question: str) -> Locator:
    """Type the question, press Enter, wait for the answer: the question's turn."""
    turns = page.locator("#conversation > .turn")
    before = turns.count()
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")
    expect(turns).to_have_count(before + 1)
    turn = turns.nth(before)
    expect(turn).to_have_attribute("data-state", "done", timeout=ANSWER_TIMEOUT_MS)
    return turn


def rows(turn: Locator) -> list[dict[str, str]]:
    """The table's visible rows, in order: column key -> the cell's text."""
    return turn.locator("tbody tr").evaluate_all(
        """rows => rows.map(row => Object.fromEntries(
             [...row.cells].map(cell => [cell.dataset.column, cell.textContent])))"""
    )


def row_ids(turn: Locator) -> list[str]:
    return turn.locator("tbody tr").evaluate_all("rows => rows.map(row => row.dataset.id)")


def statuses(turn: Locator) -> dict[str, str]:
    lines = turn.locator(".accounts > li")
    return dict(
        zip(
            lines.evaluate_all("lines => lines.map(line => line.dataset.accountId)"),
            lines.evaluate_all("lines => lines.map(line => line.dataset.status)"),
            strict=True,
        )
    )


def line(turn: Locator, account_id: str) -> Locator:
    return turn.locator(f'.accounts > li[data-account-id="{account_id}"]')


def status_history(page: Page, turn: Locator) -> dict[str, list[str]]:
    """Each account line's statuses in the order the page showed them."""
    history: dict[str, list[str]] = {}
    for account_id, old in page.evaluate("window.__statusLog"):
        if old is not None:
            history.setdefault(account_id, []).append(old)
    for account_id, now in statuses(turn).items():
        history.setdefault(account_id, []).append(now)
    return {
        account: [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
        for account, seen in history.items()
    }


def open_page(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200
    expect(page.locator("#question")).to_be_focused()


# ----------------------------------------------------------------------------- tests


def test_ec2_in_production_then_a_follow_up(
    page: Page, service: ServiceProcess, truth, planted: str
) -> None:
    open_page(page, service.url)
    turn = ask(page, "List all EC2 instances in the production account")
    expected = truth.ec2_instances(PRODUCTION, (*REGIONS, XSS_REGION))
    found = rows(turn)
    assert {r["id"] for r in found} == set(expected)
    assert {r["id"]: r["state"] for r in found} == expected
    assert {r["account"] for r in found} == {f"production {PRODUCTION}"}
    assert statuses(turn) == {PRODUCTION: "ok"}
    assert f"{len(expected)} found" in line(turn, PRODUCTION).inner_text()
    thread_id = page.evaluate("sessionStorage.getItem('opsagent.thread')")
    assert thread_id and page.locator("#thread").inner_text().endswith(thread_id[:8])

    # "and in staging?": the same thread, so the same question about another account.
    follow = ask(page, "and in staging?")
    assert page.evaluate("sessionStorage.getItem('opsagent.thread')") == thread_id
    assert {r["id"]: r["state"] for r in rows(follow)} == truth.ec2_instances(STAGING)
    assert statuses(follow) == {STAGING: "ok"}
    assert "staging" in follow.locator(".answer").inner_text()
    turns = httpx.get(f"{service.url}/threads/{thread_id}").json()["turns"]
    assert [t["question"] for t in turns] == [
        "List all EC2 instances in the production account",
        "and in staging?",
    ]

    # After a reload in the same tab the conversation's turns are shown again.
    page.reload()
    questions = page.locator("#conversation > .turn .question")
    expect(questions).to_have_text([t["question"] for t in turns])
    expect(page.locator("#conversation > .turn .answer")).to_have_text([t["answer"] for t in turns])


def test_s3_across_all_accounts(page: Page, service: ServiceProcess, truth) -> None:
    open_page(page, service.url)
    turn = ask(page, "Show me S3 buckets across all accounts")
    expected = {(a, b) for a in WORKLOAD for b in truth.buckets(a)}
    assert {(r["account"].split()[-1], r["id"]) for r in rows(turn)} == expected
    assert statuses(turn) == {a: "ok" for a in WORKLOAD}
    history = status_history(page, turn)
    for account in WORKLOAD:  # the line turned from waiting to ok as the events came
        assert history[account] == ["waiting", "running", "ok"], history
        count = len(truth.buckets(account))
        assert f"{count} found" in line(turn, account).inner_text()
    assert turn.locator(".chart").count() == 0  # a list, not a count
    assert turn.locator(".shown").inner_text() == f"{len(expected)} resources"


def test_lambda_functions_in_staging(page: Page, service: ServiceProcess, truth) -> None:
    open_page(page, service.url)
    turn = ask(page, "What Lambda functions exist in staging?")
    found = rows(turn)
    assert {r["id"] for r in found} == truth.lambda_functions(STAGING)
    assert {r["name"] for r in found} == truth.lambda_functions(STAGING)
    assert statuses(turn) == {STAGING: "ok"}


def test_describe_eks_shows_details_as_columns(page: Page, service: ServiceProcess, truth) -> None:
    open_page(page, service.url)
    turn = ask(page, "Describe EKS clusters in account 222222222222")
    names = truth.eks_clusters(PRODUCTION)
    found = rows(turn)
    assert {r["id"] for r in found} == names
    columns = turn.locator("thead th").evaluate_all("ths => ths.map(th => th.dataset.column)")
    assert columns[:7] == ["account", "region", "id", "name", "state", "tags", "details.version"]
    assert "details.endpoint" in columns
    for row in found:
        region = row["region"]
        cluster = truth.client(PRODUCTION, "eks", region).describe_cluster(name=row["id"])
        assert row["details.version"] == cluster["cluster"]["version"]
        assert row["details.endpoint"] == cluster["cluster"]["endpoint"]
        assert row["state"] == cluster["cluster"]["status"].lower()


def test_top_volumes_show_their_size_in_order(page: Page, service: ServiceProcess, truth) -> None:
    """A ranking across accounts: the rows in the answer's order, the attribute a column."""
    open_page(page, service.url)
    turn = ask(page, "top 3 largest EBS volumes")
    sizes = {}
    for account in WORKLOAD:
        for region in ("us-east-1", "us-west-2"):
            ec2 = truth.client(account, "ec2", region)
            sizes |= {v["VolumeId"]: v["Size"] for v in ec2.describe_volumes()["Volumes"]}
    largest = sorted(sizes.values(), reverse=True)[:3]
    found = rows(turn)
    assert [int(row["details.size_gb"]) for row in found] == largest
    assert all(sizes[row["id"]] == int(row["details.size_gb"]) for row in found)
    assert f"{largest[0]:,} GiB" in turn.locator(".answer").inner_text()


def test_rds_count_per_account_draws_a_chart(page: Page, service: ServiceProcess, truth) -> None:
    open_page(page, service.url)
    turn = ask(page, "How many RDS instances are running in each account?")
    available = {
        account: {i for i, s in truth.rds_instances(account).items() if s == "available"}
        for account in WORKLOAD
    }
    assert set(row_ids(turn)) == set().union(*available.values())
    chart = turn.locator(".chart")
    expect(chart).to_be_visible()
    bars = chart.locator(".bar")
    assert bars.evaluate_all("bars => bars.map(bar => [bar.dataset.label, bar.dataset.count])") == [
        [alias, str(len(available[account]))]
        for account, alias in zip(WORKLOAD, ("production", "staging", "development"), strict=True)
    ]
    # The longest bar is the largest count.
    widths = bars.locator(".fill").evaluate_all("fills => fills.map(f => f.offsetWidth)")
    counts = [len(available[a]) for a in WORKLOAD]
    assert widths.index(max(widths)) == counts.index(max(counts))


def test_sort_and_filter(page: Page, service: ServiceProcess, truth) -> None:
    open_page(page, service.url)
    turn = ask(page, "Show me S3 buckets across all accounts")
    buckets = sorted(b for a in WORKLOAD for b in truth.buckets(a))
    header = turn.locator('th[data-column="name"]')
    header.locator("button").click()
    assert [r["name"] for r in rows(turn)] == buckets
    expect(header).to_have_attribute("aria-sort", "ascending")
    header.locator("button").click()
    assert [r["name"] for r in rows(turn)] == buckets[::-1]
    expect(header).to_have_attribute("aria-sort", "descending")

    # With the keyboard: Tab reaches the header's button, Enter sorts by it.
    region = turn.locator('th[data-column="region"]')
    region.locator("button").focus()
    page.keyboard.press("Enter")
    expect(region).to_have_attribute("aria-sort", "ascending")
    expect(header).to_have_attribute("aria-sort", "none")
    regions = [r["region"] for r in rows(turn)]
    assert regions == sorted(regions)
    page.keyboard.press("Shift+Tab")
    expect(turn.locator('th[data-column="account"] button')).to_be_focused()

    # The filter keeps the rows any cell of which holds every word typed.
    staging = sorted(truth.buckets(STAGING))
    turn.locator(".filter").fill("STAGING")
    assert sorted(r["id"] for r in rows(turn)) == staging
    expect(turn.locator(".shown")).to_have_text(f"Showing {len(staging)} of {len(buckets)}")
    turn.locator(".filter").fill(f"staging {staging[0]}")
    assert [r["id"] for r in rows(turn)] == [staging[0]]
    turn.locator(".filter").fill("no-such-bucket-anywhere")
    assert rows(turn) == []
    turn.locator(".filter").fill("")
    assert len(rows(turn)) == len(buckets)


def test_markup_from_aws_is_text(page: Page, service: ServiceProcess, planted: str) -> None:
    open_page(page, service.url)
    turn = ask(page, "List all EC2 instances in the production account")
    row = turn.locator(f'tbody tr[data-id="{planted}"]')
    expect(row.locator('td[data-column="name"]')).to_have_text(XSS_NAME)
    expect(row.locator('td[data-column="tags"] .tag')).to_have_text(
        [f"Name={XSS_NAME}", f"team={XSS_TAG}"]
    )
    # A question with markup, refused as unreadable, is text too (and so is its message).
    refused = ask(page, f"What is {XSS_NAME} {XSS_TAG}?")
    expect(refused.locator(".question")).to_have_text(f"What is {XSS_NAME} {XSS_TAG}?")
    expect(refused.locator(".message")).to_be_visible()
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("document.images.length") == 0
    # The page fixture checks that no dialog opened and no script failed.


def test_token_field_and_what_the_caller_may_see(
    page: Page, guarded: ServiceProcess, truth
) -> None:
    open_page(page, guarded.url)
    # No token: the service's 401 in words, and the token field opened.
    turn = ask(page, "Show me S3 buckets across all accounts")
    expect(turn.locator(".message.error")).to_contain_text("Authorization: Bearer")
    expect(page.locator("#token")).to_be_focused()
    page.locator("#token").fill(STAGING_USER)
    page.locator("#token").press("Enter")
    assert page.evaluate("sessionStorage.getItem('opsagent.token')") == STAGING_USER
    expect(page.locator("#question")).to_be_focused()

    # Staging's team: "all accounts" means theirs.
    turn = ask(page, "Show me S3 buckets across all accounts")
    assert statuses(turn) == {STAGING: "ok"}
    assert {r["id"] for r in rows(turn)} == truth.buckets(STAGING)
    text = page.locator("#conversation").inner_text()
    assert PRODUCTION not in text and DEVELOPMENT not in text
    # Naming another account is refused, and the refusal is shown as a message.
    refused = ask(page, "List EC2 instances in production")
    expect(refused.locator(".message.refusal")).to_contain_text("You may not query Production")
    assert refused.locator("table").count() == 0


def test_denied_account_line_says_why(page: Page, guarded: ServiceProcess, truth) -> None:
    open_page(page, guarded.url)
    page.locator("#auth summary").click()
    page.locator("#token").fill(OPERATOR)
    page.locator("#token-form button[type=submit]").click()
    turn = ask(page, "Show me S3 buckets across all accounts")
    assert statuses(turn) == {PRODUCTION: "ok", STAGING: "ok", DEVELOPMENT: "denied"}
    history = status_history(page, turn)
    assert history[DEVELOPMENT] == ["waiting", "running", "denied"], history
    denied = line(turn, DEVELOPMENT)
    expect(denied.locator(".badge")).to_have_text("denied")
    expect(denied.locator(".error")).to_contain_text("The role could not be assumed")
    expect(denied.locator(".error")).to_contain_text("AssumeRole")
    for account in (PRODUCTION, STAGING):
        expect(line(turn, account).locator(".detail")).to_contain_text(
            f"{len(truth.buckets(account))} found"
        )
    expected = {(a, b) for a in (PRODUCTION, STAGING) for b in truth.buckets(a)}
    assert {(r["account"].split()[-1], r["id"]) for r in rows(turn)} == expected
    assert "denied" in turn.locator(".answer").inner_text()


def test_screenshot_script(service: ServiceProcess, tmp_path: Path) -> None:
    """`make screenshot` (scripts/screenshot_page.py) against a running service."""
    out = tmp_path / "page.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshot_page.py"), "--url", service.url]
        + ["--out", str(out), "--chromium", CHROMIUM],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
