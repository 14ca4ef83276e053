// The router: #/projects, #/p/NAME (/scaling, /alerts), #/run/ID, #/compare?ids=a,b. Each page renders into
// #view with a signal that aborts its fetches and polls when the user navigates away.
// A 401 anywhere shows the sign-in form, then the page that was asked for.

import * as api from "./api.js";
import { replace } from "./dom.js";
import { poller } from "./live.js";
import * as alertsPage from "./pages/alerts.js";
import * as comparePage from "./pages/compare.js";
import * as projectsPage from "./pages/projects.js";
import * as runPage from "./pages/run.js";
import * as runsPage from "./pages/runs.js";
import * as scalingPage from "./pages/scaling.js";
import * as signInPage from "./pages/signin.js";
import { failure, loading } from "./states.js";

const view = document.getElementById("view");
const signOutButton = document.getElementById("sign-out");

const ROUTES = [
  [/^\/projects$/, projectsPage],
  [/^\/p\/([^/]+)$/, runsPage],
  [/^\/p\/([^/]+)\/scaling$/, scalingPage],
  [/^\/p\/([^/]+)\/alerts$/, alertsPage],
  [/^\/run\/([^/]+)$/, runPage],
  [/^\/compare$/, comparePage],
];

let current = null;

function leavePage() {
  current?.abort();
  current = new AbortController();
  document.getElementById("live-status").hidden = true;
  return current.signal;
}

function showSignIn(message) {
  leavePage();
  signOutButton.hidden = true;
  signInPage.render(view, { message, onSignedIn: show });
}

async function show() {
  const [path, query = ""] = (location.hash.slice(1) || "/projects").split("?");
  const found = ROUTES.map(([re, page]) => [path.match(re), page]).find(([m]) => m);
  if (!found) {
    location.hash = "#/projects";
    return;
  }
  const [match, page] = found;
  const signal = leavePage();
  replace(view, loading());
  try {
    await page.render(view, {
      arg: match[1] && decodeURIComponent(match[1]),
      query: new URLSearchParams(query),
    }, { signal, poll: poller(signal, () => showSignIn("Your session ended: sign in again.")) });
    if (!signal.aborted) signOutButton.hidden = false;
  } catch (err) {
    if (signal.aborted || err.name === "AbortError") return;
    if (err.status === 401) return showSignIn();
    replace(view, failure(err, { retry: show }));
  }
}

signOutButton.addEventListener("click", async () => {
  await api.signOut().catch(() => {});
  showSignIn("Signed out.");
});
window.addEventListener("hashchange", show);
show();
