// PeeBot live dashboard: one WebSocket (/ws), a `state` message at connect, then deltas.
// No framework: the page is a few cards, a table and three uPlot charts.
"use strict";

const $ = (id) => document.getElementById(id);
const UPA_ORDER = [2, 4, 8, 16, 32, 64, 128]; // NODE3000004 codes, drawn as rows 1..7
const UPA_SHORT = { 2: "STOP", 4: "SHUTDN", 8: "MAINT", 16: "NORMAL", 32: "STANDBY", 64: "IDLE", 128: "INIT" };
// charts in UTC whatever the browser's zone (ISS time is UTC)
const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
// tick labels in 24 h UTC: hours and minutes over a short span, month-day over days
function timeTicks(u, splits) {
  const span = u.scales.x.max - u.scales.x.min;
  return splits.map((t) => new Date(t * 1000).toISOString().slice(...(span <= 2 * 86400 ? [11, 16] : [5, 10])));
}
const TYPE_NAMES = {
  urination: "toilet use", bulk_transfer: "bulk transfer", upa_cycle_start: "processor on",
  upa_cycle_stop: "processor off", clean_water_draw: "clean water draw",
};
const TANK = "NODE3000005";
const UPA = "NODE3000004";
const S = {
  chart: { from: 0, hours: 6, series: { [TANK]: [], [UPA]: [] }, gaps: [] },
  events: [], watermark: null, lastReading: 0, connectedAt: 0, daily: [], levels: [], seenEvents: new Set(),
};
let socket = null;
let retries = 0;
let retryAt = 0;
let charts = {};

// ----------------------------------------------------------------------------- formatting

function parseTime(iso) { return iso ? new Date(iso) : null; }
function hhmmss(d) { return d ? d.toISOString().slice(11, 19) : "–"; }
function dayTime(d) { return d ? d.toISOString().slice(5, 10) + " " + d.toISOString().slice(11, 19) : "–"; }
function ago(d) {
  if (!d) return "";
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < -5) return "(ahead of this clock)";
  if (s < 60) return `(${Math.max(s, 0)} s ago)`;
  if (s < 3600) return `(${Math.round(s / 60)} min ago)`;
  if (s < 86400) return `(${(s / 3600).toFixed(1)} h ago)`;
  return `(${Math.round(s / 86400)} d ago)`;
}
function fmtValue(v) { return v === null || v === undefined ? "–" : (Number.isInteger(v) ? String(v) : v.toFixed(1)); }
function volume(ml) {
  if (ml === null || ml === undefined) return "–";
  return ml >= 1000 ? (ml / 1000).toFixed(1) + " L" : Math.round(ml) + " mL";
}
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// ----------------------------------------------------------------------------- the cards

function renderNow(now) {
  const tank = now && now[TANK];
  $("level-value").textContent = tank ? fmtValue(tank.value) : "–";
  $("tank-fill").style.width = tank ? Math.max(0, Math.min(100, tank.value)) + "%" : "0";
  const at = tank && parseTime(tank.ts);
  $("level-time").textContent = at ? `${dayTime(at)} UTC ${ago(at)}` : "–";
  if (at) $("level-time").setAttribute("datetime", tank.ts);
  const upa = now && now[UPA];
  $("upa").textContent = upa ? `${upa.label} (${upa.value})` : "–";
}

function pillClass(state) {
  if (!state) return "pill";
  if (state === "AOS" || state.startsWith("CONNECTED")) return "pill ok";
  if (state === "STALE" || state.startsWith("CONNECTING") || state.startsWith("STALLED")) return "pill warn";
  return "pill bad";
}

function renderFeed(feed) {
  const sig = feed && feed.signal;
  $("signal").textContent = sig ? sig.state : "unknown";
  $("signal").className = pillClass(sig && sig.state);
  $("signal-since").textContent = sig ? `since ${hhmmss(parseTime(sig.since))}` : "";
  const con = feed && feed.connection;
  $("feed").textContent = con ? con.state.toLowerCase() : "unknown";
  $("feed").className = pillClass(con && con.state);
}

function renderWatermark() {
  const w = parseTime(S.watermark);
  $("watermark").textContent = w ? `${hhmmss(w)} UTC` : "none yet";
  // "quiet" is measured from the last reading pushed (or from connecting, if none came)
  const since = S.lastReading || S.connectedAt;
  const quiet = since ? Math.round((Date.now() - since) / 1000) : null;
  $("quiet").textContent = quiet === null ? "" : quiet < 3 && S.lastReading ? "· updating"
    : S.lastReading ? `· no update for ${quiet} s` : quiet < 3 ? "" : `· no update for ${quiet}+ s`;
}

function renderInUse(inUse) {
  const node = $("in-use");
  if (inUse && inUse.active) {
    node.className = "in-use active";
    node.textContent = `Someone is using the toilet right now (since ${hhmmss(parseTime(inUse.since))} UTC)`;
  } else if (inUse && inUse.unknown) {
    node.className = "in-use unknown";
    node.textContent = inUse.unknown === "signal"
      ? "Can't tell right now: no signal from the station"
      : "Can't tell right now: the feed is not connected";
  } else {
    node.className = "in-use idle";
    node.textContent = "Nobody on the toilet";
  }
}

function renderToday(today) {
  if (!today) return;
  $("today-date").textContent = today.date ? `(UTC ${today.date})` : "";
  $("today-uses").textContent = today.uses ?? "–";
  $("today-volume").textContent = volume(today.volume_ml);
  $("today-upa").textContent = today.upa_cycles ?? "–";
  $("today-transfers").textContent = today.bulk_transfers ?? "–";
}

function renderDatabase(status) {
  $("database").textContent = status === "ok" ? "connected" : status;
  $("database").className = status === "ok" ? "pill ok" : "pill warn";
}

function renderEvents() {
  const body = $("events").tBodies[0];
  body.replaceChildren();
  if (!S.events.length) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: "7", text: "no events yet" })));
    return;
  }
  for (const e of S.events) {
    const fresh = S.seenEvents.size && !S.seenEvents.has(e.id + e.updated_at);
    const classes = [e.retracted ? "retracted" : "", fresh ? "fresh" : ""].join(" ").trim();
    const change = e.delta === null ? "–"
      : `${e.delta > 0 ? "+" : ""}${e.delta.toFixed(1)} %` +
        (e.level_before !== null && e.level_after !== null ? ` (${fmtValue(e.level_before)} → ${fmtValue(e.level_after)})` : "");
    const conf = el("span", { class: "conf" }, el("i", { style: `width:${Math.round(e.confidence * 100)}%` }));
    const flags = (e.retracted ? ["retracted", ...e.flags] : e.flags).map((f) => el("span", { class: "chip", text: f.replaceAll("_", " ") }));
    const posts = e.posts.length ? e.posts.map((p) => {
      const label = `${p.backend}: ${p.status}`;
      const node = p.url ? el("a", { href: p.url, rel: "noopener noreferrer", target: "_blank", text: label }) : document.createTextNode(label);
      return el("span", { class: "post " + p.status, title: p.reason || "" }, node);
    }) : [el("span", { class: "muted", text: "–" })];
    body.append(el("tr", { class: classes, "data-event-id": String(e.id) },
      el("td", { "data-label": "" , text: dayTime(parseTime(e.start)) }),
      el("td", { "data-label": "" }, el("span", { class: "type " + e.type, text: TYPE_NAMES[e.type] || e.type.replaceAll("_", " ") })),
      el("td", { "data-label": "level", text: change }),
      el("td", { "data-label": "volume", text: e.type === "urination" ? "~" + volume(e.volume_ml) : "–" }),
      el("td", { "data-label": "confidence" }, conf, document.createTextNode(e.confidence.toFixed(2))),
      el("td", { "data-label": "" }, ...flags),
      el("td", { "data-label": "" }, ...posts)));
  }
  S.seenEvents = new Set(S.events.map((e) => e.id + e.updated_at));
}

// ----------------------------------------------------------------------------- the live chart

// As-of values on a common time axis: a reading holds until the next one; no line inside
// gaps without signal (LOS/STALE), and the last value is carried to the newest reading.
function chartData() {
  const tank = S.chart.series[TANK] || [];
  const upa = S.chart.series[UPA] || [];
  const from = S.chart.from;
  // the right edge: the watermark, but never before the newest point (a point past the
  // edge would be cut off and the chart would end on the value before it)
  const newest = (points) => points.length ? points[points.length - 1][0] : 0;
  const end = Math.max(S.watermark ? Date.parse(S.watermark) / 1000 : 0, newest(tank), newest(upa), from + 60);
  const gaps = S.chart.gaps.map(([a, b]) => [a, b === null ? end : b]);
  const xs = new Set([from, end]);
  for (const [t] of tank) if (t >= from) xs.add(t);
  for (const [t] of upa) if (t >= from) xs.add(t);
  for (const [a, b] of gaps) { xs.add(a); xs.add(b); }
  const x = [...xs].filter((t) => t >= from && t <= end).sort((a, b) => a - b);
  const asOf = (points, map) => {
    const out = [];
    let i = 0, v = null;
    for (const t of x) {
      while (i < points.length && points[i][0] <= t) { v = points[i][1]; i++; }
      const inGap = gaps.some(([a, b]) => t >= a && t < b);
      out.push(inGap || v === null ? null : map(v));
    }
    return out;
  };
  return [x, asOf(tank, (v) => v), asOf(upa, (v) => { const i = UPA_ORDER.indexOf(v); return i < 0 ? null : i + 1; })];
}

function chartSize(node, height) {
  return { width: Math.max(node.clientWidth - 4, 200), height };
}

function drawGaps(u) {
  const ctx = u.ctx;
  const end = u.scales.x.max;
  ctx.save();
  ctx.fillStyle = "rgba(127, 138, 168, 0.18)";
  for (const [a, b] of S.chart.gaps) {
    const x0 = u.valToPos(a, "x", true);
    const x1 = u.valToPos(b === null ? end : b, "x", true);
    ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 1), u.bbox.height);
  }
  ctx.restore();
}

function drawEvents(u) {
  const ctx = u.ctx;
  const colours = { urination: "#4fd1c5", bulk_transfer: "#ff6b6b" };
  ctx.save();
  for (const e of S.chart.events || S.events) {
    const colour = colours[e.type];
    if (!colour) continue;
    const t = Date.parse(e.start) / 1000;
    if (t < u.scales.x.min || t > u.scales.x.max) continue;
    const x = u.valToPos(t, "x", true);
    ctx.strokeStyle = colour;
    ctx.globalAlpha = e.retracted ? 0.35 : 0.9;
    ctx.setLineDash(e.retracted ? [4, 4] : []);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.fillStyle = colour;
    ctx.beginPath();
    const r = 4 * devicePixelRatio;
    ctx.moveTo(x - r, u.bbox.top); ctx.lineTo(x + r, u.bbox.top); ctx.lineTo(x, u.bbox.top + 1.6 * r); ctx.fill();
  }
  ctx.restore();
}

function makeLiveChart() {
  const node = $("chart");
  const axis = { stroke: "#8c96b3", grid: { stroke: "#1f2945", width: 1 }, ticks: { stroke: "#1f2945" } };
  const opts = {
    ...chartSize(node, node.clientWidth < 600 ? 240 : 320),
    tzDate: utc,
    scales: {
      // a little room after the newest reading, so a step there shows
      x: { time: true, range: (u, lo, hi) => [S.chart.from, hi + S.chart.hours * 36] },
      pct: { range: (u, lo, hi) => [Math.max(0, Math.floor((lo ?? 0) - 3)), Math.min(100, Math.ceil((hi ?? 100) + 3))] },
      upa: { range: [0.5, 7.5] },
    },
    axes: [
      { ...axis, values: timeTicks },
      { ...axis, scale: "pct", values: (u, ticks) => ticks.map((t) => t + " %"), size: 52 },
      { ...axis, scale: "upa", side: 1, grid: { show: false }, size: 70, splits: () => [1, 2, 3, 4, 5, 6, 7],
        values: (u, ticks) => ticks.map((t) => UPA_SHORT[UPA_ORDER[t - 1]] || "") },
    ],
    series: [
      { value: (u, t) => t === null ? "–" : new Date(t * 1000).toISOString().slice(11, 19) + " UTC" },
      { label: "tank", scale: "pct", stroke: "#f2c200", width: 2, spanGaps: false, points: { show: false },
        paths: uPlot.paths.stepped({ align: 1 }), value: (u, v) => v === null ? "–" : fmtValue(v) + " %" },
      { label: "UPA", scale: "upa", stroke: "#5fa8d3", width: 1.5, spanGaps: false, points: { show: false },
        paths: uPlot.paths.stepped({ align: 1 }), value: (u, v) => v === null ? "–" : UPA_SHORT[UPA_ORDER[v - 1]] },
    ],
    hooks: { drawClear: [drawGaps], draw: [drawEvents] },
    legend: { live: true },
  };
  charts.live = new uPlot(opts, chartData(), node);
}

function makeDailyCharts() {
  const axis = { stroke: "#8c96b3", grid: { stroke: "#1f2945", width: 1 }, ticks: { stroke: "#1f2945" } };
  const dnode = $("daily-chart");
  charts.daily = new uPlot({
    ...chartSize(dnode, 200),
    tzDate: utc,
    scales: {
      x: { time: true },
      n: { range: (u, lo, hi) => [0, Math.max(4, Math.ceil(hi || 0) + 1)] },
      litres: { range: (u, lo, hi) => [0, Math.max(0.5, (hi || 0) * 1.15)] },
    },
    axes: [
      { ...axis, values: timeTicks },
      { ...axis, scale: "n", size: 40 },
      { ...axis, scale: "litres", side: 1, grid: { show: false }, size: 50, values: (u, ticks) => ticks.map((t) => t + " L") },
    ],
    series: [
      { value: (u, t) => t === null ? "–" : new Date(t * 1000).toISOString().slice(0, 10) },
      { label: "uses", scale: "n", stroke: "#4fd1c5", fill: "rgba(79, 209, 197, 0.45)",
        paths: uPlot.paths.bars({ size: [0.7, 40] }), points: { show: false } },
      { label: "estimated", scale: "litres", stroke: "#f2c200", width: 1.5, points: { show: true, size: 4 },
        value: (u, v) => v === null ? "–" : v.toFixed(1) + " L" },
      { label: "UPA cycles", scale: "n", stroke: "#5fa8d3", width: 1, dash: [4, 3], points: { show: false } },
    ],
  }, dailyData(), dnode);
  const lnode = $("levels-chart");
  charts.levels = new uPlot({
    ...chartSize(lnode, 200),
    tzDate: utc,
    scales: { x: { time: true }, pct: { range: (u, lo, hi) => [Math.max(0, Math.floor((lo ?? 0) - 3)), Math.min(100, Math.ceil((hi ?? 100) + 3))] } },
    axes: [
      { ...axis, values: timeTicks },
      { ...axis, scale: "pct", size: 52, values: (u, ticks) => ticks.map((t) => t + " %") },
    ],
    series: [
      { value: (u, t) => t === null ? "–" : new Date(t * 1000).toISOString().slice(0, 13).replace("T", " ") + "h" },
      { label: "max", scale: "pct", stroke: "rgba(242, 194, 0, 0.35)", width: 1, spanGaps: false, points: { show: false } },
      { label: "last", scale: "pct", stroke: "#f2c200", width: 1.5, spanGaps: false, points: { show: false } },
    ],
  }, levelsData(), lnode);
}

function dailyData() {
  return [S.daily.map((d) => Date.parse(d.date + "T12:00:00Z") / 1000), S.daily.map((d) => d.uses),
    S.daily.map((d) => d.volume_ml / 1000), S.daily.map((d) => d.upa_cycles)];
}

// Hourly buckets, quiet hours already filled by the server with the level in force.
function levelsData() {
  return [S.levels.map((b) => b[0]), S.levels.map((b) => b[2]), S.levels.map((b) => b[3])];
}

function redraw() {
  if (!window.uPlot) return;
  if (!charts.live) { makeLiveChart(); makeDailyCharts(); return; }
  charts.live.setData(chartData());
}

function redrawDaily() {
  if (!charts.daily) return;
  charts.daily.setData(dailyData());
  charts.levels.setData(levelsData());
}

window.addEventListener("resize", () => {
  for (const [name, chart] of Object.entries(charts)) {
    const node = chart.root.parentNode;
    chart.setSize(chartSize(node, name === "live" ? (node.clientWidth < 600 ? 240 : 320) : 200));
  }
});

// ----------------------------------------------------------------------------- messages

function addPoints(points) {
  for (const [item, pts] of Object.entries(points || {})) {
    const series = S.chart.series[item] || (S.chart.series[item] = []);
    for (const p of pts) {
      if (!series.length || p[0] > series[series.length - 1][0]) series.push(p);
      else if (!series.some((q) => q[0] === p[0])) { series.push(p); series.sort((a, b) => a[0] - b[0]); }
    }
  }
  // keep the chart window (and the value in force at its start)
  if (S.watermark) S.chart.from = Date.parse(S.watermark) / 1000 - S.chart.hours * 3600;
  for (const series of Object.values(S.chart.series)) {
    let cut = 0;
    while (cut + 1 < series.length && series[cut + 1][0] < S.chart.from) cut++;
    if (cut) series.splice(0, cut);
  }
}

const handlers = {
  state(m) {
    S.chart = m.chart; S.events = m.events; S.watermark = m.watermark; S.daily = m.daily; S.levels = m.levels;
    $("hours").textContent = String(m.chart.hours);
    renderNow(m.now); renderFeed(m.feed); renderInUse(m.in_use); renderToday(m.today);
    renderDatabase(m.database); renderEvents(); renderWatermark();
    redraw(); redrawDaily();
  },
  reading(m) {
    S.watermark = m.watermark;
    addPoints(m.points);
    renderNow(m.now); renderWatermark();
    if (m.feed) { renderFeed(m.feed); S.chart.gaps = m.gaps; }
    if (m.in_use) renderInUse(m.in_use);
    redraw();
  },
  events(m) {
    S.events = m.events; S.daily = m.daily;
    if (m.chart_events) S.chart.events = m.chart_events;
    renderEvents(); renderToday(m.today); renderInUse(m.in_use);
    redraw(); redrawDaily();
  },
  daily(m) { S.daily = m.daily; S.levels = m.levels; renderToday(m.today); redrawDaily(); },
  server(m) { renderDatabase(m.database); },
};

function setConn(text, cls) {
  $("conn").textContent = text;
  $("conn").className = "badge " + cls;
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  setConn(retries ? "reconnecting…" : "connecting…", "badge-wait");
  socket = new WebSocket(`${proto}//${location.host}/ws`);
  socket.onopen = () => { setConn("live", "badge-live"); };
  socket.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    if (m.type === "reading") S.lastReading = Date.now();
    if (m.type === "state") { retries = 0; S.connectedAt = S.connectedAt || Date.now(); }
    const handle = handlers[m.type];
    if (handle) handle(m);
  };
  socket.onclose = (ev) => {
    socket = null;
    S.connectedAt = 0;
    S.lastReading = 0;
    // back-off 1, 2, 4 ... 30 s with jitter; a server that dropped us as too slow: soon
    const base = ev.code === 1013 ? 1 : Math.min(30, 2 ** retries);
    const wait = base * (0.75 + Math.random() * 0.5);
    retries += 1;
    retryAt = Date.now() + wait * 1000;
    setTimeout(connect, wait * 1000);
    tickRetry();
  };
}

function tickRetry() {
  if (socket) return;
  const left = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
  setConn(`disconnected · reconnecting in ${left} s`, "badge-down");
}

setInterval(() => {
  renderWatermark();
  if (!socket) tickRetry();
  const tank = S.events && document.getElementById("level-time");
  if (tank && S.chart.series[TANK] && S.chart.series[TANK].length) {
    const last = S.chart.series[TANK][S.chart.series[TANK].length - 1];
    const at = new Date(last[0] * 1000);
    tank.textContent = `${dayTime(at)} UTC ${ago(at)}`;
  }
}, 1000);

document.addEventListener("DOMContentLoaded", () => {
  redraw();
  connect();
});
