// The /timeline page: sign in, read the home feed, post, and receive new chirps live.
// The live feed is read with fetch() rather than EventSource, because EventSource cannot
// send the Authorization header; the Server-Sent Events framing is parsed here, and a
// dropped connection resumes with Last-Event-ID. Text is inserted as text, never as HTML.
"use strict";

const state = { token: null, userId: null, cursor: null, seen: new Set(), lastEventId: null };
const $ = (id) => document.getElementById(id);

function subjectOf(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload)).sub;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
  const response = await fetch(path, { ...options, headers });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.detail || `HTTP ${response.status}`);
  return body;
}

function render(item, { prepend = false, fresh = false } = {}) {
  if (state.seen.has(item.id)) return;
  state.seen.add(item.id);
  const li = document.createElement("li");
  li.dataset.id = item.id;
  if (fresh) li.className = "new";
  const who = document.createElement("div");
  const name = document.createElement("span");
  name.className = "author";
  name.textContent = item.author.display_name || item.author.username;
  const meta = document.createElement("span");
  meta.className = "muted";
  meta.textContent = ` @${item.author.username} · ${new Date(item.at_ms).toLocaleString()}`;
  who.append(name, meta);
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = item.text;
  li.append(who, text);
  const feed = $("feed");
  if (prepend) feed.prepend(li); else feed.append(li);
}

async function loadPage() {
  const query = new URLSearchParams({ limit: "20" });
  if (state.cursor) query.set("cursor", state.cursor);
  const page = await api(`/api/users/${state.userId}/feed?${query}`);
  page.items.forEach((item) => render(item));
  state.cursor = page.next_cursor;
  $("more").hidden = !state.cursor;
}

function dispatch(block) {
  const fields = {};
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const name = at < 0 ? line : line.slice(0, at);
    fields[name] = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
  }
  if (fields.id) state.lastEventId = fields.id;
  if (fields.event === "ready") $("live").hidden = false;
  if (fields.event === "chirp") render(JSON.parse(fields.data), { prepend: true, fresh: true });
}

async function listen() {
  for (;;) {
    try {
      const headers = { Authorization: `Bearer ${state.token}` };
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const response = await fetch(`/api/users/${state.userId}/feed/stream`, { headers });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      console.warn("live feed:", error);
    }
    $("live").hidden = true;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function start(token) {
  state.token = token;
  state.userId = subjectOf(token);
  sessionStorage.setItem("streamfold.token", token);
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = `signed in as ${state.userId}`;
  await loadPage();
  listen();
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch("/api/auth/token", { method: "POST", body: new URLSearchParams(form) });
  const body = await response.json();
  if (!response.ok) { $("login-error").textContent = body.detail || "sign-in failed"; return; }
  $("login-error").textContent = "";
  await start(body.access_token);
});

$("text").addEventListener("input", () => {
  $("count").textContent = `${[...$("text").value.normalize("NFC")].length} / 280`;
});

$("compose").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("/api/chirps", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: $("text").value }),
    });
    $("text").value = "";
    $("compose-error").textContent = "";
  } catch (error) {
    $("compose-error").textContent = error.message;
  }
});

$("more").addEventListener("click", () => loadPage());

const saved = sessionStorage.getItem("streamfold.token");
if (saved) start(saved).catch(() => sessionStorage.removeItem("streamfold.token"));
