/**
 * The run report's own script, inlined into the page as text: it draws the chunk map on a canvas
 * at the slider's time and the rate lines with uPlot. Plain browser JavaScript (the project's
 * TypeScript settings have no DOM types); it reads the record from the page's JSON block.
 */
export const PAGE_SCRIPT = `
'use strict';
(function () {
  var record = JSON.parse(document.getElementById('run-data').textContent);
  var COLOURS = { '1': '#e08214', '2': '#2b83ba', '0': '#e6e6e6' };
  var peers = record.peers.length;
  var chunks = record.chunkCount;

  // The chunk map: one row per peer, one column per chunk. Cells shrink to fit big runs, down to
  // one pixel; peer names are written only when rows are tall enough to read them.
  var canvas = document.getElementById('chunk-map');
  var context = canvas.getContext('2d');
  var cellW = Math.max(1, Math.min(32, Math.floor(800 / Math.max(1, chunks))));
  var cellH = Math.max(1, Math.min(14, Math.floor(560 / Math.max(1, peers))));
  var gutter = cellH >= 9 ? 64 : 0;
  canvas.width = gutter + chunks * cellW;
  canvas.height = peers * cellH;
  var slider = document.getElementById('time');
  var label = document.getElementById('time-label');

  function seconds(ms) {
    return (ms / 1000).toFixed(3) + ' s';
  }

  function drawMap(atMs) {
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, canvas.width, canvas.height);
    var shown = 0;
    var gap = cellW >= 4 && cellH >= 4 ? 1 : 0;
    for (var p = 0; p < peers; p++) {
      for (var c = 0; c < chunks; c++) {
        var i = p * chunks + c;
        var at = record.arrivalsMs[i];
        var held = at >= 0 && at <= atMs;
        if (held) shown++;
        context.fillStyle = COLOURS[held ? record.sources[i] : '0'];
        context.fillRect(gutter + c * cellW, p * cellH, cellW - gap, cellH - gap);
      }
      if (gutter > 0) {
        context.fillStyle = '#333';
        context.font = Math.min(12, cellH) + 'px sans-serif';
        context.textBaseline = 'middle';
        context.fillText(record.peers[p], 2, p * cellH + cellH / 2);
      }
    }
    canvas.dataset.time = String(atMs);
    canvas.dataset.shown = String(shown);
    var total = peers * chunks;
    label.textContent = 't = ' + seconds(atMs) + ': ' + shown + ' of ' + total + ' (peer, chunk) cells held (' +
      (total === 0 ? 100 : Math.round((100 * shown) / total)) + '%)';
  }

  slider.addEventListener('input', function () {
    drawMap(Number(slider.value));
  });
  drawMap(Number(slider.value));

  // Rates: the recorded buckets merged to at most 80 on screen (each chunk arrives whole, so
  // narrow buckets only show spikes), turned into MB/s; x in seconds.
  var rates = record.rates;
  var merge = Math.max(1, Math.ceil(rates.peersDown.length / 80));
  var bucketMs = rates.bucketMs * merge;
  var perSecond = 1000 / bucketMs / 1e6;
  var xs = [];
  for (var b = 0; b * merge < rates.peersDown.length; b++) xs.push((b * bucketMs) / 1000);
  function scaled(series) {
    return xs.map(function (_, k) {
      var sum = 0;
      for (var j = k * merge; j < (k + 1) * merge && j < series.length; j++) sum += series[j];
      return sum * perSecond;
    });
  }
  var holder = document.getElementById('rates');
  if (xs.length > 0 && typeof uPlot === 'function') {
    new uPlot(
      {
        width: 900,
        height: 300,
        scales: { x: { time: false } },
        axes: [
          { label: 'time (s)' },
          { label: 'MB/s', size: 60 },
        ],
        series: [
          { label: 't (s)' },
          // Filled: where one sender does all the uploading its line lies exactly on this one.
          {
            label: 'peers download',
            stroke: '#1a9850',
            fill: 'rgba(26, 152, 80, 0.15)',
            width: 2,
            points: { show: false },
            paths: uPlot.paths.stepped({ align: 1 }),
          },
          { label: 'peers upload', stroke: '#2b83ba', width: 2, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) },
          { label: 'owner upload', stroke: '#e08214', width: 2, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }) },
        ],
      },
      [xs, scaled(rates.peersDown), scaled(rates.peersUp), scaled(rates.ownerUp)],
      holder,
    );
    holder.dataset.buckets = String(xs.length);
    document.getElementById('bucket-note').textContent = 'Buckets of ' + bucketMs + ' ms.';
  } else {
    holder.textContent = 'No chunk moved in this run.';
  }
})();
`;
