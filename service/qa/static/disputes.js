// The supervisor's pages (docs/qa.md): the queue of disputes (/qa/disputes) and one dispute
// (/qa/disputes/{dispute_id}): the finding as the reviewer decided it, the agent's comment, the transcript
// around the finding's time with the recording, and the ruling (uphold or overturn, with the reason the agent
// reads). Only a supervisor of the agent's team sees the dispute at all (a 404 for others, as for none).

import {
  DISPUTE_STATE, $, api, clock, el, enc, isRefusal, score, showContent, showRefusal, showStepError, when,
} from "./qa_common.js";
import { renderFindings } from "./findings.js";
import { Player } from "./player.js";
import { Transcript, reportLines } from "./transcript.js";
import { ruleName } from "/static/names.js";

const disputeId = $("page").dataset.disputeId;
const AROUND_S = 30; // the transcript shown around a finding: what led to it and what followed
const LEAD_IN_S = 5;

// ---------------------------------------------------------------- the queue

async function showQueue() {
  const state = $("state-filter").value;
  let answer;
  try {
    answer = await api("GET", `/v1/qa/disputes?state=${enc(state)}`);
  } catch (err) {
    showRefusal(err, "申诉");
    return;
  }
  showContent();
  $("queue").hidden = false;
  const rows = answer.disputes.map((d) => el("tr", { class: "dispute-row", dataset: { disputeId: d.dispute_id, state: d.state } },
    el("td", { class: "num" }, when(d.raised_at)),
    el("td", {}, d.agent_id),
    el("td", {}, d.call_id),
    el("td", {}, ruleName(d.rule_id)),
    el("td", { class: "comment" }, d.comment),
    el("td", {}, DISPUTE_STATE[d.state] || d.state),
    el("td", {}, el("a", { href: `/qa/disputes/${enc(d.dispute_id)}`, class: "open-dispute" }, d.state === "open" ? "裁定" : "查看"))));
  $("disputes-body").replaceChildren(...rows);
  if (!rows.length) {
    $("disputes-body").append(el("tr", {}, el("td", { colspan: "7", class: "muted" },
      state === "open" ? "没有待裁定的申诉。" : "没有申诉。")));
  }
}

// ---------------------------------------------------------------- one dispute

let dispute = null;
let review = null;
let lines = [];
let player = null;
const transcript = new Transcript($("transcript"), { onSeek: (t) => player && player.seek(t) });

function finding() {
  return review ? review.findings.find((f) => f.finding_id === dispute.finding_id) : null;
}

function render() {
  $("call-title").textContent = `${dispute.call_id} · 坐席 ${dispute.agent_id}`;
  $("dispute-state").textContent = DISPUTE_STATE[dispute.state] || dispute.state;
  $("dispute-state").dataset.state = dispute.state;
  $("reviewed-score").textContent = review ? score(review.reviewed_score) : "—";
  const f = finding();
  renderFindings($("findings-body"), f ? [f] : [], {
    disputes: [dispute],
    onSeek: (t) => (player ? player.seek(Math.max(0, t - LEAD_IN_S)) : transcript.markNear(t)),
  });
  $("ruling-form").hidden = dispute.state !== "open";
}

function showTranscript(all) {
  const t = finding() ? finding().t : 0;
  const shown = all ? lines : lines.filter((l) => l.end >= t - AROUND_S && l.start <= t + AROUND_S);
  transcript.render(shown);
  transcript.markNear(t);
  $("transcript-span").textContent = all ? "完整转写" : `${clock(Math.max(0, t - AROUND_S))} – ${clock(t + AROUND_S)}`;
  $("transcript-all").hidden = all || shown.length === lines.length;
}

async function loadCall() {
  // The call's transcript and recording, from the QA report (supervisors have the QA tools).
  let report;
  try {
    report = await api("GET", `/v1/audit/calls/${enc(dispute.call_id)}`);
  } catch (err) {
    $("transcript-note").textContent = `无法读取通话：${err.detail || err.message}`;
    return;
  }
  lines = reportLines(report);
  showTranscript(false);
  player = new Player(
    { audio: $("audio"), canvas: $("waveform"), playhead: $("playhead"), timeline: $("timeline"), note: $("wave-note") },
    { onTime: (t) => transcript.follow(t), onPick: (f) => player.seek(Math.max(0, f.t - LEAD_IN_S), false) },
  );
  $("player-card").hidden = false;
  player.load(`/v1/audit/calls/${enc(dispute.call_id)}/audio`, report.duration_s,
              report.recording ? report.recording.agent_channel : 0);
  const f = finding();
  if (f) player.markFindings([f]);
}

$("transcript-all").addEventListener("click", () => showTranscript(true));
$("play-finding").addEventListener("click", () => {
  const f = finding();
  if (player && f) player.seek(Math.max(0, f.t - LEAD_IN_S));
});

$("ruling-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const outcome = new FormData($("ruling-form")).get("outcome");
  try {
    dispute = await api("POST", `/v1/qa/disputes/${enc(disputeId)}/ruling`, { outcome, reason: $("ruling-reason").value });
    review = await api("GET", `/v1/qa/reviews/${enc(dispute.review_id)}`); // the score the ruling left
    $("ruling-error").hidden = true;
    render();
  } catch (err) {
    showStepError($("ruling-error"), err, "申诉");
  }
});

async function showDispute() {
  try {
    dispute = await api("GET", `/v1/qa/disputes/${enc(disputeId)}`);
    review = await api("GET", `/v1/qa/reviews/${enc(dispute.review_id)}`);
  } catch (err) {
    if (isRefusal(err) || !dispute) {
      showRefusal(err, "申诉");
      return;
    }
  }
  showContent();
  $("one").hidden = false;
  render();
  await loadCall();
}

if (disputeId) {
  showDispute();
} else {
  $("state-filter").addEventListener("change", showQueue);
  showQueue();
}
