// Charts drawn from the tables beside them: each <figure data-chart="line|bar"> holds a
// <canvas> and a <table> with the same numbers (the table stays for screen readers and
// as the exact figures). The first column gives the labels; each header cell with
// data-series gives one series, read from its column. Chart.js is vendored (static/vendor).
(function () {
  if (typeof Chart === "undefined") return;
  var colours = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626"];
  document.querySelectorAll("figure[data-chart]").forEach(function (figure) {
    var table = figure.querySelector("table");
    var canvas = figure.querySelector("canvas");
    if (!table || !canvas) return;
    var headers = Array.prototype.slice.call(table.querySelectorAll("thead th"));
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr")).filter(function (row) {
      return !row.hasAttribute("data-empty");
    });
    var labels = rows.map(function (row) { return row.cells[0].textContent.trim(); });
    var datasets = [];
    headers.forEach(function (th, column) {
      if (!th.hasAttribute("data-series")) return;
      datasets.push({
        label: th.textContent.trim(),
        data: rows.map(function (row) { return Number(row.cells[column].getAttribute("data-value") || row.cells[column].textContent); }),
        borderColor: colours[datasets.length % colours.length],
        backgroundColor: colours[datasets.length % colours.length],
        tension: 0.2,
        pointRadius: rows.length > 60 ? 0 : 2
      });
    });
    var type = figure.getAttribute("data-chart");
    var chart = new Chart(canvas, {
      type: type,
      data: {labels: labels, datasets: datasets},
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        indexAxis: figure.getAttribute("data-axis") || "x",
        scales: {y: {beginAtZero: true}, x: {beginAtZero: true}},
        plugins: {legend: {display: datasets.length > 1}}
      }
    });
    figure.setAttribute("data-drawn", String(chart.data.datasets.reduce(function (n, d) { return n + d.data.length; }, 0)));
  });
})();
