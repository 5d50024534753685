// History charts: any point of any device the user may see, over any period, at a resolution
// that fits the span (a few thousand values at most); the x axis in the site's time zone with
// dates, the y axis in the point's unit; live growth as values arrive; drag to zoom in (fetched
// again at a finer resolution), "reset zoom" to go back. Charts drawn by uPlot (vendored, MIT).
import { $, api, fmt, fmtDateTime, h, localDate, onPoint, path, state } from "./core.js";

const MIN = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const PERIODS = [["hour", "last hour"], ["today", "today"], ["yesterday", "yesterday"],
  ["week", "last 7 days"], ["custom", "custom…"]];
// the finest resolution whose values over the span stay within a few thousand (the historian
// stores a point at most once a minute)
const RESOLUTIONS = [[6 * HOUR, "raw"], [2 * DAY, "1min"], [20 * DAY, "15min"], [Infinity, "1h"]];
const MEANING = { raw: "stored values", "1min": "1-minute means", "15min": "15-minute means",
  "1h": "hourly means" };
const MAX_SPAN = 31 * DAY;

let chart = null;
let view = null; // {device, name, unit, start, end, resolution, live}
let period = null; // the period chosen, [start, end] in ms: where "reset zoom" goes back to
let data = [[], []];
let pointsOf = {}; // device -> its point names
let asked = 0; // the latest request: an older answer is dropped

const tz = () => (state.site && state.site.timezone) || "UTC";
const nowMs = () => Date.parse(state.now || new Date().toISOString());
export const resolutionFor = (spanMs) => RESOLUTIONS.find(([span]) => spanMs <= span)[1];

// -- the site's local time: its wall clock for an instant, and the instant of a wall clock
const zoneFmt = {};
function wall(ms) {
  const key = tz();
  zoneFmt[key] = zoneFmt[key] || new Intl.DateTimeFormat("en-CA", { timeZone: key,
    hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: "2-digit" });
  const p = Object.fromEntries(zoneFmt[key].formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}`,
    utc: Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second) };
}
/** The instant (ms) at which the site's clocks read "YYYY-MM-DD" at "HH:MM". */
export function siteInstant(date, time = "00:00") {
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const guess = Date.UTC(y, m - 1, d, hh, mm);
  let t = guess - (wall(guess).utc - guess);
  t = guess - (wall(t).utc - t); // the offset at that instant, across a change of summer time
  return t;
}
const addDays = (date, n) => new Date(Date.parse(`${date}T12:00:00Z`) + n * DAY).toISOString().slice(0, 10);

function rangeOf(kind) {
  const now = nowMs();
  const today = localDate(new Date(now).toISOString());
  if (kind === "hour") return [now - HOUR, now + MIN];
  if (kind === "today") return [siteInstant(today), now + MIN];
  if (kind === "yesterday") return [siteInstant(addDays(today, -1)), siteInstant(today)];
  if (kind === "week") return [now - 7 * DAY, now + MIN];
  const [from, to] = [$("history-from").value, $("history-to").value];
  if (!from || !to) throw new Error("give the start and the end of the period");
  const [t0, t1] = [from, to].map((v) => siteInstant(v.slice(0, 10), v.slice(11, 16)));
  if (!(t1 > t0)) throw new Error("the end must come after the start");
  if (t1 - t0 > MAX_SPAN) throw new Error("at most 31 days at a time");
  return [t0, t1];
}

// -- axes: local times with the date where it changes; the unit on the y axis
function xTicks(u, splits) {
  let lastDate = null;
  const labels = splits.map((s) => {
    const w = wall(s * 1000);
    const label = w.date !== lastDate ? `${w.time}\n${w.date}` : w.time;
    lastDate = w.date;
    return label;
  });
  $("history-chart").dataset.xTicks = JSON.stringify(labels);
  return labels;
}
const yLabel = (name, unit) => (unit === "1" ? `${name} (ratio)` : `${name} (${unit})`);

function makeChart(unit) {
  const el = $("history-chart");
  el.replaceChildren();
  const uPlot = window.uPlot;
  if (!uPlot) { el.append(h("p", { class: "error" }, "the chart library did not load")); return null; }
  // stored values hold until the next (they are stored when they change); means are joined
  const held = uPlot.paths.stepped({ align: 1 }), joined = uPlot.paths.linear();
  const opts = {
    width: Math.max(el.clientWidth, 300), height: 320,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz()),
    scales: { x: { time: true } },
    series: [
      { label: "time", value: (u, v) => (v == null ? "–" : fmtDateTime(new Date(v * 1000).toISOString())) },
      { label: `${view.device}/${view.name}`, stroke: "#1d6fb8", width: 1.5, spanGaps: false,
        points: { show: false }, paths: (u, ...args) => (view.resolution === "raw" ? held : joined)(u, ...args),
        value: (u, v) => (v == null ? "–" : `${fmt(v, 3)} ${unit === "1" ? "" : unit}`) },
    ],
    axes: [
      { label: `local time (${tz()})`, values: xTicks, space: 90, size: 56, labelSize: 22 },
      { label: yLabel(view.name, unit), size: 64, labelSize: 22 },
    ],
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: { setSelect: [zoomed], setScale: [(u, key) => { if (key === "x") describe(u); }] },
  };
  const c = new uPlot(opts, data, el);
  el.dataset.yLabel = yLabel(view.name, unit);
  return c;
}

function describe(u) {
  const el = $("history-chart");
  const { min, max } = u.scales.x;
  if (min == null) return;
  el.dataset.xMin = String(Math.round(min * 1000));
  el.dataset.xMax = String(Math.round(max * 1000));
  el.dataset.resolution = view.resolution;
  el.dataset.count = String(data[0].length);
  $("history-caption").textContent = `${fmtDateTime(new Date(min * 1000).toISOString())} – `
    + `${fmtDateTime(new Date(max * 1000).toISOString())} · ${MEANING[view.resolution]} · `
    + `${data[0].length} values`;
}

// -- fetching and drawing
async function load(device, name, start, end, { zoom = false } = {}) {
  const ticket = ++asked;
  const resolution = resolutionFor(end - start);
  $("history-error").textContent = "";
  let unit = view && view.device === device && view.name === name ? view.unit : null;
  try {
    if (unit === null) unit = (await api(`/api/v1/points/${path(device, name)}`)).unit;
    const q = new URLSearchParams({ start: new Date(start).toISOString(),
      end: new Date(end).toISOString(), resolution });
    const rows = await api(`/api/v1/points/${path(device, name)}/history?${q}`);
    if (ticket !== asked) return;
    const fresh = !view || view.device !== device || view.name !== name || view.unit !== unit;
    view = { device, name, unit, start, end, resolution, live: !zoom && end >= nowMs() };
    data = [rows.map((r) => Date.parse(r.ts) / 1000), rows.map((r) => r.value)];
    $("history-title").textContent = `${device} · ${name} · ${unit === "1" ? "ratio" : unit}`;
    $("history-reset").disabled = !zoom;
    if (fresh || !chart) {
      if (chart) chart.destroy();
      chart = makeChart(unit);
    } else {
      chart.setData(data, false);
    }
    if (chart) chart.setScale("x", { min: start / 1000, max: end / 1000 });
  } catch (err) {
    if (ticket === asked) $("history-error").textContent = err.message;
  }
}

function zoomed(u) {
  const { left, width } = u.select;
  if (width < 4 || !view) return;
  const start = u.posToVal(left, "x") * 1000, end = u.posToVal(left + width, "x") * 1000;
  u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  if (end - start < 2 * MIN) return; // too narrow to show anything
  load(view.device, view.name, Math.round(start), Math.round(end), { zoom: true });
}

function grow(device, name, value, ts) {
  if (!view || !view.live || !chart || view.device !== device || view.name !== name) return;
  const t = Date.parse(ts) / 1000;
  const xs = data[0];
  if (value === null || value === undefined || (xs.length && t <= xs[xs.length - 1])) return;
  xs.push(t);
  data[1].push(value);
  if (t * 1000 > view.end - 5000) view.end = t * 1000 + MIN;
  chart.setData(data, false);
  chart.setScale("x", { min: view.start / 1000, max: view.end / 1000 });
}

// -- the picker: the devices the user may see and the points they have, and the period
function fillPoints(device, preferred) {
  const names = pointsOf[device] || [];
  const select = $("history-point");
  select.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  const pick = [preferred, "p_kw", "import_kw", "soc"].find((n) => names.includes(n));
  if (pick) select.value = pick;
}

function show() {
  const device = $("history-device").value, name = $("history-point").value;
  if (!device || !name) return;
  try {
    period = rangeOf($("history-period").value);
  } catch (err) { $("history-error").textContent = err.message; return; }
  load(device, name, ...period);
}

/** Open the history of a point (from another view): its last hour. */
export function showHistory(device, name = "p_kw") {
  if (!pointsOf[device]) pointsOf[device] = [name];
  $("history-device").value = device;
  fillPoints(device, name);
  $("history-period").value = "hour";
  $("history-custom").hidden = true;
  show();
  $("view-history").scrollIntoView({ behavior: "instant", block: "start" });
}

async function learnPoints() {
  const [devices, live] = await Promise.all([api("/api/v1/devices"), api("/api/v1/live")]);
  if (!state.now) state.now = live.ts;
  pointsOf = {};
  for (const [id, values] of Object.entries(live.devices)) {
    // the PCC is the MEG's, not a prosumer's: its history is for the others
    if (id !== "pcc" || state.me.role !== "prosumer") pointsOf[id] = Object.keys(values);
  }
  for (const d of devices) {
    pointsOf[d.id] = [...new Set([...(pointsOf[d.id] || []), ...Object.keys(d.values)])];
  }
  for (const id of Object.keys(pointsOf)) {
    pointsOf[id].sort();
    if (!pointsOf[id].length) delete pointsOf[id];
  }
  const ids = Object.keys(pointsOf).sort((a, b) => (a === "pcc" ? -1 : b === "pcc" ? 1 : a.localeCompare(b)));
  const select = $("history-device");
  const before = select.value;
  select.replaceChildren(...ids.map((id) => h("option", { value: id }, id)));
  select.value = ids.includes(before) ? before : ids[0] || "";
  fillPoints(select.value);
}

function build(root) {
  const periods = PERIODS.map(([v, label]) => h("option", { value: v }, label));
  root.prepend(
    h("h2", {}, "History ", h("span", { id: "history-title", class: "muted" }, "")),
    h("form", { id: "history-form", class: "history-form" },
      h("label", {}, "Device ", h("select", { id: "history-device", required: true })),
      h("label", {}, "Point ", h("select", { id: "history-point", required: true })),
      h("label", {}, "Period ", h("select", { id: "history-period" }, ...periods)),
      h("span", { id: "history-custom", hidden: true },
        h("label", {}, "from ", h("input", { id: "history-from", type: "datetime-local" })),
        h("label", {}, "to ", h("input", { id: "history-to", type: "datetime-local" }))),
      h("button", { type: "submit", id: "history-show" }, "Show"),
      h("button", { type: "button", id: "history-reset", disabled: true }, "Reset zoom")),
    h("p", { class: "muted hint" }, `Drag across the chart to zoom in. Times in the site's zone (${tz()}).`),
    h("div", { id: "history-chart", class: "history-chart", role: "img", "aria-label": "history chart" }),
    h("p", { id: "history-caption", class: "muted" }),
    h("p", { id: "history-error", class: "error", role: "alert" }));
  $("history-period").value = "today";
}

export async function mount(root) {
  build(root);
  $("history-device").addEventListener("change", () => fillPoints($("history-device").value));
  $("history-period").addEventListener("change", () => {
    const custom = $("history-period").value === "custom";
    $("history-custom").hidden = !custom;
    if (custom && !$("history-from").value) {
      const today = localDate(new Date(nowMs()).toISOString());
      $("history-from").value = `${addDays(today, -1)}T00:00`;
      $("history-to").value = `${today}T00:00`;
    }
  });
  $("history-form").addEventListener("submit", (e) => { e.preventDefault(); show(); });
  $("history-reset").addEventListener("click", () => {
    if (view && period) load(view.device, view.name, ...period);
  });
  onPoint(grow);
  const trend = $("command-trend");
  if (trend) {
    trend.addEventListener("click", () => {
      const dialog = $("command-dialog");
      dialog.close();
      const device = dialog.dataset.device;
      const names = pointsOf[device] || [];
      showHistory(device, ["p_kw", "import_kw", "soc"].find((n) => names.includes(n)) || "p_kw");
    });
  }
  new ResizeObserver(() => {
    const el = $("history-chart");
    if (chart && el.clientWidth > 0) chart.setSize({ width: el.clientWidth, height: 320 });
  }).observe($("history-chart"));
  // the first chart, once the points are known: not awaited, so the page paints first
  learnPoints().then(show).catch((err) => { $("history-error").textContent = err.message; });
}
