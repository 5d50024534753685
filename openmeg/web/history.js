// History of any point: the last hour of its values, growing as values arrive on the stream.
import { $, api, fmt, onPoint, path, state, svgEl } from "./core.js";

let trend = null;
let points = [];

export async function showTrend(device, name) {
  trend = { device, name };
  $("trend-device").value = device;
  $("trend-point").value = name;
  $("trend-title").textContent = `${device}/${name}`;
  const end = new Date(Date.parse(state.now || new Date().toISOString()) + 60000);
  const start = new Date(end.getTime() - 3600000);
  const q = `start=${start.toISOString()}&end=${end.toISOString()}&resolution=raw`;
  try {
    const rows = await api(`/api/v1/points/${path(device, name)}/history?${q}`);
    points = rows.filter((r) => r.value !== null).map((r) => [Date.parse(r.ts), r.value]);
  } catch (err) { points = []; $("trend-range").textContent = err.message; }
  draw();
}

function draw() {
  const pts = points.slice(-2000);
  const svg = $("trend");
  if (pts.length === 0) { svg.replaceChildren(); return; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
  const line = pts.map(([x, y]) =>
    `${((x - x0) / Math.max(x1 - x0, 1)) * 400},${160 - ((y - y0) / (y1 - y0)) * 150 - 5}`).join(" ");
  const last = line.split(" ").pop().split(",");
  svg.replaceChildren(svgEl("polyline", { points: line }), svgEl("circle", { cx: last[0], cy: last[1], r: 3 }));
  $("trend-range").textContent = `${pts.length} values, ${fmt(y0, 2)} .. ${fmt(y1, 2)}`;
}

export async function mount() {
  onPoint((device, name, value, ts) => {
    if (trend && trend.device === device && trend.name === name && value !== null) {
      points.push([Date.parse(ts), value]);
      draw();
    }
  });
  $("trend-form").addEventListener("submit", (e) => {
    e.preventDefault();
    showTrend($("trend-device").value, $("trend-point").value);
  });
  $("command-trend").addEventListener("click", () => {
    $("command-dialog").close();
    showTrend($("command-dialog").dataset.device, "p_kw");
  });
}
