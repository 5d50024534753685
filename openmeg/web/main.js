// openmeg dashboard: signs in, keeps the header live, and mounts each view in its container.
import { $, api, connectStream, every, fmt, fmtDateTime, fmtPrice, onFrame, onPoint, onSignOut,
  signIn, signOut, state } from "./core.js";
import * as sld from "./sld.js";
import * as energy from "./energy.js";
import * as history from "./history.js";
import * as operation from "./operation.js";
import * as prosumer from "./prosumer.js";
import * as simpanel from "./simpanel.js";

const VIEWS = [[energy, "view-energy"], [operation, "view-operation"],
  [history, "view-history"], [prosumer, "view-mine"], [simpanel, "sim-panel"]];

function showMode(mode) {
  const badge = $("mode");
  badge.dataset.mode = mode;
  badge.textContent = mode.toUpperCase();
}

async function refreshPrice() {
  try {
    const p = await api("/api/v1/prices/now");
    $("price").textContent = `${fmtPrice(p.buy)} / ${fmtPrice(p.sell)}`;
  } catch (err) { $("price").textContent = "none"; }
}

async function start() {
  try { state.me = await api("/api/v1/me"); } catch (err) { return; }
  state.site = await api("/api/v1/site");
  $("login").hidden = true;
  $("app").hidden = false;
  document.body.classList.toggle("not-operator", state.me.role !== "operator");
  document.body.dataset.role = state.me.role;
  $("who").textContent = `${state.me.name} (${state.me.role})`;
  $("site-name").textContent = state.site.name;
  onPoint((device, name, value) => {
    if (device !== "pcc") return;
    if (name === "frequency_hz") $("frequency").textContent = fmt(value, 3);
    if (name === "import_kw") $("import").textContent = fmt(value);
    if (name === "mode") showMode(["grid", "island", "blackout"][Math.round(value)] || "grid");
  });
  onFrame((frame) => {
    if (state.now) $("meg-time").textContent = fmtDateTime(state.now);
    for (const m of frame.modes || []) showMode(m.mode);
  });
  // the diagram with its live values first, then the other views beside the stream
  await sld.mount($("view-diagram"));
  await sld.refreshLive();
  $("meg-time").textContent = fmtDateTime(state.now);
  requestAnimationFrame(() => performance.mark("openmeg-first-values"));
  connectStream();
  await Promise.all([...VIEWS.map(([view, id]) => view.mount($(id))), refreshPrice()]);
  await sld.refreshLive(); // the live values once more, for the views mounted since
  every(5000, sld.refreshLive);
  every(30000, refreshPrice);
}

// signed out (or the session ended): start again from the login page, with no view mounted
onSignOut(() => location.reload());

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await signIn($("username").value, $("password").value);
  } catch (err) { $("login-error").textContent = err.message; return; }
  start();
});
$("logout").addEventListener("click", signOut);
if (state.token) start();
