// The HTTP API as the pages use it: requests, readable errors, names in URLs,
// and the page's message area. Every call goes to this origin with the
// session cookie, exactly as any other client of the protocol would call it.

export const page = document.body.dataset;

export class ApiError extends Error {
  constructor(status, title, detail, requestId) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.requestId = requestId;
  }

  // "403 Forbidden: Access 'owner' on /ns is not granted. (request 3fa2...)"
  describe() {
    const head = this.status ? `${this.status} ${this.title || ""}`.trim() : "Network error";
    const id = this.requestId ? ` (request id ${this.requestId})` : "";
    return `${head}: ${this.detail || this.title || "the request failed"}${id}`;
  }
}

// An ApiError from a fetch Response or an XMLHttpRequest that failed.
export async function errorOf(status, statusText, text, requestId) {
  let title = statusText;
  let detail = "";
  try {
    const problem = JSON.parse(text);
    title = problem.title || title;
    detail = problem.detail || problem.error || "";
    requestId = requestId || problem.request_id;
  } catch {
    detail = (text || "").trim().split("\n").slice(-1)[0].slice(0, 500);
  }
  if (status === 401) detail += " Your session may have ended: log in again.";
  return new ApiError(status, title, detail.trim(), requestId);
}

export async function api(method, url, { body, headers = {}, json } = {}) {
  const options = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (json !== undefined) {
    options.body = JSON.stringify(json);
    options.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    options.body = body;
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new ApiError(0, "", `the server could not be reached (${error.message})`);
  }
  if (!response.ok) {
    throw await errorOf(response.status, response.statusText, await response.text(),
      response.headers.get("X-Request-Id"));
  }
  const type = response.headers.get("Content-Type") || "";
  if (response.status === 204) return null;
  return type.includes("json") ? response.json() : response.text();
}

// One decoded name segment in Hatrac's canonical encoding (only - _ . ~ left bare).
export function quoteSegment(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

// The URL of a name (canonical, as the server lists it) under the service prefix.
export function urlOf(name) {
  return page.prefix + (name === "/" ? "/" : name);
}

export function childName(parent, segments) {
  const base = parent === "/" ? "" : parent;
  return base + "/" + segments.map(quoteSegment).join("/");
}

export function labelOf(name) {
  const last = name.split("/").pop();
  try { return decodeURIComponent(last); } catch { return last; }
}

// A message in the page's live region ("error" messages stay until dismissed).
export function say(text, kind = "info") {
  const box = document.getElementById("messages");
  const item = element("div", { class: `message ${kind}` }, text);
  const close = element("button", { type: "button", class: "link", "aria-label": "Dismiss" }, "×");
  close.addEventListener("click", () => item.remove());
  item.append(close);
  box.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 6000);
  return item;
}

export function fail(error) {
  say(error instanceof ApiError ? error.describe() : String(error.message || error), "error");
}

// A DOM element; text is always set as text, never parsed as HTML.
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (!isFinite(seconds)) return "…";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

// A modal confirmation as a <dialog>, keyboard-usable (Esc cancels).
export function confirmDialog(question, action = "Delete") {
  return new Promise((resolve) => {
    const dialog = element("dialog", { class: "confirm" });
    const form = element("form", { method: "dialog" });
    const yes = element("button", { value: "yes", class: "danger" }, action);
    const no = element("button", { value: "no", autofocus: true }, "Cancel");
    form.append(element("p", {}, question), element("div", { class: "buttons" }, no, yes));
    dialog.append(form);
    dialog.addEventListener("close", () => { dialog.remove(); resolve(dialog.returnValue === "yes"); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// A modal asking for one line of text; resolves to the text or null.
export function promptDialog(question, initial = "", action = "OK") {
  return new Promise((resolve) => {
    const dialog = element("dialog", { class: "prompt" });
    const form = element("form", { method: "dialog" });
    const input = element("input", { value: initial, "aria-label": question, required: true });
    const yes = element("button", { value: "yes" }, action);
    const no = element("button", { value: "no", formnovalidate: true }, "Cancel");
    // the action first in the form, so that Enter in the field means it (shown last)
    form.append(element("label", {}, question, input), element("div", { class: "buttons reversed" }, yes, no));
    dialog.append(form);
    // Enter in the field submits without a submitter in some browsers: that means the action
    let chosen = "no";
    form.addEventListener("submit", (event) => { chosen = event.submitter ? event.submitter.value : "yes"; });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(chosen === "yes" ? input.value : null);
    });
    document.body.append(dialog);
    dialog.showModal();
    input.select();
  });
}
