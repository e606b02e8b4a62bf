// A review's findings as a table, the same on the reviewer's, the agent's and the supervisor's pages: when in
// the call, which rule (named by the deployment's names table), how severe, what the rules engine or the
// reviewer wrote, the decision with its reason, and the agent's dispute with the ruling. Each page adds its
// own buttons to a row through `actions`.

import { DECISION, DISPUTE_STATE, SOURCE, clock, el, score, when } from "./qa_common.js";
import { ruleName, severityName } from "/static/names.js";

/** What the dispute of a finding says, and the ruling on it if there is one. */
export function disputeBlock(dispute) {
  const block = el("div", { class: `dispute state-${dispute.state}`, dataset: { disputeId: dispute.dispute_id } },
    el("div", {}, el("span", { class: "label" }, "坐席申诉："), el("span", { class: "comment" }, dispute.comment),
      el("span", { class: "muted" }, ` （${when(dispute.raised_at)}）`)));
  const ruling = dispute.ruling;
  if (!ruling) {
    block.append(el("div", { class: "ruling pending" }, "待主管裁定"));
    return block;
  }
  const outcome = DISPUTE_STATE[ruling.outcome] || ruling.outcome;
  block.append(el("div", { class: `ruling outcome-${ruling.outcome}` },
    el("span", { class: "label" }, `裁定：${outcome}`), " — ", el("span", { class: "ruling-reason" }, ruling.reason),
    el("span", { class: "muted" }, ` （${ruling.ruled_by}，${when(ruling.ruled_at)}；复核评分 ${score(ruling.score_before)} → ${score(ruling.score_after)}）`)));
  return block;
}

/**
 * Fill `tbody` with one row per finding.
 * @param {object[]} findings the review's findings (or, before a review, the report's, without decisions)
 * @param {object} opts disputes: the review's disputes; onSeek(t): the time was clicked;
 *   actions(finding, row): a node of buttons for the row's last cell, or null
 */
export function renderFindings(tbody, findings, { disputes = [], onSeek, actions } = {}) {
  const disputed = new Map(disputes.map((d) => [d.finding_id, d]));
  const rows = findings.map((f) => {
    const row = el("tr", {
      class: `finding${f.counted ? " counted" : ""}`,
      dataset: { findingId: f.finding_id, rule: f.rule_id, t: f.t, decision: f.decision || "none", source: f.source },
    });
    const at = onSeek ? el("button", { type: "button", class: "seek num", onclick: () => onSeek(+f.t), title: "跳到此处" }, clock(f.t))
      : el("span", { class: "num" }, clock(f.t));
    const said = [];
    if (f.detail) said.push(el("div", { class: "detail" }, f.detail));
    if (f.note) said.push(el("div", { class: "note" }, el("span", { class: "label" }, "复核备注："), f.note));
    const decided = [];
    if (f.decision) {
      decided.push(el("div", { class: `decision decision-${f.decision}` }, DECISION[f.decision] || f.decision,
        f.source === "added" ? el("span", { class: "muted" }, "（人工补充）") : null,
        // Confirmed yet not counted: a supervisor overturned it on the agent's dispute.
        f.decision === "confirmed" && f.counted === false ? el("span", { class: "muted" }, "（申诉后撤销，不扣分）") : null));
      if (f.reason) decided.push(el("div", { class: "reason" }, el("span", { class: "label" }, "理由："), f.reason));
      if (f.decided_by) decided.push(el("div", { class: "muted" }, `${f.decided_by} · ${when(f.decided_at)}`));
    } else {
      decided.push(el("span", { class: "muted" }, `${SOURCE[f.source] || "自动"} · 未复核`));
    }
    if (disputed.has(f.finding_id)) decided.push(disputeBlock(disputed.get(f.finding_id)));
    row.append(
      el("td", {}, at),
      el("td", {}, ruleName(f.rule_id), el("div", { class: "muted" }, f.rule_id)),
      el("td", { class: `sev-${f.severity}` }, severityName(f.severity)),
      el("td", {}, said),
      el("td", { class: "decided" }, decided),
    );
    const extra = actions ? actions(f, row) : null;
    row.append(el("td", { class: "actions" }, extra));
    return row;
  });
  tbody.replaceChildren(...rows);
  if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "没有发现。")));
}

/** Flash a finding's row and bring it into view (a marker on the timeline was clicked). */
export function showFinding(tbody, findingId) {
  const row = tbody.querySelector(`tr.finding[data-finding-id="${CSS.escape(String(findingId))}"]`);
  if (!row) return;
  for (const r of tbody.querySelectorAll("tr.picked")) r.classList.remove("picked");
  row.classList.add("picked");
  row.scrollIntoView({ block: "nearest" });
}
