// The ACL editor of a namespace, an object or a version (shown to owners):
// the resource's own entries, each removable; an input per access mode with
// the built-in account names as suggestions (unknown names are warned about,
// not refused: identities may come from other providers); and the entries
// inherited from ancestors' subtree-* ACLs, read-only, with their source.

import { api, element, fail, page, say } from "./api.js";

let suggestions = null; // a promise of {users, groups}, fetched once per page, when first needed

function accountNames() {
  if (suggestions === null) {
    suggestions = api("GET", page.web + "/accounts").catch(() => ({ users: [], groups: [] }));
    suggestions.then((names) => {
      const list = element("datalist", { id: "account-names" });
      for (const name of [...names.users, ...names.groups, "*"]) list.append(element("option", { value: name }));
      document.body.append(list);
    });
  }
  return suggestions;
}

const roleUrl = (url, access, role) => `${url};acl/${access}/${encodeURIComponent(role)}`;

// Opening costs one request (the ACLs); each change one more (the PUT or DELETE).
export async function showAcl(section, url, inherited = []) {
  section.hidden = false;
  section.replaceChildren(element("p", { class: "muted" }, "Loading access control…"));
  let acls;
  try {
    acls = await api("GET", url + ";acl");
  } catch (error) {
    section.replaceChildren();
    section.hidden = true;
    fail(error);
    return;
  }
  renderAcl(section, url, acls, inherited);
}

function renderAcl(section, url, acls, inherited) {
  const again = () => renderAcl(section, url, acls, inherited);
  const table = element("table", { class: "acl-table" });
  table.append(element("thead", {}, element("tr", {},
    element("th", { scope: "col" }, "Access"), element("th", { scope: "col" }, "Roles"),
    element("th", { scope: "col" }, "Add"))));
  const body = element("tbody");
  for (const [access, roles] of Object.entries(acls)) {
    const cell = element("td", { class: "roles" });
    for (const role of roles) {
      const remove = element("button", { type: "button", class: "small", "aria-label": `Remove ${role} from ${access}` }, "×");
      remove.addEventListener("click", async () => {
        try {
          await api("DELETE", roleUrl(url, access, role));
          acls[access] = acls[access].filter((r) => r !== role);
          say(`Removed ${role} from ${access}.`);
          again();
        } catch (error) { fail(error); }
      });
      cell.append(element("span", { class: "role own", "data-role": role }, role, remove));
    }
    for (const entry of inherited.filter((e) => e.access === "subtree-" + access || e.access === access)) {
      cell.append(element("span", { class: "role inherited", title: `inherited: ${entry.access} on ${entry.source}` },
        entry.role, element("small", {}, ` from ${entry.source}`)));
    }
    const input = element("input", { list: "account-names", "aria-label": `Add a role to ${access}`, placeholder: "user, g:group or *", size: 16 });
    input.addEventListener("focus", accountNames, { once: true });
    const add = element("button", { type: "submit", class: "small" }, "Add");
    const form = element("form", { class: "inline", "data-access": access }, input, add);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const role = input.value.trim();
      if (!role) return;
      const names = await accountNames();
      if (![...names.users, ...names.groups, "*"].includes(role)) {
        say(`Note: ${role} is not a built-in account or group; check the spelling.`, "warning");
      }
      try {
        await api("PUT", roleUrl(url, access, role));
        if (!acls[access].includes(role)) acls[access].push(role);
        say(`Granted ${access} to ${role}.`);
        again();
      } catch (error) { fail(error); }
    });
    body.append(element("tr", { "data-access": access }, element("th", { scope: "row" }, access), cell, element("td", {}, form)));
  }
  table.append(body);
  const close = element("button", { type: "button", class: "small" }, "Close");
  close.addEventListener("click", () => { section.hidden = true; });
  section.replaceChildren(element("h2", {}, "Access control"), table,
    element("p", { class: "muted" }, "Entries marked “from …” are inherited from an ancestor’s subtree ACL; change them there."), close);
}
