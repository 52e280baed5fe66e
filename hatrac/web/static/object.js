// The object page: copy links, metadata editing, version and object deletion,
// rename (the protocol's rename_from) and the ACL editors.

import { api, confirmDialog, element, fail, page, promptDialog, say, urlOf } from "./api.js";
import { showAcl } from "./acl.js";

const parentUrl = () => urlOf(page.name.split("/").slice(0, -1).join("/") || "/");

async function editMetadata(card) {
  const url = `${page.url}:${card.dataset.version}`;
  for (const cell of card.querySelectorAll("dd.meta")) {
    const field = cell.dataset.field;
    const input = element("input", { value: cell.textContent.trim(), "aria-label": field, size: 40 });
    const save = element("button", { type: "submit", class: "small" }, "Save");
    const form = element("form", { class: "inline" }, input, save);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = input.value.trim();
      try {
        if (value) await api("PUT", `${url};metadata/${field}`, { body: value, headers: { "Content-Type": "text/plain" } });
        else await api("DELETE", `${url};metadata/${field}`);
        cell.replaceChildren(value);
        say(`Saved ${field}.`);
      } catch (error) { fail(error); }
    });
    cell.replaceChildren(form);
  }
}

export function objectPage() {
  for (const card of document.querySelectorAll(".version-card")) {
    const version = card.dataset.version;
    card.querySelector(".edit-meta")?.addEventListener("click", () => editMetadata(card));
    card.querySelector(".version-acl")?.addEventListener("click", () => {
      showAcl(card.querySelector(".version-acl-editor"), `${page.url}:${version}`);
    });
    card.querySelector(".delete-version")?.addEventListener("click", async () => {
      if (!(await confirmDialog(`Delete version ${version}? Its bytes are gone for good.`))) return;
      try {
        await api("DELETE", `${page.url}:${version}`);
        card.remove();
        say(`Deleted version ${version}.`);
      } catch (error) { fail(error); }
    });
  }
  const aclSection = document.getElementById("acl");
  document.getElementById("show-acl")?.addEventListener("click", () => {
    showAcl(aclSection, page.url, JSON.parse(aclSection.dataset.inherited || "[]"));
  });
  document.getElementById("delete-here")?.addEventListener("click", async () => {
    if (!(await confirmDialog("Delete this object and all its versions? This cannot be undone."))) return;
    try {
      await api("DELETE", page.url);
      window.location.assign(parentUrl());
    } catch (error) { fail(error); }
  });
  document.getElementById("rename")?.addEventListener("click", async () => {
    const current = decodeURIComponent(page.name);
    const wanted = await promptDialog("New name (a full path; missing namespaces are made)", current, "Rename");
    if (!wanted || wanted === current) return;
    const segments = wanted.split("/").filter(Boolean);
    const encoded = "/" + segments.map((s) => encodeURIComponent(s).replace(/[!'()*]/g,
      (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())).join("/");
    try {
      await api("POST", urlOf(encoded) + "?parents=true", { json: { command: "rename_from", source_name: page.name } });
      window.location.assign(urlOf(encoded) + ";versions");
    } catch (error) { fail(error); }
  });
}
