// A calibration's result as the API computes it (GET …/result, docs/qa.md § The result), the same on the
// supervisor's result page and on a reviewer's page once it may see it: the kappa over the rules in play, how
// often the automatic report sides with the reviewers' majority, and per rule, per reviewer and per automatic
// finding what they said. Nothing is computed here but the display of the API's numbers.

import { $, clock, el, percent, score, when } from "./qa_common.js";
import { ruleName } from "/static/names.js";

const KAPPA = { cohen: "Cohen's κ（两位复核员）", fleiss: "Fleiss' κ（三位及以上）" };
const MAJORITY = { yes: "违反", no: "未违反", tie: "平局" };

function ruleCell(ruleId) {
  return el("td", { class: "rule" }, ruleName(ruleId), el("div", { class: "muted" }, ruleId));
}

function sides(agrees) {
  if (agrees === null || agrees === undefined) return el("span", { class: "muted" }, "—（平局）");
  return el("span", { class: agrees ? "agrees" : "disagrees" }, agrees ? "一致" : "不一致");
}

/** Fill the result section (templates/_calibration_result.html) with `result` and show it. */
export function showResult(result) {
  $("result-state").textContent = result.complete ? "（全部复核员已提交）"
    : `（尚未提交：${result.pending.join("、")}；以下为已提交的 ${result.reviewers.length} 位）`;
  $("result").dataset.complete = result.complete ? "1" : "0";
  const kappa = result.kappa;
  $("kappa-label").textContent = kappa ? KAPPA[kappa.method] || kappa.method : "Kappa";
  $("kappa-value").textContent = kappa && kappa.value !== null ? Number(kappa.value).toFixed(3) : "—";
  $("kappa-value").dataset.method = kappa ? kappa.method : "";
  $("kappa-hint").textContent = !kappa ? "没有在范围内的规则"
    : kappa.value === null ? `无法计算：所有判定都相同（${kappa.subjects} 条规则）`
      : `${kappa.raters} 位复核员 × ${kappa.subjects} 条规则`;
  $("automatic-agreement").textContent = percent(result.automatic_agreement);

  const rules = result.rules.map((r) => el("tr", { class: "rule-row", dataset: { rule: r.rule_id, majority: r.majority } },
    ruleCell(r.rule_id),
    el("td", {}, r.automatic ? "认为违反" : "未报告"),
    el("td", { class: "num yes" }, String(r.yes)),
    el("td", { class: "num no" }, String(r.no)),
    el("td", { class: "num agreement" }, percent(r.agreement)),
    el("td", { class: "majority" }, MAJORITY[r.majority] || r.majority),
    el("td", { class: "automatic-agrees" }, sides(r.automatic_agrees))));
  $("result-rules-body").replaceChildren(...rules);
  if (!rules.length) $("result-rules-body").append(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "没有任何人认为违反的规则。")));

  $("result-reviewers-body").replaceChildren(...result.reviewers.map((r) => el("tr", { class: "reviewer-row", dataset: { reviewer: r.reviewer } },
    el("td", {}, r.reviewer), el("td", { class: "num" }, when(r.submitted_at)), el("td", { class: "num reviewer-score" }, score(r.score)),
    el("td", {}, r.breached.length ? r.breached.map(ruleName).join("、") : el("span", { class: "muted" }, "无")))));

  $("result-findings-body").replaceChildren(...result.findings.map((f) => el("tr", { class: "finding-row", dataset: { findingId: f.finding_id } },
    el("td", { class: "num" }, clock(f.t)), ruleCell(f.rule_id),
    el("td", { class: "num confirmed" }, String(f.confirmed)), el("td", { class: "num rejected" }, String(f.rejected)))));

  $("result-waiting").hidden = true;
  $("result").hidden = false;
}

/** Not yet a result (the API's 409): say why, in its words. */
export function showWaiting(text) {
  $("result").hidden = true;
  $("result-waiting").textContent = text;
  $("result-waiting").hidden = false;
}
