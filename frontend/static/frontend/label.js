// The labelling page: keyboard first, everything through the workbench API.
// Sample text is only ever set with textContent, so markup in it stays inert.

const config = JSON.parse(document.getElementById("workbench-config").textContent);
const $ = (id) => document.getElementById(id);
const DIGIT_WAIT_MS = 450;

const state = {
  view: null,
  labels: { prompt: null, response: null },
  categories: new Set(),
  started: performance.now(),
  digits: "",
  digitTimer: null,
  busy: false,
  labelsBefore: null, // the "My labels" list's next page starts below this assignment id
};

async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrfToken },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = data.detail || Object.entries(data).map(([field, errors]) => `${field}: ${[].concat(errors).join(" ")}`).join("; ");
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return data;
}

// Success and error messages look different (and errors are announced as alerts).
function say(text, kind = "info") {
  const message = $("message");
  message.textContent = text || "";
  message.className = `message ${text ? kind : ""}`;
  message.setAttribute("role", kind === "error" ? "alert" : "status");
}

function renderTurns(view) {
  const box = $("turns");
  box.replaceChildren();
  for (const turn of view.sample.turns) {
    const node = document.createElement("article");
    node.className = `turn ${turn.role}`;
    const role = document.createElement("div");
    role.className = "role";
    role.textContent = turn.role === "assistant" ? "response (assistant)" : turn.role;
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = turn.content;
    node.append(role, text);
    box.append(node);
  }
  const warned = view.content_warning.length > 0;
  box.classList.toggle("blurred", warned);
  $("warning").hidden = !warned;
  $("warning-reasons").textContent = view.content_warning.join(", ");
}

function renderCategories(view) {
  const list = $("categories");
  list.replaceChildren();
  view.categories.forEach((category, index) => {
    const item = document.createElement("li");
    item.className = category.kind;
    const label = document.createElement("label");
    label.title = category.definition;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.dataset.code = category.code;
    box.tabIndex = -1;
    box.checked = state.categories.has(category.code);
    box.addEventListener("change", () => toggleCategory(category.code));
    const number = document.createElement("span");
    number.className = "num";
    number.textContent = String(index + 1);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${category.code} ${category.name}`;
    label.append(box, number, name);
    item.append(label);
    list.append(item);
  });
}

function renderLabels() {
  for (const button of document.querySelectorAll("button.label")) {
    button.setAttribute("aria-pressed", String(state.labels[button.dataset.target] === button.dataset.value));
  }
  for (const box of document.querySelectorAll("#categories input")) {
    box.checked = state.categories.has(box.dataset.code);
  }
}

function renderProgress(progress) {
  if (!progress) return;
  const cap = progress.daily_cap;
  const whole = progress.submitted + progress.remaining;
  const share = whole ? Math.round((100 * progress.submitted) / whole) : 100;
  $("progress-bar").style.width = `${share}%`;
  document.querySelector(".progress").setAttribute("aria-valuenow", String(share));
  const ofCap = cap ? ` of ${cap}` : "";
  const left = `${progress.remaining}${progress.remaining_more ? "+" : ""}`;
  $("progress-text").textContent = `${left} left · ${progress.submitted_today}${ofCap} today · ${progress.submitted} in all`;
}

function renderGuide(view) {
  $("guidelines-text").textContent = view.project.guidelines || "No guidelines yet.";
  const list = $("definitions");
  if (list.dataset.project === String(view.project.id)) return; // the taxonomy of a project never changes
  list.dataset.project = String(view.project.id);
  list.replaceChildren();
  view.categories.forEach((category, index) => {
    const term = document.createElement("dt");
    term.textContent = `${index + 1} · ${category.code} ${category.name}`;
    const definition = document.createElement("dd");
    definition.textContent = category.definition || "(no definition)";
    list.append(term, definition);
  });
}

function render(view) {
  state.view = view;
  const own = view.annotation;
  state.labels = { prompt: own ? own.prompt_label : null, response: own ? own.response_label : null };
  state.categories = new Set(own ? own.categories : []);
  $("other-risks").value = own ? own.other_risks : "";
  $("comment").value = own ? own.comment : "";
  $("response-labels").hidden = !view.sample.has_response;
  $("form").hidden = false;
  $("no-work").hidden = true;
  const revising = view.assignment.status === "submitted";
  $("revising").hidden = !revising;
  $("revising").textContent = revising
    ? `Revising your label of ${view.sample.uid}: Enter saves it and goes on, n leaves it as it is.`
    : "";
  renderTurns(view);
  renderCategories(view);
  renderGuide(view);
  renderLabels();
  renderProgress(view.progress);
  state.started = performance.now();
  say("");
}

function showNoWork(reason) {
  state.view = null;
  $("turns").replaceChildren();
  $("warning").hidden = true;
  $("revising").hidden = true;
  $("form").hidden = true;
  $("no-work").hidden = false;
  $("no-work").textContent = reason;
}

async function loadNext() {
  showNext(await api(`/api/projects/${config.projectId}/next/`, {}));
}

function showNext(data) {
  if (data.no_work) {
    showNoWork(data.no_work);
    renderProgress(data.progress);
  } else {
    render(data);
    scheduleBreakReminder(data.break_reminder_minutes);
  }
}

function setLabel(target, value) {
  if (target === "response" && !state.view.sample.has_response) return;
  state.labels[target] = value;
  renderLabels();
}

function toggleCategory(code) {
  if (state.categories.has(code)) state.categories.delete(code);
  else state.categories.add(code);
  renderLabels();
}

function flushDigits() {
  clearTimeout(state.digitTimer);
  const number = Number(state.digits);
  state.digits = "";
  const category = state.view && state.view.categories[number - 1];
  if (category) toggleCategory(category.code);
  else if (number) say(`There is no category ${number}.`);
}

function typeDigit(digit) {
  clearTimeout(state.digitTimer);
  state.digits += digit;
  const count = state.view.categories.length;
  // Flush at once when no longer number could start with these digits.
  if (Number(state.digits) * 10 > count) flushDigits();
  else state.digitTimer = setTimeout(flushDigits, DIGIT_WAIT_MS);
}

async function act(work, needsItem = true) {
  if (state.busy || (needsItem && !state.view)) return;
  state.busy = true;
  try {
    await work();
  } catch (error) {
    say(error.message, "error");
  } finally {
    state.busy = false;
  }
}

function submit() {
  if (state.digits) flushDigits();
  return act(async () => {
    const { id, status } = state.view.assignment;
    const uid = state.view.sample.uid;
    const answer = await api(`/api/assignments/${id}/submit/?then=next`, {
      prompt_label: state.labels.prompt || "",
      response_label: state.view.sample.has_response ? state.labels.response || "" : null,
      categories: [...state.categories],
      other_risks: $("other-risks").value,
      comment: $("comment").value,
      time_spent_ms: Math.round(performance.now() - state.started),
    });
    // The next item comes without the project's categories, which never change: the page keeps them.
    showNext(answer.next.assignment ? { ...answer.next, categories: state.view.categories } : answer.next);
    say(status === "submitted" ? `Saved your revision of ${uid}.` : `Saved ${uid}.`, "ok");
  });
}

function askReason(question) {
  const reason = window.prompt(question);
  return reason && reason.trim() ? reason.trim() : null;
}

function skip() {
  return act(async () => {
    const reason = askReason("Why skip this item?");
    if (!reason) return;
    await api(`/api/assignments/${state.view.assignment.id}/skip/`, { reason });
    await loadNext();
  });
}

function flag() {
  return act(async () => {
    const reason = askReason("What should a reviewer look at?");
    if (!reason) return;
    await api(`/api/assignments/${state.view.assignment.id}/flag/`, { reason });
    say("Flagged for review.", "ok");
  });
}

function myLabels(before) {
  const query = before ? `?before=${before}` : "";
  return api(`/api/projects/${config.projectId}/my-labels/${query}`);
}

async function revise(assignmentId) {
  render(await api(`/api/assignments/${assignmentId}/`));
}

// "b": your label before the one shown (the newest when you are on a new item), as far back as you like.
function back() {
  return act(async () => {
    const shown = state.view && state.view.assignment.status === "submitted" ? state.view.assignment.id : null;
    const [earlier] = await myLabels(shown);
    if (!earlier) {
      say("No earlier label of yours to revise (final samples cannot change).", "error");
      return;
    }
    await revise(earlier.id);
  }, false);
}

function leaveRevision() {
  if (!state.view || state.view.assignment.status !== "submitted") return;
  return act(async () => {
    await loadNext();
    say("Left the revision unchanged.");
  }, false);
}

function labelEntry(row) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  const label = document.createElement("b");
  label.textContent = row.prompt_label || "–";
  const uid = document.createElement("span");
  uid.className = "uid";
  uid.textContent = row.uid;
  const prompt = document.createElement("span");
  prompt.className = "excerpt";
  prompt.textContent = row.prompt;
  button.append(label, uid, prompt);
  button.addEventListener("click", () => {
    $("my-labels").close();
    act(() => revise(row.id), false);
  });
  item.append(button);
  return item;
}

async function showMyLabels(more = false) {
  const list = $("my-labels-list");
  const rows = await myLabels(more ? state.labelsBefore : null);
  if (!more) list.replaceChildren();
  rows.forEach((row) => list.append(labelEntry(row)));
  if (!more && !rows.length) {
    const empty = document.createElement("li");
    empty.textContent = "Nothing to revise: no label of yours is waiting on a sample that is not final.";
    list.append(empty);
  }
  state.labelsBefore = rows.length ? rows[rows.length - 1].id : state.labelsBefore;
  $("more-labels").hidden = rows.length < 20;
  const dialog = $("my-labels");
  if (!dialog.open) dialog.showModal();
  const first = list.querySelector("button");
  if (first && !more) first.focus();
}

function reveal() {
  $("turns").classList.remove("blurred");
  $("warning").hidden = true;
}

function toggleGuide() {
  const hidden = !$("guide-body").hidden;
  $("guide-body").hidden = hidden;
  $("workbench").classList.toggle("guide-hidden", hidden);
  $("toggle-guidelines").firstChild.textContent = hidden ? "Show guide " : "Hide guide ";
  localStorage.setItem("aegis.guideHidden", hidden ? "1" : "");
}

function toggleHelp() {
  const help = $("help");
  if (help.open) help.close();
  else help.showModal();
}

let breakTimer = null;
function scheduleBreakReminder(minutes) {
  if (!minutes || breakTimer) return;
  breakTimer = setTimeout(() => {
    $("break-reminder").hidden = false;
  }, minutes * 60 * 1000);
}

const KEYS = {
  s: () => setLabel("prompt", "safe"),
  u: () => setLabel("prompt", "unsafe"),
  c: () => setLabel("prompt", "needs_caution"),
  S: () => setLabel("response", "safe"),
  U: () => setLabel("response", "unsafe"),
  C: () => setLabel("response", "needs_caution"),
  Enter: submit,
  k: skip,
  f: flag,
  r: reveal,
  b: back,
  l: () => act(() => showMyLabels(), false),
  n: leaveRevision,
  g: toggleGuide,
  "?": toggleHelp,
  o: () => $("other-risks").focus(),
  m: () => $("comment").focus(),
};

document.addEventListener("keydown", (event) => {
  const target = event.target;
  const typing = target instanceof HTMLTextAreaElement || (target instanceof HTMLInputElement && target.type !== "checkbox");
  if (typing) {
    if (event.key === "Escape") target.blur();
    else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey || $("help").open || $("my-labels").open) return;
  if (!state.view && !["?", "b", "l", "g"].includes(event.key)) return;
  if (/^[0-9]$/.test(event.key)) {
    event.preventDefault();
    typeDigit(event.key);
    return;
  }
  const action = KEYS[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
});

for (const button of document.querySelectorAll("button.label")) {
  button.addEventListener("click", () => setLabel(button.dataset.target, button.dataset.value));
}
$("submit").addEventListener("click", submit);
$("skip").addEventListener("click", skip);
$("flag").addEventListener("click", flag);
$("reveal").addEventListener("click", reveal);
$("toggle-help").addEventListener("click", toggleHelp);
$("toggle-guidelines").addEventListener("click", toggleGuide);
$("open-my-labels").addEventListener("click", KEYS.l);
$("more-labels").addEventListener("click", () => act(() => showMyLabels(true), false));
if (localStorage.getItem("aegis.guideHidden")) toggleGuide();
$("dismiss-break").addEventListener("click", () => ($("break-reminder").hidden = true));

loadNext().catch((error) => say(error.message, "error"));
