// Loading, empty and error states: each says what is happening and what to do next.

import { h } from "./dom.js";

export function loading() {
  return h("p", { class: "state loading", role: "status", "aria-busy": "true" }, "Loading…");
}

function clientSnippet(project) {
  return h("pre", { class: "snippet", "aria-label": "Python client code" }, h("code", {},
    "import curvecast\n" +
    `run = curvecast.init(project="${project}", total_steps=10000)\n` +
    "for step in range(10000):\n" +
    "    ...\n" +
    '    run.log({"loss": loss}, step=step)\n' +
    "run.finish()",
  ));
}

export function empty(title, advice, project) {
  return h("section", { class: "state empty" },
    h("h2", {}, title),
    h("p", {}, advice),
    clientSnippet(project),
    h("p", { class: "hint" },
      "Point the client at this server with CURVECAST_URL and CURVECAST_API_KEY. ",
      "New runs appear here by themselves."),
  );
}

const ADVICE = {
  0: "Check that `curvecast up` is running, then retry.",
  404: "It may have been deleted, or your API key may not give access to its project.",
};

/** An error the page cannot recover from by itself, with a way on. */
export function failure(err, { retry } = {}) {
  const advice = ADVICE[err.status] ?? "Retry; if it keeps failing, the server log says why.";
  return h("section", { class: "state error", role: "alert" },
    h("h2", {}, err.status === 404 ? "Not found" : "Something went wrong"),
    h("p", {}, err.message),
    h("p", {}, advice),
    h("p", { class: "actions" },
      retry && h("button", { type: "button", onclick: retry }, "Retry"),
      h("a", { href: "#/projects" }, "Back to projects"),
    ),
  );
}
