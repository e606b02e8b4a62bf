// The reviewer's page for one call (/qa/calls/{call_id}/review, docs/qa.md): hear the recording with its
// waveform, read the transcript as it plays, see the findings on the timeline, confirm or reject each with a
// reason, add what the rules missed at the current playback position, submit, and read the history.
//
// The call (transcript, recording, automatic findings) comes from the QA report, GET /v1/audit/calls/{id};
// the review from /v1/qa. The page keeps no state the server does not: every step answers the review as it
// now is, and the page draws that.

import {
  ACTION, DECISION, REVIEW_STATE, ROLE, $, api, clock, el, enc, score, showContent, showRefusal, showStepError, when,
} from "./qa_common.js";
import { decisionButtons } from "./decide.js";
import { LEAD_IN_S, callPlayer } from "./call_player.js";
import { renderFindings } from "./findings.js";
import { reportLines } from "./transcript.js";
import { ruleIds, ruleName } from "/static/names.js";

const REASON_HINT = "驳回理由（必填，坐席和主管都会看到）";

const callId = $("page").dataset.callId;
const callPath = `/v1/audit/calls/${enc(callId)}`;
let report = null; // the QA report of the call
let review = null; // the call's review, once there is one

const { transcript, player } = callPlayer();

const reviewPath = () => `/v1/qa/reviews/${enc(review.review_id)}`;

// ---------------------------------------------------------------- drawing

function fact(label, value) {
  return el("tr", {}, el("th", {}, label), el("td", {}, value || "—"));
}

function renderHead() {
  $("call-title").textContent = `${callId} · 坐席 ${report.agent_id}`;
  $("report-link").href = `/audit/calls/${enc(callId)}`;
  $("automatic-score").textContent = score(review ? review.automatic_score : report.score);
  $("reviewed-score").textContent = review && review.reviewed_score !== null ? score(review.reviewed_score) : "—";
  $("reviewed-hint").textContent = review && review.state === "submitted" ? "" : "提交复核后计算";
  $("review-state").textContent = review ? REVIEW_STATE[review.state] || review.state : "未开始复核";
  $("review-state").dataset.state = review ? review.state : "none";
  const facts = [
    fact("开始时间", (report.started_at || "").replace("T", " ").slice(0, 19)), fact("时长", clock(report.duration_s)),
    fact("录音", report.recording && report.recording.file_name),
  ];
  if (review) {
    facts.push(fact("开始复核", `${review.opened_by} · ${when(review.opened_at)}`));
    if (review.submitted_at) facts.push(fact("提交", `${review.submitted_by} · ${when(review.submitted_at)}`));
    facts.push(fact("坐席确认", review.acknowledged_at ? when(review.acknowledged_at) : "未确认"));
    if (review.open_disputes) facts.push(fact("待裁定申诉", String(review.open_disputes)));
  }
  $("facts").replaceChildren(...facts);
}

/** The report's findings before there is a review: the same table, without decisions. */
function reportFindings() {
  return (report.findings || []).map((f, i) => ({
    finding_id: `r${i + 1}`, source: "automatic", rule_id: f.rule_id, severity: f.severity, t: f.t, detail: f.detail,
  }));
}

function render() {
  renderHead();
  const findings = review ? review.findings : reportFindings();
  const open = !!review && review.state === "open";
  renderFindings($("findings-body"), findings, {
    disputes: review ? review.disputes : [],
    onSeek: (t) => player.seek(Math.max(0, t - LEAD_IN_S)),
    actions: open ? (f) => decisionButtons(f, (body, error) => decide(f, body, error), REASON_HINT) : null,
  });
  player.markFindings(findings);
  $("start-box").hidden = !!review;
  $("add-form").hidden = !open;
  $("submit-box").hidden = !open;
  if (open) {
    const pending = review.findings.filter((f) => f.decision === "pending").length;
    $("pending").textContent = pending ? `还有 ${pending} 条自动发现待确认或驳回。` : "每条自动发现都已确认或驳回，可以提交。";
  }
}

// ---------------------------------------------------------------- the reviewer's steps

async function decide(f, body, error) {
  try {
    await show(await api("POST", `${reviewPath()}/findings/${enc(f.finding_id)}/decision`, body));
  } catch (err) {
    showStepError(error, err, "复核");
  }
}

async function show(answer) {
  review = answer;
  render();
  await loadHistory();
}

$("start-review").addEventListener("click", async () => {
  try {
    await show(await api("POST", `/v1/qa/calls/${enc(callId)}/review`));
  } catch (err) {
    showStepError($("start-error"), err, "通话");
  }
});

$("add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  // At the position being heard, to a tenth of a second (down: never past the end of the call).
  const body = { rule_id: $("add-rule").value, t: Math.floor(player.time * 10) / 10, note: $("add-note").value };
  try {
    await show(await api("POST", `${reviewPath()}/findings`, body));
    $("add-note").value = "";
    $("add-error").hidden = true;
  } catch (err) {
    showStepError($("add-error"), err, "复核");
  }
});

$("submit-review").addEventListener("click", async () => {
  try {
    await show(await api("POST", `${reviewPath()}/submit`));
    $("submit-error").hidden = true;
  } catch (err) {
    showStepError($("submit-error"), err, "复核");
  }
});

// ---------------------------------------------------------------- the history

function change(entry) {
  const d = entry.detail || {};
  if (d.from && d.to) return `${DECISION[d.from] || d.from} → ${DECISION[d.to] || d.to}`;
  if ("score_before" in d) return `复核评分 ${score(d.score_before)} → ${score(d.score_after)}`;
  if ("reviewed_score" in d) return `自动评分 ${score(d.automatic_score)}，复核评分 ${score(d.reviewed_score)}`;
  if ("automatic_score" in d) return `自动评分 ${score(d.automatic_score)}，${d.findings} 条发现`;
  if ("t" in d) return `位于 ${clock(d.t)}`;
  return "";
}

async function loadHistory() {
  const body = $("history-body");
  $("history-card").hidden = false;
  let history;
  try {
    history = await api("GET", `${reviewPath()}/history`);
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "form-error" }, `无法读取变更记录：${err.detail || err.message}`)));
    return;
  }
  body.replaceChildren(...history.entries.map((e) => el("tr", { class: "entry", dataset: { action: e.action } },
    el("td", { class: "num" }, when(e.at)),
    el("td", {}, e.actor, el("span", { class: "muted" }, `（${ROLE[e.actor_role] || e.actor_role}）`)),
    el("td", {}, ACTION[e.action] || e.action),
    el("td", {}, e.finding_id ? `#${e.finding_id} ${e.detail && e.detail.rule_id ? ruleName(e.detail.rule_id) : ""}` : ""),
    el("td", { class: "why" }, e.reason || ""),
    el("td", { class: "muted" }, change(e)))));
}

// ---------------------------------------------------------------- start

async function main() {
  try {
    report = await api("GET", callPath);
  } catch (err) {
    showRefusal(err, "通话");
    return;
  }
  showContent();
  $("add-rule").replaceChildren(...ruleIds().map((id) => el("option", { value: id }, `${ruleName(id)}（${id}）`)));
  transcript.render(reportLines(report));
  player.load(`${callPath}/audio`, report.duration_s, report.recording ? report.recording.agent_channel : 0);
  try {
    const found = await api("GET", `/v1/qa/reviews?call_id=${enc(callId)}`);
    if (found.reviews.length) await show(await api("GET", `/v1/qa/reviews/${enc(found.reviews[0].review_id)}`));
    else render();
  } catch (err) {
    showRefusal(err, "复核");
  }
}

main();
