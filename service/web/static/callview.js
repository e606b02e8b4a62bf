// One call's state (built from feed messages) and its view: transcript, prompts, mood curve, report.
// Shared by the agent screen and the supervisor's detail pane. Updates are incremental and every live value
// sits in a box of fixed size, so partials and timers never move the rest of the page. Rules, severities
// and recovery steps are named from the deployment's table (names.js), never here.

import { recoveryStepName, ruleName, severityName } from "./names.js";

export const SPEAKER = { agent: "坐席", customer: "客户", unknown: "说话人" };
export const MOOD = { angry: "愤怒", upset: "不满", neutral: "平静", satisfied: "满意" };
const SEVERITY_ICON = { info: "i", warn: "!", breach: "!!" };
const SEVERITY_RANK = { breach: 0, warn: 1, info: 2 };
const DIRECTION = { inbound: "呼入", outbound: "呼出" };
const EVENT_TEXT = {
  ringing: "振铃",
  answered: "已接通",
  hold: "客户进入等待",
  resume: "恢复通话",
  transfer: "转接",
  hangup: "挂断",
};
const BY = { agent: "坐席", customer: "客户", system: "线路" };

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Evidence arrives as a string, an object ({text} or {event}) or a list of them. */
export function evidenceText(ev) {
  if (ev == null) return "";
  if (typeof ev === "string") return ev;
  if (Array.isArray(ev)) return ev.map(evidenceText).filter(Boolean).join(" / ");
  if (typeof ev === "object") {
    if (ev.text) return ev.speaker ? `${SPEAKER[ev.speaker] || ev.speaker}：${ev.text}` : ev.text;
    if (ev.event) return EVENT_TEXT[ev.event] || ev.event;
    return "";
  }
  return String(ev);
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function severityIcon(severity) {
  const icon = el("span", "sev-icon", SEVERITY_ICON[severity] || "i");
  icon.dataset.severity = severity;
  icon.title = severityName(severity);
  icon.setAttribute("aria-label", severityName(severity));
  return icon;
}

export class CallState {
  constructor(info) {
    this.id = info.call_id;
    this.info = { ...info };
    this.status = info.status || "live";
    this.seen = new Set();
    this.lastEventId = 0;
    this.utterances = new Map(); // utterance id → {id, speaker, start, end, text, final}
    this.events = []; // call events shown as lines in the transcript
    this.mood = []; // emotion messages, in order
    this.prompts = new Map(); // prompt id → prompt message
    this.closed = new Map(); // prompt id → "dismissed" | "cleared"
    this.report = null;
    this.ended = null;
    this.elapsedBase = info.elapsed || 0;
    this.elapsedAt = performance.now();
  }

  updateInfo(info) {
    Object.assign(this.info, info);
    if (info.status) this.status = info.status;
    if (typeof info.elapsed === "number" && this.status === "live") {
      this.elapsedBase = info.elapsed;
      this.elapsedAt = performance.now();
    }
  }

  elapsed() {
    if (this.ended && typeof this.ended.duration === "number") return this.ended.duration;
    if (this.status !== "live") return this.elapsedBase;
    return this.elapsedBase + (performance.now() - this.elapsedAt) / 1000;
  }

  openPrompts() {
    return [...this.prompts.values()]
      .filter((p) => !this.closed.has(String(p.prompt_id)))
      .sort((a, b) => (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3) || (b.t || 0) - (a.t || 0));
  }

  /** Apply one message; false if it was seen already (a resume may repeat what arrived just before a drop). */
  apply(msg) {
    if (typeof msg.event_id === "number" && msg.event_id > 0) {
      if (this.seen.has(msg.event_id)) return false;
      this.seen.add(msg.event_id);
      this.lastEventId = Math.max(this.lastEventId, msg.event_id);
    }
    switch (msg.type) {
      case "partial":
      case "final": {
        const known = this.utterances.get(msg.utterance_id);
        if (known && known.final && msg.type === "partial") return false; // a late partial never undoes a final
        this.utterances.set(msg.utterance_id, {
          id: msg.utterance_id,
          speaker: msg.speaker,
          start: msg.start,
          end: msg.end,
          text: msg.text,
          final: msg.type === "final",
        });
        break;
      }
      case "event":
        if (["hold", "resume", "transfer", "hangup"].includes(msg.event)) this.events.push(msg);
        break;
      case "emotion":
        this.mood.push(msg);
        break;
      case "prompt":
        this.prompts.set(String(msg.prompt_id), msg);
        break;
      case "prompt_cleared":
        if (!this.closed.has(String(msg.prompt_id))) this.closed.set(String(msg.prompt_id), "cleared");
        break;
      case "dismissed":
        this.closed.set(String(msg.prompt_id), "dismissed");
        break;
      case "ended":
        this.ended = msg;
        this.status = "ended";
        for (const u of this.utterances.values()) if (!u.final) this.utterances.delete(u.id);
        break;
      case "report":
        this.report = msg;
        this.status = "ended";
        break;
      default:
        break;
    }
    return true;
  }
}

export class DeskView {
  /**
   * @param {HTMLElement} root the element holding the [data-role] parts
   * @param {{onDismiss?: (call: CallState, promptId: string) => void, endedText?: string}} opts
   */
  constructor(root, opts = {}) {
    this.root = root;
    this.onDismiss = opts.onDismiss || null;
    this.endedText = opts.endedText || "通话已结束";
    this.idleText = opts.idleText || "等待来电…";
    this.rows = new Map(); // utterance id → row element
    this.callId = null;
  }

  part(role) {
    return this.root.querySelector(`[data-role="${role}"]`);
  }

  /** Render a call from scratch (a new call, or switching between calls); null shows the idle desk. */
  show(call) {
    this.callId = call ? call.id : null;
    this.rows.clear();
    const transcript = this.part("transcript");
    transcript.replaceChildren(this.part("placeholder") || el("p", "placeholder"));
    this.part("placeholder").hidden = !!(call && (call.utterances.size || call.events.length));
    if (call) {
      const items = [
        ...[...call.utterances.values()].map((u) => ({ at: u.start, u })),
        ...call.events.map((e) => ({ at: e.t, e })),
      ].sort((a, b) => a.at - b.at);
      for (const item of items) {
        if (item.u) this.renderUtterance(item.u);
        else this.renderEvent(item.e);
      }
      transcript.scrollTop = transcript.scrollHeight;
    }
    this.renderHead(call);
    this.renderPrompts(call);
    this.renderMood(call);
    this.renderReport(call);
  }

  /** Apply one message already folded into `call` (the view shows `call`). */
  update(call, msg) {
    switch (msg.type) {
      case "partial":
      case "final":
        this.keepBottom(() => this.renderUtterance(call.utterances.get(msg.utterance_id)));
        break;
      case "event":
        if (["hold", "resume", "transfer", "hangup"].includes(msg.event)) this.keepBottom(() => this.renderEvent(msg));
        break;
      case "emotion":
        this.renderMood(call);
        break;
      case "prompt":
      case "prompt_cleared":
      case "dismissed":
        this.renderPrompts(call);
        break;
      case "ended":
        for (const [id, row] of this.rows) {
          if (!call.utterances.has(id)) {
            row.remove();
            this.rows.delete(id);
          }
        }
        this.renderHead(call);
        this.renderPrompts(call);
        break;
      case "report":
        this.renderHead(call);
        this.renderReport(call);
        this.renderPrompts(call);
        break;
      default:
        break;
    }
  }

  /** Keep the transcript pinned to its end while the agent has not scrolled up to read. */
  keepBottom(change) {
    const box = this.part("transcript");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    change();
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  insertByTime(node, at) {
    const box = this.part("transcript");
    node.dataset.at = String(at);
    this.part("placeholder").hidden = true;
    // Rows arrive nearly in time order; walk back from the end to find the place.
    let before = null;
    for (let child = box.lastElementChild; child && child.dataset.at !== undefined; child = child.previousElementSibling) {
      if (Number(child.dataset.at) > at) before = child;
      else break;
    }
    box.insertBefore(node, before);
  }

  renderUtterance(u) {
    if (!u) return;
    let row = this.rows.get(u.id);
    if (!row) {
      row = el("div", "utt");
      row.dataset.utterance = u.id;
      row.dataset.speaker = u.speaker;
      row.append(el("span", "who", SPEAKER[u.speaker] || u.speaker), el("span", "at num", clock(u.start)), el("span", "text"));
      this.rows.set(u.id, row);
      this.insertByTime(row, u.start);
    }
    row.classList.toggle("partial", !u.final);
    row.querySelector(".text").textContent = u.text;
  }

  renderEvent(e) {
    const by = e.by ? `（${BY[e.by] || e.by}）` : "";
    const target = e.target ? ` → ${e.target}` : "";
    const line = el("div", "sysline", `${clock(e.t)}  ${EVENT_TEXT[e.event] || e.event}${by}${target}`);
    line.dataset.event = e.event;
    this.insertByTime(line, e.t);
  }

  renderHead(call) {
    const state = this.part("callstate");
    if (!call) {
      state.dataset.status = "idle";
      state.textContent = this.idleText;
    } else {
      state.dataset.status = call.status;
      state.textContent = call.status === "live" ? "通话中" : this.endedText;
    }
    this.part("caller").textContent = (call && call.info.caller_number) || "—";
    const direction = this.part("direction");
    if (direction) direction.textContent = call ? DIRECTION[call.info.direction] || call.info.direction || "—" : "—";
    const agent = this.part("agent");
    if (agent) agent.textContent = (call && call.info.agent_id) || "—";
    this.tick(call);
  }

  tick(call) {
    this.part("duration").textContent = clock(call ? call.elapsed() : 0);
  }

  renderPrompts(call) {
    const list = this.part("prompts");
    const panel = this.part("prompts-panel");
    panel.hidden = !!(call && call.report);
    const open = call ? call.openPrompts() : [];
    const items = open.map((p) => this.promptItem(call, p));
    list.replaceChildren(...items);
    this.part("prompts-empty").hidden = open.length > 0;
    this.part("prompt-count").textContent = open.length ? `（${open.length}）` : "";
  }

  promptItem(call, p) {
    const li = el("li", "prompt");
    li.dataset.promptId = String(p.prompt_id);
    li.dataset.rule = p.rule_id || "";
    li.dataset.severity = p.severity || "info";
    const body = el("div", "pbody");
    body.append(el("div", "ptext", p.text || ruleName(p.rule_id)));
    if (p.recovery && p.recovery.suggestion) {
      const rec = el("div", "recovery");
      rec.append(el("span", "step", recoveryStepName(p.recovery.step)), el("span", "say", p.recovery.suggestion));
      body.append(rec);
    }
    const meta = el("div", "meta");
    meta.append(el("span", "num", clock(p.t)));
    const ev = evidenceText(p.evidence);
    const evidence = el("span", "evidence", ev ? `依据：${ev}` : ruleName(p.rule_id));
    evidence.title = ev;
    meta.append(evidence);
    if (this.onDismiss) {
      const button = el("button", "dismiss", "知道了");
      button.type = "button";
      button.title = "关闭这条提示（会记录）";
      button.addEventListener("click", () => this.onDismiss(call, String(p.prompt_id)));
      meta.append(button);
    }
    body.append(meta);
    li.append(severityIcon(p.severity || "info"), body);
    return li;
  }

  renderMood(call) {
    const samples = call ? call.mood : [];
    const last = samples[samples.length - 1];
    const now = this.part("mood-now");
    now.dataset.label = last ? last.label : "";
    this.part("mood-label").textContent = last ? MOOD[last.label] || last.label : "—";
    const turned = [...samples].reverse().find((s) => s.turn);
    this.part("mood-turn").textContent = turned
      ? turned.turn === "negative"
        ? `${clock(turned.t)} 情绪转差`
        : `${clock(turned.t)} 已缓和`
      : "";
    drawCurve(this.part("mood-curve"), samples, call ? call.elapsed() : 0);
  }

  renderReport(call) {
    const panel = this.part("report");
    const report = call && call.report;
    panel.hidden = !report;
    if (!report) return;
    const score = this.part("score");
    const value = Math.round(Number(report.score));
    score.textContent = Number.isFinite(value) ? String(value) : "—";
    score.dataset.band = value >= 85 ? "good" : value >= 60 ? "fair" : "poor";
    const findings = report.findings || [];
    this.part("findings").replaceChildren(
      ...findings.map((f) => {
        const li = el("li", "finding");
        li.dataset.rule = f.rule_id || "";
        const body = el("div");
        body.append(el("div", "ftext", f.prompt || ruleName(f.rule_id)));
        const ev = evidenceText(f.evidence);
        body.append(el("div", "meta", `${clock(f.t)} · ${ruleName(f.rule_id)}${ev ? " · " + ev : ""}`));
        li.append(severityIcon(f.severity || "info"), body);
        return li;
      }),
    );
    this.part("findings-empty").hidden = findings.length > 0;
  }
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** The customer's mood over the call: smoothed valence (-1..1) against call time, in a fixed 300×68 box. */
export function drawCurve(box, samples, duration) {
  const W = 300, H = 68, PAD = 4;
  const mid = H / 2;
  const span = Math.max(60, duration || 0, ...samples.map((s) => s.t || 0));
  const x = (t) => PAD + ((t || 0) / span) * (W - 2 * PAD);
  const y = (v) => mid - Math.max(-1, Math.min(1, v)) * (mid - PAD);
  const parts = [
    svg("rect", { class: "band-pos", x: 0, y: 0, width: W, height: mid }),
    svg("rect", { class: "band-neg", x: 0, y: mid, width: W, height: mid }),
    svg("line", { class: "zero", x1: 0, y1: mid, x2: W, y2: mid }),
  ];
  if (samples.length) {
    // The curve starts neutral at the call's start, as the tracker does.
    const pts = [[x(0), y(0)], ...samples.map((s) => [x(s.t), y(s.smoothed_valence ?? s.valence ?? 0)])];
    const last = samples[samples.length - 1];
    if (duration > (last.t || 0)) pts.push([x(duration), pts[pts.length - 1][1]]);
    parts.push(svg("polyline", { class: "line", points: pts.map((p) => p.map((n) => n.toFixed(1)).join(",")).join(" ") }));
    for (const s of samples) {
      if (s.turn === "negative" || s.turn === "recovered") {
        parts.push(svg("line", { class: `mark-${s.turn}`, x1: x(s.t), y1: PAD, x2: x(s.t), y2: H - PAD }));
      }
    }
  }
  box.replaceChildren(...parts);
}
