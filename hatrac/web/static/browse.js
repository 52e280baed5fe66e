// The namespace page: filter by name (on the rows of this page, with no
// request; Enter filters on the server; sorting is by the headers' links, on
// the server, over the whole namespace), new namespaces,
// delete, the ACL editor, and uploads by picker or drag and drop.

import { api, childName, confirmDialog, element, fail, page, promptDialog, say, urlOf } from "./api.js";
import { showAcl } from "./acl.js";
import { Uploader, droppedFiles, pickedFiles, unfinishedIn } from "./upload.js";

function liveFilter(input, table) {
  input.addEventListener("input", () => {
    const text = input.value.trim().toLowerCase();
    for (const row of table.tBodies[0].rows) {
      row.hidden = text !== "" && !row.dataset.label.toLowerCase().includes(text);
    }
  });
}

// A row for a file just uploaded into this namespace (its folder's row, for a
// file inside a dropped folder), so the table shows it without a reload.
function listUploaded(table, item) {
  const target = item.dataset.target;
  const base = page.name === "/" ? "" : page.name;
  const child = base + "/" + target.slice(base.length + 1).split("/")[0];
  if ([...table.tBodies[0].rows].some((row) => row.dataset.name === child)) return;
  const isObject = child === target;
  const label = decodeURIComponent(child.split("/").pop());
  const link = element("a", { href: urlOf(child) + (isObject ? ";versions" : "") }, label);
  const row = element("tr", { "data-name": child, "data-kind": isObject ? "object" : "namespace",
    "data-size": isObject ? item.dataset.size : -1, "data-type": "", "data-modified": Date.now() / 1000,
    "data-label": label });
  row.append(element("td", { class: "name" }, link), element("td", {}, isObject ? "object" : "namespace"),
    element("td", { class: "num" }, isObject ? item.dataset.sizeText : ""), element("td"),
    element("td", {}, "just now"), element("td"), element("td"));
  table.tBodies[0].append(row);
  const count = table.tBodies[0].rows.length;
  table.caption.textContent = `${count} ${count === 1 ? "child" : "children"}`;
}

function reloadSoon() {
  setTimeout(() => window.location.reload(), 300);
}

export function namespacePage() {
  const name = page.name;
  const table = document.getElementById("children");
  // the headers are links to the namespace sorted on the server; after one is
  // followed, the keyboard's focus comes back to it
  if (new URLSearchParams(window.location.search).has("sort")) {
    table.querySelector("th[aria-sort] a")?.focus();
  }
  liveFilter(document.getElementById("filter"), table);

  const newNamespace = document.getElementById("new-namespace");
  newNamespace?.addEventListener("click", async () => {
    const path = await promptDialog("Name of the new namespace (a/b/c makes the parents too)", "", "Create");
    if (!path) return;
    const segments = path.split("/").filter(Boolean);
    try {
      await api("PUT", urlOf(childName(name, segments)) + (segments.length > 1 ? "?parents=true" : ""),
        { headers: { "Content-Type": "application/x-hatrac-namespace" } });
      say(`Created ${path}.`);
      reloadSoon();
    } catch (error) { fail(error); }
  });

  document.getElementById("delete-here")?.addEventListener("click", async () => {
    const count = table.tBodies[0].rows.length;
    const question = `Delete the namespace ${decodeURIComponent(name)}` +
      (count ? ` and everything in it (${count}${document.querySelector("a[rel=next]") ? "+" : ""} children)?` : "?") +
      " This cannot be undone.";
    if (!(await confirmDialog(question))) return;
    try {
      await api("DELETE", page.url);
      window.location.assign(urlOf(name.split("/").slice(0, -1).join("/") || "/"));
    } catch (error) { fail(error); }
  });

  const aclSection = document.getElementById("acl");
  document.getElementById("show-acl")?.addEventListener("click", () => {
    showAcl(aclSection, page.url, JSON.parse(aclSection.dataset.inherited || "[]"));
  });

  const uploads = document.getElementById("uploads");
  if (!uploads) return;
  const uploader = new Uploader(name, uploads);
  uploads.addEventListener("upload-done", (event) => listUploaded(table, event.target));
  for (const id of ["pick-files", "pick-folder"]) {
    const input = document.getElementById(id);
    input.addEventListener("change", () => { uploader.add(pickedFiles(input)); input.value = ""; });
  }
  // buttons rather than labels open the pickers, so that the keyboard reaches them
  for (const button of document.querySelectorAll("button[data-picker]")) {
    button.addEventListener("click", () => document.getElementById(button.dataset.picker).click());
  }
  const drop = document.getElementById("drop");
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("active"); });
  }
  document.addEventListener("dragleave", (event) => { if (!event.relatedTarget) drop.classList.remove("active"); });
  document.addEventListener("drop", async (event) => {
    event.preventDefault();
    drop.classList.remove("active");
    uploader.add(await droppedFiles(event.dataTransfer));
  });

  const pending = unfinishedIn(name);
  if (pending.length) {
    const section = document.getElementById("resumable");
    section.hidden = false;
    const items = element("ul");
    for (const entry of pending) {
      items.append(element("li", { "data-target": entry.target }, `${entry.file} (${entry.size} bytes)`));
    }
    section.append(element("p", {}, "Unfinished uploads from an earlier visit: choose or drop the same files again and only their missing chunks are sent."), items);
  }
}
