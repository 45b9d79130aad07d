// honeychat memory browser: vanilla JS over the inspector API. The token lives in sessionStorage.
"use strict";

const TOKEN_KEY = "honeychat-inspector-token";
const $ = (id) => document.getElementById(id);
let current = null;   // the selected conversation {id, platform, user_id, character}
let nextCursor = 0;
let loaded = [];      // every conversation loaded so far, shown sorted and filtered

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new Error("the inspector cannot be reached");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || `request failed (${response.status})`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function conversationPath(c, sub = "", params = {}) {
  const part = encodeURIComponent;
  const query = new URLSearchParams(params);
  if (c.kind === "space") query.set("kind", "space");
  const suffix = query.toString() ? `?${query}` : "";
  return `/api/conversations/${part(c.platform)}/${part(c.user_id)}/${part(c.character)}${sub}${suffix}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "unknown time";
}

function emptyItem(text) {
  return el("li", { class: "empty" }, text);
}

async function loadConversations(reset) {
  if (reset) { loaded = []; nextCursor = 0; }
  const page = await api(`/api/conversations?limit=50&cursor=${nextCursor}`);
  const known = new Set(loaded.map((c) => c.id));
  loaded.push(...page.items.filter((c) => !known.has(c.id)));
  // The API pages in storage order; people look for a user, so list by user, character, platform.
  loaded.sort((a, b) => a.user_id.localeCompare(b.user_id) ||
    a.character.localeCompare(b.character) || a.platform.localeCompare(b.platform));
  nextCursor = page.next_cursor;
  $("more").hidden = nextCursor === 0;
  renderConversations();
}

function renderConversations() {
  const wanted = $("filter").value.trim().toLowerCase();
  const shown = loaded.filter((c) => !wanted || c.id.toLowerCase().includes(wanted));
  const items = shown.map((c) => {
    const button = el("button", { type: "button", "data-id": c.id },
      `${c.kind === "space" ? "space " : ""}${c.user_id} · ${c.character}`, el("br"),
      el("small", {}, c.platform));
    button.setAttribute("aria-current", String(current !== null && current.id === c.id));
    button.addEventListener("click", () => select(c));
    return el("li", {}, button);
  });
  const none = loaded.length ? "No conversation matches." : "No conversations yet.";
  $("conversations").replaceChildren(...(items.length ? items : [emptyItem(none)]));
}

async function select(c) {
  current = c;
  for (const b of document.querySelectorAll("#conversations button")) {
    b.setAttribute("aria-current", String(b.dataset.id === c.id));
  }
  $("detail").hidden = false;
  const who = c.kind === "space" ? `Space ${c.user_id}` : c.user_id;
  $("conversation-title").textContent = `${who} with ${c.character} on ${c.platform}`;
  $("results").replaceChildren();
  setStatus("Loading…");
  try {
    const [recent, all, trail] = await Promise.all([
      api(conversationPath(c, "/messages", { limit: 200 })),
      api(conversationPath(c, "/summaries")),
      api(conversationPath(c, "/trail")).catch(() => ({ trails: [] })),
    ]);
    renderMessages(recent, trail.trails);
    renderTimeline(all.summaries);
    setStatus(`Showing ${c.id}`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

// "Why did it say that?": what went into a reply's prompt (its provenance trail).
function renderTrail(t) {
  const score = (x) => (x === null || x === undefined ? "–" : x.toFixed(3));
  const memory = t.memory.flatMap((m) => m.lines.map((line) =>
    el("div", { class: "trail-line" }, el("span", { class: "meta" },
      `messages ${m.window[0]}–${m.window[1]}${m.latest ? " (latest)" : ""} · ` +
      `${line.kind === "message" ? "a message" : "summary"} from ` +
      `${line.sources && line.sources.length ? line.sources.map((n) => "#" + n).join(", ") : "unknown"}` +
      ` · score ${score(line.score)} · ${line.tokens} tokens`), line.text)));
  const recent = t.recent.map((m) => `#${m.seq}`).join(", ") || "none";
  const lore = t.lorebook.map((e) => `${e.name || e.id} (${e.tokens} tokens)`).join(", ") || "none";
  const tools = (t.tools || []).map((c) =>
    el("div", { class: "trail-line" }, el("span", { class: "meta" },
      `tool ${c.name}(${c.arguments}) · step ${c.step} · ${c.seconds.toFixed(2)} s` +
      `${c.error ? " · failed" : ""}${c.source ? " · " + c.source : ""}`), c.result));
  return el("details", { class: "trail" },
    el("summary", {}, "Why did it say that?"),
    el("p", { class: "meta" }, `Memory ${t.tokens.memory} tokens · recent messages ${recent} ` +
      `(${t.tokens.recent} tokens) · lorebook ${lore} · tools ${(t.tools || []).length}`),
    ...(memory.length ? memory : [el("p", {}, "No memory lines in this prompt.")]),
    ...tools);
}

function renderMessages(recent, trails = []) {
  $("counters").textContent =
    `${recent.last_seq} messages so far, summarized through #${recent.summarized_through}.`;
  const trailOf = new Map(trails.map((t) => [t.reply_seq, t]));
  const list = recent.messages.map((msg) =>
    el("li", { class: msg.role }, el("span", { class: "meta" }, `#${msg.seq} · ${msg.speaker_id ? `${msg.speaker || "member"} (${msg.speaker_id})` : msg.role} · ${when(msg.at)}`), msg.text,
      ...(trailOf.has(msg.seq) ? [renderTrail(trailOf.get(msg.seq))] : [])));
  $("messages").replaceChildren(...(list.length ? list : [emptyItem("The buffer is empty.")]));
}

// A document may keep its window's messages after the summary's lines (summary_lines says
// where they start): the timeline shows the summary and counts the messages kept.
function renderTimeline(summaries) {
  const list = summaries.map((s) => {
    const lines = s.text.split("\n");
    const kept = s.summary_lines === null || s.summary_lines === undefined
      ? 0 : lines.length - s.summary_lines;
    const text = kept ? lines.slice(0, s.summary_lines).join("\n") : s.text;
    return el("li", {}, el("span", { class: "meta" },
      `messages ${s.first_seq}–${s.last_seq} · ${when(s.first_at)} → ${when(s.last_at)}` +
      (kept ? ` · keeps its ${kept} messages verbatim` : "")), text);
  });
  $("timeline").replaceChildren(...(list.length ? list : [emptyItem("No summaries yet.")]));
}

async function search(event) {
  event.preventDefault();
  if (!current) return;
  const q = $("query").value.trim();
  if (!q) { setStatus("Type something to search for.", true); return; }
  setStatus("Searching…");
  try {
    const found = await api(conversationPath(current, "/search", { k: 5, q }));
    const list = found.results.map((s, i) =>
      el("li", { class: "result" },
        el("span", { class: "score" }, s.score === null ? "–" : s.score.toFixed(3)),
        el("span", { class: "meta" }, `#${i + 1} · messages ${s.first_seq}–${s.last_seq}`), s.text));
    $("results").replaceChildren(...(list.length ? list : [emptyItem("No memories match.")]));
    setStatus(`${found.results.length} result(s) for “${q}”`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

function askClear() {
  if (!current) return;
  $("confirm-name").textContent = current.id;
  $("confirm").showModal();
}

async function onConfirmClose() {
  if ($("confirm").returnValue !== "confirm" || !current) return;
  try {
    await api(conversationPath(current), { method: "DELETE" });
    setStatus(`Cleared ${current.id}.`);
    await select(current);
    setStatus(`Cleared ${current.id}.`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

function askErase() {
  if (!current) return;
  $("erase-name").textContent = `${current.user_id} (${current.platform})`;
  $("erase-every-platform").checked = false;
  $("confirm-erase").showModal();
}

async function onEraseClose() {
  if ($("confirm-erase").returnValue !== "confirm" || !current) return;
  const part = encodeURIComponent;
  const every = $("erase-every-platform").checked ? "?every_platform=true" : "";
  try {
    const erased = await api(
      `/api/users/${part(current.platform)}/${part(current.user_id)}${every}`,
      { method: "DELETE" });
    current = null;
    $("detail").hidden = true;
    await loadConversations(true);
    setStatus(`Erased user ${erased.user_id}: ${erased.conversations.length} conversation(s).`);
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function connect(event) {
  if (event) event.preventDefault();
  const token = $("token").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  try {
    await loadConversations(true);
    setStatus("Connected. Pick a conversation.");
  } catch (err) {
    if (err.status === 401 && !sessionStorage.getItem(TOKEN_KEY)) {
      // Nothing pasted yet: an invitation, not an error (without INSPECTOR_TOKEN none is needed).
      setStatus("Paste the inspector's token (INSPECTOR_TOKEN) and press Connect.");
    } else {
      setStatus(err.message, true);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("token-form").addEventListener("submit", connect);
  $("search-form").addEventListener("submit", search);
  $("filter").addEventListener("input", renderConversations);
  $("more").addEventListener("click", () => loadConversations(false).catch((e) => setStatus(e.message, true)));
  $("clear").addEventListener("click", askClear);
  $("confirm").addEventListener("close", onConfirmClose);
  $("erase-user").addEventListener("click", askErase);
  $("confirm-erase").addEventListener("close", onEraseClose);
  connect();
});
