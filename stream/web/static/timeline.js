// engagement-stream web page: the customer's score timeline (inline SVG, no libraries).
//
// scoreTimeline(history, bands, nowMs) draws the score history as a step line (a point holds
// until the next one: see docs/concepts/history.md), with the band regions shaded, a dashed
// line at every band boundary labelled with the band's name and upper bound, a vertical
// marker at every model-version change labelled with the version, dates on the x axis and a
// tooltip (title) on every point. It only reads its arguments; app.js places the result.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 1200, H = 320, L = 52, R = 150, T = 30, B = 30;
  const DAY = 86400000;

  function el(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      // Colours from CSS variables go through the CSSOM (the page's CSP allows that).
      if (typeof v === "string" && v.startsWith("var(")) node.style.setProperty(k, v);
      else node.setAttribute(k, String(v));
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const name = (band) => String(band).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  const num = (x) => (Math.round(x * 100) / 100).toLocaleString("en-US", { maximumFractionDigits: 2 });

  function dateLabel(ms, spanMs) {
    const d = new Date(ms);
    if (spanMs >= 2 * DAY) return d.toLocaleDateString("en-GB", { day: "numeric", month: "short" });
    const opts = spanMs >= 10 * 60000 ? { hour: "2-digit", minute: "2-digit" } : { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    return d.toLocaleTimeString("en-GB", opts);
  }
  function fullDate(ms) {
    return new Date(ms).toLocaleString("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // The y range: every point and every band boundary, with a margin.
  function yRange(points, bounds) {
    const values = points.map((p) => p[1]).concat(bounds);
    const lo = Math.min(...values), hi = Math.max(...values);
    const pad = Math.max(5, (hi - lo) * 0.12);
    return [lo - pad, hi + pad];
  }

  function scoreTimeline(history, bands, nowMs) {
    const svg = el("svg", { class: "chart timeline", viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": "Score over time with band boundaries and model-version changes" });
    const points = (history && history.points) || [];
    if (!points.length) {
      svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No score history yet"));
      return svg;
    }
    const markers = (history.markers || []).filter((m) => typeof m.at_ms === "number");
    // From the first point (or marker) to now; at least one bucket wide.
    const bucket = Math.max(1, history.bucket_ms || 1);
    const t0 = Math.min(points[0][0], ...markers.map((m) => m.at_ms));
    const t1 = Math.max(nowMs, t0 + Math.min(bucket, 3600000), points[points.length - 1][0] + 1, ...markers.map((m) => m.at_ms));
    const bounded = bands.filter((b) => b.upper !== null);
    const [lo, hi] = yRange(points, bounded.map((b) => b.upper));
    const x = (t) => L + (W - L - R) * ((t - t0) / Math.max(1, t1 - t0));
    const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    const clampY = (v) => Math.min(H - B, Math.max(T, y(v)));

    // Band regions (shaded) and their names in the right margin.
    for (const b of bands) {
      const top = clampY(b.upper === null ? hi : b.upper), bottom = clampY(b.lower === null ? lo : b.lower);
      if (bottom - top < 1) continue;
      svg.append(el("rect", { x: L, y: top, width: W - L - R, height: bottom - top, fill: `var(--${b.name}, #98a2b3)`, class: "band-region" }),
        el("text", { x: W - R + 10, y: (top + bottom) / 2 + 4, class: "band-label", "data-band-label": b.name }, name(b.name)));
    }
    // Band boundaries: a dashed line at each upper bound, its value on the y axis.
    for (const b of bounded) {
      const yy = y(b.upper);
      const g = el("g", { class: "band-line", "data-band-line": b.name });
      g.append(el("title", {}, `${name(b.name)}: up to ${num(b.upper)}`),
        el("line", { x1: L, x2: W - R, y1: yy, y2: yy }),
        el("text", { x: L - 6, y: yy + 4, "text-anchor": "end" }, num(b.upper)));
      svg.append(g);
    }
    // The x axis: five dates.
    svg.append(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis-line" }));
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (t1 - t0) * i / 4;
      // Times of day: the first label also names the day.
      const text = dateLabel(t, t1 - t0) + (i === 0 && t1 - t0 < 2 * DAY ? " · " + dateLabel(t, 2 * DAY) : "");
      svg.append(el("text", { x: x(t), y: H - B + 18, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle", class: "x-label" }, text));
    }
    // Model-version markers.
    markers.forEach((m, i) => {
      const xx = x(m.at_ms);
      const g = el("g", { class: "version-marker", "data-model-version": m.model_version });
      g.append(el("title", {}, `Model ${m.model_version} from ${fullDate(m.at_ms)}`),
        el("line", { x1: xx, x2: xx, y1: T - 6, y2: H - B }),
        el("text", { x: xx > W - R - 160 ? xx - 4 : xx + 4, y: T - 10 - (i % 2) * 11,
          "text-anchor": xx > W - R - 160 ? "end" : "start" }, `model ${m.model_version}`));
      svg.append(g);
    });
    // The score: a step line (each point holds until the next one, the last one until now).
    let d = "";
    points.forEach((p, i) => {
      const end = i + 1 < points.length ? points[i + 1][0] : t1;
      d += `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}H${x(end).toFixed(1)}`;
    });
    svg.append(el("path", { d, class: "score-line" }));
    const dots = el("g", { class: "score-points" });
    for (const p of points) {
      const dot = el("circle", { cx: x(p[0]), cy: y(p[1]), r: points.length > 60 ? 2.5 : 4, "data-at": p[0] });
      dot.append(el("title", {}, `Score ${num(p[1])} · bucket from ${fullDate(p[0])} (its latest evaluation)`));
      dots.append(dot);
    }
    svg.append(dots);
    return svg;
  }

  window.scoreTimeline = scoreTimeline;
})();
