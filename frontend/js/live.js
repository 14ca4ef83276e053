// Live updates: a page polls while it is on screen; leaving the page stops its polls.

const POLL_MS = 3000;

const status = () => document.getElementById("live-status");

/**
 * Returns poll(fn): fn runs every POLL_MS until the page's signal aborts or fn returns false.
 * A failed tick shows a notice and tries again; a 401 goes to `onUnauthorized`.
 */
export function poller(signal, onUnauthorized) {
  return function poll(fn) {
    let timer;
    const tick = async () => {
      let again = true;
      try {
        again = (await fn()) !== false;
        status().hidden = true;
      } catch (err) {
        if (signal.aborted || err.name === "AbortError") return;
        if (err.status === 401) return onUnauthorized();
        status().textContent = `Live updates paused: ${err.message}. Retrying…`;
        status().hidden = false;
      }
      if (again && !signal.aborted) timer = setTimeout(tick, POLL_MS);
    };
    timer = setTimeout(tick, POLL_MS);
    signal.addEventListener("abort", () => clearTimeout(timer));
  };
}
