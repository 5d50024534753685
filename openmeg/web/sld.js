// The single-line view of the MEG: its devices by feeder, their live power, the transfer switch.
import { $, api, command, emitPoint, fmt, h, onFrame, onPoint, state, every } from "./core.js";

const FEEDERS = { R: "Residential feeder", I: "Industrial feeder", C: "Commercial feeder" };
const WIRED = new Set(["pv", "wind", "chp", "fuel_cell", "battery", "heat_storage", "storage",
  "inverter", "sensor"]);
const power = {};
let meterOf = {};
let metered = {};
let deviceCount = 0;

function node(device) {
  const el = h("div", { class: "node", id: `node-${device.id}`, "data-device": device.id });
  // a load is not on the wire: its premises' meter measures it
  const behind = meterOf[device.id];
  const idle = behind && !WIRED.has(device.kind) ? `metered by ${behind}` : "–";
  el.append(h("div", { class: "id" }, device.id), h("div", { class: "kind" }, device.kind),
    h("div", { class: "value", "data-point": "p_kw" }, idle));
  if (device.kind === "battery") el.append(h("div", { class: "soc" }, h("i", { style: "width:0%" })));
  el.addEventListener("click", () => openDevice(device.id));
  return el;
}

function learnMeters(meters) {
  // each device's top-level meter: a feeder's flow is its premises' meters plus what no meter
  // measures (the community's units)
  const byId = Object.fromEntries(meters.map((m) => [m.id, m]));
  const top = (m) => (m.parent && byId[m.parent] ? top(byId[m.parent]) : m.id);
  meterOf = {};
  metered = {};
  for (const m of meters) {
    for (const d of m.devices) {
      meterOf[d] = top(m);
      (metered[top(m)] = metered[top(m)] || []).push(d);
    }
  }
}

function build(devices) {
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
    const f = h("div", { class: "feeder", "data-devices": list.map((d) => d.id).join(" ") },
      h("h3", {}, `${name} `, h("span", { class: "flow", "data-feeder": name }, "–")),
      h("div", { class: "nodes" }));
    list.filter((d) => d.kind !== "sensor").forEach((d) => f.querySelector(".nodes").append(node(d)));
    root.append(f);
  }
  $("device-ids").replaceChildren(...["pcc", ...devices.map((d) => d.id)]
    .map((id) => h("option", { value: id })));
  deviceCount = devices.length;
}

function showFlows() {
  // each feeder's net power: into the MEG bus (its generation exceeds its use) or out of it;
  // premises by their meter (counted once), the units no meter measures by their own power
  for (const f of document.querySelectorAll(".feeder")) {
    const ids = new Set(f.dataset.devices.split(" "));
    const whole = (m) => (metered[m] || []).every((d) => ids.has(d));
    const counted = new Set([...ids].map((id) => {
      const m = meterOf[id];
      return m && whole(m) ? m : id;
    }));
    const net = [...counted].reduce((sum, id) => sum + (power[id] || 0), 0);
    const label = f.querySelector(".flow");
    label.textContent = `${net >= 0 ? "▲" : "▼"} ${fmt(Math.abs(net))} kW ${net >= 0 ? "to" : "from"} the bus`;
    label.classList.toggle("gen", net >= 0);
  }
}

function showPoint(device, name, value) {
  if (device === "pcc") {
    if (name === "mode") showSwitch(Math.round(value) !== 0);
    if (name === "utility_available") $("utility-state").textContent = value ? "available" : "down";
  }
  const el = $(`node-${device}`);
  if (name === "p_kw" && value !== null) power[device] = value;
  if (name === "import_kw" && value !== null && device !== "pcc") power[device] = -value;
  if (el && name === "p_kw") {
    el.querySelector(".value").textContent = `${fmt(value, 2)} kW`;
    el.classList.toggle("gen", value > 0.005);
    el.classList.toggle("use", value < -0.005);
  }
  if (el && name === "soc") {
    const bar = el.querySelector(".soc > i");
    if (bar) bar.style.width = `${Math.round(value * 100)}%`;
    el.title = `state of charge ${Math.round(value * 100)} %`;
  }
}

function showSwitch(open) {
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
  const live = await api("/api/v1/live");
  state.now = live.ts;
  emitPoint("pcc", "mode", ["grid", "island", "blackout"].indexOf(live.mode), live.ts);
  emitPoint("pcc", "frequency_hz", live.frequency_hz, live.ts);
  emitPoint("pcc", "import_kw", live.import_kw, live.ts);
  for (const [device, points] of Object.entries(live.devices)) {
    for (const [name, value] of Object.entries(points)) emitPoint(device, name, value, live.ts);
  }
  showFlows();
}

export async function mount() {
  learnMeters(await api("/api/v1/meters"));
  build(await api("/api/v1/devices"));
  onPoint(showPoint);
  onFrame((frame) => {
    showFlows();
    for (const m of frame.modes || []) showSwitch(m.mode !== "grid");
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
  every(10_000, async () => {
    // a device added at run time joins the view
    const devices = await api("/api/v1/devices");
    if (devices.length !== deviceCount) { build(devices); await refreshLive(); }
  });
}
