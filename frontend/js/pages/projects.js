// The projects the key can see, with their run counts.

import * as api from "../api.js";
import { h, replace } from "../dom.js";
import * as fmt from "../format.js";
import { empty } from "../states.js";

export async function render(view, _route, { signal }) {
  document.title = "Projects · Curvecast";
  const { projects } = await api.projects(signal);
  if (!projects.length) {
    replace(view, h("h1", {}, "Projects"), empty(
      "No projects yet",
      "A project appears when a training script logs its first run to it, for example:",
      "my-project",
    ));
    return;
  }
  replace(view,
    h("h1", {}, "Projects"),
    h("table", { class: "data projects" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Project"),
        h("th", { scope: "col", class: "num" }, "Runs"),
        h("th", { scope: "col" }, "Created"))),
      h("tbody", {}, projects.map((p) => h("tr", {},
        h("td", {}, h("a", { href: `#/p/${encodeURIComponent(p.name)}` }, p.name)),
        h("td", { class: "num" }, fmt.integer(p.n_runs)),
        h("td", {}, fmt.date(p.created_at))))),
    ),
  );
}
