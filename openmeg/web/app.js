// openmeg dashboard: the single-line view of the MEG, alarms, trends, commands, and a
// prosumer's own energy. Plain JavaScript against the openmeg API; no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const FEEDERS = { R: "Residential feeder", I: "Industrial feeder", C: "Commercial feeder" };
const state = { meterOf: {}, metered: {}, token: sessionStorage.getItem("openmeg-token"), me: null, now: null,
  trend: null, trendPoints: [], socket: null, timers: [] };

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const r = await fetch(path, { ...options, headers });
  if (r.status === 401) { logout(); throw new Error("logged out"); }
  const body = r.status === 204 ? null : await r.json();
  if (!r.ok) throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
  return body;
}

async function login(event) {
  event.preventDefault();
  const form = new URLSearchParams({ grant_type: "password", username: $("username").value,
    password: $("password").value });
  const r = await fetch("/api/v1/auth/token", { method: "POST", body: form });
  const body = await r.json();
  if (!r.ok) { $("login-error").textContent = body.detail; return; }
  state.token = body.access_token;
  sessionStorage.setItem("openmeg-token", state.token);
  start();
}

function logout() {
  sessionStorage.removeItem("openmeg-token");
  state.token = null;
  state.timers.forEach(clearInterval);
  if (state.socket) state.socket.close();
  $("app").hidden = true;
  $("login").hidden = false;
}

// Every text from the API or the bus (alarm texts, device ids, names, errors) goes into the page
// as text: elements are built here, never from HTML strings.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined)
    .map((c) => (c instanceof Node ? c : String(c))));
  return el;
}
const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}
const path = (...parts) => parts.map(encodeURIComponent).join("/");

const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));

function node(device) {
  const el = document.createElement("div");
  el.className = "node";
  el.id = `node-${device.id}`;
  el.dataset.device = device.id;
  // a load is not on the wire: its premises' meter measures it
  const behind = state.meterOf[device.id];
  const idle = behind && !WIRED.has(device.kind) ? `metered by ${behind}` : "–";
  el.append(h("div", { class: "id" }, device.id), h("div", { class: "kind" }, device.kind),
    h("div", { class: "value", "data-point": "p_kw" }, idle));
  if (device.kind === "battery") el.append(h("div", { class: "soc" }, h("i", { style: "width:0%" })));
  el.addEventListener("click", () => openDevice(device.id));
  return el;
}

const WIRED = new Set(["pv", "wind", "chp", "fuel_cell", "battery", "heat_storage", "storage",
  "inverter", "sensor"]);

function learnMeters(meters) {
  // each device's top-level meter: a feeder's flow is its premises' meters plus what no meter
  // measures (the community's units)
  const byId = Object.fromEntries(meters.map((m) => [m.id, m]));
  const top = (m) => (m.parent && byId[m.parent] ? top(byId[m.parent]) : m.id);
  state.meterOf = {};
  state.metered = {};
  for (const m of meters) {
    for (const d of m.devices) {
      state.meterOf[d] = top(m);
      (state.metered[top(m)] = state.metered[top(m)] || []).push(d);
    }
  }
}

function buildSingleLine(devices) {
  const groups = {};
  for (const d of devices) {
    const letter = (d.bus.match(/^Bus ([A-Z])/) || [])[1];
    const name = state.me.role === "prosumer" ? "My premises"
      : d.origin === "added" ? "Added at run time" : FEEDERS[letter] || "On the MEG bus";
    (groups[name] = groups[name] || []).push(d);
  }
  const root = $("feeders");
  root.replaceChildren();
  for (const [name, list] of Object.entries(groups)) {
    const f = document.createElement("div");
    f.className = "feeder";
    f.append(h("h3", {}, `${name} `, h("span", { class: "flow", "data-feeder": name }, "–")),
      h("div", { class: "nodes" }));
    f.dataset.devices = list.map((d) => d.id).join(" ");
    list.filter((d) => d.kind !== "sensor").forEach((d) => f.querySelector(".nodes").append(node(d)));
    root.append(f);
  }
  $("device-ids").replaceChildren(...["pcc", ...devices.map((d) => d.id)]
    .map((id) => h("option", { value: id })));
  state.deviceCount = devices.length;
}

async function refreshDevices() {
  // a device added at run time joins the single-line view
  const devices = await api("/api/v1/devices");
  if (devices.length !== state.deviceCount) {
    buildSingleLine(devices);
    await refreshLive();
  }
}

const power = {};

function showFlows() {
  // each feeder's net power: into the MEG bus (its generation exceeds its use) or out of it;
  // premises by their meter (counted once), the units no meter measures by their own power
  for (const f of document.querySelectorAll(".feeder")) {
    const ids = new Set(f.dataset.devices.split(" "));
    // a meter whose devices are all on this feeder counts for them; a meter spread over
    // several feeders (the community's) leaves its units to count by their own power
    const whole = (m) => (state.metered[m] || []).every((d) => ids.has(d));
    const counted = new Set([...ids].map((id) => {
      const m = state.meterOf[id];
      return m && whole(m) ? m : id;
    }));
    const net = [...counted].reduce((sum, id) => sum + (power[id] || 0), 0);
    const label = f.querySelector(".flow");
    label.textContent = `${net >= 0 ? "▲" : "▼"} ${fmt(Math.abs(net))} kW ${net >= 0 ? "to" : "from"} the bus`;
    label.classList.toggle("gen", net >= 0);
  }
}

function showPoint(device, name, value, ts) {
  if (device === "pcc") {
    if (name === "frequency_hz") $("frequency").textContent = fmt(value, 3);
    if (name === "import_kw") $("import").textContent = fmt(value);
    if (name === "mode") showMode(["grid", "island", "blackout"][Math.round(value)] || "grid");
    if (name === "utility_available") $("utility-state").textContent = value ? "available" : "down";
  }
  const el = $(`node-${device}`);
  if (name === "p_kw" && value !== null) power[device] = value;
  if (name === "import_kw" && value !== null && device !== "pcc") power[device] = -value;
  if (el && name === "p_kw") {
    const v = el.querySelector(".value");
    v.textContent = `${fmt(value, 2)} kW`;
    el.classList.toggle("gen", value > 0.005);
    el.classList.toggle("use", value < -0.005);
  }
  if (el && name === "soc") {
    const bar = el.querySelector(".soc > i");
    if (bar) bar.style.width = `${Math.round(value * 100)}%`;
    el.title = `state of charge ${Math.round(value * 100)} %`;
  }
  if (state.trend && state.trend.device === device && state.trend.name === name && value !== null) {
    state.trendPoints.push([Date.parse(ts), value]);
    drawTrend();
  }
}

function showMode(mode) {
  const badge = $("mode");
  badge.dataset.mode = mode;
  badge.textContent = mode.toUpperCase();
  const open = mode !== "grid";
  $("switch-state").textContent = open ? "open" : "closed";
  $("transfer-switch").classList.toggle("open", open);
}

async function refreshLive() {
  const live = await api("/api/v1/live");
  state.now = live.ts;
  showMode(live.mode);
  $("frequency").textContent = fmt(live.frequency_hz, 3);
  $("import").textContent = fmt(live.import_kw);
  for (const [device, points] of Object.entries(live.devices)) {
    for (const [name, value] of Object.entries(points)) showPoint(device, name, value, live.ts);
  }
  showFlows();
}

async function refreshAlarms() {
  if (state.me.role === "prosumer") { $("alarms-card").hidden = true; return; }
  const alarms = await api("/api/v1/alarms?active=true");
  const body = $("alarms").querySelector("tbody");
  body.replaceChildren();
  $("no-alarms").hidden = alarms.length > 0;
  for (const a of alarms) {
    const tr = document.createElement("tr");
    tr.className = `sev-${a.severity}`;
    tr.dataset.alarm = a.key;
    const ack = a.acknowledged ? h("span", { class: "muted" }, `acknowledged by ${a.acknowledged_by}`)
      : (state.me.role === "operator" ? h("button", { type: "button" }, "Acknowledge") : null);
    tr.append(h("td", {}, `${a.key}: ${a.text}`), h("td", {}, a.severity),
      h("td", {}, new Date(a.raised_at).toLocaleTimeString()), h("td", {}, ack));
    const button = tr.querySelector("button");
    if (button) button.addEventListener("click", async () => {
      await api(`/api/v1/alarms/${path(a.source, a.code)}/ack`, { method: "POST" });
      refreshAlarms();
    });
    body.append(tr);
  }
}

async function refreshPrice() {
  try {
    const p = await api("/api/v1/prices/now");
    $("price").textContent = `${fmt(p.buy, 3)} / ${fmt(p.sell, 3)}`;
  } catch (err) { $("price").textContent = "none"; }
}

async function showTrend(device, name) {
  state.trend = { device, name };
  $("trend-device").value = device;
  $("trend-point").value = name;
  $("trend-title").textContent = `${device}/${name}`;
  const end = new Date(Date.parse(state.now || new Date().toISOString()) + 60000);
  const start = new Date(end.getTime() - 3600000);
  const q = `start=${start.toISOString()}&end=${end.toISOString()}&resolution=raw`;
  try {
    const rows = await api(`/api/v1/points/${path(device, name)}/history?${q}`);
    state.trendPoints = rows.filter((r) => r.value !== null).map((r) => [Date.parse(r.ts), r.value]);
  } catch (err) { state.trendPoints = []; $("trend-range").textContent = err.message; }
  drawTrend();
}

function drawTrend() {
  const pts = state.trendPoints.slice(-2000);
  const svg = $("trend");
  if (pts.length === 0) { svg.replaceChildren(); return; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
  const line = pts.map(([x, y]) =>
    `${((x - x0) / Math.max(x1 - x0, 1)) * 400},${160 - ((y - y0) / (y1 - y0)) * 150 - 5}`).join(" ");
  const last = line.split(" ").pop().split(",");
  svg.replaceChildren(svgEl("polyline", { points: line }),
    svgEl("circle", { cx: last[0], cy: last[1], r: 3 }));
  $("trend-range").textContent = `${pts.length} values, ${fmt(y0, 2)} .. ${fmt(y1, 2)}`;
}

function openDevice(device) {
  $("command-device").textContent = device;
  $("command-error").textContent = "";
  $("command-dialog").dataset.device = device;
  $("command-dialog").showModal();
}

function confirmThen(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm-dialog");
    $("confirm-text").textContent = text;
    dialog.onclose = () => resolve(dialog.returnValue === "yes");
    dialog.showModal();
  });
}

async function command(device, name, value) {
  if (!(await confirmThen(`Set ${device}/${name} to ${value}?`))) return false;
  await api("/api/v1/commands", { method: "POST", json: { device, name, value: Number(value) } });
  return true;
}

async function showMine() {
  if (state.me.role !== "prosumer") return;
  $("mine").hidden = false;
  const c = state.me.customer;
  const day = (state.now || new Date().toISOString()).slice(0, 10);
  const next = new Date(Date.parse(day) + 86400000).toISOString().slice(0, 10);
  const lines = [];
  const muted = (text) => h("p", { class: "muted" }, text);
  const meters = await api("/api/v1/meters");
  lines.push(h("p", {}, `Meters: ${meters.map((m) => m.id).join(", ")}`));
  try {
    const rev = await api(`/api/v1/revenue?start=${day}T00:00Z&end=${next}T00:00Z&by=day`);
    lines.push(h("table", {},
      h("tr", {}, h("th", {}, "device"), h("th", {}, "out kWh"), h("th", {}, "in kWh"),
        h("th", {}, "revenue")),
      ...rev.map((r) => h("tr", {}, h("td", {}, r.device), h("td", {}, fmt(r.out_kwh, 2)),
        h("td", {}, fmt(r.in_kwh, 2)), h("td", {}, fmt(r.revenue, 2))))));
  } catch (err) { lines.push(muted(`revenue: ${err.message}`)); }
  try {
    // the last closed month's issued bill (a month is billed once it is over)
    const d = new Date(Date.parse(day));
    const month = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
    const bill = await api(`/api/v1/bills/${path(c)}?period=${month}`);
    const revised = bill.revision > 1 ? ` (revision ${bill.revision}: ${bill.kind} ${fmt(bill.difference, 2)})` : "";
    lines.push(h("p", {}, `Bill ${month} no. ${bill.number}${revised}: `, h("b", {}, fmt(bill.total, 2))));
  } catch (err) { lines.push(muted(`bill: ${err.message}`)); }
  try {
    const t = await api(`/api/v1/trading/${path(c)}`);
    lines.push(h("p", {}, `Trading: ${t.windows.map((w) => `${w.from_hour}-${w.to_hour} h buy ≤ ${w.purchase}, ` +
      `sell ≥ ${w.sale}`).join("; ")}`));
  } catch (err) { lines.push(muted(`trading: ${err.message}`)); }
  $("mine-body").replaceChildren(...lines);
}

function connectStream() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream?token=${state.token}`);
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    for (const [device, name, value, ts] of frame.points || []) {
      state.now = ts > (state.now || "") ? ts : state.now;
      showPoint(device, name, value, ts);
    }
    if (state.now) $("meg-time").textContent = new Date(state.now).toISOString().slice(11, 19);
    showFlows();
    for (const m of frame.modes || []) showMode(m.mode);
    if ((frame.alarms || []).length) refreshAlarms();
  };
  socket.onclose = (event) => {
    if (event.code === 4401) { logout(); return; }
    if (state.token) setTimeout(connectStream, 1000);
  };
  state.socket = socket;
}

async function start() {
  try { state.me = await api("/api/v1/me"); } catch (err) { return; }
  $("login").hidden = true;
  $("app").hidden = false;
  document.body.classList.toggle("not-operator", state.me.role !== "operator");
  $("who").textContent = `${state.me.name} (${state.me.role})`;
  const site = await api("/api/v1/site");
  $("site-name").textContent = site.name;
  learnMeters(await api("/api/v1/meters"));
  buildSingleLine(await api("/api/v1/devices"));
  await refreshLive();
  await Promise.all([refreshAlarms(), refreshPrice(), showMine()]);
  connectStream();
  state.timers = [setInterval(refreshLive, 5000), setInterval(refreshAlarms, 3000),
    setInterval(refreshPrice, 30000), setInterval(refreshDevices, 10000)];
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("trend-form").addEventListener("submit", (e) => {
  e.preventDefault();
  showTrend($("trend-device").value, $("trend-point").value);
});
$("switch-open").addEventListener("click", () => command("pcc", "switch_command", 1));
$("switch-close").addEventListener("click", () => command("pcc", "switch_command", 2));
$("command-cancel").addEventListener("click", () => $("command-dialog").close());
$("command-trend").addEventListener("click", () => {
  $("command-dialog").close();
  showTrend($("command-dialog").dataset.device, "p_kw");
});
$("command-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const device = $("command-dialog").dataset.device;
  $("command-dialog").close();
  try { await command(device, $("command-point").value, $("command-value").value); }
  catch (err) { $("command-error").textContent = err.message; $("command-dialog").showModal(); }
});
if (state.token) start();
