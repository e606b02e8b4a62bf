// A call's transcript as a list of lines that follows a playback position: the line being played is marked
// (class `playing`, aria-current) and scrolled into the list's view; clicking a line asks to seek to it.

import { SPEAKER, clock, el } from "./qa_common.js";

export class Transcript {
  /**
   * @param {HTMLElement} list an <ol> inside a scrolling box
   * @param {{onSeek?: (t: number) => void}} opts onSeek: a line was clicked (no handler: lines are not links)
   */
  constructor(list, { onSeek } = {}) {
    this.list = list;
    this.onSeek = onSeek;
    this.rows = [];
    this.current = null;
  }

  /** `lines`: [{start, end, speaker, speaker_uncertain, text}] in call-time order. */
  render(lines) {
    this.rows = lines.map((line) => {
      const who = (SPEAKER[line.speaker] || line.speaker || "") + (line.speaker_uncertain ? "?" : "");
      const row = el("li", {
        class: `utt utt-${line.speaker}`,
        dataset: { start: line.start, end: line.end },
        tabindex: this.onSeek ? "0" : null,
        title: this.onSeek ? "从这里播放" : null,
      }, el("span", { class: "at num" }, clock(line.start)), el("span", { class: "who" }, who),
      el("span", { class: "text" }, line.text));
      if (this.onSeek) {
        row.addEventListener("click", () => this.onSeek(+line.start));
        row.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            this.onSeek(+line.start);
          }
        });
      }
      return row;
    });
    this.list.replaceChildren(...this.rows);
    if (!this.rows.length) this.list.append(el("li", { class: "muted" }, "没有转写。"));
    this.current = null;
  }

  /** Mark the line spoken at `t` seconds (none in a pause between lines). */
  follow(t) {
    const row = this.rows.find((r) => t >= +r.dataset.start && t <= +r.dataset.end) || null;
    if (row === this.current) return;
    if (this.current) {
      this.current.classList.remove("playing");
      this.current.removeAttribute("aria-current");
    }
    this.current = row;
    if (!row) return;
    row.classList.add("playing");
    row.setAttribute("aria-current", "true");
    this.reveal(row);
  }

  /** Mark the lines nearest `t` (a finding's time) without playing: the one spoken then, or the one before. */
  markNear(t) {
    for (const r of this.rows) r.classList.remove("near");
    let near = null;
    for (const r of this.rows) if (+r.dataset.start <= t) near = r;
    near = near || this.rows[0];
    if (near) {
      near.classList.add("near");
      this.reveal(near);
    }
    return near;
  }

  /** Scroll the list's own box (not the page) so that `row` is in view, a third from the top. The box is
   * positioned (qa.css: .scrollbox), so a row's offsetTop is measured from it. */
  reveal(row) {
    const box = this.list.parentElement;
    if (!box || box.scrollHeight <= box.clientHeight) return;
    const top = row.offsetTop;
    if (top < box.scrollTop || top + row.offsetHeight > box.scrollTop + box.clientHeight) {
      box.scrollTop = Math.max(0, top - box.clientHeight / 3);
    }
  }
}

/** The QA report's utterances (GET /v1/audit/calls/{id}) as transcript lines; a mono call's sides are guessed. */
export function reportLines(report) {
  return (report.utterances || []).map((u) => ({
    start: u.start, end: u.end, text: u.text,
    speaker: u.speaker_uncertain ? (u.speaker_guess || "unknown") : u.speaker,
    speaker_uncertain: !!u.speaker_uncertain,
  }));
}
