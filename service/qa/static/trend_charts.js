// The trends page's charts, drawn by Chart.js (static/vendor/chart.umd.min.js, loaded before this module as a
// classic script: window.Chart). Labels are drawn on the canvas as text, so an agent id with markup in it stays
// text. Animation is off: the page marks itself drawn once the charts are there, not half-way through.

import { ruleName } from "/static/names.js";
import { ruleTotals, scoreSeries, weeklySum } from "./trend_figures.js";

const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#ad1457", "#546e7a"];
const drawn = new Map(); // canvas id -> its Chart, destroyed before the canvas is drawn again

function draw(canvasId, config) {
  if (drawn.has(canvasId)) drawn.get(canvasId).destroy();
  const base = { animation: false, responsive: true, maintainAspectRatio: false };
  drawn.set(canvasId, new window.Chart(document.getElementById(canvasId), { ...config, options: { ...base, ...config.options } }));
}

function colour(i) {
  return COLOURS[i % COLOURS.length];
}

/** All five charts for `rows` (one level: agents or teams) over `weeks`. */
export function drawCharts(rows, weeks) {
  draw("chart-score", {
    type: "line",
    data: {
      labels: weeks,
      datasets: scoreSeries(rows, weeks).map((s, i) => ({
        label: s.name, data: s.scores, borderColor: colour(i), backgroundColor: colour(i), spanGaps: true,
      })),
    },
    options: { scales: { y: { suggestedMin: 60, suggestedMax: 100, title: { display: true, text: "平均分" } } } },
  });
  const rules = ruleTotals(rows);
  const top = rules.slice(0, 10);
  draw("chart-breaches", {
    type: "bar",
    data: { labels: top.map((r) => ruleName(r.ruleId)), datasets: [{ label: "通话数", data: top.map((r) => r.hit), backgroundColor: "#c62828" }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { ticks: { precision: 0 } } } },
  });
  draw("chart-hit-rates", {
    type: "bar",
    data: {
      labels: rules.map((r) => ruleName(r.ruleId)),
      datasets: [{ label: "命中率 %", data: rules.map((r) => +(r.rate * 100).toFixed(1)), backgroundColor: "#ef6c00" }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { min: 0, max: 100 } } },
  });
  draw("chart-moods", {
    type: "bar",
    data: {
      labels: weeks,
      datasets: [
        { label: "转负", data: weeklySum(rows, weeks, "turned_negative"), backgroundColor: "#c62828" },
        { label: "其中恢复", data: weeklySum(rows, weeks, "recovered"), backgroundColor: "#2e7d32" },
      ],
    },
    options: { scales: { y: { ticks: { precision: 0 } } } },
  });
  draw("chart-prompts", {
    type: "bar",
    data: {
      labels: weeks,
      datasets: [
        { label: "显示", data: weeklySum(rows, weeks, "prompts_shown"), backgroundColor: "#1565c0" },
        { label: "采纳", data: weeklySum(rows, weeks, "prompts_heeded"), backgroundColor: "#2e7d32" },
      ],
    },
    options: { scales: { y: { ticks: { precision: 0 } } } },
  });
}
