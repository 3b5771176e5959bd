// engagement-stream web page: the account views (B2B accounts from Segment group calls).
// Loaded after app.js and uses its helpers (h, card, empty, label, fmtScore, bandPill, ...).
// Routes: #/accounts (accounts at risk, or any band) and #/account/<id> (one account).
"use strict";

const accountHref = (id) => "#/account/" + encodeURIComponent(id);

function accountHistory(history) {
  // The account's score per bucket, as a step line.
  const points = (history && history.points) || [];
  if (points.length < 2) {
    return h("div", { class: "empty", id: "account-history", text: points.length ? `One point so far (${fmtScore(points[0][1])}); a point per day (the model's bucket) follows.` : "No history yet." });
  }
  const W = 560, H = 150, L = 40, R = 10, T = 10, B = 22;
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const scores = points.map((p) => p[1]);
  const lo = Math.min(0, ...scores), hi = Math.max(1, ...scores);
  const x = (t) => L + (W - L - R) * ((t - t0) / Math.max(1, t1 - t0));
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / Math.max(1e-9, hi - lo));
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
  return s("svg", { class: "chart", id: "account-history", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Account score over time" },
    s("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "grid-line" }),
    s("text", { x: L - 6, y: y(hi) + 4, "text-anchor": "end" }, fmtScore(hi)),
    s("text", { x: L - 6, y: y(lo) + 4, "text-anchor": "end" }, fmtScore(lo)),
    s("path", { d, fill: "none", stroke: "var(--accent)", "stroke-width": 2 }));
}

function accountAlert(a) {
  return h("div", { class: "alert-item", "data-alert": a.alert_id },
    h("div", {}, h("strong", { text: label(a.type) }), " · ", label(a.previous_band || "new"), h("span", { class: "arrow", text: "→" }),
      label(a.band), " ", h("span", { class: "muted", text: `${fmtScore(a.previous_score ?? 0)} → ${fmtScore(a.score)}` +
        (a.reference_score !== null && a.reference_score !== undefined ? ` (was ${fmtScore(a.reference_score)})` : "") + ` · ${when(a.occurred_at_ms)}` })));
}

async function viewAccount(main, id) {
  let a;
  try {
    if (!(await validId(id))) throw Object.assign(new Error("invalid account id"), { status: 400 });
    a = await getJSON("/api/accounts/" + encodeURIComponent(id));
  }
  catch (err) {
    if (err.status === 404 || err.status === 400) {
      main.replaceChildren(h("div", { class: "page-head" }, h("h1", { text: id })),
        card(null, empty(err.status === 404 ? "No account with this id is stored (or accounts are off in this model)." : "This is not a valid account id.")));
      return;
    }
    throw err;
  }
  const trend = a.trend || {};
  const users = a.top_users.map((u) => h("tr", { "data-customer": u.customer_id },
    h("td", {}, h("a", { class: "id", href: customerHref(u.customer_id), text: u.customer_id })),
    h("td", { class: "num", text: fmtScore(u.score) }),
    h("td", {}, bandPill(u.band))));
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("p", {}, h("a", { href: "#/accounts", text: "← Accounts" })))),
    h("section", { class: "card mb" },
      h("div", { class: "customer-head" },
        h("div", {}, h("div", { class: "tag", text: "Account" }), h("h1", { id: "account-id", text: a.account_id })),
        h("div", {}, h("div", { class: "tag", text: `Score (${a.aggregate.replace("_", " ")})` }),
          h("div", { class: "score", id: "account-score", text: a.score === null ? "—" : fmtScore(a.score) })),
        h("div", {}, h("div", { class: "tag", text: "Band" }), a.band ? bandPill(a.band) : h("span", { class: "muted", text: "no users" })),
        h("div", { class: "meta" }, h("span", { id: "account-users", text: plural(a.users, "user", "users") }),
          h("span", { text: `Updated ${a.updated_at ? when(Date.parse(a.updated_at)) : "never"}` }),
          h("span", { id: "account-trend", text: `7d ${trend.change_7d === null || trend.change_7d === undefined ? "—" : fmtSigned(trend.change_7d)} · 30d ${trend.change_30d === null || trend.change_30d === undefined ? "—" : fmtSigned(trend.change_30d)}` }))),
      a.score !== null ? h("div", { class: "scale" }, bandScale(a.bands, a.score)) : null),
    h("div", { class: "grid two" },
      card("Users (highest scores)", users.length ? h("table", { class: "list", id: "account-users-table" },
        h("thead", {}, h("tr", {}, h("th", { text: "Customer" }), h("th", { class: "num", text: "Score" }), h("th", { text: "Band" }))),
        h("tbody", {}, users)) : empty("No user.")),
      card("Score history", accountHistory(a.history),
        h("h2", { class: "mt", text: "Recent alerts" }),
        a.alerts.length ? h("div", { id: "account-alerts" }, a.alerts.map(accountAlert)) : empty("No account alert yet."))));
}

async function viewAccounts(main, band) {
  const query = band ? "?band=" + encodeURIComponent(band) : "";
  const r = await getJSON("/api/accounts" + query);
  if (!r.enabled) {
    main.replaceChildren(h("div", { class: "page-head" }, h("h1", { text: "Accounts" })),
      card(null, empty("Accounts are off in this model (add an 'accounts' section to roll users up into accounts).")));
    return;
  }
  const choices = Object.entries(r.counts).map(([name, n]) =>
    h("a", { class: "chip" + (name === r.band ? " pos" : ""), href: "#/accounts/" + encodeURIComponent(name), "data-band": name }, `${label(name)} ${n}`));
  const rows = r.accounts.map((a) => h("tr", { "data-account": a.account_id },
    h("td", {}, h("a", { class: "id", href: accountHref(a.account_id), text: a.account_id })),
    h("td", { class: "num", text: fmtScore(a.score) }),
    h("td", {}, bandPill(a.band)),
    h("td", { class: "num", text: a.users }),
    h("td", { class: "muted", text: a.updated_at ? ago(Date.parse(a.updated_at)) : "" })));
  main.replaceChildren(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: r.band === Object.keys(r.counts)[0] ? "Accounts at risk" : `Accounts: ${label(r.band)}` }),
      h("p", { class: "muted", text: `${plural(r.counts[r.band] || 0, "account is", "accounts are")} in ${label(r.band).toLowerCase()}; lowest score first.` })),
      h("div", { class: "chips", id: "account-bands" }, choices)),
    card(null, rows.length ? h("table", { class: "list", id: "accounts" },
      h("thead", {}, h("tr", {}, h("th", { text: "Account" }), h("th", { class: "num", text: "Score" }), h("th", { text: "Band" }),
        h("th", { class: "num", text: "Users" }), h("th", { text: "Last update" }))),
      h("tbody", {}, rows)) : empty("No account in this band.")));
}

window.EXTRA_VIEWS = Object.assign(window.EXTRA_VIEWS || {}, { account: viewAccount, accounts: viewAccounts });
