// The reviewer's work queue (/qa/queue, docs/qa.md): what the sampling plans picked for this key and the
// calibrations it takes part in (GET /v1/qa/queue), each with why, the call's agent, start and automatic score
// (from the call's QA report, GET /v1/audit/calls/{id}), how far it is, and the link that opens its work.

import { PROGRESS, $, api, el, enc, score, showContent, showRefusal, when } from "./qa_common.js";
import { reasonList } from "./reasons.js";

const EMPTY = $("queue-empty").textContent; // the template's words for a queue with nothing in it

/** The call's start and automatic score from its QA report; null where the report cannot be read now. */
async function callFacts(callId) {
  try {
    const report = await api("GET", `/v1/audit/calls/${enc(callId)}`);
    return { startedAt: report.started_at, score: report.score };
  } catch (err) {
    return null;
  }
}

function workLink(item) {
  if (item.kind === "calibration") {
    return el("a", { class: "open-work", href: `/qa/calibrations/${enc(item.calibration_id)}` },
      item.state === "submitted" ? "查看" : "校准评分");
  }
  return el("a", { class: "open-work", href: `/qa/calls/${enc(item.call_id)}/review` }, item.state === "submitted" ? "查看" : "复核");
}

function source(item) {
  if (item.kind === "calibration") return "校准";
  return el("span", {}, el("span", { class: "plan" }, item.plan_name || ""), el("div", { class: "muted" }, `周 ${item.week}`));
}

async function showQueue() {
  const state = $("state-filter").value;
  let queue;
  try {
    queue = await api("GET", `/v1/qa/queue${state ? `?state=${enc(state)}` : ""}`);
  } catch (err) {
    showRefusal(err, "工作队列");
    return;
  }
  showContent();
  $("reviewer").textContent = queue.reviewer;
  const facts = await Promise.all(queue.items.map((item) => callFacts(item.call_id)));
  const rows = queue.items.map((item, i) => el("tr", {
    class: "queue-item", dataset: { kind: item.kind, callId: item.call_id, state: item.state },
  },
  el("td", {}, item.call_id),
  el("td", {}, item.agent_id),
  el("td", { class: "num" }, facts[i] && facts[i].startedAt ? String(facts[i].startedAt).replace("T", " ").slice(0, 16) : "—"),
  el("td", { class: "num automatic" }, facts[i] ? score(facts[i].score) : "—"),
  el("td", { class: "source" }, source(item)),
  el("td", {}, reasonList(item.reasons)),
  el("td", { class: "num" }, when(item.assigned_at)),
  el("td", { class: `progress progress-${item.state}` }, PROGRESS[item.state] || item.state),
  el("td", {}, workLink(item))));
  $("queue-body").replaceChildren(...rows);
  $("queue").hidden = !rows.length;
  $("queue-empty").hidden = !!rows.length;
  $("queue-empty").textContent = state ? `没有「${PROGRESS[state] || state}」的工作。` : EMPTY;
}

$("state-filter").addEventListener("change", showQueue);
showQueue();
