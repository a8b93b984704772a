// opsagent's page: ask a question, watch each account answer, read the table.
//
// Plain JavaScript, no build step. It speaks the service's public API only: POST
// /invocations with Accept: text/event-stream (read with fetch and a stream reader, since
// EventSource can neither POST nor send an Authorization header) and GET /threads/{id}.
//
// Everything that comes from the service (and so from AWS: names, tags, error messages) is
// written as text: textContent and text nodes only, never innerHTML.
"use strict";

(() => {
  const TOKEN_KEY = "opsagent.token";
  const THREAD_KEY = "opsagent.thread";
  const STATUS_WORDS = {
    waiting: "waiting",
    running: "querying",
    ok: "ok",
    denied: "denied",
    error: "error",
    timeout: "timeout",
    stopped: "stopped",
  };
  const STATUS_MEANING = {
    denied: "The role could not be assumed in this account.",
    error: "This account could not be queried.",
    timeout: "This account did not answer in time.",
  };
  const LONG_CELL = 32; // longer values wrap, shorter ones keep to one line
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  const $ = (id) => document.getElementById(id);
  const form = $("ask");
  const input = $("question");
  const send = $("send");
  const stop = $("stop");
  const conversation = $("conversation");
  const intro = $("intro");
  const threadLabel = $("thread");
  const newThread = $("new-thread");
  const tokenForm = $("token-form");
  const tokenInput = $("token");
  const tokenStatus = $("token-status");
  const auth = $("auth");

  let threadId = null;
  let controller = null;
  let tableCount = 0;

  // ------------------------------------------------------------------ building the page

  /** An element with a class and children; strings become text nodes, never markup. */
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function text(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function duration(ms) {
    if (typeof ms !== "number") return "";
    return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  // ------------------------------------------------------------------ the token

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function showTokenState() {
    tokenStatus.textContent = token()
      ? "A token is set: questions are sent with it."
      : "No token: the service must be running without authentication.";
  }

  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = tokenInput.value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
    input.focus();
  });

  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    tokenInput.value = "";
    showTokenState();
    tokenInput.focus();
  });

  function headers(extra) {
    const all = { ...extra };
    const value = token();
    if (value) all.Authorization = `Bearer ${value}`;
    return all;
  }

  // ------------------------------------------------------------------ the thread

  function setThread(id) {
    threadId = id || null;
    if (threadId) sessionStorage.setItem(THREAD_KEY, threadId);
    else sessionStorage.removeItem(THREAD_KEY);
    threadLabel.textContent = threadId ? `Conversation ${threadId.slice(0, 8)}` : "";
    threadLabel.title = threadId || "";
    newThread.hidden = !threadId;
  }

  newThread.addEventListener("click", () => {
    if (controller) controller.abort();
    setThread(null);
    conversation.replaceChildren();
    intro.hidden = false;
    input.focus();
  });

  // ------------------------------------------------------------------ Server-Sent Events

  function parseEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue; // a comment: the keep-alive ping
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    return { event: name, data: JSON.parse(data.join("\n")) };
  }

  /** The events of an SSE response body, as they arrive. */
  async function* events(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      let chunk = done ? decoder.decode() : decoder.decode(value, { stream: true });
      chunk = buffer + chunk;
      // Lines end in \r\n, \n or \r; a \r at the very end may be half of a \r\n.
      const held = !done && chunk.endsWith("\r") ? "\r" : "";
      buffer = (held ? chunk.slice(0, -1) : chunk).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const parsed = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (parsed) yield parsed;
      }
      buffer += held;
      if (done) {
        const last = parseEvent(buffer.trim());
        if (last) yield last;
        return;
      }
    }
  }

  // ------------------------------------------------------------------ one turn

  function newTurn(question) {
    intro.hidden = true;
    const turn = {
      root: el("article", "turn"),
      plan: el("p", "plan hint"),
      accounts: el("ul", "accounts"),
      outcome: el("div", "outcome"),
      lines: new Map(),
    };
    turn.accounts.setAttribute("aria-label", "Accounts");
    turn.accounts.setAttribute("aria-live", "polite");
    turn.outcome.setAttribute("aria-live", "polite");
    // Not aria-busy: that would hold back the live regions inside the turn until the end.
    turn.root.dataset.state = "running";
    turn.root.append(el("h2", "question", question), turn.plan, turn.accounts, turn.outcome);
    conversation.append(turn.root);
    turn.root.scrollIntoView({ block: "nearest" });
    return turn;
  }

  function accountLine(turn, accountId, alias) {
    let line = turn.lines.get(accountId);
    if (!line) {
      line = {
        root: el("li", "account"),
        badge: el("span", "badge"),
        name: el("span", "name"),
        detail: el("span", "detail"),
        error: el("span", "error"),
      };
      line.root.dataset.accountId = accountId;
      line.root.append(line.badge, line.name, line.detail, line.error);
      turn.lines.set(accountId, line);
      turn.accounts.append(line.root);
      setStatus(line, "waiting");
      line.name.textContent = accountId; // the plan names ids; the alias comes with its events
    }
    if (alias) line.name.textContent = `${alias} (${accountId})`;
    return line;
  }

  function setStatus(line, status) {
    line.root.dataset.status = status;
    line.badge.textContent = STATUS_WORDS[status] || status;
  }

  function accountFinished(turn, data) {
    const line = accountLine(turn, data.account_id, data.alias);
    setStatus(line, data.status);
    const parts = [];
    if (data.status === "ok") {
      parts.push(`${data.count} found`);
      if (data.reused) parts.push("recent read");
    }
    if (typeof data.elapsed_ms === "number") parts.push(duration(data.elapsed_ms));
    if (data.regions_not_enabled && data.regions_not_enabled.length) {
      parts.push(`not enabled: ${data.regions_not_enabled.join(", ")}`);
    }
    line.detail.textContent = parts.join(" · ");
    if (data.status !== "ok") {
      const meaning = STATUS_MEANING[data.status] || "";
      line.error.textContent = [meaning, data.error || ""].filter(Boolean).join(" ");
    } else {
      line.error.textContent = "";
    }
  }

  function showPlan(turn, plan) {
    if (!plan) return;
    if (plan.summary) turn.plan.textContent = `Plan: ${plan.summary}.`;
    for (const accountId of plan.accounts || []) accountLine(turn, accountId, null);
  }

  function showMessage(turn, kind, message) {
    const box = el("p", `message ${kind}`, message);
    box.setAttribute("role", kind === "info" ? "status" : "alert");
    turn.outcome.append(box);
  }

  function counts(plan) {
    return (
      !!plan &&
      (!!plan.group_by || (plan.queries || []).some((query) => query.intent === "count"))
    );
  }

  function showAnswer(turn, answer) {
    turn.outcome.replaceChildren();
    if (answer.plan) showPlan(turn, answer.plan);
    for (const account of answer.accounts || []) accountFinished(turn, account);
    if (answer.refusal) {
      turn.root.classList.add("refused");
      showMessage(turn, "refusal", answer.refusal.message || answer.answer || "Refused.");
      return;
    }
    turn.outcome.append(el("p", "answer", answer.answer || ""));
    if (counts(answer.plan)) {
      const chart = countChart(answer);
      if (chart) turn.outcome.append(chart);
    }
    const rows = answer.resources || [];
    if (rows.length) turn.outcome.append(resourceTable(rows));
  }

  // ------------------------------------------------------------------ the chart

  function countChart(answer) {
    let bars;
    if (answer.plan.group_by === "region") {
      const byRegion = new Map();
      for (const row of answer.resources || []) {
        byRegion.set(row.region, (byRegion.get(row.region) || 0) + 1);
      }
      bars = [...byRegion].map(([region, count]) => ({ label: region, count, status: "ok" }));
      bars.sort((a, b) => collator.compare(a.label, b.label));
    } else {
      bars = (answer.accounts || []).map((account) => ({
        label: account.alias || account.account_id,
        count: account.count,
        status: account.status,
      }));
    }
    if (!bars.length) return null;
    const most = Math.max(1, ...bars.map((bar) => bar.count));
    const by = answer.plan.group_by === "region" ? "region" : "account";
    const caption = `How many, per ${by}`;
    const figure = el("figure", "chart");
    const list = el("ul", "bars");
    list.setAttribute("aria-label", caption);
    for (const bar of bars) {
      const fill = el("span", "fill");
      const ok = bar.status === "ok";
      fill.style.width = ok ? `${(100 * bar.count) / most}%` : "0";
      const track = el("span", "track", fill);
      track.setAttribute("aria-hidden", "true");
      const value = el("span", "value", ok ? String(bar.count) : STATUS_WORDS[bar.status]);
      const item = el("li", ok ? "bar" : "bar failed", el("span", "label", bar.label), track, value);
      item.dataset.label = bar.label;
      item.dataset.count = ok ? String(bar.count) : "";
      list.append(item);
    }
    figure.append(el("figcaption", null, caption), list);
    return figure;
  }

  // ------------------------------------------------------------------ the table

  function tagsText(tags) {
    return Object.entries(tags || {})
      .map(([key, value]) => `${key}=${value}`)
      .join(", ");
  }

  function columnsFor(rows) {
    const columns = [
      { key: "account", label: "Account", value: (r) => `${r.account_alias} (${r.account_id})` },
      { key: "region", label: "Region", value: (r) => r.region },
    ];
    if (new Set(rows.map((r) => r.resource_type)).size > 1) {
      columns.push({ key: "type", label: "Type", value: (r) => r.resource_type });
    }
    columns.push(
      { key: "id", label: "ID", value: (r) => r.id },
      { key: "name", label: "Name", value: (r) => r.name },
      { key: "state", label: "State", value: (r) => r.state },
      { key: "tags", label: "Tags", value: (r) => tagsText(r.tags), tags: true },
    );
    // What the question asked about: every key any row's details has, in order of appearance.
    const seen = new Set();
    for (const row of rows) {
      for (const key of Object.keys(row.details || {})) {
        if (seen.has(key)) continue;
        seen.add(key);
        columns.push({
          key: `details.${key}`,
          label: key.replace(/_/g, " "),
          value: (r) => (r.details ? r.details[key] : undefined),
          detail: true,
        });
      }
    }
    return columns;
  }

  function resourceTable(rows) {
    tableCount += 1;
    const columns = columnsFor(rows);
    const data = rows.map((row, index) => ({
      row,
      index,
      cells: columns.map((column) => text(column.value(row))),
    }));
    const sort = { column: -1, ascending: true };

    const wrapper = el("section", "resources");
    const filterId = `filter-${tableCount}`;
    const filterLabel = el("label", null, "Filter rows");
    filterLabel.htmlFor = filterId;
    const filter = el("input", "filter");
    filter.id = filterId;
    filter.type = "search";
    filter.autocomplete = "off";
    filter.spellcheck = false;
    const shown = el("span", "hint shown");
    shown.setAttribute("role", "status");
    const tools = el("div", "table-tools", filterLabel, filter, shown);

    const table = el("table");
    const caption = el("caption", "visually-hidden", "Resources");
    const headRow = el("tr");
    const headers = columns.map((column, position) => {
      const indicator = el("span", "sort-indicator");
      indicator.setAttribute("aria-hidden", "true");
      const button = el("button", "sort", column.label, indicator);
      button.type = "button";
      button.title = `Sort by ${column.label}`;
      button.addEventListener("click", () => {
        sort.ascending = sort.column === position ? !sort.ascending : true;
        sort.column = position;
        render();
      });
      const th = el("th", column.detail ? "detail" : null, button);
      th.scope = "col";
      th.dataset.column = column.key;
      headRow.append(th);
      return { th, indicator };
    });
    const body = el("tbody");
    table.append(caption, el("thead", null, headRow), body);
    const scroller = el("div", "scroller", table);
    scroller.tabIndex = 0; // a wide table scrolls sideways with the keyboard too
    scroller.setAttribute("role", "region");
    scroller.setAttribute("aria-label", "Resources table");
    wrapper.append(tools, scroller);

    function render() {
      const terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      let visible = data.filter((item) => {
        const haystack = item.cells.join("\u0000").toLowerCase();
        return terms.every((term) => haystack.includes(term));
      });
      if (sort.column >= 0) {
        const at = sort.column;
        const direction = sort.ascending ? 1 : -1;
        visible = [...visible].sort((a, b) => {
          const compared = collator.compare(a.cells[at], b.cells[at]);
          return compared ? direction * compared : a.index - b.index;
        });
      }
      headers.forEach(({ th, indicator }, position) => {
        const active = position === sort.column;
        th.setAttribute(
          "aria-sort",
          active ? (sort.ascending ? "ascending" : "descending") : "none",
        );
        indicator.textContent = active ? (sort.ascending ? " ▲" : " ▼") : "";
      });
      body.replaceChildren(
        ...visible.map((item) => {
          const tr = el("tr");
          tr.dataset.id = item.row.id;
          columns.forEach((column, position) => {
            const td = el("td", column.detail ? "detail" : null);
            td.dataset.column = column.key;
            if (column.tags) {
              for (const [key, value] of Object.entries(item.row.tags || {})) {
                td.append(el("span", "tag", `${key}=${value}`), " ");
              }
            } else if (column.key === "account") {
              td.append(
                el("span", "alias", item.row.account_alias || ""),
                " ",
                el("span", "sub", item.row.account_id),
              );
            } else {
              td.textContent = item.cells[position];
              if (item.cells[position].length > LONG_CELL) td.classList.add("long");
            }
            tr.append(td);
          });
          return tr;
        }),
      );
      shown.textContent =
        visible.length === data.length
          ? `${data.length} ${data.length === 1 ? "resource" : "resources"}`
          : `Showing ${visible.length} of ${data.length}`;
    }

    filter.addEventListener("input", render);
    render();
    return wrapper;
  }

  // ------------------------------------------------------------------ asking

  function setBusy(busy) {
    send.disabled = busy;
    stop.hidden = !busy;
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  async function failure(turn, response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (body && body.thread_id && !threadId) setThread(body.thread_id);
    if (body && body.answer && body.answer.refusal) {
      showAnswer(turn, body.answer);
      return;
    }
    const message = (body && body.message) || `The service answered HTTP ${response.status}.`;
    if (response.status === 401) {
      showMessage(turn, "error", `${message.replace(/\.$/, "")}. Set an access token above.`);
      auth.open = true;
      tokenInput.focus();
      return;
    }
    if (body && body.error === "thread_not_found") {
      setThread(null); // another user's, or gone: the next question starts a new one
      showMessage(turn, "error", `${message}. Ask again to start a new conversation.`);
      return;
    }
    showMessage(turn, body && body.error === "forbidden" ? "refusal" : "error", message);
  }

  async function ask(question) {
    const turn = newTurn(question);
    controller = new AbortController();
    setBusy(true);
    const payload = { prompt: question };
    if (threadId) payload.thread_id = threadId;
    let finished = false;
    try {
      const response = await fetch("/invocations", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify(payload),
        signal: controller.signal,
        cache: "no-store",
      });
      if (!response.ok) {
        await failure(turn, response);
        finished = true;
      } else if (!(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
        const answer = await response.json();
        if (answer.thread_id) setThread(answer.thread_id);
        showAnswer(turn, answer);
        finished = true;
      } else {
        for await (const { event, data } of events(response)) {
          if (event === "thread") setThread(data.thread_id);
          else if (event === "plan") showPlan(turn, data);
          else if (event === "account_started") {
            setStatus(accountLine(turn, data.account_id, data.alias), "running");
          } else if (event === "account_finished") accountFinished(turn, data);
          else if (event === "answer") showAnswer(turn, data);
          else if (event === "error") showMessage(turn, "error", data.message || "It failed.");
          else if (event === "done") finished = true;
        }
      }
      if (!finished) showMessage(turn, "error", "The connection closed before the answer.");
    } catch (error) {
      if (error.name === "AbortError") showMessage(turn, "info", "Stopped.");
      else showMessage(turn, "error", `The service could not be reached: ${error.message}`);
    } finally {
      for (const line of turn.lines.values()) {
        if (line.root.dataset.status === "waiting" || line.root.dataset.status === "running") {
          setStatus(line, "stopped");
        }
      }
      turn.root.dataset.state = "done";
      controller = null;
      setBusy(false);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || controller) return;
    input.value = "";
    ask(question);
  });

  stop.addEventListener("click", () => {
    if (controller) controller.abort();
    input.focus();
  });

  for (const example of document.querySelectorAll(".example")) {
    example.addEventListener("click", () => {
      input.value = example.textContent.trim();
      form.requestSubmit();
      input.focus();
    });
  }

  // ------------------------------------------------------------------ an earlier thread

  /** After a reload in the same tab: the conversation's earlier turns, as text. */
  async function restore(id) {
    try {
      const response = await fetch(`/threads/${encodeURIComponent(id)}`, {
        headers: headers({ Accept: "application/json" }),
        cache: "no-store",
      });
      if (!response.ok) {
        setThread(null);
        return;
      }
      const thread = await response.json();
      setThread(thread.thread_id);
      for (const turnData of thread.turns || []) {
        const turn = newTurn(turnData.question);
        turn.root.dataset.state = "done";
        if (turnData.plan && turnData.plan.summary) {
          turn.plan.textContent = `Plan: ${turnData.plan.summary}.`;
        }
        turn.outcome.append(el("p", "answer", turnData.answer || ""));
      }
    } catch {
      setThread(null);
    }
  }

  tokenInput.value = token();
  showTokenState();
  const earlier = sessionStorage.getItem(THREAD_KEY);
  if (earlier) restore(earlier);
  input.focus();
})();
