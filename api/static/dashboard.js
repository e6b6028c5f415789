// streamfold analytics dashboard. The page carries no data: everything comes from
// /v1/analytics/* with the admin token as a bearer header. The token lives in this tab's
// sessionStorage; a ?token= in the address is moved there and removed from the address.
"use strict";

const TOKEN_KEY = "streamfold.adminToken";
const MINUTE_MS = 60 * 1000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const $ = (id) => document.getElementById(id);
const charts = {};

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
const utcMinute = (ms) => iso(ms).slice(11, 16);
const utcHour = (ms) => iso(ms).slice(5, 13).replace("T", " ") + "h";
const utcStamp = (ms) => iso(ms).slice(0, 19).replace("T", " ");

// Every bucket in [startMs, endMs), zero where the API returned none (it omits empty ones).
function dense(points, startMs, endMs, stepMs, field) {
  const byTime = new Map(points.map((p) => [parseTime(p.bucket), p[field]]));
  const times = [];
  const values = [];
  for (let t = startMs; t < endMs; t += stepMs) {
    times.push(t);
    values.push(byTime.get(t) || 0);
  }
  return { times, values };
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

async function load() {
  setStatus("Loading…");
  const overall = await api("/v1/analytics/stats");
  const rejections = api("/v1/analytics/rejections", { limit: 20 });
  $("login").hidden = true;
  $("board").hidden = false;
  $("refresh").hidden = false;
  $("signout").hidden = false;

  if (!overall.totals.last_at) {
    renderRejections(await rejections);
    $("window").textContent = "no events stored yet";
    ["n-events", "n-users"].forEach((id) => { $(id).textContent = "0"; });
    setStatus("");
    return;
  }
  // Demo data may be historical: the window is the 24 h up to the newest stored event,
  // not up to now.
  const endMs = Math.floor(parseTime(overall.totals.last_at) / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  const startMs = endMs - DAY_MS;
  const range = { start: iso(startMs), end: iso(endMs) };
  const hourStart = Math.floor(startMs / HOUR_MS) * HOUR_MS;
  const hourEnd = Math.ceil(endMs / HOUR_MS) * HOUR_MS;

  const [perMinute, perHour, windowStats, rejected] = await Promise.all([
    api("/v1/analytics/timeseries", { ...range, bucket: "minute" }),
    api("/v1/analytics/timeseries", { start: iso(hourStart), end: iso(hourEnd), bucket: "hour" }),
    api("/v1/analytics/stats", range),
    rejections,
  ]);

  $("window").textContent = `${utcStamp(startMs)} – ${utcStamp(endMs)} UTC`;
  $("n-events").textContent = fmtInt(windowStats.totals.events);
  $("n-users").textContent = fmtInt(windowStats.totals.unique_users);

  const minutes = dense(perMinute, startMs, endMs, MINUTE_MS, "events");
  draw("chart-minute", "line", minutes.times.map(utcMinute), minutes.values, "events");

  const top = windowStats.items.slice(0, 10);
  draw("chart-top", "bar", top.map((s) => s.event), top.map((s) => s.events), "events");

  const hours = dense(perHour, hourStart, hourEnd, HOUR_MS, "unique_users");
  draw("chart-users", "line", hours.times.map(utcHour), hours.values, "unique users");

  renderRejections(rejected);
  setStatus(`Updated ${new Date().toLocaleTimeString()}`);
}

async function start() {
  try {
    await load();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(`Token refused: ${error.message}`);
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
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
  });
  takeTokenFromUrl();
  if (sessionStorage.getItem(TOKEN_KEY)) start();
  else showLogin();
});
