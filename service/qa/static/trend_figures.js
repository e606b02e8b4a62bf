// The figures the trends page draws, worked out from /v1/qa/trends' rows (docs/qa.md § Trends), apart from
// drawing them so that the table and the charts show the same numbers.

/** Calls of the rows with at least one finding of each rule: a row's hit rate times its calls, summed. */
export function callsWithFinding(rows) {
  const counts = new Map();
  for (const row of rows) {
    for (const [rule, rate] of Object.entries(row.rule_hit_rates || {})) {
      counts.set(rule, (counts.get(rule) || 0) + Math.round(rate * row.calls));
    }
  }
  return counts;
}

/** Per rule: the calls with a finding of it and its hit rate over all the rows' calls; most hit first. */
export function ruleTotals(rows) {
  const calls = rows.reduce((sum, row) => sum + row.calls, 0);
  return [...callsWithFinding(rows)]
    .map(([ruleId, hit]) => ({ ruleId, hit, rate: calls ? hit / calls : 0 }))
    .sort((a, b) => b.hit - a.hit || a.ruleId.localeCompare(b.ruleId));
}

/** The name a row goes by on its level: the agent id, or the team. */
export function seriesName(row) {
  return row.level === "agent" ? row.agent_id : row.team;
}

/** One series per agent (or team): its average score in each of `weeks` (null where it had no scored call). */
export function scoreSeries(rows, weeks) {
  const byName = new Map();
  for (const row of rows) {
    const name = seriesName(row);
    if (!byName.has(name)) byName.set(name, new Map());
    byName.get(name).set(row.week, row.average_score);
  }
  return [...byName].map(([name, scores]) => ({ name, scores: weeks.map((w) => (scores.has(w) ? scores.get(w) : null)) }));
}

/** Per week, the sum of `field` over the rows of that week. */
export function weeklySum(rows, weeks, field) {
  return weeks.map((w) => rows.filter((r) => r.week === w).reduce((sum, r) => sum + (r[field] || 0), 0));
}
