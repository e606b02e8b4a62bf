// What the pages call rules, severities and the recovery: the deployment's one names table (rules/names.py),
// which the server embeds in each page as <script type="application/json" id="callwatch-names">. The pages
// keep no names of their own, so the agent screen, the supervisor board and the QA report always agree.
// An id the table does not know (a rule newer than the page) is shown as the id itself.

function load() {
  const node = document.getElementById("callwatch-names");
  try {
    return (node && JSON.parse(node.textContent)) || {};
  } catch (err) {
    return {};
  }
}

const TABLE = load();

export function ruleName(ruleId) {
  return (TABLE.rules && TABLE.rules[ruleId]) || ruleId || "";
}

export function severityName(severity) {
  return (TABLE.severities && TABLE.severities[severity]) || severity || "";
}

/** "六步法·感受": the recovery's name before the step the prompt names. */
export function recoveryStepName(step) {
  const method = TABLE.recovery && TABLE.recovery.name;
  return method ? `${method}·${step}` : String(step || "");
}

/** Every rule id the table names, in rulebook order (the QA review page offers them for a missed finding). */
export function ruleIds() {
  return Object.keys(TABLE.rules || {});
}
