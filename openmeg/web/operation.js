// Operation views: the active alarms (severity, acknowledgement), the event log, the voltage at
// each metered bus against EN 50160, a customer's meter data with its VEE flags and versions,
// the issued bills and the basic charge statements.
import { $, api, every, fmt, fmtDateTime, fmtKwh, fmtMoney, h, localDate, onFrame, path,
  state } from "./core.js";

// -- alarms ----------------------------------------------------------------------------------
async function refreshAlarms() {
  const alarms = await api("/api/v1/alarms?active=true");
  const body = $("alarms").querySelector("tbody");
  body.replaceChildren();
  $("no-alarms").hidden = alarms.length > 0;
  for (const a of alarms) {
    const ack = a.acknowledged ? h("span", { class: "muted" }, `acknowledged by ${a.acknowledged_by}`)
      : (state.me.role === "operator" ? h("button", { type: "button" }, "Acknowledge") : null);
    const tr = h("tr", { class: `sev-${a.severity}`, "data-alarm": a.key },
      h("td", {}, `${a.key}: ${a.text}`), h("td", {}, h("span", { class: `sev sev-${a.severity}` }, a.severity)),
      h("td", {}, fmtDateTime(a.raised_at)), h("td", {}, ack));
    const button = tr.querySelector("button");
    if (button) button.addEventListener("click", async () => {
      await api(`/api/v1/alarms/${path(a.source, a.code)}/ack`, { method: "POST" });
      refreshAlarms();
    });
    body.append(tr);
  }
}

// -- the event log ---------------------------------------------------------------------------
const CATEGORIES = [["", "everything"], ["mode", "mode changes"], ["command", "commands"],
  ["switch", "switch operations"], ["device", "devices added or lost"], ["alarm", "alarms"],
  ["simulation", "simulated world"], ["other", "other"]];

function eventsCard() {
  const filter = h("select", { id: "event-filter", "aria-label": "event kind" },
    ...CATEGORIES.map(([v, text]) => h("option", { value: v }, text)));
  filter.addEventListener("change", () => refreshEvents().catch(() => {}));
  return h("div", { id: "events-card", class: "op-card" },
    h("h2", {}, "Event log ", h("span", { class: "muted" }, "newest first")),
    h("label", {}, "Show ", filter),
    h("div", { class: "scroll" }, h("table", { id: "events" },
      h("thead", {}, h("tr", {}, ...["time", "kind", "severity", "event", "who", "why"]
        .map((t) => h("th", {}, t)))),
      h("tbody"))),
    h("p", { id: "no-events", class: "muted", hidden: true }, "No event of this kind."));
}

/** The event's text without the reason it ends with (shown in a column of its own). */
function withoutWhy(e) {
  const at = e.why ? e.text.lastIndexOf(`; why: ${e.why}`) : -1;
  return at >= 0 ? e.text.slice(0, at) : e.text;
}

async function refreshEvents() {
  const cat = $("event-filter").value;
  const rows = await api(`/api/v1/views/events?limit=100${cat ? `&category=${cat}` : ""}`);
  if ($("event-filter").value !== cat) return; // the filter changed meanwhile
  $("no-events").hidden = rows.length > 0;
  $("events").querySelector("tbody").replaceChildren(...rows.map((e) =>
    h("tr", { "data-event": e.id, "data-category": e.category, class: `sev-${e.severity}` },
      h("td", { class: "nowrap" }, fmtDateTime(e.ts)), h("td", {}, e.category),
      h("td", {}, h("span", { class: `sev sev-${e.severity}` }, e.severity)),
      h("td", {}, withoutWhy(e)),
      h("td", { class: "who" }, e.who || ""), h("td", { class: "why" }, e.why || ""))));
}

// -- voltages per bus ------------------------------------------------------------------------
function voltagesCard() {
  return h("div", { id: "voltages-card", class: "op-card" },
    h("h2", {}, "Voltages ", h("span", { class: "muted" }, "EN 50160: Un ± 10 % (95 % of a week), +10/−15 % always")),
    h("table", { id: "voltages" },
      h("thead", {}, h("tr", {}, ...["bus", "meters", "voltage", "p.u.", "band", "since"]
        .map((t) => h("th", {}, t)))),
      h("tbody")),
    h("p", { id: "voltage-extremes", class: "muted" }));
}

async function refreshVoltages() {
  const v = await api("/api/v1/views/voltages");
  $("voltages").querySelector("tbody").replaceChildren(...v.buses.map((b) =>
    h("tr", { "data-bus": b.bus, class: b.band === null ? "band-none" : `band-${b.band}` },
      h("td", {}, b.bus), h("td", { class: "muted" }, b.meters.join(", ")),
      h("td", { class: "num" }, b.voltage_v === null ? "–" : `${fmt(b.voltage_v, 1)} V`),
      h("td", { class: "num" }, fmt(b.voltage_pu, 3)),
      h("td", {}, h("span", { class: "band" }, b.band_name || "no measurement")),
      h("td", { class: "nowrap muted" }, b.ts ? fmtDateTime(b.ts) : "–"))));
  const g = v.grid;
  $("voltage-extremes").textContent = g.voltage_min_pu === null ? "" :
    `lowest ${fmt(g.voltage_min_pu, 3)} p.u. (${v.band_names[g.band_min]}), highest ` +
    `${fmt(g.voltage_max_pu, 3)} p.u. (${v.band_names[g.band_max]}), ` +
    (g.source === "network" ? "of the whole network" : "of the metered buses");
}

// -- meter data with VEE flags and versions --------------------------------------------------
function meterCard() {
  const form = h("form", { id: "meter-form" },
    h("label", {}, "Meter ", h("select", { id: "meter-pick", required: true })),
    h("label", {}, "Day ", h("input", { id: "meter-day", type: "date", required: true })),
    h("label", {}, "Channel ", h("select", { id: "meter-channel" },
      h("option", { value: "import" }, "import"), h("option", { value: "export" }, "export"))),
    h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (event) => { event.preventDefault(); showMeterDay().catch(() => {}); });
  return h("div", { id: "meter-card", class: "op-card" },
    h("h2", {}, "Meter data ", h("span", { class: "muted" }, "15-minute intervals, VEE flags and versions")),
    form, h("p", { id: "meter-summary", class: "muted" }),
    h("div", { class: "scroll tall" }, h("table", { id: "meter-intervals" },
      h("thead", {}, h("tr", {}, ...["interval", "raw", "validated", "flag", "version", "by", "VEE rules"]
        .map((t) => h("th", {}, t)))),
      h("tbody"))));
}

async function showMeterDay() {
  const meter = $("meter-pick").value, day = $("meter-day").value, channel = $("meter-channel").value;
  if (!meter || !day) return;
  let d;
  try {
    d = await api(`/api/v1/views/meters/${path(meter)}/day?day=${day}&channel=${channel}`);
  } catch (err) { $("meter-summary").textContent = err.message; return; }
  const counts = {};
  for (const i of d.intervals) counts[i.quality] = (counts[i.quality] || 0) + 1;
  const total = d.intervals.reduce((s, i) => s + (i.value_kwh || 0), 0);
  $("meter-summary").textContent = `${d.meter} (customer ${d.customer}), ${d.day}: ` +
    `${d.validated ? "validated by VEE" : "not validated yet"}; ${d.intervals.length} intervals ` +
    `(${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ") || "none"}), ${fmtKwh(total, 3)}`;
  $("meter-intervals").querySelector("tbody").replaceChildren(...d.intervals.map((i) =>
    h("tr", { "data-interval": i.interval_start, "data-quality": i.quality, class: `q-${i.quality}` },
      h("td", { class: "nowrap" }, fmtDateTime(i.interval_start)),
      h("td", { class: "num" }, fmtKwh(i.raw_kwh, 3)), h("td", { class: "num" }, fmtKwh(i.value_kwh, 3)),
      h("td", { class: "flag" }, i.quality), h("td", { class: "num version" }, `v${i.version}`),
      h("td", {}, [i.method, i.user, i.reason].filter(Boolean).join(" · ")),
      h("td", { class: "rules" }, i.flags.join(", ")))));
}

// -- bills and basic charges -----------------------------------------------------------------
function billsCard() {
  const form = h("form", { id: "bills-form" },
    h("label", {}, "Month ", h("input", { id: "bills-period", type: "month", required: true })),
    h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (event) => { event.preventDefault(); showBills().catch(() => {}); });
  return h("div", { id: "bills-card", class: "op-card" },
    h("h2", {}, "Issued bills and basic charges"), form,
    h("table", { id: "bills" },
      h("thead", {}, h("tr", {}, ...["number", "customer", "meter", "kind", "issued", "total"]
        .map((t) => h("th", {}, t)))),
      h("tbody")),
    h("p", { id: "no-bills", class: "muted", hidden: true }),
    h("div", { id: "basic-charges" }));
}

async function showBills() {
  const period = $("bills-period").value;
  if (!period) return;
  const b = await api(`/api/v1/views/bills?period=${period}`);
  $("no-bills").hidden = b.bills.length > 0;
  $("no-bills").textContent = `No bill issued for ${period}.`;
  $("bills").querySelector("tbody").replaceChildren(...b.bills.map((x) =>
    h("tr", { "data-bill": x.number },
      h("td", {}, x.revision > 1 ? `${x.number} rev. ${x.revision}` : x.number), h("td", {}, x.customer),
      h("td", {}, x.meter), h("td", {}, x.kind), h("td", { class: "nowrap" }, fmtDateTime(x.issued_at)),
      h("td", { class: "num" }, fmtMoney(x.total)))));
  const boxes = [];
  for (const building of b.buildings) {
    let shares = null, why = "";
    try { shares = await api(`/api/v1/basic-charges/${path(building)}?period=${period}`); }
    catch (err) { why = err.message; }
    boxes.push(h("div", { class: "basic-charge", "data-building": building },
      h("h3", {}, `Basic charge statement, ${building}, ${period}`),
      shares === null ? h("p", { class: "muted" }, why) : h("table", {},
        h("thead", {}, h("tr", {}, ...["owner", "share", "days present", "peak", "estimated intervals", "amount"]
          .map((t) => h("th", {}, t)))),
        h("tbody", {}, ...shares.map((s) => h("tr", {},
          h("td", {}, s.owner), h("td", { class: "num" }, `${fmt(s.share * 100, 1)} %`),
          h("td", { class: "num" }, s.days_present), h("td", { class: "num" }, `${fmt(s.peak_kw, 2)} kW`),
          h("td", { class: "num" }, s.estimated_intervals), h("td", { class: "num" }, fmtMoney(s.amount))))))));
  }
  $("basic-charges").replaceChildren(...boxes);
}

function previousMonth(day) {
  const [y, m] = day.split("-").map(Number);
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, "0")}`;
}

function dayBefore(day) {
  const d = new Date(`${day}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

export async function mount(root) {
  if (state.me.role === "prosumer") { root.hidden = true; return; }
  root.classList.add("operation");
  await refreshAlarms();
  onFrame((frame) => { if ((frame.alarms || []).length) refreshAlarms().catch(() => {}); });
  every(3000, refreshAlarms);
  // the event log, the meters' data and the bills are the operator's and the auditor's only
  if (!["operator", "auditor"].includes(state.me.role)) return;
  root.append(eventsCard(), voltagesCard(), meterCard(), billsCard());
  fill().catch(() => {}); // not awaited: the other views need not wait for these tables
  let pending = false;
  onFrame((frame) => {
    if (((frame.alarms || []).length || (frame.modes || []).length) && !pending) {
      pending = true; // one refresh for a burst of frames
      setTimeout(() => { pending = false; refreshEvents().catch(() => {}); }, 200);
    }
  });
  every(3000, refreshEvents);
  every(10000, refreshVoltages);
}

async function fill() {
  // the MEG's day (a simulated MEG's time is not the wall clock's)
  const meg = state.now || (await api("/api/v1/live").catch(() => ({}))).ts;
  const today = localDate(meg || new Date().toISOString());
  const meters = await api("/api/v1/meters").catch(() => []);
  $("meter-pick").replaceChildren(...meters.map((m) =>
    h("option", { value: m.id }, `${m.id} (${m.customer})`)));
  $("meter-day").value = dayBefore(today);
  $("bills-period").value = previousMonth(today);
  await Promise.all([refreshEvents(), refreshVoltages(), showBills()].map((p) => p.catch(() => {})));
}
