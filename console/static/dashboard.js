// The live dashboard: one server-sent-events stream of frames; every worker's scans reach it through
// the server's channel. Reconnects on its own (EventSource) and shows whether it is live.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const hhmm = s => new Date(s * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const fmt = v => (v === null || v === undefined ? "–" : String(v));
  const yuan = fen => (fen / 100).toFixed(2);

  function render(f) {
    $("kpi-scans").textContent = fmt(f.scans.total);
    $("kpi-minute").textContent = fmt(f.scans.last_minute);
    $("kpi-denied").textContent = fmt(f.scans.denied);
    $("kpi-p50").textContent = fmt(f.latency_ms.p50);
    $("kpi-p99").textContent = fmt(f.latency_ms.p99);
    $("kpi-backlog").textContent = fmt(f.webhooks.pending + f.webhooks.outbox);
    $("updated").textContent = "更新 " + new Date(f.at * 1000).toLocaleTimeString();

    const series = f.scans.per_app.map(a => ({ name: `${a.name_zh} ${a.name_en}`, values: a.counts }));
    const labels = f.scans.minutes.map(hhmm);
    SSCharts.lines($("chart-scans"), labels, series.length ? series : [{ name: "—", values: labels.map(() => 0) }]);
    SSCharts.legend($("legend-scans"), series);

    const refusals = $("refusals");
    refusals.replaceChildren(...(f.refusals.length ? f.refusals.map(r => {
      const li = document.createElement("li");
      const name = document.createElement("span"); name.textContent = r.reason;
      const n = document.createElement("b"); n.textContent = r.count;
      li.append(name, n); return li;
    }) : [Object.assign(document.createElement("li"), { className: "muted", textContent: "暂无 None yet" })]));

    const p = f.payments;
    const pay = [
      { name: "支付 paid", values: p.paid_count, color: "#22c55e" },
      { name: "退款 refunded", values: p.refund_count, color: "#f59e0b" },
    ];
    SSCharts.bars($("chart-payments"), p.hours.map(hhmm), pay);
    const paidFen = p.paid_fen.reduce((a, b) => a + b, 0), refundFen = p.refund_fen.reduce((a, b) => a + b, 0);
    SSCharts.legend($("legend-payments"), [
      { ...pay[0], name: `支付 paid ¥${yuan(paidFen)}` }, { ...pay[1], name: `退款 refunded ¥${yuan(refundFen)}` },
    ]);

    const w = f.webhooks;
    $("webhooks").replaceChildren(...[
      ["待投递 pending", w.pending], ["未分发 outbox", w.outbox], ["放弃 dead", w.dead],
    ].map(([label, v]) => {
      const li = document.createElement("li");
      const a = document.createElement("span"); a.textContent = label;
      const b = document.createElement("b"); b.textContent = v;
      li.append(a, b); return li;
    }));

    const gauges = $("gauges");
    gauges.replaceChildren(...(f.gauges.length ? f.gauges.map(g => {
      const div = document.createElement("div"); div.className = "gauge";
      const label = document.createElement("div");
      label.textContent = `${g.label_zh} · ${g.value}${g.of ? " / " + g.of : ""}`;
      div.append(label);
      if (g.of) {
        const track = document.createElement("div"); track.className = "track";
        const fill = document.createElement("div"); fill.className = "fill";
        fill.style.width = Math.max(0, Math.min(100, 100 * g.value / g.of)) + "%";
        track.append(fill); div.append(track);
      }
      return div;
    }) : [Object.assign(document.createElement("p"), { className: "muted", textContent: "暂无 None" })]));
  }

  let last = null;
  function connect() {
    const source = new EventSource("/admin/dashboard/stream");
    source.addEventListener("frame", e => { last = JSON.parse(e.data); $("live").classList.add("on"); render(last); });
    source.addEventListener("signed-out", () => { source.close(); location.href = "/admin/"; });
    source.onerror = () => {
      $("live").classList.remove("on");
      fetch("/admin/dashboard/frame").then(r => { if (r.status === 401) location.href = "/admin/"; });
    };
  }
  window.addEventListener("resize", () => last && render(last));
  connect();
})();
