// The simulator's controls, apart from the operator's: only when the field is openmeg's simulated
// MEG. Taking the utility down is an event of the simulated world, not an operator's command.
import { $, command, state } from "./core.js";

export async function mount(root) {
  if (state.site.field !== "simulated" || state.me.role !== "operator") { root.hidden = true; return; }
  root.hidden = false;
  $("sim-utility-down").addEventListener("click", () => command("pcc", "utility_available", 0,
    "Simulate a utility outage (take the utility grid down)?"));
  $("sim-utility-up").addEventListener("click", () => command("pcc", "utility_available", 1,
    "End the simulated utility outage (bring the utility grid back)?"));
}
