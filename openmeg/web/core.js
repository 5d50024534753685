// openmeg dashboard core: the session (access and refresh tokens), the API, the live stream,
// and the helpers every view uses. Plain JavaScript modules against the openmeg API; no build.
"use strict";

export const $ = (id) => document.getElementById(id);

const saved = (key) => sessionStorage.getItem(`openmeg-${key}`);
export const state = {
  token: saved("token"), refresh: saved("refresh"), expiresAt: Number(saved("expires-at") || 0),
  me: null, site: null, now: null, socket: null, timers: [], refreshTimer: null,
};

// -- elements: every text from the API or the bus goes into the page as text, never as HTML
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c))));
  return el;
}
const SVG = "http://www.w3.org/2000/svg";
export function svgEl(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return el;
}
export const path = (...parts) => parts.map(encodeURIComponent).join("/");

// -- numbers with their units, times in the site's time zone with the date
const missing = (v) => v === null || v === undefined || Number.isNaN(Number(v));
export const fmt = (v, digits = 1) => (missing(v) ? "–" : Number(v).toFixed(digits));
const grouped = (v, digits) => Number(v).toLocaleString("en-US",
  { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const fmtKw = (v, digits = 1) => (missing(v) ? "–" : `${grouped(v, digits)} kW`);
export const fmtKwh = (v, digits = 1) => (missing(v) ? "–" : `${grouped(v, digits)} kWh`);
export const currency = () => (state.site && state.site.currency) || "USD";
export const fmtMoney = (v, digits = 2) => (missing(v) ? "–" : `${currency()} ${grouped(v, digits)}`);
export const fmtPrice = (v) => (missing(v) ? "–" : `${fmt(v, 3)} ${currency()}/kWh`);
export const fmtPct = (v, digits = 0) => (missing(v) ? "–" : `${fmt(v * 100, digits)} %`);

const zoned = {};
function parts(iso, withDate) {
  const tz = (state.site && state.site.timezone) || "UTC";
  const key = `${tz}|${withDate}`;
  zoned[key] = zoned[key] || new Intl.DateTimeFormat("en-CA", {
    timeZone: tz, hourCycle: "h23", timeZoneName: "short",
    ...(withDate ? { year: "numeric", month: "2-digit", day: "2-digit" } : {}),
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  return Object.fromEntries(zoned[key].formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
}
/** "14:05:09 EDT": a time of day in the site's time zone. */
export function fmtTime(iso) {
  if (!iso) return "–";
  const p = parts(iso, false);
  return `${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
}
/** "2026-06-01 14:05:09 EDT": date and time in the site's time zone. */
export function fmtDateTime(iso) {
  if (!iso) return "–";
  const p = parts(iso, true);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
}
/** "2026-06-01": the site's local date of an instant. */
export function localDate(iso) {
  const p = parts(iso, true);
  return `${p.year}-${p.month}-${p.day}`;
}

// -- the session: a short access token, renewed with a rotating refresh token while in use
function keep(body) {
  state.token = body.access_token;
  state.expiresAt = Date.now() + Number(body.expires_in || 900) * 1000;
  if (body.refresh_token) state.refresh = body.refresh_token;
  sessionStorage.setItem("openmeg-token", state.token);
  sessionStorage.setItem("openmeg-expires-at", String(state.expiresAt));
  if (state.refresh) sessionStorage.setItem("openmeg-refresh", state.refresh);
  renewBeforeExpiry();
}

/** Renew when three quarters of the access token's life are gone, and at least a minute before
 * it runs out (also after a reload of the page): a busy page or server has time to spare. */
function renewBeforeExpiry() {
  clearTimeout(state.refreshTimer);
  if (state.refresh) {
    const left = state.expiresAt - Date.now();
    const wait = Math.max(5_000, Math.min(left * 0.75, left - 60_000));
    state.refreshTimer = setTimeout(() => renew().catch(() => {}), wait);
  }
}

async function grant(form) {
  const r = await fetch("/api/v1/auth/token", { method: "POST", body: new URLSearchParams(form) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const why = body.error_description || body.detail || body.error || `HTTP ${r.status}`;
    const err = new Error(typeof why === "string" ? why : JSON.stringify(why));
    err.refused = r.status === 400 || r.status === 401; // the grant itself is bad, not the moment
    throw err;
  }
  return body;
}

export async function signIn(username, password) {
  keep(await grant({ grant_type: "password", username, password }));
}

let renewing = null;
/** A new access token for the refresh token (one exchange at a time: a refresh token is spent
 * when used, and a spent one presented again ends the session). */
export function renew() {
  if (!state.refresh) return Promise.reject(new Error("no session to renew"));
  if (!renewing) {
    const spent = state.refresh;
    renewing = grant({ grant_type: "refresh_token", refresh_token: spent })
      .then((body) => { keep(body); })
      .catch((err) => {
        if (state.refresh !== spent) throw err;
        if (err.refused) signOut();
        else { // the server out of reach for a moment (or busy): try again, still signed in
          clearTimeout(state.refreshTimer);
          state.refreshTimer = setTimeout(() => renew().catch(() => {}), 10_000);
        }
        throw err;
      })
      .finally(() => { renewing = null; });
  }
  return renewing;
}

renewBeforeExpiry();

const signOutHandlers = [];
export function onSignOut(fn) { signOutHandlers.push(fn); }

export function signOut() {
  const refresh = state.refresh;
  if (refresh) {
    fetch("/api/v1/auth/logout", { method: "POST", body: new URLSearchParams({ refresh_token: refresh }),
      headers: state.token ? { Authorization: `Bearer ${state.token}` } : {} }).catch(() => {});
  }
  for (const key of ["token", "refresh", "expires-at"]) sessionStorage.removeItem(`openmeg-${key}`);
  state.token = state.refresh = null;
  clearTimeout(state.refreshTimer);
  state.timers.forEach(clearInterval);
  state.timers = [];
  if (state.socket) state.socket.close();
  state.socket = null;
  signOutHandlers.forEach((fn) => fn());
}

export async function api(path, options = {}, retried = false) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
  const init = { ...options, headers };
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
    delete init.json;
  }
  const r = await fetch(path, init);
  if (r.status === 401) {
    if (!retried && state.refresh) {
      await renew();
      return api(path, options, true);
    }
    signOut();
    throw new Error("signed out");
  }
  const body = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const d = body && body.detail;
    throw new Error(typeof d === "string" ? d : d ? JSON.stringify(d) : `HTTP ${r.status}`);
  }
  return body;
}

/** A timer that ends with the session. */
export function every(ms, fn) {
  state.timers.push(setInterval(() => { Promise.resolve().then(fn).catch(() => {}); }, ms));
}

// -- the live stream and the points it brings
const frameHandlers = [];
const pointHandlers = [];
export function onFrame(fn) { frameHandlers.push(fn); }
export function onPoint(fn) { pointHandlers.push(fn); }
export function emitPoint(device, name, value, ts) {
  for (const fn of pointHandlers) fn(device, name, value, ts);
}

// what the page took from each frame to its next paint (ms): the dashboard benchmark reads it
window.openmegUpdateMs = [];

export function connectStream() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream?token=${state.token}`);
  socket.onmessage = (event) => {
    const received = performance.now();
    const frame = JSON.parse(event.data);
    for (const [device, name, value, ts] of frame.points || []) {
      if (ts > (state.now || "")) state.now = ts;
      emitPoint(device, name, value, ts);
    }
    for (const fn of frameHandlers) fn(frame);
    requestAnimationFrame(() => {
      window.openmegUpdateMs.push(performance.now() - received);
      if (window.openmegUpdateMs.length > 10_000) window.openmegUpdateMs.shift();
    });
  };
  socket.onclose = (event) => {
    if (state.socket !== socket || !state.token) return;
    if (event.code === 4401) {
      // the access token ran out: renew it, then come back
      renew().then(connectStream).catch(() => {
        setTimeout(() => { if (state.socket === socket && state.token) connectStream(); }, 10_000);
      });
      return;
    }
    setTimeout(() => { if (state.socket === socket && state.token) connectStream(); }, 1000);
  };
  state.socket = socket;
}

// -- commands, always confirmed
export function confirmThen(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm-dialog");
    $("confirm-text").textContent = text;
    dialog.onclose = () => resolve(dialog.returnValue === "yes");
    dialog.returnValue = "";
    dialog.showModal();
  });
}

export async function command(device, name, value, text = null) {
  // the operator may say why: the event log shows it with the command
  const why = $("confirm-reason");
  if (why) { why.value = ""; $("confirm-reason-row").hidden = false; }
  const yes = await confirmThen(text || `Set ${device}/${name} to ${value}?`);
  if (why) $("confirm-reason-row").hidden = true;
  if (!yes) return false;
  const reason = why ? why.value.trim() : "";
  await api("/api/v1/commands", { method: "POST",
    json: { device, name, value: Number(value), ...(reason ? { reason } : {}) } });
  return true;
}
