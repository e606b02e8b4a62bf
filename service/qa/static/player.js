// The recording's player: the browser's <audio> for playing and seeking (range requests to the audio route),
// the waveform drawn into a canvas from the same recording decoded with WebAudio, a playhead over it, and
// the findings as markers on a timeline under it. No library: decodeAudioData and a canvas are all it takes,
// and nothing has to be vendored or kept up to date.
//
// On a stereo call recording the agent's channel is drawn above the centre line and the customer's below
// (which channel is the agent's is the report's `recording.agent_channel`); a mono one symmetrically.

import { clock, el } from "./qa_common.js";
import { ruleName } from "/static/names.js";

const WAVE_RATE = 8000; // decode at telephone rate: enough for the picture, and a long call stays small
const WAVE_HEIGHT = 96; // CSS pixels

export class Player {
  /**
   * @param {object} parts the page's elements: audio, canvas, playhead, timeline, note
   * @param {object} opts onTime(t): the position changed (playing, or a seek); onPick(finding): a marker clicked
   */
  constructor(parts, { onTime, onPick } = {}) {
    Object.assign(this, parts);
    this.onTime = onTime || (() => {});
    this.onPick = onPick || (() => {});
    this.duration = 0;
    this.channels = null; // the decoded samples, channel by channel (at most two)
    this.agentChannel = 0;
    this.findings = [];
    this.frame = 0;

    const tick = () => {
      this.showTime();
      this.frame = this.audio.paused ? 0 : requestAnimationFrame(tick);
    };
    this.audio.addEventListener("play", () => { if (!this.frame) this.frame = requestAnimationFrame(tick); });
    for (const name of ["timeupdate", "seeked", "seeking"]) this.audio.addEventListener(name, () => this.showTime());
    this.audio.addEventListener("loadedmetadata", () => {
      if (!this.duration && Number.isFinite(this.audio.duration)) this.setDuration(this.audio.duration);
    });
    this.audio.addEventListener("error", () => this.unavailable());
    this.canvas.addEventListener("click", (ev) => {
      const box = this.canvas.getBoundingClientRect();
      if (this.duration && box.width) this.seek(((ev.clientX - box.left) / box.width) * this.duration, false);
    });
    window.addEventListener("resize", () => this.draw());
  }

  /** Play `src` (the audio route); `duration` from the report places the markers before the audio loads. */
  load(src, duration, agentChannel) {
    this.agentChannel = agentChannel === 1 ? 1 : 0;
    if (duration) this.setDuration(duration);
    this.audio.src = src;
    this.drawWaveform(src);
  }

  get time() {
    return this.audio.currentTime || 0;
  }

  /** Go to `t` seconds; `play`: and play from there (a click on a line or a finding means "let me hear it"). */
  seek(t, play = true) {
    const target = Math.max(0, Math.min(t, this.duration || t));
    this.audio.currentTime = target;
    this.showTime(target);
    if (play) {
      const started = this.audio.play();
      if (started && started.catch) started.catch(() => {});
    }
  }

  setDuration(seconds) {
    this.duration = seconds;
    this.placeMarkers();
    this.draw();
  }

  showTime(t = this.time) {
    if (this.duration) this.playhead.style.left = `${Math.min(100, (100 * t) / this.duration)}%`;
    this.onTime(t);
  }

  unavailable() {
    this.note.textContent = "录音不可用（未保存，或已被删除）：可以阅读转写并按时间复核。";
    this.note.hidden = false;
    this.canvas.hidden = true;
    this.audio.hidden = true;
    this.playhead.hidden = true;
  }

  // ---------------------------------------------------------------- the waveform

  async drawWaveform(src) {
    let buffer;
    try {
      const response = await fetch(src, { credentials: "same-origin" });
      if (!response.ok) return; // the <audio> element reports it (its own request fails the same way)
      const bytes = await response.arrayBuffer();
      // An offline context decodes without a user gesture and resamples to its own rate.
      buffer = await new OfflineAudioContext(1, 1, WAVE_RATE).decodeAudioData(bytes);
    } catch (err) {
      this.note.textContent = "无法绘制波形（浏览器不能解码此录音格式），播放不受影响。";
      this.note.hidden = false;
      return;
    }
    this.channels = [];
    for (let c = 0; c < Math.min(2, buffer.numberOfChannels); c += 1) this.channels.push(buffer.getChannelData(c));
    if (!this.duration) this.setDuration(buffer.duration);
    this.canvas.dataset.drawn = "1";
    this.draw();
  }

  /** The loudest sample of each column of `data`, over `columns` columns. */
  static peaks(data, columns) {
    const out = new Float32Array(columns);
    const per = data.length / columns;
    for (let x = 0; x < columns; x += 1) {
      let top = 0;
      const end = Math.min(data.length, Math.floor((x + 1) * per));
      for (let i = Math.floor(x * per); i < end; i += 1) {
        const v = Math.abs(data[i]);
        if (v > top) top = v;
      }
      out[x] = top;
    }
    return out;
  }

  draw() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.floor(this.canvas.clientWidth * ratio));
    const height = Math.floor(WAVE_HEIGHT * ratio);
    this.canvas.width = width;
    this.canvas.height = height;
    const g = this.canvas.getContext("2d");
    g.clearRect(0, 0, width, height);
    const mid = height / 2;
    g.fillStyle = "#cfd8dc";
    g.fillRect(0, mid, width, Math.max(1, ratio));
    if (!this.channels || !this.channels.length) return;
    const style = getComputedStyle(this.canvas);
    const stereo = this.channels.length === 2;
    const agent = Player.peaks(this.channels[stereo ? this.agentChannel : 0], width);
    const customer = stereo ? Player.peaks(this.channels[1 - this.agentChannel], width) : agent;
    let loudest = 0.05; // a near-silent call is drawn small, not blown up to full height
    for (let x = 0; x < width; x += 1) loudest = Math.max(loudest, agent[x], customer[x]);
    const scale = (mid * 0.95) / loudest;
    g.fillStyle = style.getPropertyValue("--agent").trim() || "#2f5fb3";
    for (let x = 0; x < width; x += 1) g.fillRect(x, mid - agent[x] * scale, 1, agent[x] * scale);
    g.fillStyle = stereo ? (style.getPropertyValue("--customer").trim() || "#8a5a00") : g.fillStyle;
    for (let x = 0; x < width; x += 1) g.fillRect(x, mid, 1, customer[x] * scale);
  }

  // ---------------------------------------------------------------- the findings' timeline

  /** `findings`: [{finding_id, rule_id, severity, t, decision, counted}]; each a marker that seeks to it. */
  markFindings(findings) {
    this.findings = findings;
    this.placeMarkers();
  }

  placeMarkers() {
    const markers = this.findings.map((f) => {
      const label = `${clock(f.t)} ${ruleName(f.rule_id)}`;
      const marker = el("button", {
        type: "button",
        class: `marker sev-${f.severity} decision-${f.decision || "none"}`,
        dataset: { findingId: f.finding_id, t: f.t },
        title: label,
        "aria-label": `发现：${label}`,
        onclick: () => this.onPick(f),
      }, "▲");
      if (this.duration) marker.style.left = `${Math.min(100, (100 * f.t) / this.duration)}%`;
      return marker;
    });
    const ends = this.duration ? [el("span", { class: "tick start num" }, clock(0)),
      el("span", { class: "tick end num" }, clock(this.duration))] : [];
    this.timeline.replaceChildren(...ends, ...markers);
  }
}
