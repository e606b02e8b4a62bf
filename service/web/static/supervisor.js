// The supervisor view: every live call with its agent, duration, customer mood and open prompts, the ones
// that need help first; a click follows one call in full (read-only) beside the list.

import { FeedSocket, SignIn, showConnection } from "./feed.js";
import { CallState, DeskView, MOOD, clock } from "./callview.js";
import { ruleName, severityName } from "./names.js";

const CREDENTIALS = "callwatch.supervisor";
const KEEP_ENDED_MS = 60000; // an ended call stays on the board a minute, greyed, then goes

const $ = (id) => document.getElementById(id);
const rows = new Map(); // call id → {info, summary, seenAt, endedAt}
let watched = null; // CallState of the call in the detail pane
let feed = null;
const view = new DeskView($("detail"), { endedText: "已结束" });

function hello() {
  const { supervisor, token } = signIn.credentials || {};
  return { type: "hello", supervisor, token };
}

function entry(callId) {
  let row = rows.get(callId);
  if (!row) {
    row = { info: { call_id: callId }, summary: null, seenAt: performance.now(), endedAt: null, elapsed: 0 };
    rows.set(callId, row);
  }
  return row;
}

function onMessage(msg) {
  if (msg.type === "ready") {
    // After a reconnect, pick the followed call up where it was.
    if (watched) feed.send({ type: "watch", call_id: watched.id, after: watched.lastEventId });
    renderBoard();
    return;
  }
  if (!msg.call_id) return;
  if (msg.type === "call" || msg.type === "summary") {
    const row = entry(msg.call_id);
    if (msg.type === "call") row.info = { ...row.info, ...msg };
    else row.summary = msg;
    row.elapsed = msg.elapsed;
    row.seenAt = performance.now();
    const status = msg.status;
    if (status === "ended" && !row.endedAt) row.endedAt = performance.now();
    if (watched && watched.id === msg.call_id && msg.type === "call") {
      watched.updateInfo(msg);
      view.renderHead(watched);
    }
    renderBoard();
    return;
  }
  if (watched && watched.id === msg.call_id && watched.apply(msg)) view.update(watched, msg);
}

function need(row) {
  // Higher is more urgent: open breaches, then warnings, then a low mood, then a long call.
  const prompts = (row.summary && row.summary.open_prompts) || [];
  const breach = prompts.filter((p) => p.severity === "breach").length;
  const warn = prompts.filter((p) => p.severity === "warn").length;
  const mood = row.summary && row.summary.mood ? row.summary.mood.smoothed_valence ?? row.summary.mood.valence ?? 0 : 0;
  const live = row.endedAt ? 0 : 1;
  return [live, breach, warn, -mood, row.elapsed || 0];
}

function compare(a, b) {
  const x = need(a), y = need(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return y[i] - x[i];
  return 0;
}

function elapsedOf(row) {
  if (row.endedAt) return row.elapsed;
  return (row.elapsed || 0) + (performance.now() - row.seenAt) / 1000;
}

function spark(values) {
  const NS = "http://www.w3.org/2000/svg";
  const box = document.createElementNS(NS, "svg");
  box.setAttribute("class", "spark");
  box.setAttribute("viewBox", "0 0 80 22");
  box.setAttribute("preserveAspectRatio", "none");
  const zero = document.createElementNS(NS, "line");
  for (const [k, v] of Object.entries({ x1: 0, y1: 11, x2: 80, y2: 11 })) zero.setAttribute(k, v);
  box.append(zero);
  if (values.length) {
    const pts = [0, ...values];
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute(
      "points",
      pts.map((v, i) => `${((i / Math.max(1, pts.length - 1)) * 78 + 1).toFixed(1)},${(11 - v * 9).toFixed(1)}`).join(" "),
    );
    box.append(line);
  }
  return box;
}

function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (text != null) td.textContent = text;
  return td;
}

function renderBoard() {
  const now = performance.now();
  for (const [id, row] of rows) {
    if (row.endedAt && now - row.endedAt > KEEP_ENDED_MS && !(watched && watched.id === id)) rows.delete(id);
  }
  const sorted = [...rows.values()].sort(compare);
  $("calls").replaceChildren(
    ...sorted.map((row) => {
      const tr = document.createElement("tr");
      tr.dataset.callId = row.info.call_id;
      tr.dataset.agent = row.info.agent_id || "";
      tr.dataset.status = row.endedAt ? "ended" : "live";
      tr.setAttribute("aria-selected", String(!!(watched && watched.id === row.info.call_id)));
      const s = row.summary || {};
      const mood = s.mood;
      const moodCell = cell(null, "mood");
      moodCell.append(spark(s.mood_trend || []), document.createTextNode(" " + (mood ? MOOD[mood.label] || mood.label : "—")));
      const prompts = s.open_prompts || [];
      const promptCell = cell(null, "open-prompts");
      if (!prompts.length) promptCell.textContent = row.endedAt ? (s.score != null ? `评分 ${Math.round(s.score)}` : "已结束") : "—";
      for (const p of prompts.slice(0, 3)) {
        const pill = document.createElement("span");
        pill.className = "pill";
        pill.dataset.severity = p.severity;
        pill.textContent = ruleName(p.rule_id) || severityName(p.severity);
        pill.title = p.text || "";
        promptCell.append(pill);
      }
      tr.append(
        cell(row.info.agent_id || "—"),
        cell(row.info.caller_number || "—", "num"),
        cell(clock(elapsedOf(row)), "num duration"),
        moodCell,
        promptCell,
      );
      tr.addEventListener("click", () => follow(row.info.call_id));
      return tr;
    }),
  );
  $("calls-empty").hidden = sorted.length > 0;
}

function follow(callId) {
  if (watched && watched.id === callId) return;
  if (watched) feed.send({ type: "unwatch", call_id: watched.id });
  const row = rows.get(callId);
  watched = new CallState({ ...(row ? row.info : { call_id: callId }), elapsed: row ? elapsedOf(row) : 0 });
  $("detail-hint").hidden = true;
  $("detail").hidden = false;
  view.show(watched);
  feed.send({ type: "watch", call_id: callId, after: 0 });
  renderBoard();
}

function onState(state, detail) {
  showConnection($("conn"), $("notice"), state, detail);
  if (state === "refused") signIn.refused();
}

const signIn = new SignIn({
  storageKey: CREDENTIALS,
  idField: "supervisor",
  idInput: $("sup-name"),
  tokenInput: $("sup-token"),
  panel: $("board"),
  refusedText: "用户名或令牌不正确，请重新登录。",
  whoText: (creds) => creds.supervisor,
  onStart: () => {
    feed = new FeedSocket({ hello, onMessage, onState });
    feed.start();
    renderBoard();
  },
  onStop: () => {
    if (feed) feed.stop();
    feed = null;
    rows.clear();
    watched = null;
  },
});

let ticks = 0;
setInterval(() => {
  if (++ticks % 5 === 0) renderBoard(); // lets ended calls leave the board after a minute
  for (const tr of $("calls").children) {
    const row = rows.get(tr.dataset.callId);
    if (row) tr.querySelector(".duration").textContent = clock(elapsedOf(row));
  }
  if (watched) view.tick(watched);
}, 1000);

window.callwatch = { rows, get watched() { return watched; }, get feed() { return feed; } };

signIn.start();
