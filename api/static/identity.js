// The /identity page: sign in, pick a command ("event type"), fill a form generated from
// its body's JSON Schema (GET /api/identity/commands), send it, and watch the prospect
// list follow the read model live over the /ws/events WebSocket (token offered as the
// subprotocols ["bearer", token], never in the URL; a dropped socket resumes with
// ?last_id=). Server text is inserted as text (textContent), never as HTML.
"use strict";

const TOKEN_KEY = "streamfold.token"; // the same key as /timeline: one sign-in per tab
const RELOAD_DEBOUNCE_MS = 100;
const SEARCH_DEBOUNCE_MS = 250;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
const REASONS = {
  200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized",
  403: "Forbidden", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Content",
  429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
};

const state = {
  token: null,
  commands: [],
  lastId: null, // the last notification id seen: where a reconnect resumes
  ws: null,
  backoff: BACKOFF_MIN_MS,
  reconnectTimer: null,
  reloadTimer: null,
  searchTimer: null,
  listSeq: 0, // answers to older list requests are dropped
  selectedId: null,
  stopped: true,
};
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function claims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

class HttpError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
  const response = await fetch(path, { ...options, headers });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}

// -- forms from JSON Schema ---------------------------------------------------------------

function resolve(schema, prop) {
  // {"$ref": "#/$defs/X"} (pydantic's enums and nested models) -> the definition
  if (prop && typeof prop.$ref === "string" && prop.$ref.startsWith("#/$defs/")) {
    return { ...(schema.$defs?.[prop.$ref.slice(8)] || {}), ...prop, $ref: undefined };
  }
  return prop || {};
}

// One property of the schema as a field: its kind (enum, boolean, integer, number, json,
// text, textarea), whether it is required, and the constraints the inputs can carry.
function fieldOf(schema, name, raw) {
  const prop = resolve(schema, raw);
  let spec = prop;
  let nullable = false;
  const variants = prop.anyOf || prop.oneOf;
  if (Array.isArray(variants)) {
    const others = variants.map((v) => resolve(schema, v)).filter((v) => v.type !== "null");
    nullable = others.length < variants.length;
    spec = others.length === 1 ? others[0] : { type: "json" };
  }
  let kind = "text";
  let options = null;
  if (Array.isArray(spec.enum)) { kind = "enum"; options = spec.enum; }
  else if ("const" in spec) { kind = "enum"; options = [spec.const]; }
  else if (spec.type === "boolean") { kind = "enum"; options = [true, false]; }
  else if (spec.type === "integer" || spec.type === "number") kind = spec.type;
  else if (spec.type === "string") kind = (spec.maxLength ?? Infinity) > 300 ? "textarea" : "text";
  else kind = "json"; // arrays, objects, unions: typed as JSON
  return {
    name,
    kind,
    options,
    nullable,
    required: (schema.required || []).includes(name),
    title: prop.title || name,
    description: prop.description || spec.description || "",
    default: prop.default,
    maxLength: spec.maxLength,
    minLength: spec.minLength,
    minimum: spec.minimum ?? spec.exclusiveMinimum,
    maximum: spec.maximum ?? spec.exclusiveMaximum,
  };
}

function controlFor(field) {
  const id = `field-${field.name}`;
  const common = { id, name: field.name, dataset: { field: field.name, kind: field.kind, testid: id } };
  let control;
  if (field.kind === "enum") {
    control = el("select", common);
    control.append(el("option", { value: "", textContent: field.required ? "— choose —" : "— leave unchanged —" }));
    field.options.forEach((value, i) => {
      control.append(el("option", { value: String(i), textContent: String(value), dataset: { value: JSON.stringify(value) } }));
    });
  } else if (field.kind === "textarea" || field.kind === "json") {
    control = el("textarea", { ...common, rows: field.kind === "json" ? 2 : 3 });
    if (field.kind === "json") control.placeholder = "JSON";
  } else {
    const type = field.kind === "integer" || field.kind === "number" ? "number" : "text";
    control = el("input", { ...common, type, autocomplete: "off" });
    if (field.kind === "integer") control.step = "1";
    if (field.kind === "number") control.step = "any";
    if (field.minimum !== undefined) control.min = String(field.minimum);
    if (field.maximum !== undefined) control.max = String(field.maximum);
  }
  if (field.maxLength !== undefined && "maxLength" in control) control.maxLength = field.maxLength;
  if (field.minLength !== undefined && "minLength" in control) control.minLength = field.minLength;
  if (field.required) {
    control.required = true;
    control.setAttribute("aria-required", "true");
  }
  if (field.default !== undefined && field.default !== null && field.default !== "") {
    if ("placeholder" in control) control.placeholder = `default: ${JSON.stringify(field.default)}`;
  }
  return control;
}

function renderFields(command) {
  const fieldset = $("fields");
  fieldset.replaceChildren(el("legend", { textContent: command.name }));
  const schema = command.schema || {};
  const fields = Object.entries(schema.properties || {}).map(([name, prop]) => fieldOf(schema, name, prop));
  state.fields = fields;
  if (!fields.length) fieldset.append(el("p", { className: "muted", textContent: "No fields: the body is empty." }));
  for (const field of fields) {
    const control = controlFor(field);
    const label = el("label", { htmlFor: control.id },
      field.title,
      field.required ? el("span", { className: "req", textContent: " *", "aria-hidden": "true" }) : null,
    );
    const hint = [field.description, field.maxLength !== undefined ? `max ${field.maxLength}` : ""]
      .filter(Boolean).join(" · ");
    const row = el("div", { className: "field", dataset: { required: String(field.required) } }, label, control);
    if (hint) row.append(el("small", { className: "muted", textContent: hint }));
    fieldset.append(row);
  }
  const needsId = Boolean(command.needs_id);
  $("id-row").hidden = !needsId;
  $("target-id").required = needsId;
  $("command-route").textContent = `${command.method} ${command.path}`;
}

// The JSON body: empty optional fields are left out (absent means "unchanged").
function bodyOf() {
  const body = {};
  for (const field of state.fields) {
    const control = $(`field-${field.name}`);
    const raw = control.value;
    if (raw.trim() === "" && !(field.required && field.kind !== "enum")) continue;
    if (field.kind === "enum") {
      if (raw === "") continue;
      body[field.name] = JSON.parse(control.selectedOptions[0].dataset.value);
    } else if (field.kind === "integer" || field.kind === "number") {
      body[field.name] = Number(raw);
    } else if (field.kind === "json") {
      try {
        body[field.name] = JSON.parse(raw);
      } catch {
        throw new Error(`${field.title}: not valid JSON`);
      }
    } else {
      body[field.name] = raw;
    }
  }
  return body;
}

function selectedCommand() {
  return state.commands.find((c) => c.name === $("command").value);
}

function showOutcome(kind, status, lines) {
  const box = $("outcome");
  box.className = `outcome ${kind}`;
  box.dataset.outcome = kind;
  box.dataset.status = status === null ? "" : String(status);
  box.replaceChildren(...lines.filter(Boolean).map(([cls, text]) => el("p", { className: cls, textContent: text })));
}

async function submitCommand(event) {
  event.preventDefault();
  const command = selectedCommand();
  if (!command) return;
  let body;
  try {
    body = bodyOf();
  } catch (error) {
    showOutcome("problem", null, [["title", error.message]]);
    return;
  }
  const id = $("target-id").value.trim();
  const path = command.path.replace("{id}", encodeURIComponent(id));
  $("submit").disabled = true;
  showOutcome("pending", null, [["muted", `${command.method} ${path} …`]]);
  try {
    const response = await fetch(path, {
      method: command.method,
      headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const type = response.headers.get("content-type") || "";
    const answer = type.includes("json") ? await response.json().catch(() => null) : null;
    const head = `${response.status} ${response.statusText || REASONS[response.status] || ""}`.trim();
    if (response.ok) {
      const lines = [["title", `${command.name}: ${head}`]];
      if (response.status === 202) lines.push(["", `queued; the result will be at ${response.headers.get("Location") || "its Location"}`]);
      if (answer?.id) lines.push(["", `id: ${answer.id}`]);
      if (answer?.version !== undefined) lines.push(["", `version: ${answer.version}`]);
      if (answer?.role) lines.push(["", `role: ${answer.role}`]);
      if (answer?.status) lines.push(["", `status: ${answer.status}${answer.into ? ` into ${answer.into}` : ""}`]);
      showOutcome("ok", response.status, lines);
      if (answer?.id) $("outcome").dataset.id = answer.id;
    } else {
      const title = answer?.title || response.statusText || REASONS[response.status] || "";
      const lines = [["title", `${command.name}: ${`${response.status} ${title}`.trim()}`]];
      lines.push(["detail", answer?.detail || "no detail given"]);
      if (answer?.field) lines.push(["field", `field: ${answer.field}`]);
      for (const error of Array.isArray(answer?.errors) ? answer.errors : []) {
        const where = (error.loc || []).filter((part) => part !== "body").join(".");
        lines.push(["field", `${where || "body"}: ${error.msg || error.type || "invalid"}`]);
      }
      showOutcome("problem", response.status, lines);
      if (response.status === 401) signOut("your session has ended: sign in again");
    }
  } catch (error) {
    showOutcome("problem", null, [["title", `request failed: ${error.message}`]]);
  } finally {
    $("submit").disabled = false;
  }
}

// -- the prospect list -----------------------------------------------------------------------

function cell(text) {
  return el("td", { textContent: text === null || text === undefined || text === "" ? "—" : String(text) });
}

function renderProspects(page) {
  const rows = page.items.map((p) => {
    const row = el("tr", { tabIndex: 0, title: "use this prospect's id", dataset: { id: p.prospect_id, testid: "prospect-row", status: p.status } },
      cell(`${p.first_name} ${p.last_name}`),
      cell(p.email),
      cell(p.phone),
      cell(p.status),
      cell((p.converted || []).join(", ")),
    );
    if (p.prospect_id === state.selectedId) row.classList.add("selected");
    return row;
  });
  $("prospect-rows").replaceChildren(...rows);
  if (!rows.length) {
    $("prospect-rows").append(el("tr", {}, el("td", { colSpan: 5, className: "muted", textContent: "No prospects." })));
  }
  $("total").textContent = `(${page.items.length} of ${page.total})`;
}

async function loadProspects() {
  const seq = ++state.listSeq;
  const query = new URLSearchParams({ page_size: "50" });
  const search = $("search").value.trim();
  if (search) query.set("search", search);
  try {
    const page = await api(`/api/prospects?${query}`);
    if (seq !== state.listSeq) return;
    renderProspects(page);
    $("list-error").textContent = "";
  } catch (error) {
    if (seq !== state.listSeq) return;
    $("list-error").textContent = `prospects: ${error.message}`;
    if (error.status === 401) signOut("your session has ended: sign in again");
  }
}

function scheduleReload(delay = RELOAD_DEBOUNCE_MS) {
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(loadProspects, delay);
}

function pick(row) {
  if (!row?.dataset.id) return;
  state.selectedId = row.dataset.id;
  $("target-id").value = row.dataset.id;
  for (const other of $("prospect-rows").querySelectorAll("tr.selected")) other.classList.remove("selected");
  row.classList.add("selected");
}

// -- live notifications ----------------------------------------------------------------------

function setLive(status, text) {
  const badge = $("live");
  badge.hidden = false;
  badge.dataset.state = status;
  badge.textContent = text;
}

function onFrame(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  if (message.type === "ready") {
    state.lastId = state.lastId || message.last_id; // resuming: keep ours, replays follow
    state.backoff = BACKOFF_MIN_MS;
    setLive("connected", "live");
    scheduleReload(); // whatever changed before the subscription took hold
  } else if (message.type === "notifications") {
    let prospects = false;
    for (const item of message.items || []) {
      if (item.id) state.lastId = item.id;
      if (typeof item.subject === "string" && item.subject.startsWith("prospect/")) prospects = true;
    }
    if (prospects) scheduleReload();
  }
}

function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.stopped) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = state.lastId ? `?${new URLSearchParams({ last_id: state.lastId })}` : "";
  let ws;
  try {
    ws = new WebSocket(`${scheme}://${location.host}/ws/events${query}`, ["bearer", state.token]);
  } catch (error) {
    console.warn("live:", error);
    retry();
    return;
  }
  state.ws = ws;
  ws.addEventListener("message", onFrame);
  ws.addEventListener("close", (event) => {
    if (state.ws !== ws) return; // replaced or signed out
    state.ws = null;
    if (event.code === CLOSE_UNAUTHORIZED || event.code === CLOSE_FORBIDDEN) {
      const why = event.code === CLOSE_UNAUTHORIZED ? "not signed in" : "not allowed";
      setLive("error", `live: ${why}${event.reason ? ` (${event.reason})` : ""}`);
      $("list-error").textContent = `live updates stopped: ${event.reason || why}`;
      return;
    }
    retry();
  });
}

function retry() {
  if (state.stopped) return;
  setLive("reconnecting", "reconnecting…");
  const delay = state.backoff;
  state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
  state.reconnectTimer = setTimeout(connect, delay);
}

// -- session ---------------------------------------------------------------------------------

async function start(token) {
  state.token = token;
  state.stopped = false;
  const who = claims(token);
  state.commands = await api("/api/identity/commands");
  sessionStorage.setItem(TOKEN_KEY, token);
  const select = $("command");
  select.replaceChildren(...state.commands.map((c) => el("option", { value: c.name, textContent: c.name })));
  renderFields(state.commands[0]);
  $("who").textContent = `signed in as ${who.sub || "?"}${who.role ? ` (${who.role})` : ""}`;
  $("login").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  setLive("connecting", "connecting…");
  await loadProspects();
  connect();
}

function signOut(message = "") {
  state.stopped = true;
  clearTimeout(state.reconnectTimer);
  clearTimeout(state.reloadTimer);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close(1000);
  state.token = null;
  state.lastId = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("live").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message;
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  let response;
  let body = null;
  try {
    response = await fetch("/api/auth/token", { method: "POST", body: new URLSearchParams(form) });
    body = await response.json().catch(() => null);
  } catch (error) {
    $("login-error").textContent = `sign-in failed: ${error.message}`;
    return;
  }
  if (!response.ok || !body?.access_token) {
    $("login-error").textContent = body?.detail || "sign-in failed";
    return;
  }
  $("login-error").textContent = "";
  try {
    await start(body.access_token);
  } catch (error) {
    signOut(`sign-in failed: ${error.message}`);
  }
});

$("sign-out").addEventListener("click", () => signOut());
$("command").addEventListener("change", () => {
  const command = selectedCommand();
  if (command) renderFields(command);
  $("outcome").replaceChildren();
});
$("command-form").addEventListener("submit", submitCommand);
$("search").addEventListener("input", () => {
  clearTimeout(state.searchTimer);
  state.searchTimer = setTimeout(loadProspects, SEARCH_DEBOUNCE_MS);
});
$("prospect-rows").addEventListener("click", (event) => pick(event.target.closest("tr")));
$("prospect-rows").addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    pick(event.target.closest("tr"));
  }
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(saved).catch(() => signOut());
