// Small canvas charts for the dashboard (no library: the page must work with no internet).
"use strict";
const SSCharts = (() => {
  const PALETTE = ["#f43f5e", "#38bdf8", "#a3e635", "#fbbf24", "#c084fc", "#34d399", "#fb923c", "#60a5fa"];

  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== w * ratio || canvas.height !== h * ratio) {
      canvas.width = w * ratio; canvas.height = h * ratio;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px sans-serif";
    return { ctx, w, h };
  }

  // a maximum whose quarter is a round number, so the four grid lines read 0, q, 2q, 3q, 4q
  function niceMax(v) {
    const q = Math.max(1, v / 4);
    const p = Math.pow(10, Math.floor(Math.log10(q)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= q && Number.isInteger(m * p)) return 4 * m * p;
    return 40 * p;
  }

  function axes(ctx, w, h, max, labels, pad) {
    ctx.strokeStyle = "#1f2a44"; ctx.fillStyle = "#94a3b8"; ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + (h - pad.t - pad.b) * (1 - i / 4);
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
      ctx.fillText(String(Math.round(max * i / 4)), 2, y + 4);
    }
    const step = Math.max(1, Math.ceil(labels.length / 6));
    labels.forEach((label, i) => {
      if (i % step !== 0) return;
      const x = pad.l + (w - pad.l - pad.r) * (labels.length === 1 ? 0.5 : i / (labels.length - 1));
      ctx.fillText(label, Math.min(x - 14, w - 34), h - 4);
    });
  }

  // series: [{name, values, color?}]; stacked=false draws lines
  function lines(canvas, labels, series) {
    const { ctx, w, h } = setup(canvas);
    const pad = { l: 34, r: 8, t: 8, b: 18 };
    const max = niceMax(Math.max(1, ...series.flatMap(s => s.values)));
    axes(ctx, w, h, max, labels, pad);
    series.forEach((s, k) => {
      ctx.strokeStyle = s.color || PALETTE[k % PALETTE.length]; ctx.lineWidth = 2; ctx.beginPath();
      s.values.forEach((v, i) => {
        const x = pad.l + (w - pad.l - pad.r) * (s.values.length === 1 ? 0.5 : i / (s.values.length - 1));
        const y = pad.t + (h - pad.t - pad.b) * (1 - v / max);
        i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
      });
      ctx.stroke();
    });
  }

  // groups of bars side by side: series [{name, values, color?}]
  function bars(canvas, labels, series) {
    const { ctx, w, h } = setup(canvas);
    const pad = { l: 34, r: 8, t: 8, b: 18 };
    const max = niceMax(Math.max(1, ...series.flatMap(s => s.values)));
    axes(ctx, w, h, max, labels, pad);
    const slot = (w - pad.l - pad.r) / Math.max(1, labels.length);
    const bw = Math.max(1, slot * 0.8 / series.length);
    series.forEach((s, k) => {
      ctx.fillStyle = s.color || PALETTE[k % PALETTE.length];
      s.values.forEach((v, i) => {
        const bh = (h - pad.t - pad.b) * (v / max);
        ctx.fillRect(pad.l + slot * i + slot * 0.1 + bw * k, h - pad.b - bh, bw, bh);
      });
    });
  }

  function legend(el, series) {
    el.replaceChildren(...series.map((s, k) => {
      const span = document.createElement("span");
      const dot = document.createElement("i");
      dot.style.background = s.color || PALETTE[k % PALETTE.length];
      span.append(dot, document.createTextNode(s.name));
      return span;
    }));
  }

  return { lines, bars, legend, PALETTE };
})();
