/* Draws the dashboards' charts with the vendored Chart.js from JSON that the page embeds with
   Django's json_script: <canvas data-chart="ID"> reads <script type="application/json" id="ID">.
   Spec: {type: "line"|"bar", labels: [...], datasets: [{label, data, dashed?, emphasis?}],
   y: "number"|"int"|"percent" (fractions)|"pct100" (already in %)|"money"}.
   No inline scripts, so a strict CSP is fine. */
(function () {
  "use strict";
  var PALETTE = ["#0b5cad", "#d9730d", "#17663a", "#a4161a", "#6b3fa0", "#00838f", "#8a5a00",
    "#4a5561"];

  function formatter(kind) {
    if (kind === "percent") {
      return function (v) { return v === null ? "" : (v * 100).toFixed(0) + "%"; };
    }
    if (kind === "pct100") {
      return function (v) { return v === null ? "" : v.toFixed(0) + "%"; };
    }
    if (kind === "int") {
      return function (v) { return Number.isInteger(v) ? v.toLocaleString() : ""; };
    }
    return function (v) { return v === null ? "" : Number(v).toLocaleString(); };
  }

  function tooltipFormatter(kind) {
    if (kind === "percent") {
      return function (v) { return (v * 100).toFixed(1) + "%"; };
    }
    if (kind === "pct100") {
      return function (v) { return v.toFixed(1) + "%"; };
    }
    return function (v) { return Number(v).toLocaleString(undefined, {maximumFractionDigits: 2}); };
  }

  function dataset(spec, index, type) {
    var colour = spec.emphasis ? "#1b1f24" : PALETTE[index % PALETTE.length];
    return {
      label: spec.label,
      data: spec.data,
      borderColor: colour,
      backgroundColor: type === "bar" ? colour + "cc" : colour,
      borderWidth: spec.emphasis ? 3 : 2,
      borderDash: spec.dashed ? [6, 4] : [],
      pointRadius: type === "line" && spec.data.length > 60 ? 0 : 3,
      spanGaps: true,
      tension: 0.1
    };
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var kind = spec.y || "number";
    var tip = tooltipFormatter(kind);
    var chart = new Chart(canvas, {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d, i) { return dataset(d, i, spec.type); })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: {mode: "index", intersect: false},
        plugins: {
          legend: {display: spec.datasets.length > 1},
          tooltip: {
            callbacks: {
              label: function (ctx) {
                return ctx.dataset.label + ": " + (ctx.parsed.y === null ? "—" : tip(ctx.parsed.y));
              }
            }
          }
        },
        scales: {
          x: {ticks: {autoSkip: true, maxRotation: 45}},
          y: {
            beginAtZero: spec.type === "bar" || kind === "percent" || kind === "pct100",
            suggestedMax: kind === "percent" ? 1 : kind === "pct100" ? 100 : undefined,
            ticks: {callback: formatter(kind)}
          }
        }
      }
    });
    canvas.dataset.drawn = chart.data.datasets.length ? "true" : "empty";
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
