// The supervisor's result of a calibration (/qa/calibrations/{calibration_id}/result, docs/qa.md § The result):
// who has submitted (GET /v1/qa/calibrations/{id}), then the figures as the API computes them (GET …/result):
// per rule how many said broken and not, the agreement rate, the majority and whether the automatic report
// sides with it; the kappa over the reviewers; each reviewer's score and each automatic finding's tally.
// Until two reviewers have submitted, the API's reason (409).

import { PROGRESS, $, ApiError, api, el, enc, score, showContent, showRefusal, when } from "./qa_common.js";
import { showResult, showWaiting } from "./calibration_figures.js";

const calibrationId = $("page").dataset.calibrationId;
const path = `/v1/qa/calibrations/${enc(calibrationId)}`;

function fact(label, value) {
  return el("tr", {}, el("th", {}, label), el("td", {}, value || "—"));
}

async function main() {
  let calibration;
  try {
    calibration = await api("GET", path);
  } catch (err) {
    showRefusal(err, "校准");
    return;
  }
  showContent();
  $("call-title").textContent = `${calibration.call_id} · 坐席 ${calibration.agent_id}`;
  $("call-link").href = `/qa/calls/${enc(calibration.call_id)}/review`;
  $("automatic-score").textContent = score(calibration.automatic_score);
  $("facts").replaceChildren(fact("说明", calibration.note), fact("发起", `${calibration.created_by} · ${when(calibration.created_at)}`));
  $("participants-body").replaceChildren(...calibration.reviewers.map((r) => el("tr", { class: "participant", dataset: { reviewer: r.reviewer, state: r.state } },
    el("td", {}, r.reviewer), el("td", {}, PROGRESS[r.state] || r.state), el("td", { class: "num" }, when(r.submitted_at)))));
  try {
    showResult(await api("GET", `${path}/result`));
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) showWaiting(`还没有结果：至少两位复核员提交后才有（服务器说明：${err.detail}）`);
    else showRefusal(err, "校准");
  }
}

main();
