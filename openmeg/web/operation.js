// Operation views: the active alarms, with severity and acknowledgement.
import { $, api, every, fmtDateTime, h, onFrame, path, state } from "./core.js";

async function refreshAlarms() {
  const alarms = await api("/api/v1/alarms?active=true");
  const body = $("alarms").querySelector("tbody");
  body.replaceChildren();
  $("no-alarms").hidden = alarms.length > 0;
  for (const a of alarms) {
    const ack = a.acknowledged ? h("span", { class: "muted" }, `acknowledged by ${a.acknowledged_by}`)
      : (state.me.role === "operator" ? h("button", { type: "button" }, "Acknowledge") : null);
    const tr = h("tr", { class: `sev-${a.severity}`, "data-alarm": a.key },
      h("td", {}, `${a.key}: ${a.text}`), h("td", {}, a.severity),
      h("td", {}, fmtDateTime(a.raised_at)), h("td", {}, ack));
    const button = tr.querySelector("button");
    if (button) button.addEventListener("click", async () => {
      await api(`/api/v1/alarms/${path(a.source, a.code)}/ack`, { method: "POST" });
      refreshAlarms();
    });
    body.append(tr);
  }
}

export async function mount(root) {
  if (state.me.role === "prosumer") { root.hidden = true; return; }
  await refreshAlarms();
  onFrame((frame) => { if ((frame.alarms || []).length) refreshAlarms(); });
  every(3000, refreshAlarms);
}
