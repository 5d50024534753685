// A prosumer's own energy: their meters, today's revenue per device, their last bill, their
// trading settings.
import { $, api, fmt, fmtMoney, h, localDate, path, state } from "./core.js";

export async function mount(root) {
  if (state.me.role !== "prosumer") { root.hidden = true; return; }
  root.hidden = false;
  const c = state.me.customer;
  const day = localDate(state.now || new Date().toISOString());
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
        h("td", {}, fmt(r.in_kwh, 2)), h("td", {}, fmtMoney(r.revenue))))));
  } catch (err) { lines.push(muted(`revenue: ${err.message}`)); }
  try {
    // the last closed month's issued bill (a month is billed once it is over)
    const d = new Date(Date.parse(day));
    const month = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
    const bill = await api(`/api/v1/bills/${path(c)}?period=${month}`);
    lines.push(h("p", {}, `Bill ${month} no. ${bill.number}: `, h("b", {}, fmtMoney(bill.total))));
  } catch (err) { lines.push(muted("No bill issued yet: a month is billed once it is over.")); }
  try {
    const t = await api(`/api/v1/trading/${path(c)}`);
    lines.push(h("p", {}, `Trading: ${t.windows.map((w) => `${w.from_hour}-${w.to_hour} h buy ≤ ${w.purchase}, ` +
      `sell ≥ ${w.sale}`).join("; ")}`));
  } catch (err) { lines.push(muted(`trading: ${err.message}`)); }
  $("mine-body").replaceChildren(...lines);
}
