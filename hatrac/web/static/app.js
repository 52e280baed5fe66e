// Entry module of every page: the shared controls (log out, copy buttons),
// then the page's own module, chosen by <body data-page>.

import { api, fail, page, say } from "./api.js";

document.getElementById("logout")?.addEventListener("click", async () => {
  try {
    await api("DELETE", "/authn/session");
  } catch (error) {
    if (error.status !== 404) { fail(error); return; }
  }
  // the account page needs a login: go to the root instead of to the login page
  if (page.page === "account") window.location.assign(page.prefix + "/");
  else window.location.reload();
});

for (const button of document.querySelectorAll("button.copy")) {
  button.addEventListener("click", async () => {
    const url = new URL(button.dataset.copy, window.location.href).href;
    try {
      await navigator.clipboard.writeText(url);
      say(`Copied ${url}`);
    } catch {
      say(`Copy this link: ${url}`);
    }
  });
}

const modules = {
  namespace: async () => (await import("./browse.js")).namespacePage(),
  object: async () => (await import("./object.js")).objectPage(),
  account: async () => (await import("./account.js")).accountPage(),
};
const start = modules[page.page] || (async () => {});
start().catch(fail).finally(() => { document.body.dataset.ready = "1"; });
