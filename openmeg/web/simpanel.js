// The simulator's controls, apart from the operator's: only when the field is openmeg's simulated
// MEG. Taking the utility down is an event of the simulated world, not an operator's command: it
// goes to the simulated field's control interface (POST /api/v1/sim/...), never to the MEG.
import { $, api, confirmThen, h, state } from "./core.js";

async function act(text, url, body) {
  if (!(await confirmThen(text))) return;
  try {
    await api(url, { method: "POST", json: body });
    $("sim-status").textContent = `done: ${text.replace(/\?$/, "")}`;
  } catch (err) { $("sim-status").textContent = `refused: ${err.message}`; }
}

export async function mount(root) {
  if (state.site.field !== "simulated" || state.me.role !== "operator") { root.hidden = true; return; }
  const sim = await api("/api/v1/sim").catch(() => null);
  if (!sim || !sim.simulated) { root.hidden = true; return; }
  root.hidden = false;
  $("sim-utility-down").addEventListener("click", () => act(
    "Simulate a utility outage (take the utility grid down)?", "/api/v1/sim/utility", { available: false }));
  $("sim-utility-up").addEventListener("click", () => act(
    "End the simulated utility outage (bring the utility grid back)?", "/api/v1/sim/utility", { available: true }));
  const load = h("select", { id: "sim-load", "aria-label": "load" },
    ...sim.loads.map((id) => h("option", { value: id }, id)));
  const kw = h("input", { id: "sim-load-kw", type: "number", step: "0.1", min: "-1000", max: "1000",
    value: "5", "aria-label": "extra demand in kW" });
  const step = h("button", { type: "button", id: "sim-load-step" }, "Step the load");
  step.addEventListener("click", () => {
    const value = Number(kw.value);
    if (!Number.isFinite(value)) { $("sim-status").textContent = "give the extra demand in kW"; return; }
    act(`Simulate ${load.value} drawing ${value} kW more?`,
      `/api/v1/sim/loads/${encodeURIComponent(load.value)}/step`, { kw: value });
  });
  const line = h("select", { id: "sim-line", "aria-label": "line" },
    ...sim.lines.map((id) => h("option", { value: id }, id)));
  const fault = h("button", { type: "button", id: "sim-fault" }, "Fault on the line");
  fault.addEventListener("click", () => act(`Simulate a fault on ${line.value}?`,
    "/api/v1/sim/fault", { line: line.value }));
  const repair = h("button", { type: "button", id: "sim-repair" }, "Repair the fault");
  repair.addEventListener("click", () => act("Simulate the repair of the fault?",
    "/api/v1/sim/fault/repair", undefined));
  root.append(h("div", { class: "sim-row" }, "Extra demand: ", load, kw, " kW ", step),
    h("div", { class: "sim-row" }, "Line fault: ", line, fault, repair),
    h("p", { id: "sim-status", class: "muted", role: "status" }));
  if (!sim.connected) {
    root.append(h("p", { class: "error" }, "the simulated field's control interface is not connected"));
  }
}
