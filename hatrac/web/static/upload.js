// Uploads from the browser: small files by one PUT, large ones by an upload
// job whose chunks go in parallel; progress per file and overall; cancel;
// resume after a reload, a lost connection or in another browser (the user's
// open job for the same target, size, chunk size and SHA-256 is found on the
// server, which says which chunks it has; only the others are sent). Digests are computed here and sent, so
// the server verifies every byte: Content-MD5 on each PUT and chunk, and the
// job's whole-file MD5 and SHA-256. Tabs of one browser never send one job
// together (see hold): each job is sent by one tab at a time.

import { MD5, SHA256, base64, md5Base64, sha256Base64 } from "./digest.js";
import {
  ApiError, api, childName, element, errorOf, fail, formatDuration, formatSize, labelOf, page, say,
  urlOf,
} from "./api.js";

export const CHUNK = 8 * 1024 * 1024; // bytes per chunk of an upload job
const SMALL = 16 * 1024 * 1024; // files up to this size go in one PUT
const PARALLEL = 3; // chunk requests in flight per file
const TRIES = 3; // attempts of a chunk before the upload stops with a message
const STORE = "hatrac-unfinished-uploads";

// -- the unfinished uploads this browser knows of (for resuming after a reload) --
function unfinished() {
  try { return JSON.parse(localStorage.getItem(STORE) || "[]"); } catch { return []; }
}

function remember(entry) {
  const list = unfinished().filter((e) => e.target !== entry.target);
  list.push(entry);
  localStorage.setItem(STORE, JSON.stringify(list));
}

function forget(target) {
  localStorage.setItem(STORE, JSON.stringify(unfinished().filter((e) => e.target !== target)));
}

export function unfinishedIn(namespace) {
  const base = namespace === "/" ? "/" : namespace + "/";
  return unfinished().filter((e) => e.target.startsWith(base));
}

// One HTTP request with upload progress (fetch has none): resolves to the response text.
function send(method, url, body, headers, onProgress, task) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("Accept", "application/json");
    for (const [key, value] of Object.entries(headers)) xhr.setRequestHeader(key, value);
    if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = async () => {
      task.requests.delete(xhr);
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
      else reject(await errorOf(xhr.status, xhr.statusText, xhr.responseText,
        xhr.getResponseHeader("X-Request-Id")));
    };
    xhr.onerror = () => {
      task.requests.delete(xhr);
      reject(new ApiError(0, "", "the connection was lost"));
    };
    xhr.onabort = () => { task.requests.delete(xhr); reject(new ApiError(-1, "", "cancelled")); };
    task.requests.add(xhr);
    xhr.send(body);
  });
}

async function sessionAlive() {
  try { await api("GET", "/authn/session"); return true; } catch { return false; }
}

// A Web Lock of this browser (shared by its tabs of this origin), held until the
// function resolved is called; with ifAvailable, null when another tab holds it.
// Without the API (a page that is not a secure context: plain HTTP to a host
// other than localhost) there is nothing to hold: tabs then coordinate only
// through the server, as two browsers do.
function hold(name, options = {}) {
  if (!navigator.locks) return Promise.resolve(() => {});
  return new Promise((resolve, reject) => {
    navigator.locks.request(name, options, (lock) => {
      if (!lock) return resolve(null);
      return new Promise((release) => resolve(release));
    }).catch(reject);
  });
}

const jobLock = (url) => `hatrac-job ${new URL(url, location.href).pathname}`;

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const retryable = (error) => error.status === 0 || error.status >= 500;

class Task {
  constructor(uploader, file, segments) {
    this.uploader = uploader;
    this.file = file;
    this.target = childName(uploader.namespace, segments);
    this.url = urlOf(this.target);
    this.parents = segments.length > 1;
    this.size = file.size;
    this.done = 0; // bytes the server has confirmed
    this.flying = new Map(); // chunk -> bytes of it sent so far
    this.requests = new Set();
    this.state = "waiting";
    this.job = null;
    this.releaseJob = () => {};
    this.started = 0;
    this.sentThisRun = 0;
    this.row = element("li", { class: "upload", "data-target": this.target, "data-size": this.size,
      "data-size-text": formatSize(this.size) });
    this.bar = element("progress", { max: this.size || 1, value: 0 });
    this.text = element("span", { class: "upload-text" }, "waiting");
    this.cancelButton = element("button", { type: "button", class: "small" }, "Cancel");
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.row.append(element("span", { class: "upload-name" }, segments.join("/")), this.bar,
      this.text, this.cancelButton);
  }

  get transferred() {
    let flying = 0;
    for (const bytes of this.flying.values()) flying += bytes;
    return this.done + flying;
  }

  show(message) {
    const now = performance.now();
    this.bar.value = this.size ? this.transferred : 1;
    if (message) { this.text.textContent = message; return; }
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0.2 ? this.sentThisRun / seconds : 0;
    const left = rate > 0 ? (this.size - this.transferred) / rate : Infinity;
    this.text.textContent = `${formatSize(this.transferred)} of ${formatSize(this.size)}` +
      (rate ? ` · ${formatSize(rate)}/s · ${formatDuration(left)} left` : "");
    this.uploader.showOverall();
  }

  finish(state, message) {
    this.state = state;
    this.row.dataset.state = state;
    this.cancelButton.classList.toggle("invisible", state !== "running");
    this.show(message);
    this.uploader.showOverall();
    this.row.dispatchEvent(new CustomEvent("upload-" + state, { bubbles: true }));
  }

  async run() {
    this.state = "running";
    this.row.dataset.state = "running";
    this.started = performance.now();
    try {
      if (this.size > Number(page.maxObject)) {
        throw new ApiError(413, "Too large", `${labelOf(this.target)} is ${formatSize(this.size)}; ` +
          `the largest object this service stores is ${formatSize(Number(page.maxObject))}. Nothing was sent.`);
      }
      if (this.size <= Math.min(SMALL, Number(page.maxPut))) await this.put();
      else await this.chunked();
      forget(this.target);
      this.done = this.size;
      this.finish("done", `done · ${formatSize(this.size)}`);
    } catch (error) {
      if (this.state === "cancelled") return;
      if ([404, 409].includes(error.status) && this.sha256 && (await this.finishedElsewhere())) {
        // another tab resumed the same job and finished it: the object holds these bytes
        forget(this.target);
        this.done = this.size;
        this.finish("done", `done (finished by another upload of the same file) · ${formatSize(this.size)}`);
        return;
      }
      if ([401, 403, 404].includes(error.status) && page.identity && !(await sessionAlive())) {
        // a cookie that expired is no longer sent: the job then looks absent (404)
        error.detail = "Your session has ended: log in again, then choose the same file " +
          "to resume the upload (the chunks already stored are kept).";
      }
      const text = error instanceof ApiError ? error.describe() : String(error);
      this.finish("failed", `failed: ${text}`);
      fail(new Error(`${labelOf(this.target)}: ${text}`));
    }
  }

  async put() {
    const bytes = new Uint8Array(await this.file.arrayBuffer());
    const headers = {
      "Content-Type": this.file.type || "application/octet-stream",
      "Content-MD5": md5Base64(bytes),
      "Content-SHA256": await sha256Base64(bytes),
    };
    const url = this.url + (this.parents ? "?parents=true" : "");
    await send("PUT", url, bytes, headers, (loaded) => {
      this.flying.set(0, loaded);
      this.sentThisRun = loaded;
      this.show();
    }, this);
    this.flying.clear();
  }

  // The file's MD5 and SHA-256, read in chunk-sized pieces, and each chunk's
  // MD5 (kept for its Content-MD5, so that the chunk requests start at once).
  async digests() {
    const md5 = new MD5();
    const sha = new SHA256();
    this.chunkMd5 = [];
    for (let offset = 0; offset < this.size; offset += CHUNK) {
      if (this.state === "cancelled") throw new ApiError(-1, "", "cancelled");
      const piece = new Uint8Array(await this.file.slice(offset, offset + CHUNK).arrayBuffer());
      md5.update(piece);
      sha.update(piece);
      this.chunkMd5.push(md5Base64(piece));
      this.show(`computing digests · ${Math.floor((100 * (offset + piece.length)) / this.size)}%`);
    }
    return { md5: base64(md5.digest()), sha256: base64(sha.digest()) };
  }

  // An open job of this client (the server lists only the client's own) for the
  // same target, size and chunk size whose declared SHA-256 is this file's, and
  // whose MD5, if declared, too: a job made for other bytes is never resumed.
  // A job that another tab of this browser is sending is left to it (its lock is
  // held): two senders of one job would each resend chunks the other stored,
  // and the server counts a chunk being resent as missing until it is stored again.
  async findJob(md5, sha256) {
    let jobs;
    try { jobs = await api("GET", this.url + ";upload"); } catch { return null; }
    for (const url of jobs || []) {
      const release = await hold(jobLock(url), { ifAvailable: true });
      if (!release) continue;
      try {
        const status = await api("GET", url);
        if (status["content-length"] === this.size && status["chunk-length"] === CHUNK &&
            status["content-sha256"] === sha256 &&
            (!status["content-md5"] || status["content-md5"] === md5)) {
          return { url, received: status["chunks-received"], release };
        }
      } catch { /* a job that went away meanwhile */ }
      release();
    }
    return null;
  }

  // Whether the object's current version is this file (by its SHA-256).
  async finishedElsewhere() {
    try {
      const reply = await fetch(this.url, { method: "HEAD", credentials: "same-origin" });
      return reply.ok && reply.headers.get("Content-SHA256") === this.sha256;
    } catch { return false; }
  }

  async chunked() {
    const { md5, sha256 } = await this.digests();
    this.sha256 = sha256;
    const count = Math.ceil(this.size / CHUNK);
    let received = new Set();
    // one tab at a time looks for a job of this name and makes one, and takes the
    // lock of the job it chose before the next tab looks
    const releaseName = await hold(`hatrac-upload ${this.target}`);
    try {
      // the server's list of this user's jobs, not this browser's memory, is asked
      // (another browser, or cleared storage, may have started the upload)
      const found = await this.findJob(md5, sha256);
      if (found) {
        this.job = found.url;
        this.releaseJob = found.release;
        if (Array.isArray(found.received)) received = new Set(found.received);
        this.row.dataset.resumed = String(received.size);
        say(`${labelOf(this.target)}: resuming an unfinished upload (${received.size} of ${count} chunks already stored).`);
      } else {
        const spec = {
          "chunk-length": CHUNK,
          "content-length": this.size,
          "content-type": this.file.type || "application/octet-stream",
          "content-md5": md5,
          "content-sha256": sha256,
        };
        const url = this.url + ";upload" + (this.parents ? "?parents=true" : "");
        const xhr = await send("POST", url, JSON.stringify(spec), { "Content-Type": "application/json" }, null, this);
        this.job = xhr.getResponseHeader("Location") || xhr.responseText.trim();
        this.releaseJob = (await hold(jobLock(this.job), { ifAvailable: true })) || (() => {});
      }
    } finally {
      releaseName();
    }
    try {
      await this.transfer(count, received);
    } finally {
      this.releaseJob();
    }
  }

  // The chunks the job lacks, then its finalization. A finalization refused
  // because chunks are missing (another client, e.g. another browser resuming
  // the job, was resending a chunk this tab had stored: the server counts it
  // missing until it is stored again) sends what the job then lacks and tries
  // again, up to TRIES times.
  async transfer(count, received) {
    remember({ target: this.target, job: this.job, size: this.size, file: this.file.name });
    this.row.dataset.job = this.job;
    for (let round = 1; ; round++) {
      const missing = [];
      this.done = 0;
      for (let chunk = 0; chunk < count; chunk++) {
        if (received.has(chunk)) this.done += this.chunkSize(chunk);
        else missing.push(chunk);
      }
      this.show();
      const workers = [];
      for (let i = 0; i < PARALLEL; i++) workers.push(this.worker(missing));
      await Promise.all(workers);
      this.show("finishing");
      try {
        await send("POST", this.job, null, {}, null, this);
        return;
      } catch (error) {
        if (error.status !== 409 || round >= TRIES) throw error;
        const status = await api("GET", this.job);
        received = new Set(status["chunks-received"] || []);
        // every chunk there: refused for another reason (e.g. a digest mismatch)
        if (received.size >= count) throw error;
        this.row.dataset.resent = String((Number(this.row.dataset.resent) || 0) + count - received.size);
      }
    }
  }

  chunkSize(chunk) {
    return Math.min(CHUNK, this.size - chunk * CHUNK);
  }

  async worker(queue) {
    while (queue.length && this.state === "running") {
      const chunk = queue.shift();
      await this.sendChunk(chunk);
    }
  }

  async sendChunk(chunk) {
    const start = chunk * CHUNK;
    const bytes = new Uint8Array(await this.file.slice(start, start + this.chunkSize(chunk)).arrayBuffer());
    const headers = { "Content-Type": "application/octet-stream", "Content-MD5": this.chunkMd5[chunk] };
    for (let attempt = 1; ; attempt++) {
      try {
        await send("PUT", `${this.job}/${chunk}`, bytes, headers, (loaded) => {
          const before = this.flying.get(chunk) || 0;
          this.flying.set(chunk, loaded);
          this.sentThisRun += loaded - before;
          this.show();
        }, this);
        this.flying.delete(chunk);
        this.done += bytes.length;
        this.show();
        return;
      } catch (error) {
        this.sentThisRun -= this.flying.get(chunk) || 0;
        this.flying.delete(chunk);
        if (this.state !== "running") throw error;
        if (!retryable(error) || attempt >= TRIES) {
          this.state = "stopping"; // the other workers stop after their chunk
          if (error.status === 409) {
            error.detail += " The upload job may have been cancelled or finished elsewhere.";
          }
          throw error;
        }
        this.show(`chunk ${chunk}: ${error.describe()}; retrying`);
        await pause(400 * attempt);
      }
    }
  }

  async cancel() {
    if (this.state !== "running" && this.state !== "waiting") return;
    this.state = "cancelled";
    for (const xhr of this.requests) xhr.abort();
    if (this.job) {
      try { await api("DELETE", this.job); } catch (error) { fail(error); }
    }
    forget(this.target);
    this.finish("cancelled", "cancelled");
  }
}

export class Uploader {
  constructor(namespace, section) {
    this.namespace = namespace;
    this.section = section;
    this.list = section.querySelector("#upload-list");
    this.overall = section.querySelector("#overall");
    this.overallText = section.querySelector("#overall-text");
    this.tasks = [];
    section.querySelector("#cancel-all").addEventListener("click", () => {
      for (const task of this.tasks) task.cancel();
    });
  }

  // files: [{file: File, segments: ["dir", "name.txt"]}]
  add(files) {
    this.section.hidden = false;
    const tasks = files.map(({ file, segments }) => new Task(this, file, segments));
    for (const task of tasks) this.list.append(task.row);
    this.tasks.push(...tasks);
    this.showOverall();
    // one file at a time (each large one sends its chunks in parallel)
    this.queue = (this.queue || Promise.resolve()).then(async () => {
      for (const task of tasks) if (task.state === "waiting") await task.run();
      if (this.tasks.every((t) => t.state !== "running" && t.state !== "waiting")) {
        this.section.dispatchEvent(new CustomEvent("uploads-settled", { bubbles: true }));
      }
    });
    return this.queue;
  }

  showOverall() {
    const live = this.tasks.filter((t) => t.state !== "cancelled");
    const total = live.reduce((sum, t) => sum + t.size, 0);
    const sent = live.reduce((sum, t) => sum + (t.state === "done" ? t.size : t.transferred), 0);
    this.overall.max = total || 1;
    this.overall.value = total ? sent : live.length ? 1 : 0;
    const finished = live.filter((t) => t.state === "done").length;
    this.overallText.textContent = `${finished} of ${live.length} files · ${formatSize(sent)} of ${formatSize(total)}`;
  }
}

// Files of a drop, folders walked (their paths become namespaces, made with ?parents=true).
export async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...dataTransfer.files].map((file) => ({ file, segments: [file.name] }));
  const found = [];
  async function walk(entry, path) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      found.push({ file, segments: [...path, entry.name] });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, [...path, entry.name]);
      }
    }
  }
  for (const entry of entries) await walk(entry, []);
  return found;
}

export function pickedFiles(input) {
  return [...input.files].map((file) => ({
    file,
    segments: (file.webkitRelativePath || file.name).split("/").filter(Boolean),
  }));
}
