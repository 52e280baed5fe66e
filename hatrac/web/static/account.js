// The account page: the session (who, until when), and API tokens: create
// (the secret is shown once), list and revoke, through /authn/token.

import { api, element, fail, say } from "./api.js";

async function listTokens(body) {
  let answer;
  try { answer = await api("GET", "/authn/token"); } catch (error) { fail(error); return; }
  body.replaceChildren();
  for (const token of answer.tokens.filter((t) => !t.revoked)) {
    const revoke = element("button", { type: "button", class: "small danger" }, "Revoke");
    revoke.addEventListener("click", async () => {
      try {
        await api("DELETE", `/authn/token/${token.id}`);
        say(`Revoked token ${token.id}.`);
        listTokens(body);
      } catch (error) { fail(error); }
    });
    body.append(element("tr", { "data-token": token.id },
      element("td", {}, String(token.id)), element("td", {}, token.description || ""),
      element("td", {}, token.created), element("td", {}, token.expires || "never"),
      element("td", {}, revoke)));
  }
}

export async function accountPage() {
  const state = document.getElementById("session-state");
  try {
    const session = await api("GET", "/authn/session");
    state.textContent = `${session.authentication_method}, ends ${session.expires}`;
  } catch (error) { state.textContent = error.describe(); }
  const body = document.querySelector("#tokens tbody");
  listTokens(body);
  document.getElementById("new-token").addEventListener("submit", async (event) => {
    event.preventDefault();
    const description = document.getElementById("token-description").value.trim();
    const days = Number(document.getElementById("token-days").value);
    const spec = {};
    if (description) spec.description = description;
    if (days > 0) spec.expires_in = Math.round(days * 86400);
    try {
      const token = await api("POST", "/authn/token", { json: spec });
      const secret = document.getElementById("token-secret");
      secret.hidden = false;
      secret.replaceChildren(element("p", {}, "Your new token (shown only now; copy it):"),
        element("code", { id: "token-value" }, token.token));
      listTokens(body);
    } catch (error) { fail(error); }
  });
}
