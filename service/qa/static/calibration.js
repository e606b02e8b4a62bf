// A reviewer's blind scoring of a calibration's call (/qa/calibrations/{calibration_id}, docs/qa.md §
// Calibration): the recording with its waveform and the transcript as on the review page (from the call's QA
// report), the automatic findings with this reviewer's own decisions only (GET /v1/qa/my-calibrations/{id}),
// confirm or reject each, add what the rules missed, submit. Then the result, once the API gives it to this
// reviewer (after its own submit and a second reviewer's); before that, the API's reason.

import { PROGRESS, $, ApiError, api, clock, el, enc, score, showContent, showRefusal, showStepError } from "./qa_common.js";
import { showResult, showWaiting } from "./calibration_figures.js";
import { decisionButtons } from "./decide.js";
import { LEAD_IN_S, callPlayer } from "./call_player.js";
import { renderFindings } from "./findings.js";
import { reportLines } from "./transcript.js";
import { ruleIds, ruleName } from "/static/names.js";

const REASON_HINT = "驳回理由（必填，只有您自己看得到）";

const calibrationId = $("page").dataset.calibrationId;
const minePath = `/v1/qa/my-calibrations/${enc(calibrationId)}`;
let mine = null; // this reviewer's scoring, as the API answers it

const { transcript, player } = callPlayer();

function fact(label, value) {
  return el("tr", {}, el("th", {}, label), el("td", {}, value || "—"));
}

function render(report) {
  const open = mine.state !== "submitted";
  $("call-title").textContent = `${mine.call_id} · 坐席 ${mine.agent_id}`;
  $("automatic-score").textContent = score(mine.automatic_score);
  $("my-score").textContent = score(mine.score);
  $("my-score-hint").textContent = open ? "提交后计算" : "";
  $("my-state").textContent = PROGRESS[mine.state] || mine.state;
  $("my-state").dataset.state = mine.state;
  const facts = [fact("复核员", mine.reviewer), fact("说明", mine.note)];
  if (report) {
    facts.push(fact("开始时间", (report.started_at || "").replace("T", " ").slice(0, 19)), fact("时长", clock(report.duration_s)));
  }
  $("facts").replaceChildren(...facts);
  renderFindings($("findings-body"), mine.findings, {
    onSeek: (t) => player.seek(Math.max(0, t - LEAD_IN_S)),
    actions: open ? (f) => decisionButtons(f, (body, error) => decide(f, body, error), REASON_HINT) : null,
  });
  player.markFindings(mine.findings);
  $("add-form").hidden = !open;
  $("submit-box").hidden = !open;
  if (open) {
    const pending = mine.findings.filter((f) => f.decision === "pending").length;
    $("pending").textContent = pending ? `还有 ${pending} 条自动发现待确认或驳回。` : "每条自动发现都已确认或驳回，可以提交。";
  }
}

async function showOwnResult() {
  if (mine.state !== "submitted") {
    showWaiting("提交您的评分后，才能看到校准结果。");
    return;
  }
  try {
    showResult(await api("GET", `${minePath}/result`));
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) showWaiting(`还没有结果：至少两位复核员提交后才有（服务器说明：${err.detail}）`);
    else showRefusal(err, "校准");
  }
}

async function show(answer) {
  mine = answer;
  render(null);
  await showOwnResult();
}

async function decide(f, body, error) {
  try {
    await show(await api("POST", `${minePath}/findings/${enc(f.finding_id)}/decision`, body));
  } catch (err) {
    showStepError(error, err, "校准");
  }
}

$("add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { rule_id: $("add-rule").value, t: Math.floor(player.time * 10) / 10, note: $("add-note").value };
  try {
    await show(await api("POST", `${minePath}/findings`, body));
    $("add-note").value = "";
    $("add-error").hidden = true;
  } catch (err) {
    showStepError($("add-error"), err, "校准");
  }
});

$("submit-calibration").addEventListener("click", async () => {
  try {
    await show(await api("POST", `${minePath}/submit`));
    $("submit-error").hidden = true;
  } catch (err) {
    showStepError($("submit-error"), err, "校准");
  }
});

async function main() {
  try {
    mine = await api("GET", minePath);
  } catch (err) {
    showRefusal(err, "校准");
    return;
  }
  showContent();
  $("add-rule").replaceChildren(...ruleIds().map((id) => el("option", { value: id }, `${ruleName(id)}（${id}）`)));
  let report = null;
  try {
    report = await api("GET", `/v1/audit/calls/${enc(mine.call_id)}`);
  } catch (err) {
    // Scoring goes on from the findings; the call's words and sound are what is missing.
    $("wave-note").textContent = `无法读取通话的转写和录音（${err.detail || err.message}）。`;
    $("wave-note").hidden = false;
  }
  render(report);
  if (report) {
    transcript.render(reportLines(report));
    player.load(`/v1/audit/calls/${enc(mine.call_id)}/audio`, report.duration_s,
      report.recording ? report.recording.agent_channel : 0);
  }
  await showOwnResult();
}

main();
