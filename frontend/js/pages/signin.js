// Sign-in: the key goes once to POST /api/v1/session, which answers with an HttpOnly cookie.
// The key is never put in the URL or in storage, and the field is cleared after use.

import * as api from "../api.js";
import { h, replace } from "../dom.js";

export function render(view, { message, onSignedIn }) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const input = h("input", { id: "api-key", name: "key", type: "password", required: true,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "key-help" });
  const button = h("button", { type: "submit" }, "Sign in");

  async function submit(event) {
    event.preventDefault();
    button.disabled = true;
    error.hidden = true;
    try {
      await api.signIn(input.value);
      input.value = "";
      onSignedIn();
    } catch (err) {
      error.textContent = err.status === 401
        ? "That key was not accepted. Check it and try again."
        : err.message;
      error.hidden = false;
      button.disabled = false;
      input.select();
    }
  }

  replace(view, h("section", { class: "sign-in" },
    h("h1", {}, "Sign in"),
    message && h("p", { role: "status" }, message),
    h("form", { onsubmit: submit },
      h("label", { for: "api-key" }, "API key"),
      input,
      h("p", { id: "key-help", class: "hint" },
        "Create one with `curvecast keys create --project NAME`, or use the server's ",
        "CURVECAST_ADMIN_KEY. It is kept in an HttpOnly cookie for this site only."),
      error,
      button,
    ),
  ));
  input.focus();
}
