// streamfold analytics dashboard. The page carries no data: everything comes from
// /v1/analytics/* with a bearer token: a partner's read token (rt_live_..., its own
// systems) or an admin's JWT (every system, and the read models' versions). The token lives
// in this tab's sessionStorage; a ?token= in the address is moved there and removed from
// the address.
//
// Range: the presets end at the newest stored event, not at now (the demo web logs are
// from 1995 and 2015; on a live system the two are the same); "All data" (the default)
// spans the oldest to the newest event, from GET /v1/analytics/bounds. "Custom" reads two
// datetime inputs as UTC. Each chart picks the finest bucket that keeps it readable.
"use strict";

const TOKEN_KEY = "streamfold.adminToken";
const MINUTE_MS = 60 * 1000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const BUCKETS = ["minute", "hour", "day", "week"]; // finest first; the API's `bucket`
const BUCKET_MS = { minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS, week: 7 * DAY_MS };
// The API's weeks start on Monday (ClickHouse toStartOfWeek(t, 1)); 1970-01-01, where the
// other buckets are aligned, was a Thursday: the first Monday is 4 days later.
const BUCKET_OFFSET_MS = { week: 4 * DAY_MS };
const PRESETS = {
  hour: { ms: HOUR_MS, label: "last hour of data" },
  day: { ms: DAY_MS, label: "last 24 h of data" },
  week: { ms: 7 * DAY_MS, label: "last 7 days of data" },
  month: { ms: 30 * DAY_MS, label: "last 30 days of data" },
};
// Points per chart: the events chart may be dense, the users chart stays coarse (a
// distinct count per minute is mostly noise).
const EVENT_POINTS = 1500;
const USER_POINTS = 200;
const $ = (id) => document.getElementById(id);
const charts = {};
let shownRange = null; // the last range drawn, to prefill the custom inputs

function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");
    // Out of the address bar and history, so it is not bookmarked or shared by accident.
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(key, value);
  }
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` },
  });
  if (!response.ok) {
    // Errors are RFC 9457 problem+json; fall back to the status line.
    let detail = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      detail = problem.detail || problem.title || detail;
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return response.json();
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", Boolean(isError));
}

function showLogin(message) {
  $("board").hidden = true;
  $("range").hidden = true;
  $("refresh").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  $("window").textContent = "";
  setStatus(message || "", Boolean(message));
  $("token").focus();
}

const fmtInt = (n) => Number(n).toLocaleString();
// The API sends microseconds; ECMAScript's date format has milliseconds only, and not
// every engine accepts more digits.
const parseTime = (text) => Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
const iso = (ms) => new Date(ms).toISOString();
const utcStamp = (ms) => iso(ms).slice(0, 19).replace("T", " ");
const utcMinuteStamp = (ms) => iso(ms).slice(0, 16).replace("T", " ");
const AXIS_LABEL = {
  minute: (ms) => iso(ms).slice(5, 16).replace("T", " "),
  hour: (ms) => `${iso(ms).slice(5, 13).replace("T", " ")}h`,
  day: (ms) => iso(ms).slice(0, 10),
  week: (ms) => iso(ms).slice(0, 10),
};

function floorTo(ms, bucket) {
  const size = BUCKET_MS[bucket];
  const offset = BUCKET_OFFSET_MS[bucket] || 0;
  return Math.floor((ms - offset) / size) * size + offset;
}

function ceilTo(ms, bucket) {
  const floor = floorTo(ms, bucket);
  return floor === ms ? ms : floor + BUCKET_MS[bucket];
}

// The finest bucket that draws [startMs, endMs) in at most maxPoints points, else weeks.
function pickBucket(startMs, endMs, maxPoints) {
  const fits = (b) => (ceilTo(endMs, b) - floorTo(startMs, b)) / BUCKET_MS[b] <= maxPoints;
  return BUCKETS.find(fits) || "week";
}

// The chosen range as { startMs, endMs, label }, half-open, minute-aligned for presets.
// Throws RangeError for a custom range that is empty or not filled in.
function chosenRange(bounds) {
  const preset = $("preset").value;
  const newestEnd = floorTo(parseTime(bounds.last_at), "minute") + MINUTE_MS;
  if (preset === "custom") {
    // datetime-local has no zone: "Z" makes it UTC, as the labels say.
    const startMs = Date.parse(`${$("from").value}Z`);
    const endMs = Date.parse(`${$("to").value}Z`);
    if (!(startMs < endMs)) throw new RangeError("Custom range: From must be before To.");
    return { startMs, endMs, label: `${utcMinuteStamp(startMs)} – ${utcMinuteStamp(endMs)} UTC` };
  }
  if (preset === "all") {
    const startMs = floorTo(parseTime(bounds.first_at), "minute");
    return { startMs, endMs: newestEnd, label: "all data" };
  }
  const { ms, label } = PRESETS[preset];
  return { startMs: newestEnd - ms, endMs: newestEnd, label };
}

// One time series over [startMs, endMs) widened to whole buckets, zero-filled.
async function series(range, bucket) {
  const startMs = floorTo(range.startMs, bucket);
  const endMs = ceilTo(range.endMs, bucket);
  const points = await api("/v1/analytics/timeseries", {
    start: iso(startMs), end: iso(endMs), bucket,
  });
  return { bucket, startMs, endMs, points };
}

// Every bucket in [startMs, endMs), zero where the API returned none (it omits empty ones).
function dense(s, field) {
  const byTime = new Map(s.points.map((p) => [parseTime(p.bucket), p[field]]));
  const times = [];
  const values = [];
  for (let t = s.startMs; t < s.endMs; t += BUCKET_MS[s.bucket]) {
    times.push(t);
    values.push(byTime.get(t) || 0);
  }
  return { labels: times.map(AXIS_LABEL[s.bucket]), values };
}

function draw(id, type, labels, data, label) {
  if (charts[id]) {
    charts[id].data.labels = labels;
    charts[id].data.datasets[0].data = data;
    charts[id].update();
    return;
  }
  charts[id] = new window.Chart($(id), {
    type,
    data: {
      labels,
      datasets: [{
        label, data, borderColor: "#2563eb", backgroundColor: "rgba(37, 99, 235, 0.35)",
        borderWidth: type === "line" ? 1.5 : 0, pointRadius: 0, fill: type === "line", tension: 0.2,
      }],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      indexAxis: type === "bar" ? "y" : "x",
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: false } },
      scales: type === "line"
        ? { x: { ticks: { maxTicksLimit: 12, autoSkip: true } }, y: { beginAtZero: true } }
        : { x: { beginAtZero: true } },
    },
  });
}

function setRangeLabels(text) {
  for (const el of document.querySelectorAll(".range-label")) el.textContent = text;
}

function renderRejections(page) {
  $("n-rejected").textContent = fmtInt(page.total);
  const body = $("rejections");
  body.replaceChildren();
  for (const r of page.items) {
    const row = document.createElement("tr");
    const cells = [
      utcStamp(parseTime(r.received_at)), r.system_id, r.event, r.message_id, r.reasons.join("\n"),
    ];
    cells.forEach((text, i) => {
      const cell = document.createElement("td");
      cell.textContent = text; // never innerHTML: these strings come from senders
      if (i === 4) cell.className = "reasons";
      row.appendChild(cell);
    });
    body.appendChild(row);
  }
  if (page.items.length === 0) {
    const row = document.createElement("tr");
    const cell = document.createElement("td");
    cell.colSpan = 5;
    cell.className = "muted";
    cell.textContent = "No rejected events.";
    row.appendChild(cell);
    body.appendChild(row);
  }
}

// The read models' versions (GET /api/admin/projections): what `streamfold projections
// list` shows.
function renderProjections(answer) {
  const body = $("projections");
  body.replaceChildren();
  for (const p of answer.projections) {
    const row = document.createElement("tr");
    const cells = [
      p.name, String(p.version), p.state, p.topics.join(", "),
      p.lag === null ? "–" : fmtInt(p.lag),
      p.events_per_s === null ? "–" : fmtInt(Math.round(p.events_per_s)),
      p.dead_lettered === null ? "–" : fmtInt(p.dead_lettered),
      p.last_error || "",
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text; // never innerHTML
      row.appendChild(cell);
    }
    body.appendChild(row);
  }
}

async function load() {
  setStatus("Loading…");
  const bounds = await api("/v1/analytics/bounds");
  const rejections = api("/v1/analytics/rejections", { limit: 20 });
  // the read models' versions are an operator's view: a partner's read token has none
  const partner = (sessionStorage.getItem(TOKEN_KEY) || "").startsWith("rt_live_");
  $("projections-card").hidden = partner;
  if (!partner) {
    api("/api/admin/projections").then(renderProjections).catch((error) => {
      setStatus(`Projections: ${error.message}`, true);
    });
  }
  $("login").hidden = true;
  $("board").hidden = false;
  $("range").hidden = false;
  $("refresh").hidden = false;
  $("signout").hidden = false;

  if (bounds.events === 0) {
    renderRejections(await rejections);
    $("window").textContent = "no events stored yet";
    setRangeLabels("no data");
    ["n-events", "n-users"].forEach((id) => { $(id).textContent = "0"; });
    setStatus("");
    return;
  }
  const range = chosenRange(bounds);
  const eventsBucket = pickBucket(range.startMs, range.endMs, EVENT_POINTS);
  const usersBucket = pickBucket(range.startMs, range.endMs, USER_POINTS);
  const eventsSeries = series(range, eventsBucket);
  const [perEvents, perUsers, rangeStats, rejected] = await Promise.all([
    eventsSeries,
    usersBucket === eventsBucket ? eventsSeries : series(range, usersBucket),
    api("/v1/analytics/stats", { start: iso(range.startMs), end: iso(range.endMs) }),
    rejections,
  ]);
  shownRange = range;

  $("window").textContent = `${utcStamp(range.startMs)} – ${utcStamp(range.endMs)} UTC`;
  setRangeLabels(range.label);
  $("n-events").textContent = fmtInt(rangeStats.totals.events);
  $("n-users").textContent = fmtInt(rangeStats.totals.unique_users);

  $("events-bucket").textContent = eventsBucket;
  const events = dense(perEvents, "events");
  draw("chart-minute", "line", events.labels, events.values, "events");

  const top = rangeStats.items.slice(0, 10);
  draw("chart-top", "bar", top.map((s) => s.event), top.map((s) => s.events), "events");

  $("users-bucket").textContent = usersBucket;
  const users = dense(perUsers, "unique_users");
  draw("chart-users", "line", users.labels, users.values, "unique users");

  renderRejections(rejected);
  setStatus(`Updated ${new Date().toLocaleTimeString()}`);
}

// Custom inputs start from what is on screen, so a range is narrowed rather than typed.
function showCustom() {
  const custom = $("preset").value === "custom";
  $("custom").hidden = !custom;
  if (custom && shownRange && !$("from").value && !$("to").value) {
    $("from").value = iso(shownRange.startMs).slice(0, 16);
    $("to").value = iso(shownRange.endMs).slice(0, 16);
  }
}

async function start() {
  try {
    await load();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(`Token refused: ${error.message}`);
    } else if (error instanceof RangeError) {
      setStatus(error.message, true);
    } else {
      setStatus(`Could not load: ${error.message}`, true);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("refresh").addEventListener("click", start);
  $("preset").addEventListener("change", () => {
    showCustom();
    if ($("preset").value !== "custom") start();
  });
  $("range").addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
  });
  takeTokenFromUrl();
  if (sessionStorage.getItem(TOKEN_KEY)) start();
  else showLogin();
});
