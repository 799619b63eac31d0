// Ringpilot's chat page: fetch() against the gateway's API and one SSE stream per conversation.
// EventSource cannot send an Authorization header, so the stream is read with fetch() and parsed here;
// it reconnects with Last-Event-ID and so misses nothing. Model and tool text is set as textContent only.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "ringpilot-token";
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem(TOKEN_KEY) || "", current: null, namespace: null,
  lastEventId: null, stream: null, rendered: new Set(), pendingId: null };

function setText(id, text) { $(id).textContent = text; }
function showError(text) { setText("error", text || ""); }

async function api(method, path, body, extraHeaders) {
  const headers = Object.assign({ Authorization: "Bearer " + state.token }, extraHeaders || {});
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = data.error || {};
    throw new Error(response.status + " " + (err.code || "") + ": " + (err.message || "request failed")
      + (err.field ? " (" + err.field + ")" : ""));
  }
  return data;
}

function addMessage(role, text, key) {
  if (key && state.rendered.has(key)) return;
  if (key) state.rendered.add(key);
  const item = document.createElement("li");
  item.className = role;
  item.textContent = text;
  $("transcript").appendChild(item);
  item.scrollIntoView({ block: "end" });
}

function showPending(pending) {
  state.pendingId = pending ? pending.pendingId : null;
  $("pending").hidden = !pending;
  setText("pending-summary", pending ? pending.summary : "");
}

function addResource(ref) {
  const key = ref.kind + "/" + ref.namespace + "/" + ref.name;
  if (state.rendered.has("resource:" + key)) return;
  state.rendered.add("resource:" + key);
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = "#" + key;
  link.className = "resource";
  link.dataset.kind = ref.kind;
  link.textContent = ref.kind + " " + ref.namespace + "/" + ref.name;
  link.addEventListener("click", () => setText("resource-hint",
    "kubectl get " + ref.kind.toLowerCase() + " " + ref.name + " -n " + ref.namespace + " -o yaml"));
  item.appendChild(link);
  $("resources").appendChild(item);
}

function renderView(view) {
  $("transcript").replaceChildren();
  $("resources").replaceChildren();
  state.rendered = new Set();
  setText("title", view.name + " (" + view.user + ")");
  setText("correlation", view.correlationId || "-");
  setText("status", view.state);
  for (const m of view.messages) {
    if (m.role === "tool") continue;
    const turn = (m.messageId || "").split("~")[0];
    addMessage(m.role, m.text, m.role === "user" ? "user:" + turn : "assistant:" + turn);
  }
  for (const ref of view.resources) addResource(ref);
  showPending(view.pending);
}

const handlers = {
  "snapshot": renderView,
  "turn.started": () => setText("status", "Thinking…"),
  "tool.started": (d) => setText("status", "Running " + d.tool + "…"),
  "tool.finished": (d) => setText("status", d.tool + ": " + d.outcome),
  "confirmation.required": (d) => showPending(d),
  "resource.created": addResource,
  "assistant.message": (d) => addMessage("assistant", d.text, "assistant:" + d.messageId),
  "turn.completed": () => { setText("status", "Ready"); loadList().catch((e) => showError(e.message)); },
  "turn.failed": (d) => setText("status", "Failed: " + d.reason + (d.retryAt ? " (retrying at " + d.retryAt + ")" : "")),
};

function dispatch(frame) {
  if (frame.id !== undefined) state.lastEventId = frame.id;
  if (frame.data === undefined) return;
  const handler = handlers[frame.event || "message"];
  if (handler) handler(JSON.parse(frame.data));
}

// A small text/event-stream parser: fields per line, an empty line ends an event.
function parseLines(buffer, frame) {
  const lines = buffer.split(/\r\n|\r|\n/);
  const rest = lines.pop();
  for (const line of lines) {
    if (line === "") { dispatch(frame.value); frame.value = {}; continue; }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") frame.value.data = frame.value.data === undefined ? value : frame.value.data + "\n" + value;
    else if (field === "event") frame.value.event = value;
    else if (field === "id") frame.value.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) state.retryMs = Number(value);
  }
  return rest;
}

async function openStream(name, namespace) {
  const mine = new AbortController();
  if (state.stream) state.stream.abort();
  state.stream = mine;
  while (!mine.signal.aborted && state.current === name) {
    const headers = { Authorization: "Bearer " + state.token, Accept: "text/event-stream" };
    if (state.lastEventId !== null) headers["Last-Event-ID"] = state.lastEventId;
    try {
      const url = API + "/conversations/" + encodeURIComponent(name) + "/events?namespace=" + encodeURIComponent(namespace);
      const response = await fetch(url, { headers, signal: mine.signal });
      if (!response.ok) { showError("stream: HTTP " + response.status); if (response.status < 500) return; }
      else {
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        const frame = { value: {} };
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = parseLines(buffer + value, frame);
        }
      }
    } catch (error) {
      if (mine.signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, state.retryMs || 3000));
  }
}

async function loadList() {
  const page = await api("GET", "/conversations?limit=50");
  const list = $("conversations");
  list.replaceChildren();
  for (const item of page.items) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = item.title + " · " + item.state;
    button.dataset.name = item.name;
    if (item.name === state.current) button.className = "current";
    button.addEventListener("click", () => select(item.name, item.namespace));
    li.appendChild(button);
    list.appendChild(li);
  }
}

async function select(name, namespace) {
  state.current = name;
  state.namespace = namespace;
  state.lastEventId = null;  // the stream opens with a snapshot of the conversation
  showError("");
  openStream(name, namespace);
  loadList().catch((e) => showError(e.message));
}

async function send(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  const id = "m-" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  try {
    if (!state.current) {
      const made = await api("POST", "/conversations", { text, id });
      $("text").value = "";
      state.current = made.name;
      state.namespace = made.namespace;
      state.lastEventId = "0";  // a new conversation: replay everything from its first event
      $("transcript").replaceChildren();
      $("resources").replaceChildren();
      state.rendered = new Set();
      setText("title", made.name + " (" + made.user + ")");
      setText("correlation", made.correlationId);
      addMessage("user", text, "user:" + id);
      openStream(made.name, made.namespace);
      loadList().catch((e) => showError(e.message));
      return;
    }
    addMessage("user", text, "user:" + id);
    $("text").value = "";
    await api("POST", "/conversations/" + encodeURIComponent(state.current) + "/messages?namespace="
      + encodeURIComponent(state.namespace), { id, text });
  } catch (error) { showError(error.message); }
}

async function decide(decision) {
  if (!state.current || !state.pendingId) return;
  try {
    await api("POST", "/conversations/" + encodeURIComponent(state.current) + "/confirmations?namespace="
      + encodeURIComponent(state.namespace), { pendingId: state.pendingId, decision });
    addMessage("user", decision === "confirm" ? "yes" : "no");
    showPending(null);
  } catch (error) { showError(error.message); }
}

async function stop() {
  if (!state.current) return;
  try {
    await api("POST", "/conversations/" + encodeURIComponent(state.current) + "/cancel?namespace="
      + encodeURIComponent(state.namespace));
  } catch (error) { showError(error.message); }
}

async function signIn(event) {
  if (event) event.preventDefault();
  const typed = $("token").value.trim();
  if (typed) { state.token = typed; sessionStorage.setItem(TOKEN_KEY, typed); $("token").value = ""; }
  if (!state.token) return;
  try {
    const me = await api("GET", "/whoami");
    setText("whoami", me.user + " · " + me.roles.join(", "));
    showError("");
    await loadList();
  } catch (error) { setText("whoami", ""); showError(error.message); }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = "";
  state.current = null;
  if (state.stream) state.stream.abort();
  setText("whoami", "");
  $("conversations").replaceChildren();
  $("transcript").replaceChildren();
}

function newConversation() {
  if (state.stream) state.stream.abort();
  state.current = null;
  state.lastEventId = null;
  $("transcript").replaceChildren();
  $("resources").replaceChildren();
  showPending(null);
  setText("title", "New conversation");
  setText("correlation", "-");
  $("text").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("composer").addEventListener("submit", send);
  $("confirm").addEventListener("click", () => decide("confirm"));
  $("decline").addEventListener("click", () => decide("decline"));
  $("stop").addEventListener("click", stop);
  $("new").addEventListener("click", newConversation);
  if (state.token) signIn();
});
