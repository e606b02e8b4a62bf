// Why a call was picked, as the queue and a plan's picks show it: the reason in words (PICK_REASON) and the
// API's detail beside it (the sample's size, the findings, the score, how the customer ended).

import { PICK_REASON, el } from "./qa_common.js";

export function reasonList(reasons) {
  return el("ul", { class: "reasons" }, reasons.map((r) => el("li", { dataset: { code: r.code } },
    el("span", { class: "label" }, PICK_REASON[r.code] || r.code), "：", el("span", { class: "detail" }, r.detail))));
}
