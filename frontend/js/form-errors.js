// A refused form: the server's 4xx names the field, so its message goes beside that field
// (a <p class="form-error" data-for="NAME">), else in the form's own slot (data-for="").

import { h } from "./dom.js";

/** The message slot for field `name` ("" for the whole form); give `id` to describe inputs. */
export function errorSlot(name = "", id = null) {
  return h("p", { class: "form-error", role: "alert", "data-for": name, id, hidden: true });
}

function clearErrors(form) {
  form.querySelectorAll(".form-error").forEach((slot) => { slot.hidden = true; });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

function showError(form, err) {
  clearErrors(form);
  const name = err.field?.split(/[.[]/)[0] ?? "";
  const slot = form.querySelector(`.form-error[data-for="${CSS.escape(name)}"]`)
    ?? form.querySelector('.form-error[data-for=""]');
  const own = slot.dataset.for !== "";
  slot.textContent = own || !err.field ? err.message : `${err.field}: ${err.message}`;
  slot.hidden = false;
  if (own) {
    form.querySelectorAll(`[name="${CSS.escape(name)}"]`)
      .forEach((el) => el.setAttribute("aria-invalid", "true"));
  }
}

/** Run `action` with the submit button disabled; a refusal is shown in the form. */
export async function submitting(form, action) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  clearErrors(form);
  try {
    await action();
  } catch (err) {
    if (err.name !== "AbortError") showError(form, err);
  } finally {
    button.disabled = false;
  }
}
