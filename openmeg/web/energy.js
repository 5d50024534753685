// Energy views: today's and this month's energy per source and sink, self-sufficiency and
// self-consumption (from GET /api/v1/energy: the MEG at its PCC, or a prosumer's own premises),
// and an energy-flow picture: the sources and sinks around the bus, each flow drawn to scale
// and labelled with its kWh. Text always as text.
import { $, api, every, fmtDateTime, fmtKwh, fmtPct, h, state, svgEl } from "./core.js";

const LABEL = {
  pv: "PV", wind: "Wind", chp: "CHP", fuel_cell: "Fuel cell",
  battery_discharge: "Batteries, discharged", grid_import: "Grid, imported",
  battery_charge: "Batteries, charged", grid_export: "Grid, exported",
  homes: "Homes", commerce: "Commerce", industry: "Industry",
  community: "Community and shared parts", unmetered: "Losses and unmetered loads",
  loads: "Loads", chp_heat: "CHP heat into the stores", heat_demand: "Heat to the heat loads",
};
// the picture's nodes: sources on the left and top, sinks on the right and below
const NODES = {
  grid: { x: 70, y: 185, label: "Grid", cls: "grid" },
  pv: { x: 110, y: 60, label: "PV", cls: "gen" },
  wind: { x: 240, y: 40, label: "Wind", cls: "gen" },
  chp: { x: 370, y: 55, label: "CHP", cls: "gen" },
  fuel_cell: { x: 60, y: 295, label: "Fuel cell", cls: "gen" },
  battery: { x: 150, y: 340, label: "Batteries", cls: "store" },
  homes: { x: 470, y: 120, label: "Homes", cls: "use" },
  commerce: { x: 490, y: 205, label: "Commerce", cls: "use" },
  industry: { x: 460, y: 295, label: "Industry", cls: "use" },
  community: { x: 360, y: 345, label: "Community", cls: "use" },
  loads: { x: 480, y: 205, label: "Loads", cls: "use" },
  unmetered: { x: 255, y: 345, label: "Losses", cls: "use" },
  heat: { x: 500, y: 40, label: "Heat", cls: "heat" },
};
const HUB = { x: 260, y: 190 };

let period = "today";
let last = null;

function flowLine(from, to, kwh, max, cls, label) {
  const width = 1.5 + 12 * Math.sqrt(Math.max(kwh, 0) / Math.max(max, 1e-9));
  const g = svgEl("g", { class: `flow ${cls}`, "data-kwh": kwh.toFixed(3) });
  g.append(svgEl("line", { x1: from.x, y1: from.y, x2: to.x, y2: to.y, "stroke-width": width,
    "marker-end": kwh > 0 ? "url(#energy-arrow)" : "" }));
  g.append(svgEl("title", {}, label));
  return g;
}

function node(key, n, value, detail = null) {
  const g = svgEl("g", { class: `node ${n.cls}`, "data-node": key });
  g.append(svgEl("circle", { cx: n.x, cy: n.y, r: 30 }),
    svgEl("text", { x: n.x, y: n.y - 4, class: "node-name" }, n.label),
    svgEl("text", { x: n.x, y: n.y + 12, class: "node-value" }, value));
  if (detail) g.append(svgEl("text", { x: n.x, y: n.y + 44, class: "node-detail" }, detail));
  return g;
}

/** The energy-flow picture: each flow from its source to the bus, or from the bus to its sink,
 * its width by its energy. Grid and batteries flow both ways: their net flow is drawn. */
function picture(e) {
  const s = e.sources, k = e.sinks;
  const flows = []; // [node, kWh, into the bus?, label]
  for (const g of ["pv", "wind", "chp", "fuel_cell"]) {
    if (g in s) flows.push([g, s[g], true, `${LABEL[g]}: ${fmtKwh(s[g])}`]);
  }
  const gridNet = (s.grid_import || 0) - (k.grid_export || 0);
  flows.push(["grid", Math.abs(gridNet), gridNet >= 0,
    `in ${fmtKwh(s.grid_import)} · out ${fmtKwh(k.grid_export)}`]);
  const batNet = (s.battery_discharge || 0) - (k.battery_charge || 0);
  if ("battery_discharge" in s) {
    flows.push(["battery", Math.abs(batNet), batNet >= 0,
      `out ${fmtKwh(s.battery_discharge)} · in ${fmtKwh(k.battery_charge)}`]);
  }
  for (const u of ["homes", "commerce", "industry", "community", "loads", "unmetered"]) {
    if (u in k) flows.push([u, Math.max(k[u], 0), false, `${LABEL[u]}: ${fmtKwh(k[u])}`]);
  }
  const max = Math.max(...flows.map((f) => f[1]), 1e-9);
  const svg = svgEl("svg", { id: "energy-flow", viewBox: "0 0 560 400", role: "img",
    "aria-label": "energy flows of the period" });
  const defs = svgEl("defs");
  const marker = svgEl("marker", { id: "energy-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto" });
  marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z" }));
  defs.append(marker);
  svg.append(defs);
  const nodes = [];
  for (const [key, kwh, into, label] of flows) {
    const n = NODES[key];
    const cls = key === "grid" ? "grid" : into ? "gen" : "use";
    // a line stops at the circles' edges
    const [a, b] = into ? [n, HUB] : [HUB, n];
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const from = { x: a.x + (dx * 32) / len, y: a.y + (dy * 32) / len };
    const to = { x: b.x - (dx * 34) / len, y: b.y - (dy * 34) / len };
    svg.append(flowLine(from, to, kwh, max, cls, label));
    const both = key === "grid" || key === "battery";
    nodes.push(node(key, n, fmtKwh(kwh), both ? label : null));
  }
  const heat = e.heat || {};
  if ("heat_demand" in heat) {
    const n = NODES.heat;
    nodes.push(node("heat", n, fmtKwh(heat.heat_demand), `CHP ${fmtKwh(heat.chp_heat)}`));
    if ("chp" in s) {
      svg.append(flowLine({ x: NODES.chp.x + 32, y: NODES.chp.y }, { x: n.x - 34, y: n.y },
        heat.chp_heat || 0, Math.max(heat.chp_heat || 0, heat.heat_demand, 1e-9), "heat",
        `CHP heat into the stores: ${fmtKwh(heat.chp_heat)}`));
    }
  }
  const hubLabel = e.boundary === "premises" ? "My premises" : "MEG bus";
  svg.append(...nodes, svgEl("g", { class: "node hub", "data-node": "hub" },
    svgEl("circle", { cx: HUB.x, cy: HUB.y, r: 34 }),
    svgEl("text", { x: HUB.x, y: HUB.y - 2, class: "node-name" }, hubLabel),
    svgEl("text", { x: HUB.x, y: HUB.y + 14, class: "node-value" }, fmtKwh(e.consumption_kwh))));
  return svg;
}

function rows(entries) {
  return entries.map(([key, kwh]) => h("tr", { "data-flow": key },
    h("td", {}, LABEL[key] || key), h("td", { class: "num" }, fmtKwh(kwh))));
}

function render(e) {
  const title = e.period === "month" ? "This month" : "Today";
  $("energy-when").textContent = `${title}: ${fmtDateTime(e.start)} – ${fmtDateTime(e.end)}`;
  $("energy-self-sufficiency").textContent = fmtPct(e.self_sufficiency);
  $("energy-self-consumption").textContent = fmtPct(e.self_consumption);
  $("energy-generation").textContent = fmtKwh(e.generation_kwh);
  $("energy-consumption").textContent = fmtKwh(e.consumption_kwh);
  $("energy-sources").replaceChildren(...rows(Object.entries(e.sources)));
  $("energy-sinks").replaceChildren(...rows(Object.entries(e.sinks)));
  $("energy-heat").replaceChildren(...rows(Object.entries(e.heat || {})));
  $("energy-heat-card").hidden = Object.keys(e.heat || {}).length === 0;
  $("energy-flow-box").replaceChildren(picture(e));
  for (const b of document.querySelectorAll("#energy-periods button")) {
    b.setAttribute("aria-pressed", String(b.dataset.period === e.period));
  }
}

async function refresh() {
  const asked = period;
  try {
    const e = await api(`/api/v1/energy?period=${asked}`);
    if (asked !== period) return;
    last = e;
    $("energy-error").textContent = "";
    render(e);
  } catch (err) { $("energy-error").textContent = err.message; }
}

function build(root) {
  const figure = (id, label, hint) => h("div", { class: "figure" },
    h("div", { class: "figure-label" }, label), h("div", { class: "figure-value", id }, "–"),
    h("div", { class: "muted small" }, hint));
  root.replaceChildren(
    h("h2", {}, "Energy ", h("span", { id: "energy-when", class: "muted" }, "")),
    h("div", { id: "energy-periods", class: "periods" },
      h("button", { type: "button", "data-period": "today", id: "energy-today" }, "Today"),
      h("button", { type: "button", "data-period": "month", id: "energy-month" }, "This month")),
    h("div", { class: "figures" },
      figure("energy-self-sufficiency", "Self-sufficiency", "of consumption not imported"),
      figure("energy-self-consumption", "Self-consumption", "of local generation used here"),
      figure("energy-generation", "Generated", "PV, wind, CHP, fuel cell"),
      figure("energy-consumption", "Consumed", "by the loads")),
    h("div", { id: "energy-flow-box", class: "flow-box" }),
    h("div", { class: "energy-tables" },
      h("table", { id: "energy-in" }, h("thead", {}, h("tr", {}, h("th", {}, "From"), h("th", { class: "num" }, "energy"))),
        h("tbody", { id: "energy-sources" })),
      h("table", { id: "energy-out" }, h("thead", {}, h("tr", {}, h("th", {}, "To"), h("th", { class: "num" }, "energy"))),
        h("tbody", { id: "energy-sinks" }))),
    h("div", { id: "energy-heat-card", hidden: true },
      h("h3", {}, "Heat"), h("table", {}, h("tbody", { id: "energy-heat" }))),
    h("p", { id: "energy-error", class: "error", role: "alert" }));
}

export async function mount(root) {
  root.hidden = false;
  build(root);
  for (const b of root.querySelectorAll("#energy-periods button")) {
    b.addEventListener("click", () => { period = b.dataset.period; refresh(); });
  }
  refresh(); // not awaited: the page paints first
  every(30_000, refresh);
}

/** The latest energy answer shown (for tests and benchmarks). */
export const shown = () => last;
