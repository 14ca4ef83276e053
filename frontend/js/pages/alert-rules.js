// Alert rules: where a project's run events are sent (a JSON webhook or a Slack incoming
// webhook), listed with a delete button, and the form for a new one.

import * as api from "../api.js";
import { h } from "../dom.js";
import { errorSlot, submitting } from "../form-errors.js";
import * as fmt from "../format.js";

export const EVENTS = {
  should_stop: "should stop", diverged: "diverged", stalled: "stalled",
  missed_target: "missed target",
};

export function rulesTable(project, rules, onChanged) {
  if (!rules.length) {
    return h("p", { class: "state" }, "No rules yet: nobody is told when a run should stop. ",
      "Add one below.");
  }
  return h("table", { class: "data rules", "aria-label": "Alert rules" },
    h("thead", {}, h("tr", {}, ["Events", "Channel", "URL", "Created", ""].map((t) =>
      h("th", { scope: "col" }, t)))),
    h("tbody", {}, rules.map((rule) => h("tr", { "data-rule": rule.id },
      h("td", {}, rule.events.map((e) => h("span", { class: "tag" }, EVENTS[e] ?? e))),
      h("td", {}, rule.channel),
      h("td", { class: "url" }, rule.webhook_url),
      h("td", {}, fmt.date(rule.created_at)),
      h("td", {}, h("button", { type: "button", class: "link-button",
        "aria-label": `Delete rule ${rule.id}`,
        onclick: async () => { await api.deleteAlertRule(project, rule.id); onChanged(); } },
      "Delete"))))));
}

export function ruleForm(project, onCreated) {
  const form = h("form", { class: "form-grid", "aria-labelledby": "new-rule-title",
    onsubmit: (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const body = { events: data.getAll("events"), webhook_url: data.get("webhook_url"),
        channel: data.get("channel") };
      submitting(form, async () => {
        await api.createAlertRule(project, body);
        form.elements.webhook_url.value = "";
        onCreated();
      });
    } },
  h("h3", { id: "new-rule-title", class: "full" }, "New rule"),
  h("fieldset", { class: "checks full" }, h("legend", {}, "Events"),
    Object.entries(EVENTS).map(([value, label]) => h("label", {},
      h("input", { type: "checkbox", name: "events", value, checked: value === "should_stop" }),
      ` ${label}`)),
    errorSlot("events")),
  h("label", { class: "grow" }, "Webhook URL",
    h("input", { name: "webhook_url", type: "url", required: true,
      placeholder: "https://hooks.slack.com/services/…", "aria-describedby": "rule-url-error" }),
    errorSlot("webhook_url", "rule-url-error")),
  h("label", {}, "Channel", h("select", { name: "channel" },
    h("option", { value: "webhook" }, "JSON webhook"), h("option", { value: "slack" }, "Slack"))),
  h("button", { type: "submit" }, "Add rule"),
  errorSlot());
  return form;
}
