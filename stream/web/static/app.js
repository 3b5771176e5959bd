// engagement-stream web page: plain JavaScript, no libraries, no external requests.
// Views are hash routes; each view polls its JSON endpoint every few seconds.
"use strict";

const POLL_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const GROUP_LABEL = { engaged: "Engaged", responsive: "Responsive", disengaged: "Disengaged" };
let timer = null;
let generation = 0;

// ---- DOM helpers (text only: data never goes through innerHTML) ----
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    // CSS variables go through the CSSOM (allowed by the page's CSP), not as attributes.
    if (typeof v === "string" && v.startsWith("var(")) el.style.setProperty(k, v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
const label = (name) => String(name).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
const fmtScore = (x) => (Math.round(x * 100) / 100).toLocaleString("en-US", { maximumFractionDigits: 2 });
const fmtSigned = (x) => (x > 0 ? "+" : x < 0 ? "−" : "") + fmtScore(Math.abs(x));
const plural = (n, one, many) => `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
const pct = (x) => x.toFixed(1) + "%";
const bandColor = (name) => `var(--${name}, #98a2b3)`;
const customerHref = (id) => "#/customer/" + encodeURIComponent(id);

function ago(ms) {
  const secs = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (secs < 60) return secs + " s ago";
  if (secs < 3600) return Math.round(secs / 60) + " min ago";
  if (secs < 86400) return Math.round(secs / 3600) + " h ago";
  return Math.round(secs / 86400) + " d ago";
}
function clock(ms) {
  return new Date(ms).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
function when(ms) {
  const d = new Date(ms);
  return d.toLocaleDateString("en-GB", { day: "numeric", month: "short" }) + " " + clock(ms) + " (" + ago(ms) + ")";
}
function bandPill(band) {
  return h("span", { class: "pill " + band, "data-band": band }, label(band || "unknown"));
}
function reasonChips(reasons) {
  if (!reasons || !reasons.length) return h("span", { class: "muted" }, "—");
  return h("div", { class: "chips" }, reasons.slice(0, 4).map((r) =>
    h("span", { class: "chip " + (r.change < 0 ? "neg" : "pos"), "data-factor": r.factor },
      `${label(r.factor)} ${fmtSigned(r.change)}`)));
}
function factorChips(factors) {
  if (!factors || !factors.length) return h("span", { class: "muted" }, "—");
  return h("div", { class: "chips" }, factors.map((f) =>
    h("span", { class: "chip " + (f.points < 0 ? "neg" : "pos") }, `${label(f.factor)} ${fmtSigned(f.points)}`)));
}
function card(title, ...body) {
  return h("section", { class: "card" }, title ? h("h2", { text: title }) : null, ...body);
}
function empty(text) { return h("div", { class: "empty", text }); }

// ---- fetching ----
async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (res.status === 401) { window.location.href = "/login"; throw new Error("signed out"); }
  const body = await res.json();
  if (!res.ok) throw Object.assign(new Error(body.error || res.statusText), { status: res.status });
  return body;
}
// The id rule of the API's 400 (/api/id-rule, from the decoder's): an id it refuses is
// never requested.
let idRule = null;
async function validId(id) {
  if (idRule === null) {
    const r = await getJSON("/api/id-rule");
    idRule = { ...r, forbidden: new RegExp(r.forbidden, "u") };
  }
  const length = [...id].length;
  return length > 0 && length <= idRule.max_length && !idRule.forbidden.test(id)
    && new TextEncoder().encode(id).length <= idRule.max_bytes;
}
function setLive(ok, text) {
  const live = document.getElementById("live");
  live.className = "live " + (ok ? "ok" : "err");
  document.getElementById("live-text").textContent = text;
}

// ---- charts (inline SVG) ----
function indexChart(history) {
  history = history.filter((p) => Object.values(p.counts).some((n) => n > 0));
  const W = 560, H = 190, L = 40, R = 10, T = 10, B = 24;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Engagement index over time" });
  for (const y of [0, 25, 50, 75, 100]) {
    const yy = T + (H - T - B) * (1 - y / 100);
    svg.append(s("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid-line" }),
      s("text", { x: L - 6, y: yy + 4, "text-anchor": "end" }, y + "%"));
  }
  if (history.length < 2) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle" },
      history.length ? "One snapshot so far; the chart fills in as snapshots are taken" : "No snapshots yet"));
    return svg;
  }
  const t0 = history[0].at_ms, t1 = history[history.length - 1].at_ms;
  const x = (t) => L + (W - L - R) * ((t - t0) / Math.max(1, t1 - t0));
  const y = (v) => T + (H - T - B) * (1 - v / 100);
  for (const group of ["engaged", "responsive", "disengaged"]) {
    const d = history.map((p, i) => `${i ? "L" : "M"}${x(p.at_ms).toFixed(1)},${y(p.index[group]).toFixed(1)}`).join("");
    svg.append(s("path", { d, fill: "none", stroke: `var(--${group})`, "stroke-width": 2, "stroke-linejoin": "round" }));
  }
  svg.append(s("text", { x: L, y: H - 6 }, clock(t0)), s("text", { x: W - R, y: H - 6, "text-anchor": "end" }, clock(t1)));
  return svg;
}
function sparkline(points) {
  if (!points || points.length < 2) return h("span", { class: "muted" }, "—");
  const W = 90, H = 24, lo = Math.min(...points), hi = Math.max(...points);
  const d = points.map((v, i) => `${i ? "L" : "M"}${(i * W / (points.length - 1)).toFixed(1)},${(H - 2 - (H - 4) * (v - lo) / Math.max(1e-9, hi - lo)).toFixed(1)}`).join("");
  return s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "spark" },
    s("path", { d, fill: "none", stroke: "var(--accent)", "stroke-width": 1.5 }));
}
function bandScale(bands, score) {
  // Band boundaries on a horizontal scale, named, with the customer's score marked.
  const W = 1200, H = 58, L = 4, R = 4, top = 12, bar = 22;
  const bounded = bands.map((b) => b.upper).filter((u) => u !== null);
  const span = Math.max(1, bounded[bounded.length - 1] - bounded[0]);
  const lo = Math.min(bounded[0] - span * 0.3, score - span * 0.05), hi = Math.max(bounded[bounded.length - 1] + span * 0.3, score + span * 0.05);
  const x = (v) => L + (W - L - R) * ((v - lo) / (hi - lo));
  const svg = s("svg", { class: "chart scale", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Score against the band boundaries" });
  bands.forEach((b) => {
    const x0 = x(b.lower === null ? lo : b.lower), x1 = x(b.upper === null ? hi : b.upper);
    svg.append(s("rect", { x: x0, y: top, width: Math.max(0, x1 - x0), height: bar, fill: bandColor(b.name), opacity: 0.9 }),
      s("text", { x: (x0 + x1) / 2, y: top + bar / 2 + 4, "text-anchor": "middle", class: "band-name" }, label(b.name)));
    if (b.upper !== null) svg.append(s("text", { x: x1, y: top + bar + 15, "text-anchor": "middle" }, fmtScore(b.upper)));
  });
  const xs = x(score);
  svg.append(s("path", { d: `M${xs - 7},${top - 11} L${xs + 7},${top - 11} L${xs},${top - 1} Z`, fill: "var(--ink)" }),
    s("line", { x1: xs, x2: xs, y1: top, y2: top + bar, stroke: "var(--ink)", "stroke-width": 3 }));
  return svg;
}

// ---- views ----
function kpi(cls, name, value, sub, test) {
  return h("div", { class: "card kpi " + cls, "data-kpi": test },
    h("div", { class: "label", text: name }), h("div", { class: "value", text: value }), h("div", { class: "sub", text: sub }));
}
function alertLine(a) {
  return h("div", { class: "alert-row", "data-alert": a.alert_id },
    h("span", { class: "when", title: new Date(a.occurred_at_ms).toISOString(), text: clock(a.occurred_at_ms) }),
    h("span", { class: "what" }, h("a", { href: customerHref(a.customer_id), class: "id", text: a.customer_id }),
      h("span", { class: "arrow", text: "→" }), label(a.band), " ", h("span", { class: "muted", text: `(${a.trigger})` })),
    h("span", { class: "num", text: fmtScore(a.score) }));
}

async function viewOverview(main) {
  const o = await getJSON("/api/overview");
  const stack = h("div", { class: "stack", role: "img", "aria-label": "Band distribution" },
    o.bands.filter((b) => b.count).map((b) => h("span", { title: `${label(b.name)}: ${b.count}` })));
  [...stack.children].forEach((el, i) => { el.style.width = (100 * o.bands.filter((b) => b.count)[i].count / Math.max(1, o.total)) + "%"; el.style.background = bandColor(o.bands.filter((b) => b.count)[i].name); });
  const max = Math.max(1, ...o.bands.map((b) => b.count));
  const rows = [...o.bands].reverse().map((b) => {
    const fill = h("div"); fill.style.width = (100 * b.count / max) + "%"; fill.style.background = bandColor(b.name);
    const range = b.lower === null ? `≤ ${fmtScore(b.upper)}` : b.upper === null ? `> ${fmtScore(b.lower)}` : `${fmtScore(b.lower)} – ${fmtScore(b.upper)}`;
    return h("tr", { "data-band-row": b.name },
      h("td", {}, h("span", { class: "swatch" }), label(b.name), " ", h("span", { class: "range", text: range })),
      h("td", { class: "bar" }, fill),
      h("td", { class: "num", "data-count": b.name, text: b.count.toLocaleString("en-US") }),
      h("td", { class: "num muted", text: pct(o.total ? 100 * b.count / o.total : 0) }));
  });
  rows.forEach((r, i) => { r.querySelector(".swatch").style.background = bandColor([...o.bands].reverse()[i].name); });
  // Further overview cards (segments.js, ...) register a maker in window.overviewCards.
  const extras = (await Promise.all((window.overviewCards || []).map((make) => make(o)))).filter(Boolean);
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Overview" }),
      h("p", { class: "muted", text: `Live engagement of ${plural(o.total, "customer", "customers")} · model ${o.model_version}` }))),
    h("div", { class: "grid kpis" },
      kpi("", "Customers", o.total.toLocaleString("en-US"), "scored in the window", "total"),
      kpi("engaged", "Engaged", pct(o.index.engaged), "highly engaged + power users", "engaged"),
      kpi("responsive", "Responsive", pct(o.index.responsive), "somewhat engaged", "responsive"),
      kpi("disengaged", "Disengaged", pct(o.index.disengaged), "very disengaged + churn risk", "disengaged"),
      kpi("alerts", "Alerts, last 24 h", o.alerts_24h.toLocaleString("en-US"), "churn-risk and other alerts", "alerts")),
    h("div", { class: "grid two" },
      card("Band distribution now", stack, h("table", { class: "bands" }, rows)),
      card("Engagement index over time", o.features.band_history ? indexChart(o.history) : empty("Band snapshots are off"),
        h("div", { class: "legend" }, ["engaged", "responsive", "disengaged"].map((g) => {
          const sw = h("span", { class: "swatch" }); sw.style.background = `var(--${g})`;
          return h("span", {}, sw, GROUP_LABEL[g]);
        })))),
    h("div", { class: "grid two mt" },
      card("Latest alerts", o.latest_alerts.length ? o.latest_alerts.map(alertLine) : empty("No alert in the last 24 hours"),
        h("p", {}, h("a", { href: "#/alerts", text: "All alerts of the last 24 hours →" }))),
      card("What the bands mean",
        h("p", { class: "muted", text: "Scores are the sum of a customer's event points over the model's rolling window. The engagement index groups the bands: engaged (highly engaged, power user), responsive (somewhat engaged) and disengaged (very disengaged, churn risk)." }),
        h("p", {}, h("a", { href: "#/at-risk", text: "Customers at risk →" }), "  ·  ", h("a", { href: "#/upsell", text: "Upsell candidates →" })))),
    ...extras);
}

function atRiskFilters(r, params) {
  // Segment (trait name = value) and account filters, offered from the candidates' facets;
  // the choice lives in the address (#/at-risk?trait=plan:pro&account=acme).
  const trait = params.get("trait") || "", account = params.get("account") || "";
  const go = () => {
    const q = new URLSearchParams();
    const t = document.getElementById("filter-trait").value, a = document.getElementById("filter-account").value;
    if (t) q.set("trait", t);
    if (a) q.set("account", a);
    location.hash = "#/at-risk" + (q.toString() ? "?" + q.toString() : "");
  };
  const traitSelect = h("select", { id: "filter-trait", "aria-label": "Segment", onchange: go },
    h("option", { value: "", text: "All segments" }),
    Object.entries(r.facets.traits).map(([name, values]) => h("optgroup", { label: name },
      values.map((v) => h("option", { value: `${name}:${v}`, text: `${name} = ${v}`, selected: `${name}:${v}` === trait })))));
  if (trait && ![...traitSelect.options].some((o) => o.value === trait)) traitSelect.append(h("option", { value: trait, text: trait.replace(":", " = "), selected: true }));
  const accounts = r.facets.accounts.includes(account) || !account ? r.facets.accounts : [account, ...r.facets.accounts];
  const accountSelect = h("select", { id: "filter-account", "aria-label": "Account", onchange: go },
    h("option", { value: "", text: "All accounts" }),
    accounts.map((a) => h("option", { value: a, text: a, selected: a === account })));
  return h("div", { class: "filters" }, h("label", { for: "filter-trait", text: "Segment" }), traitSelect,
    h("label", { for: "filter-account", text: "Account" }), accountSelect,
    trait || account ? h("a", { href: "#/at-risk", id: "filter-clear", text: "Clear" }) : null);
}

async function viewAtRisk(main, params) {
  const query = new URLSearchParams();
  for (const k of ["trait", "account"]) if (params.get(k)) query.set(k, params.get(k));
  const r = await getJSON("/api/at-risk" + (query.toString() ? "?" + query.toString() : ""));
  const showTrend = r.features.score_history;
  const filtered = Boolean(r.filters.trait || r.filters.account);
  const rows = r.customers.map((c) => h("tr", { "data-customer": c.customer_id },
    h("td", {}, h("a", { class: "id", href: customerHref(c.customer_id), text: c.customer_id })),
    h("td", { "data-account": c.account || "", class: c.account ? null : "muted", text: c.account || "—" }),
    h("td", { class: "muted", title: c.alert ? new Date(c.alert.occurred_at_ms).toISOString() : "" },
      c.alert ? ago(c.alert.occurred_at_ms) : "no recent alert"),
    h("td", {}, c.alert ? [label(c.alert.previous_band || "new"), h("span", { class: "arrow", text: "→" }), label(c.alert.band)] : bandPill(c.band)),
    h("td", { class: "num", text: fmtScore(c.score) }),
    h("td", {}, reasonChips(c.reasons)),
    showTrend ? h("td", {}, sparkline(c.trend)) : null,
    h("td", {}, c.alert ? h("span", { class: "tag", text: c.alert.trigger }) : null)));
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "At risk" }),
      h("p", { class: "muted", text: `${plural(r.in_band, "customer is", "customers are")} in ${label(r.band).toLowerCase()} now; newest entries first, with the factors that fell.` + (filtered ? ` Showing ${plural(r.customers.length, "match", "matches")}.` : "") })),
      atRiskFilters(r, params)),
    card(null, r.customers.length ? h("table", { class: "list", id: "at-risk" },
      h("thead", {}, h("tr", {}, h("th", { text: "Customer" }), h("th", { text: "Account" }), h("th", { text: "Entered" }), h("th", { text: "Band change" }),
        h("th", { class: "num", text: "Score now" }), h("th", { text: "Why (factors that fell)" }),
        showTrend ? h("th", { text: "Trend" }) : null, h("th", { text: "Trigger" }))),
      h("tbody", {}, rows)) : empty(filtered ? "No customer at risk matches these filters." : "No customer is at risk right now.")));
}

async function viewAlerts(main) {
  const r = await getJSON("/api/alerts?hours=24&limit=500");
  const rows = r.alerts.map((a) => h("tr", { "data-alert": a.alert_id },
    h("td", { class: "muted", title: new Date(a.occurred_at_ms).toISOString(), text: `${clock(a.occurred_at_ms)} · ${ago(a.occurred_at_ms)}` }),
    h("td", {}, h("a", { class: "id", href: customerHref(a.customer_id), text: a.customer_id })),
    h("td", { text: label(a.type) }),
    h("td", {}, label(a.previous_band || "new"), h("span", { class: "arrow", text: "→" }), bandPill(a.band)),
    h("td", { class: "num", text: `${fmtScore(a.previous_score ?? 0)} → ${fmtScore(a.score)}` }),
    h("td", {}, h("span", { class: "tag", text: a.trigger })),
    h("td", {}, reasonChips(a.reasons))));
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Alerts in the last 24 hours" }),
      h("p", { class: "muted", text: `${plural(r.count, "alert", "alerts")} since ${new Date(r.since_ms).toLocaleString("en-GB")}` + (r.count > r.alerts.length ? `; the newest ${r.alerts.length} shown` : "") }))),
    card(null, r.alerts.length ? h("table", { class: "list", id: "alerts" },
      h("thead", {}, h("tr", {}, ["When", "Customer", "Type", "Band change", "Score", "Trigger", "Reasons"].map((t, i) =>
        h("th", { class: i === 4 ? "num" : null, text: t })))),
      h("tbody", {}, rows)) : empty("No alert in the last 24 hours.")));
}

function upsellTable(id, customers) {
  const rows = customers.map((c, i) => h("tr", { "data-customer": c.customer_id },
    h("td", { class: "num muted", text: i + 1 }),
    h("td", {}, h("a", { class: "id", href: customerHref(c.customer_id), text: c.customer_id })),
    h("td", { class: "num", text: fmtScore(c.score) }),
    h("td", {}, bandPill(c.band)),
    h("td", {}, factorChips(c.top_factors)),
    h("td", { class: "muted", text: c.updated_at ? ago(Date.parse(c.updated_at)) : "" })));
  return h("table", { class: "list", id },
    h("thead", {}, h("tr", {}, h("th", { class: "num", text: "#" }), h("th", { text: "Customer" }), h("th", { class: "num", text: "Score" }),
      h("th", { text: "Band" }), h("th", { text: "Top factors" }), h("th", { text: "Last update" }))),
    h("tbody", {}, rows));
}

async function viewUpsell(main) {
  const r = await getJSON("/api/upsell");
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Upsell candidates" }),
      h("p", { class: "muted", text: `${plural(r.in_band, "customer is a", "customers are")} ${label(r.band).toLowerCase()}${r.in_band === 1 ? "" : "s"}; highest scores first, with what drives them.` }))),
    card(null, r.customers.length ? upsellTable("upsell", r.customers) : empty("No power user yet.")),
    r.next_band ? h("section", { class: "card mt" }, h("h2", { text: `Next in line: the top of ${label(r.next_band).toLowerCase()}` }),
      r.next_in_line.length ? upsellTable("next-in-line", r.next_in_line) : empty("Nobody in this band.")) : null);
}

async function viewCustomer(main, id) {
  let c;
  try {
    if (!(await validId(id))) throw Object.assign(new Error("invalid customer id"), { status: 400 });
    c = await getJSON("/api/customers/" + encodeURIComponent(id));
  }
  catch (err) {
    if (err.status === 404 || err.status === 400) {
      main.replaceChildren(h("div", { class: "page-head" }, h("h1", { text: id })),
        card(null, empty(err.status === 404 ? "No customer with this id is stored." : "This is not a valid customer id.")));
      return;
    }
    throw err;
  }
  const factors = Object.entries(c.breakdown).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const maxAbs = Math.max(1, ...factors.map(([, v]) => Math.abs(v)));
  const changes = (c.trend && c.trend.factor_changes_7d) || {};
  const factorRows = factors.map(([name, v]) => {
    const fill = h("div", { class: "fill " + (v < 0 ? "neg" : "pos") });
    const w = 50 * Math.abs(v) / maxAbs;
    fill.style.width = w + "%"; fill.style.left = (v < 0 ? 50 - w : 50) + "%";
    const change = changes[name];
    return h("div", { class: "factor", "data-factor": name }, h("span", { class: "name", text: label(name) }),
      h("div", { class: "track" }, h("div", { class: "axis" }), fill),
      h("span", { class: "num", "data-points": name, text: fmtSigned(v) }),
      h("span", { class: "change num " + (change < 0 ? "neg" : change > 0 ? "pos" : "muted"), "data-change": name,
        title: "Points in the last 7 days minus the 7 days before", text: change === undefined ? "—" : fmtSigned(change) }));
  });
  const trend = c.trend || {};
  const change7 = trend.change_7d === null || trend.change_7d === undefined ? "—" : fmtSigned(trend.change_7d);
  const timeline = window.scoreTimeline ? window.scoreTimeline(c.history, c.bands, Date.now()) : empty("Timeline unavailable");
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("p", {}, h("a", { href: "#/overview", text: "← Overview" })))),
    h("section", { class: "card mb" },
      h("div", { class: "customer-head" },
        h("div", {}, h("div", { class: "tag", text: "Customer" }), h("h1", { id: "customer-id", text: c.customer_id })),
        h("div", {}, h("div", { class: "tag", text: "Score" }), h("div", { class: "score", id: "customer-score", text: fmtScore(c.score) })),
        h("div", {}, h("div", { class: "tag", text: "Band" }), bandPill(c.band)),
        h("div", { class: "meta" }, h("span", { text: `Updated ${when(Date.parse(c.updated_at))}` }),
          h("span", { text: `Model ${c.model_version}` }),
          c.account ? h("a", { id: "customer-account", href: "#/account/" + encodeURIComponent(c.account), text: `Account ${c.account}` }) : null)),
      h("div", { class: "scale" }, bandScale(c.bands, c.score))),
    h("section", { class: "card mb", id: "timeline" }, h("h2", {}, "Score over time ",
      h("span", { class: "muted", id: "change-7d", text: `· 7-day change ${change7}` })), timeline),
    h("div", { class: "grid two" },
      card("Breakdown by factor", factors.length ? h("div", { id: "breakdown" },
        h("div", { class: "factor-head" }, h("span", { text: "Factor" }), h("span", { text: "Points in the window" }),
          h("span", { class: "num", text: "Now" }), h("span", { class: "num", text: "7-day change" })),
        factorRows) : empty("No points in the window.")),
      card("Recent alerts", c.alerts.length ? c.alerts.map((a) => h("div", { class: "alert-item", "data-alert": a.alert_id },
        h("div", {}, h("strong", { text: label(a.type) }), " · ", label(a.previous_band || "new"), h("span", { class: "arrow", text: "→" }),
          label(a.band), " ", h("span", { class: "muted", text: `${fmtScore(a.previous_score ?? 0)} → ${fmtScore(a.score)} · ${a.trigger} · ${when(a.occurred_at_ms)}` })),
        reasonChips(a.reasons))) : empty("No alert in the last 7 days."),
        c.traits && Object.keys(c.traits).length ? h("div", { id: "traits" }, h("h2", { text: "Traits" }),
          Object.entries(c.traits).sort().map(([k, v]) => h("div", { class: "trait", "data-trait": k },
            h("span", { class: "muted", text: `${k}: ` }), h("span", { text: typeof v === "string" ? v : JSON.stringify(v) })))) : null)));
}

// ---- routing and polling ----
const ROUTES = { overview: viewOverview, "at-risk": viewAtRisk, alerts: viewAlerts, upsell: viewUpsell };

function route() {
  // "#/view?query": ids in "#/customer/<id>" are percent-encoded, so a "?" there is a query.
  const raw = location.hash.replace(/^#\/?/, "");
  const cut = raw.indexOf("?");
  const hash = decodeURIComponent(cut < 0 ? raw : raw.slice(0, cut)) || "overview";
  const params = new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1));
  if (hash.startsWith("customer/")) return { view: "customer", arg: hash.slice("customer/".length), params };
  // Views added by other scripts (accounts.js): window.EXTRA_VIEWS[name](main, arg), "#/name[/arg]".
  for (const [name, fn] of Object.entries(window.EXTRA_VIEWS || {})) {
    if (hash === name || hash.startsWith(name + "/")) return { view: name, arg: hash.slice(name.length + 1) || null, extra: fn, params };
  }
  return { view: ROUTES[hash] ? hash : "overview", arg: null, params };
}

async function render() {
  const mine = ++generation;
  clearTimeout(timer);
  const { view, arg, extra, params } = route();
  document.querySelectorAll(".tabs a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  const main = document.getElementById("main");
  try {
    if (view === "customer") await viewCustomer(main, arg);
    else if (extra) await extra(main, arg);
    else await ROUTES[view](main, params);
    if (mine !== generation) return;
    setLive(true, "Live · updated " + clock(Date.now()));
  } catch (err) {
    if (mine !== generation) return;
    setLive(false, "Not updating: " + err.message);
  }
  if (mine === generation) timer = setTimeout(tick, POLL_MS);
}

// A refresh redraws the view; it waits while the tab is hidden or a filter menu has focus
// (redrawing would close the menu under the pointer).
function tick() {
  const choosing = document.activeElement && document.activeElement.tagName === "SELECT";
  if (document.hidden || choosing) timer = setTimeout(tick, POLL_MS / 5); else render();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = document.getElementById("search-input").value.trim();
    if (id) location.hash = customerHref(id);
  });
  document.getElementById("foot").textContent = "engagement-stream · read-only · refreshes every " + POLL_MS / 1000 + " s";
  window.addEventListener("hashchange", render);
  render();
});
