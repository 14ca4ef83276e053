// The head of every project page: breadcrumb, title and the Runs | Scaling | Alerts tabs.

import { h } from "../dom.js";

const TABS = [["runs", "Runs", ""], ["scaling", "Scaling", "/scaling"], ["alerts", "Alerts", "/alerts"]];

/** [breadcrumb, h1, tabs] for `project`, with `current` ("runs", "scaling", "alerts") marked. */
export function projectHeader(project, current) {
  const base = `#/p/${encodeURIComponent(project)}`;
  return [
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "#/projects" }, "Projects"), " / ", project),
    h("h1", {}, project),
    h("nav", { class: "tabs", "aria-label": "Project" }, TABS.map(([key, label, path]) =>
      h("a", { href: base + path, "aria-current": key === current ? "page" : null }, label))),
  ];
}
