// The operator's single-line diagram, drawn as SVG from the site's network (/api/v1/network):
// the utility, the PCC and its transfer switch, buses, lines, transformers, the line switches and
// the tie, the meters and every device by name, with live values (/live, then the stream) and
// what each line carries and which parts are energised (/network/state, every second).
// Signs on the page: a load draws ("load 3.2 kW"), a source gives ("PV 4.1 kW"); the API's
// internal sign (into the MEG bus positive) stays in here.
import { $, api, command, emitPoint, every, fmt, h, onFrame, onPoint, state, svgEl } from "./core.js";

const KIND = { pv: "PV", wind: "wind", chp: "CHP", fuel_cell: "fuel cell", battery: "battery",
  heat_storage: "heat store", load: "load", shiftable_load: "shiftable load",
  ev_charger: "EV charger", heat_load: "heat load", sensor: "sensor" };
const SOURCES = new Set(["pv", "wind", "chp", "fuel_cell"]);
const DRAWS = new Set(["load", "shiftable_load", "ev_charger"]);
const SWITCH_WORD = { transfer: "transfer switch", breaker: "breaker", sectionalizer: "sectionalizer",
  tie: "tie switch" };
const VERTICAL_AT = 50; // a line's last run before the bus it feeds (see network_view.LINK_W)

let net = null;
let byId = {};
let meterById = {};
let busAt = {};
const live = {}; // device -> point -> value, from /live and the stream
let netState = null;
let svg = null;
let knownIds = new Set();
let addedCount = 0;
const metersDrawn = new Set();

const point = (device, name) => {
  const v = (live[device] || {})[name];
  return v === null || v === undefined || Number.isNaN(v) ? null : Number(v);
};
const operator = () => state.me && state.me.role === "operator";
const kw = (v) => `${fmt(Math.abs(v), 1)} kW`;

// -- values as people read them
function powerOf(id) {
  const p = point(id, "p_kw");
  if (p !== null) return p;
  const s = netState && netState.devices[id];
  return s && s.p_kw !== null && s.p_kw !== undefined ? s.p_kw : null;
}

function deviceText(d) {
  const word = KIND[d.kind] || d.kind;
  const p = powerOf(d.id);
  if (SOURCES.has(d.kind)) {
    if (p === null) return `${word} –`;
    let text = `${word} ${kw(p)}`;
    if (d.kind === "chp") {
      const heat = point(d.id, "heat_kw") ?? (d.eta_el ? Math.max(p, 0) * d.eta_th / d.eta_el : null);
      if (heat !== null) text += ` · heat ${kw(heat)}`;
    }
    return text;
  }
  if (DRAWS.has(d.kind)) {
    if (p === null) return d.meter && netState ? `${word} (in loads)` : `${word} –`;
    return `${word} ${kw(p)}`;
  }
  if (d.kind === "battery") {
    const soc = point(d.id, "soc");
    const pct = soc === null ? "–" : `${Math.round(soc * 100)} %`;
    if (p === null) return `battery · ${pct}`;
    const how = p > 0.05 ? "discharging" : p < -0.05 ? "charging" : "idle";
    return `${how} ${kw(p)} · ${pct}`;
  }
  if (d.kind === "heat_storage") {
    const soc = point(d.id, "soc");
    const demand = point(d.id, "heat_demand_kw");
    const pct = soc === null ? "–" : `${Math.round(soc * 100)} %`;
    const kwh = soc !== null && d.capacity_kwh ? ` · ${fmt(soc * d.capacity_kwh, 0)} kWh` : "";
    return `${pct}${kwh} · demand ${demand === null ? "–" : kw(demand)}`;
  }
  if (d.kind === "heat_load") return `heat from ${d.heat_storage || "–"}`;
  if (d.kind === "sensor") {
    const t = point(d.id, "temperature_c");
    const v = point(d.id, "vibration_mm_s");
    return `${t === null ? "–" : fmt(t, 1)} °C · ${v === null ? "–" : fmt(v, 1)} mm/s`;
  }
  return p === null ? word : `${word} ${kw(p)}`;
}

function meterText(m) {
  const imp = point(m.id, "import_kw") ??
    (netState && netState.meters[m.id] ? netState.meters[m.id].import_kw : null);
  let text = imp === null ? "–" : `${imp >= 0 ? "import" : "export"} ${kw(imp)}`;
  const loads = netState && netState.meters[m.id] && netState.meters[m.id].loads_kw;
  if (loads !== null && loads !== undefined) text += ` · loads ${kw(loads)}`;
  return text;
}

// -- drawing
const g = (attrs, ...children) => svgEl("g", attrs, ...children);
const text = (x, y, s, attrs = {}, ...more) => svgEl("text", { x, y, ...attrs }, s, ...more);
const short = (bus) => bus.replace(/^Bus /, "");

function drawBus(b) {
  const label = b.vn_kv >= 1 ? `${short(b.name)} · ${fmt(b.vn_kv, 0)} kV` : short(b.name);
  return g({ class: "bus", id: `bus-${b.name}`, "data-bus": b.name },
    svgEl("rect", { x: b.x - 2.5, y: b.y - 13, width: 5, height: 26, rx: 1 }),
    b.name === net.pcc_bus
      ? text(b.x - 6, b.y + 4, label, { class: "bus-label", "text-anchor": "end" })
      : text(b.x, b.y - 17, label, { class: "bus-label", "text-anchor": "middle" }),
    svgEl("title", {}, `${b.name}, ${b.vn_kv} kV`));
}

function branchPath(a, b) {
  // from the upstream bus's bar to the downstream one's: right, down, right
  const vx = b.x - VERTICAL_AT;
  return { d: `M${a.x},${a.y} H${vx} V${b.y} H${b.x}`, sx: vx, sy: b.y, ex: b.x };
}

function drawSwitch(sw, x, y) {
  const el = g({ class: `switch kind-${sw.kind}`, id: `switch-${sw.id}`, "data-switch": sw.id,
    "data-state": sw.normally_closed ? "closed" : "open",
    ...(sw.commandable && operator() ? { tabindex: 0 } : {}) },
  svgEl("rect", { x: x - 6, y: y - 6, width: 12, height: 12, rx: 1.5 }),
  text(x, y + 17, sw.id, { class: "switch-label", "text-anchor": "middle" }),
  svgEl("title", {}, `${SWITCH_WORD[sw.kind] || sw.kind} ${sw.id}` +
    (sw.line ? ` on ${sw.line}` : "") + (sw.normally_closed ? "" : ", normally open")));
  if (sw.commandable && operator()) {
    el.classList.add("commandable");
    el.setAttribute("role", "button");
    el.addEventListener("click", () => operateSwitch(sw));
    el.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") operateSwitch(sw); });
  }
  return el;
}

async function operateSwitch(sw) {
  const closed = switchClosed(sw.id);
  const what = sw.id === "pcc" ? "the PCC transfer switch" : `${SWITCH_WORD[sw.kind]} ${sw.id}`;
  const text = closed
    ? `Open ${what}${sw.id === "pcc" ? " (island the MEG)" : ""}?`
    : `Close ${what}?`;
  try { await command(sw.id, "switch_command", closed ? 1 : 2, text); }
  catch (err) { $("sld-error").textContent = `${sw.id}: ${err.message}`; }
}

function drawFlow(branch, x0, x1, y, sign = 1, turn = 0) {
  // an arrow and the power on a run of the line, turned the way the power goes; ``sign``: +1
  // when the run is drawn from the branch's from-bus towards its to-bus; ``turn``: the run's
  // direction (0: to the right, 90: down, -90: up)
  const mid = (x0 + x1) / 2;
  return g({ class: "flow", "data-branch": branch, "data-sign": sign, "data-turn": turn,
    "data-at": `${mid + 8},${y}` },
  svgEl("path", { class: "arrow", d: "M-4,-4 L4,0 L-4,4 Z", transform: `translate(${mid + 8},${y})` }),
  text(mid, y - 5, "–", { class: "flow-label", "text-anchor": "middle", "data-branch": branch }));
}

function drawPanel(p) {
  const el = g({ class: "panel", "data-bus": p.bus },
    svgEl("rect", { x: p.x, y: p.y, width: p.width, height: p.height, rx: 4 }));
  const right = p.x + p.width - 6;
  for (const r of p.rows) {
    if (r.kind === "meter") {
      const m = meterById[r.id];
      const row = g({ class: "meter", "data-meter": r.id },
        svgEl("circle", { cx: r.x + 4, cy: r.y - 3.5, r: 4 }),
        text(r.x + 11, r.y, r.id, { class: "meter-id" }),
        text(right, r.y, "–", { class: "value", "text-anchor": "end" }),
        svgEl("title", {}, `meter ${r.id} of ${m.customer_name}`));
      if (!metersDrawn.has(r.id)) row.id = `meter-${r.id}`; // a meter at several buses: once
      metersDrawn.add(r.id);
      el.append(row);
    } else {
      const d = byId[r.id];
      const row = g({ class: `device kind-${d.kind}`, id: `node-${d.id}`, "data-device": d.id,
        "data-kind": d.kind },
      svgEl("rect", { class: "hit", x: r.x - 2, y: r.y - 11, width: right - r.x + 4, height: 14 }),
      text(r.x, r.y, d.name, { class: "name" }),
      text(right, r.y, "–", { class: "value", "text-anchor": "end" }),
      svgEl("title", {}, `${d.name} (${d.id}), ${KIND[d.kind] || d.kind} at ${d.bus}`));
      row.addEventListener("click", () => openDevice(d.id));
      el.append(row);
    }
  }
  el.append(...heatPipes(p));
  return el;
}

function heatPipes(p) {
  // heat from a CHP into its heat store, and from the store to the heat loads listed here
  const at = Object.fromEntries(p.rows.map((r) => [r.id, r]));
  const out = [];
  const pipe = (a, b, kind) => {
    const x = p.x + 5;
    out.push(svgEl("path", { class: `heat-pipe ${kind}`, "data-from": a.id, "data-to": b.id,
      d: `M${a.x - 2},${a.y - 3.5} H${x} V${b.y - 3.5} H${b.x - 3}`, "marker-end": "url(#heat-arrow)" }));
  };
  for (const r of p.rows) {
    const d = byId[r.id];
    if (!d || !d.heat_storage || !at[d.heat_storage]) continue;
    if (d.kind === "chp") pipe(r, at[d.heat_storage], "in");
    if (d.kind === "heat_load") pipe(at[d.heat_storage], r, "out");
  }
  return out;
}

function draw(root) {
  const W = Math.max(net.width, 300), H = Math.max(net.height, 120);
  svg = svgEl("svg", { id: "sld", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": "single-line diagram", style: `max-width: min(100%, ${W}px)` });
  const islands = g({ id: "sld-islands" });
  const lines = g({ id: "sld-lines" });
  const top = g({ id: "sld-top" });
  svg.append(svgEl("defs", {}, svgEl("marker", { id: "heat-arrow", viewBox: "0 0 6 6", refX: 5, refY: 3,
    markerWidth: 5, markerHeight: 5, orient: "auto" }, svgEl("path", { d: "M0,0 L6,3 L0,6 Z", class: "heat-head" }))));
  svg.append(islands, lines, top);
  const switchOn = Object.fromEntries(net.switches.filter((s) => s.line).map((s) => [s.line, s]));

  // the utility and the PCC
  const pcc = busAt[net.pcc_bus];
  const pccSwitch = net.switches.find((s) => s.id === "pcc");
  if (pcc && pccSwitch) {
    // above the PCC bus: the utility, then the transfer switch
    const ux = pcc.x, uy = pcc.y - 78;
    top.append(g({ class: "utility", id: "sld-utility" },
      svgEl("rect", { x: ux - 14, y: uy - 14, width: 28, height: 28, rx: 3 }),
      svgEl("path", { d: `M${ux - 14},${uy - 14} L${ux + 14},${uy + 14} M${ux + 14},${uy - 14} L${ux - 14},${uy + 14}` }),
      text(ux + 22, uy - 2, "Utility grid: ", { class: "bus-label" },
        svgEl("tspan", { class: "value", id: "sld-utility-state" }, "–"))));
    lines.append(svgEl("path", { class: "line utility-line", id: "line-utility",
      d: `M${ux},${uy + 14} V${pcc.y - 13}` }));
    const sy = uy + 34;
    top.append(drawSwitch(pccSwitch, ux, sy));
    top.append(text(ux - 12, sy + 4, `PCC · ${net.transfer_switch.toUpperCase()}`,
      { "text-anchor": "end", class: "switch-label" }));
    const f = drawFlow("pcc", ux, ux, pcc.y - 26, 1, 90);
    f.querySelector(".flow-label").setAttribute("x", ux + 10);
    f.querySelector(".flow-label").setAttribute("y", pcc.y - 23);
    f.querySelector(".flow-label").setAttribute("text-anchor", "start");
    f.dataset.at = `${ux},${pcc.y - 26}`;
    top.append(f);
  }

  // lines, transformers and couplers, each from its upstream bus
  const branches = [
    ...net.lines.filter((l) => l.kind !== "tie").map((l) => ({ name: l.name, a: l.from_bus, b: l.to_bus,
      kind: "line", about: `${l.name}, ${fmt(l.length_km * 1000, 0)} m` })),
    ...net.transformers.map((t) => ({ name: t.name, a: t.hv_bus, b: t.lv_bus, kind: "trafo",
      about: `${t.name}, ${fmt(t.sn_kva, 0)} kVA` })),
    ...net.couplers.map((c) => ({ name: c.name, a: c.from_bus, b: c.to_bus, kind: "coupler",
      about: `bus coupler ${c.name}` })),
  ];
  for (const br of branches) {
    let a = busAt[br.a], b = busAt[br.b];
    if (!a || !b) continue;
    let sign = 1;
    if (a.x > b.x) { [a, b] = [b, a]; sign = -1; }
    const p = branchPath(a, b);
    lines.append(svgEl("path", { class: `line kind-${br.kind}`, id: `line-${br.name}`, d: p.d,
      "data-branch": br.name, "data-up": a.name, "data-down": b.name }, svgEl("title", {}, br.about)));
    const x0 = p.sx, x1 = p.ex - 4;
    if (br.kind === "trafo") {
      const cx = x0 + 12;
      top.append(g({ class: "trafo", "data-branch": br.name },
        svgEl("circle", { cx: cx - 4, cy: p.sy, r: 6 }), svgEl("circle", { cx: cx + 4, cy: p.sy, r: 6 }),
        svgEl("title", {}, br.name)));
      top.append(drawFlow(br.name, cx + 8, x1, p.sy, sign));
    } else if (switchOn[br.name]) {
      top.append(drawSwitch(switchOn[br.name], x0 + 10, p.sy));
      top.append(drawFlow(br.name, x0 + 16, x1, p.sy, sign));
    } else {
      top.append(drawFlow(br.name, x0, x1, p.sy, sign));
    }
  }
  // ties round the right of the tree
  net.lines.filter((l) => l.kind === "tie").forEach((t, i) => {
    const a = busAt[t.from_bus], b = busAt[t.to_bus];
    if (!a || !b) return;
    const X = W - 24 - i * 12;
    lines.append(svgEl("path", { class: "line kind-tie", id: `line-${t.name}`, "data-branch": t.name,
      d: `M${a.x},${a.y} H${X} V${b.y} H${b.x}` }));
    const my = (a.y + b.y) / 2;
    if (switchOn[t.name]) top.append(drawSwitch(switchOn[t.name], X, my - 30));
    const f = drawFlow(t.name, X - 8, X - 8, my + 20, 1, a.y < b.y ? 90 : -90);
    f.querySelector(".flow-label").setAttribute("text-anchor", "end");
    f.querySelector(".flow-label").setAttribute("x", X - 10);
    top.append(f);
  });
  for (const b of net.buses) top.append(drawBus(b));
  for (const p of net.panels) top.append(drawPanel(p));
  root.replaceChildren(svg);
}

// -- live state
function switchClosed(id) {
  const said = point(id, "switch_closed");
  if (said !== null) return said >= 0.5;
  if (netState && id in netState.switches) return netState.switches[id];
  const sw = net.switches.find((s) => s.id === id);
  return sw ? sw.normally_closed : true;
}

function showDevice(id) {
  const d = byId[id];
  const el = document.getElementById(`node-${id}`);
  if (!d || !el) return;
  const p = powerOf(id);
  el.querySelector(".value").textContent = deviceText(d);
  const gives = d.kind === "battery" || SOURCES.has(d.kind) ? p !== null && p > 0.05 : false;
  el.classList.toggle("gen", gives);
  el.classList.toggle("use", p !== null && p < -0.05);
}

function showMeter(id) {
  const m = meterById[id];
  if (!m) return;
  for (const el of svg.querySelectorAll(`[data-meter="${CSS.escape(id)}"] .value`)) el.textContent = meterText(m);
}

function showSwitch(id) {
  const el = document.getElementById(`switch-${id}`);
  if (!el) return;
  el.dataset.state = switchClosed(id) ? "closed" : "open";
}

function showFlows() {
  if (!netState) return;
  const flows = { ...netState.flows_kw };
  const pccImport = point("pcc", "import_kw");
  if (pccImport !== null) flows.pcc = pccImport; // from the utility into the PCC bus
  for (const f of svg.querySelectorAll(".flow")) {
    const v = flows[f.dataset.branch];
    const label = f.querySelector(".flow-label");
    const arrow = f.querySelector(".arrow");
    if (v === null || v === undefined) {
      label.textContent = f.dataset.branch === "pcc" ? "–" : "loop";
      arrow.style.display = "none";
      continue;
    }
    label.textContent = kw(v);
    const forward = v * Number(f.dataset.sign) >= 0;
    arrow.style.display = Math.abs(v) < 0.05 ? "none" : "";
    const angle = Number(f.dataset.turn) + (forward ? 0 : 180);
    arrow.setAttribute("transform", `translate(${f.dataset.at}) rotate(${angle})`);
  }
}

function showEnergised() {
  if (!netState) return;
  const on = new Set(netState.energised);
  for (const el of svg.querySelectorAll(".bus")) el.classList.toggle("dead", !on.has(el.dataset.bus));
  for (const el of svg.querySelectorAll(".panel")) el.classList.toggle("dead", !on.has(el.dataset.bus));
  for (const el of svg.querySelectorAll(".line[data-branch]")) {
    const l = net.lines.find((x) => x.name === el.dataset.branch);
    const ends = l ? [l.from_bus, l.to_bus] : [el.dataset.up, el.dataset.down];
    const open = l && l.switch && !switchClosed(l.switch);
    el.classList.toggle("dead", open || !ends.every((b) => on.has(b)));
  }
  const utilityLine = $("line-utility");
  if (utilityLine) utilityLine.classList.toggle("dead", !netState.utility_available);
  const us = $("sld-utility-state");
  if (us) us.textContent = netState.utility_available ? "available" : "down";
  drawIslands();
}

function drawIslands() {
  const layer = $("sld-islands");
  if (!layer) return;
  layer.replaceChildren();
  netState.islands.forEach((buses, i) => {
    const set = new Set(buses);
    const xs = [], ys = [];
    for (const b of buses) { const p = busAt[b]; if (p) { xs.push(p.x); ys.push(p.y); } }
    for (const p of net.panels) if (set.has(p.bus)) { xs.push(p.x, p.x + p.width); ys.push(p.y, p.y + p.height); }
    if (!xs.length) return;
    const x0 = Math.min(...xs) - 14, y0 = Math.min(...ys) - 34;
    const x1 = Math.max(...xs) + 14, y1 = Math.max(...ys) + 12;
    layer.append(g({ class: "island", id: `island-${i}`, "data-buses": buses.join("|") },
      svgEl("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 10 }),
      text(x1 - 10, y0 + 14, set.has(net.pcc_bus) ? "island (PCC open)" : "island",
        { class: "island-label", "text-anchor": "end" })));
  });
}

function showState() {
  for (const d of net.devices) showDevice(d.id);
  for (const m of net.meters) showMeter(m.id);
  for (const s of net.switches) showSwitch(s.id);
  showFlows();
  showEnergised();
  showHeat();
}

async function refreshState() {
  netState = await api("/api/v1/network/state");
  showState();
}

function showHeat() {
  const box = $("sld-heat");
  if (!box) return;
  const stores = net.devices.filter((d) => d.kind === "heat_storage");
  box.replaceChildren(...stores.map((hs) => {
    const chps = net.devices.filter((d) => d.kind === "chp" && d.heat_storage === hs.id);
    const loads = net.devices.filter((d) => d.kind === "heat_load" && d.heat_storage === hs.id);
    const give = chps.map((c) => {
      const p = powerOf(c.id);
      const heat = point(c.id, "heat_kw") ?? (p !== null && c.eta_el ? Math.max(p, 0) * c.eta_th / c.eta_el : null);
      return `${c.name} gives ${heat === null ? "–" : kw(heat)} of heat`;
    });
    const soc = point(hs.id, "soc");
    const demand = point(hs.id, "heat_demand_kw");
    return h("p", { "data-heat": hs.id }, `Heat: ${give.join(", ") || "no CHP"} → ${hs.name} `,
      h("b", {}, soc === null ? "–" : `${Math.round(soc * 100)} %`),
      soc !== null && hs.capacity_kwh ? ` (${fmt(soc * hs.capacity_kwh, 0)} of ${fmt(hs.capacity_kwh, 0)} kWh)` : "",
      ` → ${loads.map((l) => l.name).join(", ") || "no heat load"}: demand `,
      h("b", {}, demand === null ? "–" : kw(demand)));
  }));
}

function showPoint(device, name, value) {
  if (device === "pcc") {
    if (name === "mode") showPcc(Math.round(value) !== 0);
    if (name === "utility_available") $("utility-state").textContent = value ? "available" : "down";
  }
  (live[device] = live[device] || {})[name] = value;
  if (!svg) return;
  if (byId[device]) showDevice(device);
  else if (meterById[device]) showMeter(device);
  if (name === "switch_closed") showSwitch(device);
}

function showPcc(open) {
  $("switch-state").textContent = open ? "open" : "closed";
  $("transfer-switch").classList.toggle("open", open);
}

function openDevice(device) {
  $("command-device").textContent = device;
  $("command-error").textContent = "";
  $("command-dialog").dataset.device = device;
  $("command-dialog").showModal();
}

export async function refreshLive() {
  const [snapshot, now] = await Promise.all([api("/api/v1/live"), api("/api/v1/network/state")]);
  netState = now;
  state.now = snapshot.ts;
  emitPoint("pcc", "mode", ["grid", "island", "blackout"].indexOf(snapshot.mode), snapshot.ts);
  emitPoint("pcc", "frequency_hz", snapshot.frequency_hz, snapshot.ts);
  emitPoint("pcc", "import_kw", snapshot.import_kw, snapshot.ts);
  for (const [device, points] of Object.entries(snapshot.devices)) {
    for (const [name, value] of Object.entries(points)) emitPoint(device, name, value, snapshot.ts);
  }
  showState();
}

async function showAdded() {
  // devices added at run time are on the wire but not in the site file's network
  const devices = await api("/api/v1/devices");
  const added = devices.filter((d) => !knownIds.has(d.id) && d.origin === "added");
  if (added.length === addedCount) return;
  addedCount = added.length;
  const box = $("sld-added");
  box.replaceChildren(...(added.length ? [h("h3", {}, "Added at run time")] : []),
    ...added.map((d) => {
      const el = h("div", { class: "node", id: `node-${d.id}`, "data-device": d.id },
        h("div", { class: "id" }, d.id), h("div", { class: "kind" }, d.kind),
        h("div", { class: "value" }, "–"));
      el.addEventListener("click", () => openDevice(d.id));
      return el;
    }));
  $("device-ids").replaceChildren(...["pcc", ...knownIds, ...added.map((d) => d.id)].map((id) => h("option", { value: id })));
}

export async function mount(root) {
  net = await api("/api/v1/network");
  byId = Object.fromEntries(net.devices.map((d) => [d.id, d]));
  meterById = Object.fromEntries(net.meters.map((m) => [m.id, m]));
  busAt = Object.fromEntries(net.buses.map((b) => [b.name, b]));
  knownIds = new Set([...net.devices.map((d) => d.id), ...net.meters.map((m) => m.id)]);
  const prosumer = state.me.role === "prosumer";
  const holder = $("feeders");
  holder.className = "sld-holder";
  const title = h("h3", { id: "sld-title" }, prosumer ? "My premises" : state.site.name);
  const canvas = h("div", { id: "sld-canvas" });
  holder.replaceChildren(title, h("p", { id: "sld-error", class: "error", role: "alert" }), canvas,
    h("div", { id: "sld-heat", class: "muted" }), h("div", { id: "sld-added", class: "nodes" }),
    h("p", { class: "muted legend" }, "Arrows: the way power flows (losses neglected). Grey: not energised. ",
      "Loads are shown drawing, sources giving; a dashed outline is an island."));
  draw(canvas);
  $("device-ids").replaceChildren(...["pcc", ...knownIds].map((id) => h("option", { value: id })));
  onPoint(showPoint);
  onFrame((frame) => {
    for (const m of frame.modes || []) showPcc(m.mode !== "grid");
    showFlows();
  });
  $("switch-open").addEventListener("click", () => command("pcc", "switch_command", 1));
  $("switch-close").addEventListener("click", () => command("pcc", "switch_command", 2));
  $("command-cancel").addEventListener("click", () => $("command-dialog").close());
  $("command-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const device = $("command-dialog").dataset.device;
    $("command-dialog").close();
    try { await command(device, $("command-point").value, $("command-value").value); }
    catch (err) { $("command-error").textContent = err.message; $("command-dialog").showModal(); }
  });
  every(1000, refreshState);
  every(10_000, showAdded);
}
