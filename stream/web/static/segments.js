// engagement-stream web page: the segment comparison on the overview (GET /api/segments).
// Per value of a segment dimension (a trait such as plan or country): customers, mean score,
// the band mix and the engagement index. Uses app.js's helpers (h, card, label, pct, ...);
// shown only when the model has segment dimensions (features.segments).
"use strict";
(() => {
  let chosen = null; // the dimension shown, kept across refreshes

  function mix(row, bands) {
    const bar = h("div", { class: "stack seg-mix", role: "img", "aria-label": "Band mix" });
    for (const b of bands) {
      const n = row.bands[b.name] || 0;
      if (!n) continue;
      const part = h("span", { title: `${label(b.name)}: ${n}`, "data-mix": b.name });
      part.style.width = (100 * n / Math.max(1, row.customers)) + "%";
      part.style.background = bandColor(b.name);
      bar.append(part);
    }
    return bar;
  }

  function table(dimension, rows, bands) {
    if (!rows.length) return empty("No customer has been scored with this trait yet.");
    return h("table", { class: "list seg-table", id: "segment-table", "data-dimension": dimension },
      h("thead", {}, h("tr", {}, h("th", { text: label(dimension) }), h("th", { class: "num", text: "Customers" }),
        h("th", { class: "num", text: "Mean score" }), h("th", { text: "Band mix" }),
        h("th", { class: "num", text: "Engaged" }), h("th", { class: "num", text: "Responsive" }),
        h("th", { class: "num", text: "Disengaged" }))),
      h("tbody", {}, rows.map((r) => h("tr", { "data-segment": r.value },
        h("td", { class: r.value.startsWith("(") ? "muted" : null, text: r.value }),
        h("td", { class: "num", "data-seg-customers": r.value, text: r.customers.toLocaleString("en-US") }),
        h("td", { class: "num", "data-seg-mean": r.value, text: fmtScore(r.mean_score) }),
        h("td", { class: "seg-bar" }, mix(r, bands)),
        h("td", { class: "num seg-engaged", "data-seg-engaged": r.value, text: pct(r.index.engaged) }),
        h("td", { class: "num", text: pct(r.index.responsive) }),
        h("td", { class: "num seg-disengaged", text: pct(r.index.disengaged) })))));
  }

  async function segmentsCard(o) {
    if (!o.features || !o.features.segments) return null;
    const r = await getJSON("/api/segments");
    const dims = Object.keys(r.dimensions);
    if (!dims.length) return null;
    if (!dims.includes(chosen)) chosen = dims[0];
    const body = h("div", { id: "segments-body" });
    const draw = () => body.replaceChildren(table(chosen, r.dimensions[chosen], o.bands));
    const picker = h("div", { class: "seg-dims", role: "group", "aria-label": "Segment dimension" });
    for (const d of dims) {
      picker.append(h("button", {
        type: "button", class: "ghost" + (d === chosen ? " active" : ""), "data-dimension": d, text: label(d),
        onclick: () => {
          chosen = d;
          picker.querySelectorAll("button").forEach((b) => b.classList.toggle("active", b.dataset.dimension === d));
          draw();
        },
      }));
    }
    draw();
    return h("section", { class: "card mt", id: "segments" },
      h("div", { class: "seg-head" }, h("h2", { text: "Segment comparison" }), picker), body,
      h("p", { class: "muted small", text: `Live rollups per trait value; at most ${r.max_values} values per dimension are tracked, later ones count as "(other)", customers without the trait as "(none)".` }));
  }

  window.overviewCards = window.overviewCards || [];
  window.overviewCards.push(segmentsCard);
})();
