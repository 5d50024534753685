// The prosumer's app: their premises now and today, their batteries and EV charger, revenue per
// device, bills, the trading reference prices they set (and the accounts against them), the
// local market's settlements, the alarms of their devices and the third-party energy management
// services their plan allows (subscribed and unsubscribed here). Made for a phone first.
import { $, api, confirmThen, currency, every, fmt, fmtDateTime, fmtKw, fmtKwh, fmtMoney,
  fmtPrice, h, localDate, path, state } from "./core.js";

const DAY_MS = 86_400_000;
let customer = "";
let megNow = ""; // the MEG's time of the last values shown (UTC ISO)

// -- time: local midnights and months in the site's time zone
function tzOffsetMs(ms) {
  const tz = (state.site && state.site.timezone) || "UTC";
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}
/** The instant (ISO, UTC) of local midnight starting the local date "YYYY-MM-DD". */
function midnight(date) {
  const guess = Date.parse(`${date}T00:00:00Z`);
  let t = guess - tzOffsetMs(guess);
  t = guess - tzOffsetMs(t);
  return new Date(t).toISOString().replace(".000Z", "Z");
}
const shiftDate = (date, days) => new Date(Date.parse(`${date}T12:00:00Z`) + days * DAY_MS)
  .toISOString().slice(0, 10);
/** The site's local date of the MEG's time now. */
const today = () => localDate([state.now, megNow].filter(Boolean).sort().pop() || new Date().toISOString());
const monthName = (ym) => new Date(`${ym}-15T12:00:00Z`).toLocaleString("en-US",
  { month: "long", year: "numeric", timeZone: "UTC" });
function shiftMonth(ym, months) {
  const [y, m] = ym.split("-").map(Number);
  const d = new Date(Date.UTC(y, m - 1 + months, 1));
  return d.toISOString().slice(0, 7);
}
const span = (fromDate, toDate) => `start=${encodeURIComponent(midnight(fromDate))}` +
  `&end=${encodeURIComponent(midnight(toDate))}`;

// -- small builders
const card = (id, title, ...body) => h("section", { class: "mine-card", id }, h("h3", {}, title), ...body);
const tile = (label, value, attrs = {}) => h("div", { class: "tile", ...attrs },
  h("span", { class: "label" }, label), h("b", { class: "value" }, value));
const muted = (text, attrs = {}) => h("p", { class: "muted", ...attrs }, text);

/** The API's refusal as a sentence: its text, or its list of invalid fields made readable. */
function refusal(err) {
  let detail;
  try { detail = JSON.parse(err.message); } catch (e) { return err.message; }
  if (!Array.isArray(detail)) return err.message;
  return detail.map((d) => {
    const loc = (d.loc || []).filter((x) => x !== "body");
    const where = loc[0] === "windows" && loc.length >= 2
      ? `window ${Number(loc[1]) + 1}${loc[2] ? `, ${loc[2]}` : ""}` : loc.join(".");
    return `${where}: ${d.msg}`;
  }).join("; ");
}

// -- now and today
function deviceLabel(d) {
  if (d.kind === "pv") return "PV";
  if (d.kind === "battery") return "Battery";
  if (d.kind === "ev_charger") return "EV charger";
  if (d.kind === "load") return "Home load";
  return d.kind.replace("_", " ");
}

function deviceRow(d) {
  const rows = [];
  if (d.role === "source") {
    rows.push(tile("producing", fmtKw(d.power_kw, 2), { class: "tile gen", "data-point": "power" }));
    rows.push(tile("today", fmtKwh(d.today_out_kwh, 2), { "data-point": "today" }));
  } else if (d.role === "storage") {
    const p = d.power_kw;
    const doing = p === null ? "–" : p < -0.005 ? `charging ${fmtKw(d.charging_kw, 2)}`
      : p > 0.005 ? `discharging ${fmtKw(d.discharging_kw, 2)}` : "idle 0.00 kW";
    rows.push(tile("state of charge", d.soc_pct === null ? "–" : `${fmt(d.soc_pct, 0)} %`,
      { class: "tile charge", "data-point": "soc" }));
    rows.push(tile("now", doing, { "data-point": "power" }));
    rows.push(tile("today in / out", `${fmtKwh(d.today_in_kwh, 2)} / ${fmtKwh(d.today_out_kwh, 2)}`,
      { "data-point": "today" }));
  } else {
    if (d.power_kw === null && d.today_out_kwh === null) {
      if (d.kind !== "ev_charger") return null; // metered with the home only: in "home uses"
      rows.push(tile("using", "metered with the home", { class: "tile use", "data-point": "power" }));
    } else {
      rows.push(tile("using", fmtKw(d.power_kw, 2), { class: "tile use", "data-point": "power" }));
    }
    if (d.today_out_kwh !== null) rows.push(tile("today", fmtKwh(d.today_out_kwh, 2)));
  }
  const soc = d.role === "storage" && d.soc_pct !== null
    ? h("div", { class: "soc-bar", role: "img", "aria-label": `state of charge ${fmt(d.soc_pct, 0)} %` },
      h("i", { style: `width:${Math.max(0, Math.min(100, d.soc_pct)).toFixed(0)}%` })) : null;
  return h("div", { class: "mine-device", "data-device": d.id },
    h("div", { class: "device-name" }, h("b", {}, deviceLabel(d)), " ", h("span", { class: "muted" }, d.id),
      d.capacity_kwh ? h("span", { class: "muted" }, ` · ${fmtKwh(d.capacity_kwh, 0)}`) : null),
    h("div", { class: "tiles" }, ...rows), soc);
}

async function refreshNow() {
  const now = await api(`/api/v1/prosumers/${path(customer)}/now`);
  if (now.ts > megNow) megNow = now.ts;
  lastDevices = now.devices;
  const m = now.meter;
  const exporting = m && m.export_kw > 0.005;
  const flow = !m ? "–" : exporting ? `exporting ${fmtKw(m.export_kw, 2)}` : `importing ${fmtKw(m.import_kw, 2)}`;
  $("mine-now").replaceChildren(
    h("p", { class: "meter-line" }, "Meter ", h("b", { id: "mine-meter" }, m ? m.id : "none"),
      h("span", { class: "muted" }, ` · ${fmtDateTime(now.ts)}`)),
    h("div", { class: "tiles" },
      tile("grid", flow, { class: `tile ${exporting ? "gen" : "use"}`, id: "mine-grid" }),
      tile("home uses", fmtKw(now.consumption_kw, 2), { class: "tile use", id: "mine-use" })),
    ...now.devices.map(deviceRow).filter(Boolean));
  $("mine-today").replaceChildren(h("div", { class: "tiles" },
    tile("imported", fmtKwh(m && m.today_import_kwh, 2), { id: "today-import" }),
    tile("exported", fmtKwh(m && m.today_export_kwh, 2), { id: "today-export" }),
    tile("used", fmtKwh(now.today_consumption_kwh, 2), { id: "today-use" }),
    ...now.devices.filter((d) => d.role === "source").map((d) =>
      tile(`${deviceLabel(d)} produced`, fmtKwh(d.today_out_kwh, 2), { "data-today": d.id }))),
  muted(`Since midnight, ${fmtDateTime(now.day_start)}.`));
  paintRates();
}

// -- revenue per device: today's and this month's from the validated readings, and what each
// earns now at the market's price (its power now times the sale price, or the purchase price
// of what it takes)
let price = null;
let lastDevices = [];

function paintRates() {
  for (const d of lastDevices) {
    const cell = document.querySelector(`[data-revenue="${CSS.escape(d.id)}"] .rate`);
    if (!cell) continue;
    const p = d.role === "load" ? (d.power_kw === null ? null : -d.power_kw) : d.power_kw;
    if (p === null || !price) { cell.textContent = "–"; continue; }
    const rate = p >= 0 ? p * price.sell : p * price.buy;
    cell.textContent = `${money(Math.abs(rate) < 0.005 ? 0 : rate)}/h`;
  }
}

async function refreshRevenue() {
  const day = today();
  const month = `${day.slice(0, 7)}-01`;
  const [daily, monthly, now] = await Promise.all([
    api(`/api/v1/revenue?${span(day, shiftDate(day, 1))}&by=day`),
    api(`/api/v1/revenue?${span(month, `${shiftMonth(day.slice(0, 7), 1)}-01`)}&by=month`),
    api("/api/v1/prices/now").catch(() => null),
  ]);
  price = now;
  const byDevice = Object.fromEntries(monthly.map((r) => [r.device, r]));
  const box = $("mine-revenue");
  if (!daily.length) { box.replaceChildren(muted("None of your devices has a meter of its own.")); return; }
  box.replaceChildren(h("table", { class: "compact" },
    h("thead", {}, h("tr", {}, h("th", {}, "device"),
      h("th", { class: "num" }, "now"), h("th", { class: "num" }, "today"),
      h("th", { class: "num" }, "this month"))),
    h("tbody", {}, ...daily.map((r) => h("tr", { "data-revenue": r.device },
      h("td", {}, r.device, h("span", { class: "muted sub" },
        `${fmtKwh(r.out_kwh, 2)} out / ${fmtKwh(r.in_kwh, 2)} in today`)),
      h("td", { class: "num rate" }, "–"),
      h("td", { class: "num" }, fmtMoney(r.revenue)),
      h("td", { class: "num" }, fmtMoney(byDevice[r.device] ? byDevice[r.device].revenue : null)))))),
  muted("Today and this month: from the validated 15-minute readings at the market's prices; " +
    "now: the device's power at the market's price now."));
  paintRates();
}

// -- bills
async function refreshBills() {
  const month = today().slice(0, 7);
  const months = [month, shiftMonth(month, -1), shiftMonth(month, -2)];
  const items = await Promise.all(months.map(async (ym) => {
    const name = monthName(ym);
    if (ym === month) {
      return h("li", { "data-bill": ym }, `No bill yet for ${name}: a month is billed once it is over.`);
    }
    try {
      const b = await api(`/api/v1/bills/${path(customer)}?period=${ym}`);
      return h("li", { "data-bill": ym }, `${name}: bill no. ${b.number}`,
        b.revisions > 1 ? ` (revision ${b.revision})` : "", " ", h("b", {}, fmtMoney(b.total)),
        h("span", { class: "muted" }, ` · issued ${fmtDateTime(b.issued_at)}`));
    } catch (err) {
      return h("li", { "data-bill": ym, class: "muted" },
        `No bill issued yet for ${name}: a month is billed once it is over and its readings are validated.`);
    }
  }));
  $("mine-bills").replaceChildren(h("ul", { class: "plain" }, ...items));
}

// -- trading: the reference prices, the form that changes them, the accounts against them
let trading = null;

function windowRow(w = { from_hour: 0, to_hour: 24, purchase: "", sale: "" }) {
  const num = (name, value, attrs) => h("input", { name, value: value === "" ? "" : String(value),
    inputmode: "decimal", autocomplete: "off", ...attrs });
  const row = h("fieldset", { class: "window" },
    h("label", {}, "from ", num("from_hour", w.from_hour, { type: "number", min: 0, max: 23, step: 1, class: "hour" }), " h"),
    h("label", {}, "to ", num("to_hour", w.to_hour, { type: "number", min: 1, max: 24, step: 1, class: "hour" }), " h"),
    h("label", {}, "buy at or below ", num("purchase", w.purchase, { type: "text", class: "price" }), ` ${currency()}/kWh`),
    h("label", {}, "sell at or above ", num("sale", w.sale, { type: "text", class: "price" }), ` ${currency()}/kWh`),
    h("button", { type: "button", class: "remove-window", title: "remove this time window" }, "Remove"));
  row.querySelector(".remove-window").addEventListener("click", () => {
    if ($("trade-windows").children.length > 1) row.remove();
  });
  return row;
}

/** The windows of the form, or the page's reason to refuse them (the API checks the rest). */
function formWindows() {
  const windows = [];
  const rows = [...$("trade-windows").querySelectorAll("fieldset.window")];
  for (const [i, row] of rows.entries()) {
    const val = (name) => row.querySelector(`[name=${name}]`).value.trim().replace(",", ".");
    const w = {};
    for (const name of ["from_hour", "to_hour"]) {
      const v = val(name);
      if (!/^\d{1,2}$/.test(v)) return { problem: `window ${i + 1}: give the hours as whole numbers 0 to 24` };
      w[name] = Number(v);
    }
    if (!(w.from_hour < w.to_hour && w.to_hour <= 24)) {
      return { problem: `window ${i + 1}: it runs from an hour to a later one, within 0 to 24` };
    }
    for (const [name, label] of [["purchase", "purchase"], ["sale", "sale"]]) {
      const v = val(name);
      const n = Number(v);
      if (v === "" || !/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v) || !Number.isFinite(n)) {
        return { problem: `window ${i + 1}: the ${label} price is a number of ${currency()}/kWh, not "${v}"` };
      }
      if (n < 0) return { problem: `window ${i + 1}: the ${label} price must not be negative` };
      w[name] = n;
    }
    windows.push(w);
  }
  return { windows };
}

function showTrading() {
  const list = $("trade-windows");
  const windows = trading ? trading.windows : [];
  list.replaceChildren(...(windows.length ? windows.map(windowRow) : [windowRow()]));
  $("trade-state").replaceChildren(trading
    ? h("span", {}, "Trading with ", h("b", {}, windows.map((w) =>
      `${String(w.from_hour).padStart(2, "0")}–${String(w.to_hour).padStart(2, "0")} h: buy ≤ ` +
      `${fmtPrice(w.purchase)}, sell ≥ ${fmtPrice(w.sale)}`).join("; ")))
    : h("span", {}, "You do not trade: set reference prices to have your battery buy and sell on the market's prices."));
  $("trade-stop").hidden = !trading;
}

async function loadTrading() {
  if (!lastDevices.some((d) => d.role === "storage")) {
    $("trade-form").hidden = true;
    $("trade-state").textContent = "Trading needs a battery of your own: you have none.";
    return;
  }
  try {
    trading = await api(`/api/v1/trading/${path(customer)}`);
  } catch (err) {
    trading = null;
    if (!/does not trade/.test(err.message)) $("trade-error").textContent = refusal(err);
  }
  showTrading();
}

async function saveTrading(event) {
  event.preventDefault();
  $("trade-error").textContent = "";
  $("trade-saved").textContent = "";
  const { windows, problem } = formWindows();
  if (problem) { $("trade-error").textContent = problem; return; }
  try {
    trading = await api(`/api/v1/trading/${path(customer)}`, { method: "PUT",
      json: { windows, incentive_per_kwh: trading ? trading.incentive_per_kwh : 0 } });
  } catch (err) {
    $("trade-error").textContent = `Not changed: ${refusal(err)}`;
    return;
  }
  showTrading();
  $("trade-saved").textContent = "Saved: your battery trades on these prices from the next 15 minutes.";
  await refreshAccounts();
}

async function stopTrading() {
  if (!(await confirmThen("Stop trading? Your battery no longer buys and sells on the market's prices."))) return;
  $("trade-error").textContent = "";
  try { await api(`/api/v1/trading/${path(customer)}`, { method: "DELETE" }); } catch (err) {
    $("trade-error").textContent = `Not changed: ${refusal(err)}`;
    return;
  }
  trading = null;
  showTrading();
  $("trade-saved").textContent = "Trading stopped.";
  await refreshAccounts();
}

const PERIODS = {
  today: () => [today(), shiftDate(today(), 1)],
  yesterday: () => [shiftDate(today(), -1), today()],
  week: () => [shiftDate(today(), -6), shiftDate(today(), 1)],
  month: () => [`${today().slice(0, 7)}-01`, `${shiftMonth(today().slice(0, 7), 1)}-01`],
  "last-month": () => [`${shiftMonth(today().slice(0, 7), -1)}-01`, `${today().slice(0, 7)}-01`],
};

function money(v) {
  if (v === null || v === undefined) return "–";
  return `${v > 0 ? "+" : ""}${fmtMoney(v)}`;
}

function windowAccounts(w) {
  const hours = `${String(w.from_hour).padStart(2, "0")}–${String(w.to_hour).padStart(2, "0")} h`;
  const ref = w.reference_purchase === null ? "hours without a reference"
    : `buy ≤ ${fmtPrice(w.reference_purchase)}, sell ≥ ${fmtPrice(w.reference_sale)}`;
  const line = (label, kwh, mean, amount, atRef, against, againstLabel, attr) => h("tr", { "data-side": attr },
    h("th", {}, `${label} `, h("span", { class: "kwh" }, fmtKwh(kwh, 2)),
      mean === null ? "" : h("span", { class: "muted sub" }, `at ${fmtPrice(mean)}`)),
    h("td", { class: "num" }, fmtMoney(amount)),
    h("td", { class: "num" }, atRef === null ? "–" : fmtMoney(atRef)),
    h("td", { class: `num ${against > 0 ? "gain" : against < 0 ? "loss" : ""}`, title: againstLabel }, money(against)));
  return h("div", { class: "window-accounts", "data-window": `${w.from_hour}-${w.to_hour}` },
    h("p", {}, h("b", {}, hours), " ", h("span", { class: "muted" }, ref)),
    h("div", { class: "scroll" }, h("table", { class: "compact" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", { class: "num" }, "market"),
        h("th", { class: "num" }, "at your ref."), h("th", { class: "num" }, "against it"))),
      h("tbody", {},
        line("bought", w.import_kwh, w.mean_purchase_price, w.purchases, w.purchases_at_reference,
          w.saved_against_reference, "saved: at the reference less what it cost", "bought"),
        line("sold", w.export_kwh, w.mean_sale_price, w.sales, w.sales_at_reference,
          w.gained_against_reference, "gained: what it earned less at the reference", "sold")))));
}

async function refreshAccounts() {
  const [from, to] = PERIODS[$("accounts-period").value]();
  const box = $("mine-accounts");
  let a;
  try {
    a = await api(`/api/v1/prosumers/${path(customer)}/trading-accounts?${span(from, to)}`);
  } catch (err) {
    box.replaceChildren(muted(`The accounts cannot be shown: ${refusal(err)}`));
    return;
  }
  box.replaceChildren(
    h("div", { class: "tiles" },
      tile("bought", fmtMoney(a.purchases), { id: "acc-purchases" }),
      tile("sold", fmtMoney(a.sales), { id: "acc-sales" }),
      tile("incentives", fmtMoney(a.incentives), { id: "acc-incentives" }),
      tile("net", money(a.net), { id: "acc-net" }),
      tile("against your references", money(a.against_reference), { id: "acc-against" })),
    ...a.windows.map(windowAccounts),
    a.missing_intervals ? muted(`${a.missing_intervals} intervals of 15 minutes have no validated ` +
      "reading or no market price yet and count nothing.", { id: "acc-missing" }) : null,
    muted(`Energy through meter ${a.meter}, ${fmtDateTime(a.start)} to ${fmtDateTime(a.end)}, ` +
      "against the reference prices set now."));
}

// -- the local market
async function refreshMarket() {
  const day = today();
  const [rows, days] = await Promise.all([
    api(`/api/v1/market/settlement?${span(day, shiftDate(day, 1))}`),
    api(`/api/v1/market/settled-days?${span(shiftDate(day, -7), shiftDate(day, 1))}`),
  ]);
  const mine = rows.filter((r) => r.customer === customer);
  const sum = (xs, k) => xs.reduce((s, x) => s + x[k], 0);
  const last = [...mine].reverse().find((r) => r.clearing_price !== null);
  const box = $("mine-market");
  box.replaceChildren(
    h("div", { class: "tiles" },
      tile("today locally", fmtKwh(sum(mine, "local_kwh"), 2), { id: "market-local" }),
      tile("today with the utility", fmtKwh(sum(mine, "utility_kwh"), 2)),
      tile("today's money", money(mine.length ? sum(mine, "money") : null), { id: "market-money" }),
      tile("last clearing price", last ? fmtPrice(last.clearing_price) : "–")),
    days.length
      ? h("div", { class: "scroll" }, h("table", { class: "compact" },
        h("thead", {}, h("tr", {}, h("th", {}, "day"), h("th", { class: "num" }, "position"),
          h("th", { class: "num" }, "local"), h("th", { class: "num" }, "utility"), h("th", { class: "num" }, "money"))),
        h("tbody", {}, ...days.map((d) => h("tr", { "data-day": d.day },
          h("td", {}, d.day, d.revision > 1 ? h("span", { class: "muted" }, ` rev. ${d.revision}`) : ""),
          h("td", { class: "num" }, fmtKwh(d.position_kwh, 2)), h("td", { class: "num" }, fmtKwh(d.local_kwh, 2)),
          h("td", { class: "num" }, fmtKwh(d.utility_kwh, 2)), h("td", { class: "num" }, money(d.money)))))))
      : muted("No local day settled yet: a day is settled once its readings are validated."));
}

// -- alarms of their devices
async function refreshAlarms() {
  const alarms = await api("/api/v1/alarms?active=true");
  $("mine-alarms").replaceChildren(alarms.length
    ? h("ul", { class: "plain" }, ...alarms.map((a) => h("li", { class: `sev-${a.severity}`, "data-alarm": a.key },
      h("b", {}, a.severity), ` ${a.source}: ${a.text}`,
      h("span", { class: "muted" }, ` · since ${fmtDateTime(a.raised_at)}`),
      a.acknowledged ? h("span", { class: "muted" }, ` · seen by ${a.acknowledged_by}`) : "")))
    : muted("No alarm on your devices.", { id: "no-mine-alarms" }));
}

// -- third-party services: what the plan allows, the subscriptions and their state
let offered = [];
let subscribed = [];
let servicesAt = true; // a provisioning system runs for these premises

function serviceRow(a) {
  const mine = subscribed.find((s) => s.service === a.id);
  const button = mine
    ? h("button", { type: "button", class: "danger", "data-unsubscribe": mine.subscription }, "Unsubscribe")
    : h("button", { type: "button", class: "primary", "data-subscribe": a.id }, "Subscribe");
  button.addEventListener("click", () => (mine ? unsubscribe(a, mine) : subscribe(a)));
  return h("li", { "data-service": a.id },
    h("b", {}, a.name), ` · ${a.provider} · ${fmtMoney(a.price_per_month)} a month`,
    h("p", { class: "muted" }, a.description),
    h("p", { class: "service-state" }, mine
      ? `Subscribed (${mine.subscription}): ${mine.open ? "active" : "ended"}, ${mine.devices} ` +
        `${mine.devices === 1 ? "device" : "devices"} shared`
      : "Not subscribed"),
    button);
}

function showServices() {
  if (!servicesAt) {
    $("mine-services").replaceChildren(muted("No third-party services are offered at your premises.",
      { id: "no-services" }));
    return;
  }
  const others = subscribed.filter((s) => !offered.some((a) => a.id === s.service));
  $("mine-services").replaceChildren(
    offered.length ? h("ul", { class: "plain" }, ...offered.map(serviceRow))
      : muted("Your plan allows no service on offer just now.", { id: "no-services" }),
    ...others.map((s) => h("p", { "data-subscription": s.subscription },
      `Subscribed to ${s.service} (${s.subscription}): ${s.open ? "active" : "ended"}`)));
}

async function refreshServices() {
  const base = `/api/v1/customers/${path(customer)}`;
  try {
    subscribed = await api(`${base}/subscriptions`);
  } catch (err) {
    if (/no provisioning system runs/.test(err.message)) { servicesAt = false; showServices(); return; }
    throw err;
  }
  servicesAt = true;
  try {
    offered = await api(`${base}/services`);
  } catch (err) {
    offered = [];
    $("services-error").textContent = `The services on offer cannot be listed: ${refusal(err)}`;
  }
  showServices();
}

async function subscribe(a) {
  $("services-error").textContent = "";
  $("services-done").textContent = "";
  try {
    await api(`/api/v1/customers/${path(customer)}/services/${path(a.id)}/subscription`, { method: "POST" });
  } catch (err) {
    $("services-error").textContent = `Not subscribed: ${refusal(err)}`;
    return;
  }
  $("services-done").textContent = `Subscribed to ${a.name}.`;
  await refreshServices();
}

async function unsubscribe(a, mine) {
  if (!(await confirmThen(`Unsubscribe from ${a.name}? It no longer manages your devices.`))) return;
  $("services-error").textContent = "";
  $("services-done").textContent = "";
  try {
    await api(`/api/v1/customers/${path(customer)}/subscriptions/${path(mine.subscription)}`, { method: "DELETE" });
  } catch (err) {
    $("services-error").textContent = `Not unsubscribed: ${refusal(err)}`;
    return;
  }
  $("services-done").textContent = `Unsubscribed from ${a.name}.`;
  await refreshServices();
}

function guarded(fn, box) {
  return async () => {
    try { await fn(); } catch (err) {
      if (err.message === "signed out") return;
      const el = $(box);
      if (el && !el.childElementCount) el.replaceChildren(muted("Not available just now; trying again."));
    }
  };
}

export async function mount(root) {
  if (state.me.role !== "prosumer") { root.hidden = true; return; }
  root.hidden = false;
  customer = state.me.customer;
  const period = h("select", { id: "accounts-period", "aria-label": "period of the accounts" },
    h("option", { value: "today" }, "Today"), h("option", { value: "yesterday" }, "Yesterday"),
    h("option", { value: "week", selected: true }, "Last 7 days"), h("option", { value: "month" }, "This month"),
    h("option", { value: "last-month" }, "Last month"));
  const form = h("form", { id: "trade-form", novalidate: true },
    h("div", { id: "trade-windows" }),
    h("p", { id: "trade-error", class: "error", role: "alert" }),
    h("p", { id: "trade-saved", class: "ok", role: "status" }),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "trade-add" }, "Add a time window"),
      h("button", { type: "button", id: "trade-stop", class: "danger" }, "Stop trading"),
      h("button", { type: "submit", id: "trade-save", class: "primary" }, "Save prices")));
  $("mine-body").replaceChildren(
    card("mine-card-now", "Now", h("div", { id: "mine-now" }, muted("…"))),
    card("mine-card-today", "Today", h("div", { id: "mine-today" }, muted("…"))),
    card("mine-card-revenue", "Revenue per device", h("div", { id: "mine-revenue" }, muted("…"))),
    card("mine-card-trading", "Trading reference prices",
      h("p", { id: "trade-state" }),
      muted("Your battery charges when the market's purchase price is at or below your purchase " +
        "reference, and discharges when the sale price is at or above your sale reference."),
      form),
    card("mine-card-accounts", "Trading accounts", h("label", { class: "period" }, "Period ", period),
      h("div", { id: "mine-accounts" }, muted("…"))),
    card("mine-card-market", "Local market", h("div", { id: "mine-market" }, muted("…"))),
    card("mine-card-bills", "Bills", h("div", { id: "mine-bills" }, muted("…"))),
    card("mine-card-alarms", "Alarms", h("div", { id: "mine-alarms" }, muted("…"))),
    card("mine-card-services", "Services",
      muted("Energy management services from other companies, as your plan allows: they " +
        "manage your devices for as long as you are subscribed."),
      h("div", { id: "mine-services" }, muted("…")),
      h("p", { id: "services-error", class: "error", role: "alert" }),
      h("p", { id: "services-done", class: "ok", role: "status" })));
  form.addEventListener("submit", saveTrading);
  $("trade-add").addEventListener("click", () => $("trade-windows").append(windowRow({
    from_hour: "", to_hour: "", purchase: "", sale: "" })));
  $("trade-stop").addEventListener("click", stopTrading);
  period.addEventListener("change", guarded(refreshAccounts, "mine-accounts"));

  const now = guarded(refreshNow, "mine-now");
  const revenue = guarded(refreshRevenue, "mine-revenue");
  const market = guarded(refreshMarket, "mine-market");
  const alarms = guarded(refreshAlarms, "mine-alarms");
  await now(); // today's start, and the first values on screen
  await Promise.all([revenue(), guarded(refreshBills, "mine-bills")(), loadTrading(),
    guarded(refreshAccounts, "mine-accounts")(), market(), alarms(),
    guarded(refreshServices, "mine-services")()]);
  every(2000, now);
  every(5000, revenue);
  every(5000, alarms);
  every(30000, market);
  every(10000, guarded(refreshServices, "mine-services"));
  every(30000, guarded(refreshAccounts, "mine-accounts"));
}
