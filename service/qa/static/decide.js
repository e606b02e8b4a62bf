// The confirm / reject buttons of one finding, the same for a review (review.js) and a reviewer's blind
// calibration (calibration.js): a rejection asks for its reason first; an added finding is withdrawn (撤回)
// the same way. `onDecide(body, errorNode)` sends the decision and shows a refusal in `errorNode`; `reasonHint`
// says in the reason's box who will read it.

import { el } from "./qa_common.js";

/** The buttons for finding `f`: the current decision marked. */
export function decisionButtons(f, onDecide, reasonHint) {
  const box = el("div", { class: "decide" });
  const error = el("div", { class: "form-error", hidden: true, role: "alert" });
  box.append(
    el("button", { type: "button", class: `confirm${f.decision === "confirmed" ? " chosen" : ""}`,
                   onclick: () => onDecide({ decision: "confirm" }, error) }, "确认"),
    el("button", { type: "button", class: `reject${f.decision === "rejected" ? " chosen" : ""}`,
                   onclick: () => askReason(box, error, onDecide, reasonHint) }, f.source === "added" ? "撤回" : "驳回"),
    error,
  );
  return box;
}

function askReason(box, error, onDecide, reasonHint) {
  if (box.querySelector("form")) return;
  const reason = el("textarea", { class: "reason-input", rows: "2", maxlength: "2000", required: true,
                                  placeholder: reasonHint });
  const form = el("form", { class: "reject-form" }, reason, " ",
    el("button", { type: "submit", class: "reject-ok" }, "确定驳回"), " ",
    el("button", { type: "button", class: "cancel", onclick: () => form.remove() }, "取消"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    onDecide({ decision: "reject", reason: reason.value }, error);
  });
  box.insertBefore(form, error);
  reason.focus();
}
