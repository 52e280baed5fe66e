// The login and logout pages: post to /authn/session, then go back to the referrer.
// The referrer is only ever a URL of this origin (the server refuses others too).
"use strict";

function safeReferrer() {
  const fallback = "/hatrac/";
  const given = new URLSearchParams(window.location.search).get("referrer");
  if (!given || given.indexOf("\\") !== -1) {
    return fallback;
  }
  let target;
  try {
    target = new URL(given, window.location.origin);
  } catch (error) {
    return fallback;
  }
  if (target.origin !== window.location.origin || given.startsWith("//")) {
    return fallback;
  }
  return target.pathname + target.search + target.hash;
}

function show(text) {
  const message = document.getElementById("login-message");
  message.textContent = text;
  message.hidden = !text;
}

async function logIn(event) {
  event.preventDefault();
  const form = event.target;
  const button = document.getElementById("login-button");
  button.disabled = true;
  show("");
  try {
    const reply = await fetch("/authn/session", {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-Requested-With": "XMLHttpRequest"},
      body: new URLSearchParams(new FormData(form)),
    });
    if (reply.status === 201) {
      window.location.replace(safeReferrer());
      return;
    }
    if (reply.status === 429) {
      show("Too many failed logins; try again later.");
    } else if (reply.status === 401) {
      show("Unknown user name or wrong password.");
    } else {
      show("Login failed (" + reply.status + ").");
    }
  } catch (error) {
    show("The service cannot be reached.");
  }
  button.disabled = false;
}

async function logOut(event) {
  event.preventDefault();
  try {
    const reply = await fetch("/authn/session", {
      method: "DELETE",
      credentials: "same-origin",
      headers: {"X-Requested-With": "XMLHttpRequest"},
    });
    if (reply.status === 204 || reply.status === 404) {
      window.location.replace(safeReferrer());
      return;
    }
    show("Logout failed (" + reply.status + ").");
  } catch (error) {
    show("The service cannot be reached.");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const login = document.getElementById("login-form");
  if (login) {
    login.addEventListener("submit", logIn);
  }
  const logout = document.getElementById("logout-form");
  if (logout) {
    logout.addEventListener("submit", logOut);
  }
});
