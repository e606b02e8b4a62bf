// The supervisor's sampling plans (/qa/plans, docs/qa.md § Sampling plans): the plans it sees
// (GET /v1/qa/plans), and one plan (/qa/plans/{plan_id}): what it picks, running it over a week
// (POST …/runs), and the calls it picked with why, for whom and how far their reviews are (GET …/picks).
// Plans are defined through the API; this page does not change them.

import {
  PROGRESS, $, api, el, enc, showContent, showRefusal, showStepError, when,
} from "./qa_common.js";
import { reasonList } from "./reasons.js";
import { severityName } from "/static/names.js";

const planId = $("page").dataset.planId;
const planPath = () => `/v1/qa/plans/${enc(planId)}`;

function share(plan) {
  return plan.share ? `每位坐席每周 ${(100 * plan.share).toFixed(1).replace(/\.0$/, "")}%` : "不抽样";
}

function always(plan) {
  const said = [];
  if (plan.severities.length) said.push(`有${plan.severities.map(severityName).join("、")}级发现`);
  if (plan.score_below !== null) said.push(`自动评分低于 ${plan.score_below}`);
  if (plan.negative_end) said.push("客户情绪未恢复");
  return said.length ? said.join("；") : "—";
}

// ---------------------------------------------------------------- the list

async function showList() {
  let answer;
  try {
    answer = await api("GET", "/v1/qa/plans");
  } catch (err) {
    showRefusal(err, "抽检计划");
    return;
  }
  showContent();
  $("list").hidden = false;
  const rows = answer.plans.map((p) => el("tr", { class: "plan", dataset: { planId: p.plan_id } },
    el("td", {}, el("a", { href: `/qa/plans/${enc(p.plan_id)}` }, p.name)),
    el("td", {}, share(p)),
    el("td", {}, always(p)),
    el("td", {}, p.teams ? p.teams.join("、") : "全部"),
    el("td", {}, p.reviewers.join("、")),
    el("td", {}, `${p.created_by} · ${when(p.created_at)}`),
    el("td", {}, el("a", { class: "open-plan", href: `/qa/plans/${enc(p.plan_id)}` }, "运行 / 查看选中"))));
  $("plans-body").replaceChildren(...rows);
  $("plans").hidden = !rows.length;
  $("plans-empty").hidden = !!rows.length;
}

// ---------------------------------------------------------------- one plan

function fact(label, value) {
  return el("tr", {}, el("th", {}, label), el("td", {}, value || "—"));
}

async function showPicks() {
  const params = new URLSearchParams();
  if ($("picks-week").value) params.set("week", $("picks-week").value);
  if ($("picks-reviewer").value.trim()) params.set("reviewer", $("picks-reviewer").value.trim());
  let answer;
  try {
    const query = params.toString();
    answer = await api("GET", `${planPath()}/picks${query ? `?${query}` : ""}`);
  } catch (err) {
    showRefusal(err, "抽检计划");
    return;
  }
  const rows = answer.picks.map((p) => el("tr", { class: "pick", dataset: { callId: p.call_id, reviewer: p.reviewer } },
    el("td", { class: "num" }, p.week),
    el("td", {}, el("a", { href: `/qa/calls/${enc(p.call_id)}/review` }, p.call_id)),
    el("td", {}, p.agent_id),
    el("td", {}, reasonList(p.reasons)),
    el("td", {}, p.reviewer),
    el("td", {}, PROGRESS[p.review_state] || p.review_state),
    el("td", { class: "num" }, when(p.picked_at))));
  $("picks-body").replaceChildren(...rows);
  if (!rows.length) $("picks-body").append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "没有选中的通话。")));
}

async function showPlan() {
  let plan;
  try {
    plan = await api("GET", planPath());
  } catch (err) {
    showRefusal(err, "抽检计划");
    return;
  }
  showContent();
  $("one").hidden = false;
  $("plan-title").textContent = plan.name;
  $("plan-facts").replaceChildren(
    fact("抽样", share(plan)), fact("总是选中", always(plan)), fact("团队", plan.teams ? plan.teams.join("、") : "全部"),
    fact("复核员", plan.reviewers.join("、")), fact("创建", `${plan.created_by} · ${when(plan.created_at)}`),
    fact("修改", when(plan.updated_at)),
  );
  await showPicks();
}

if (planId) {
  $("run-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const week = $("run-week").value;
    try {
      const run = await api("POST", `${planPath()}/runs`, week ? { week } : {});
      $("run-error").hidden = true;
      $("run-result").textContent =
        `${run.week} 这一周：范围内 ${run.calls_seen} 通，本次选中 ${run.picked} 通` +
        `（本周每位复核员：${Object.entries(run.week_picks).map(([who, n]) => `${who} ${n}`).join("、") || "无"}）`;
      await showPicks();
    } catch (err) {
      showStepError($("run-error"), err, "抽检计划");
    }
  });
  $("picks-filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    showPicks();
  });
  showPlan();
} else {
  showList();
}
