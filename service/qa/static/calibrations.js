// Calibration (/qa/calibrations, docs/qa.md § Calibration): the calibrations this key is a reviewer of
// (GET /v1/qa/my-calibrations), each a link to its blind scoring; for a supervisor also the ones of the calls it
// sees (GET /v1/qa/calibrations), who has submitted, a link to the result, and the form that sends a call to
// several reviewers (POST /v1/qa/calibrations). A QA user's key is refused the supervisor's part: not shown.

import {
  ApiError, PROGRESS, $, api, el, enc, isRefusal, showContent, showRefusal, showStepError, when,
} from "./qa_common.js";

function progress(state) {
  return el("span", { class: `progress progress-${state}` }, PROGRESS[state] || state);
}

async function showMine() {
  let answer;
  try {
    answer = await api("GET", "/v1/qa/my-calibrations");
  } catch (err) {
    showRefusal(err, "校准");
    return false;
  }
  const rows = answer.calibrations.map((c) => el("tr", { class: "my-calibration", dataset: { calibrationId: c.calibration_id, state: c.state } },
    el("td", {}, c.call_id), el("td", {}, c.agent_id), el("td", {}, c.created_by),
    el("td", { class: "num" }, when(c.created_at)), el("td", {}, progress(c.state)),
    el("td", {}, el("a", { class: "open-calibration", href: `/qa/calibrations/${enc(c.calibration_id)}` },
      c.state === "submitted" ? "查看" : "去评分"))));
  $("my-calibrations-body").replaceChildren(...rows);
  if (!rows.length) {
    $("my-calibrations-body").append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "没有请您参加的校准。")));
  }
  return true;
}

async function showSupervised() {
  let answer;
  try {
    answer = await api("GET", "/v1/qa/calibrations");
  } catch (err) {
    // A reviewer who is no supervisor: the starting and the results are not its part of the page.
    if (isRefusal(err)) return;
    throw err;
  }
  $("supervised").hidden = false;
  const rows = answer.calibrations.map((c) => el("tr", { class: "calibration", dataset: { calibrationId: c.calibration_id } },
    el("td", {}, c.call_id), el("td", {}, c.agent_id), el("td", { class: "note" }, c.note || ""),
    el("td", {}, c.reviewers.map((r) => el("div", { dataset: { reviewer: r.reviewer } }, `${r.reviewer} `, progress(r.state)))),
    el("td", {}, `${c.created_by} · ${when(c.created_at)}`),
    el("td", {}, el("a", { class: "open-result", href: `/qa/calibrations/${enc(c.calibration_id)}/result` }, "结果"))));
  $("calibrations-body").replaceChildren(...rows);
  if (!rows.length) $("calibrations-body").append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "还没有发起校准。")));
}

$("create-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const reviewers = $("create-reviewers").value.split(/[\s,，、]+/).filter(Boolean);
  const note = $("create-note").value.trim();
  const body = { call_id: $("create-call").value.trim(), reviewers, ...(note ? { note } : {}) };
  try {
    const made = await api("POST", "/v1/qa/calibrations", body);
    $("create-error").hidden = true;
    $("create-form").reset();
    await showSupervised();
    const row = document.querySelector(`tr.calibration[data-calibration-id="${CSS.escape(made.calibration_id)}"]`);
    if (row) row.classList.add("picked");
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {  // a mistyped call id: the form's error, not the page's
      $("create-error").textContent = `没有这个通话，或它不在您可查看的范围内：${body.call_id}`;
      $("create-error").hidden = false;
      return;
    }
    showStepError($("create-error"), err, "校准");
  }
});

async function main() {
  if (!(await showMine())) return;
  showContent();
  await showSupervised();
}

main();
