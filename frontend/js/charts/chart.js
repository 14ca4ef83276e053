// Drawing a chart with Plotly.react: the same div is updated in place, and a constant
// uirevision keeps the user's zoom and hidden traces while live data arrives.

const FONT = { family: "system-ui, -apple-system, 'Segoe UI', sans-serif", size: 12 };

/** How many points to ask the server for: two (a bucket's min and max) per pixel column. */
export function pointBudget(div) {
  return Math.max(200, 2 * Math.round(div.clientWidth || 800));
}

/** Only the points with x > 0: a log axis cannot place the others (step 0 above all). */
function positiveX(trace) {
  const keep = trace.x.map((v) => v > 0);
  const pick = (arr) => arr.filter((_, i) => keep[i]);
  return { ...trace, x: pick(trace.x), y: pick(trace.y) };
}

/**
 * opts: xTitle, yTitle, logX, logY, dateX (x values are date strings: a date axis, never log), y2Title (a right axis for the lr), shapes, annotations,
 * hovermode (default "x"), revision (change it to reset the zoom, e.g. when the x axis changes).
 */
export function draw(div, traces, opts) {
  const layout = {
    uirevision: opts.revision,
    margin: { l: 60, r: opts.y2Title ? 80 : 20, t: 24, b: 48 },
    font: FONT,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fff",
    hovermode: opts.hovermode ?? "x",
    showlegend: true,
    legend: { orientation: "h", y: -0.25, font: { size: 11 } },
    xaxis: { title: { text: opts.xTitle }, gridcolor: "#eef0f3",
      type: opts.dateX ? "date" : opts.logX ? "log" : "linear" },
    yaxis: { title: { text: opts.yTitle }, type: opts.logY ? "log" : "linear", gridcolor: "#eef0f3" },
    shapes: opts.shapes ?? [],
    annotations: opts.annotations ?? [],
  };
  if (opts.y2Title) {
    layout.yaxis2 = {
      title: { text: opts.y2Title, standoff: 8 }, overlaying: "y", side: "right",
      showgrid: false, rangemode: "tozero", tickformat: ".1~e",
    };
  }
  const shown = opts.logX && !opts.dateX ? traces.map(positiveX) : traces;
  return window.Plotly.react(div, shown, layout, { responsive: true, displaylogo: false });
}
