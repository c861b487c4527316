// The live dashboard: one server-sent-events stream of frames; every worker's scans reach it through
// the server's channel. Reconnects on its own (EventSource) and shows whether it is live.
"use strict";
(() => {
  const T = {
    zh: {
      title: "运管中心 · 盛事通", heading: "盛事通 运管中心", console: "后台", scanner: "扫码模拟",
      kpiScans: "近30分钟扫码", kpiMinute: "本分钟", kpiDenied: "拒绝", kpiP50: "时延 p50（毫秒）",
      kpiP99: "时延 p99（毫秒）", kpiBacklog: "待投递通知", scansChart: "每分钟扫码（按小程序）",
      refusalsTitle: "拒绝原因（30分钟）", paymentsChart: "每小时支付与退款", webhooksTitle: "通知投递",
      gaugesTitle: "空余车位", none: "暂无", noneYet: "暂无", updated: "更新于", paid: "支付", refunded: "退款",
      pending: "待投递", outbox: "未分发", dead: "已放弃",
      ratingsLink: "好差评", licencesLink: "电子证照", paymentsLink: "支付对账", ratingsTitle: "好差评（本月）", rtSatisfaction: "满意率", rtRatings: "评价数", rtBad: "差评",
      rtOpen: "待处理工单", rtOverdue: "超期工单", rtTop: "满意率最高", rtBottom: "满意率最低", rtCount: "{n} 条",
    },
    en: {
      title: "Live dashboard · Shengshitong", heading: "Shengshitong live city dashboard", console: "Console",
      scanner: "Scanner", kpiScans: "Scans, last 30 min", kpiMinute: "This minute", kpiDenied: "Refused",
      kpiP50: "Latency p50 (ms)", kpiP99: "Latency p99 (ms)", kpiBacklog: "Webhook backlog",
      scansChart: "Scans per minute by mini-app", refusalsTitle: "Refusal reasons (30 min)",
      paymentsChart: "Payments and refunds per hour", webhooksTitle: "Webhook delivery",
      gaugesTitle: "Free parking spaces", none: "None", noneYet: "None yet", updated: "Updated",
      paid: "paid", refunded: "refunded", pending: "pending", outbox: "not dispatched", dead: "given up",
      ratingsLink: "Ratings", licencesLink: "E-licences", paymentsLink: "Payments", ratingsTitle: "Service ratings this month", rtSatisfaction: "Satisfaction",
      rtRatings: "Ratings", rtBad: "Bad ratings", rtOpen: "Open cases", rtOverdue: "Overdue cases",
      rtTop: "Most satisfied", rtBottom: "Least satisfied", rtCount: "{n} ratings",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const fmt = v => (v === null || v === undefined ? "–" : String(v));
  const yuan = fen => (fen / 100).toFixed(2);
  const li = (label, value, title) => {
    const item = document.createElement("li");
    const a = document.createElement("span"); a.textContent = label; if (title) a.title = title;
    const b = document.createElement("b"); b.textContent = value;
    item.append(a, b); return item;
  };
  const muted = (tag, key) => Object.assign(document.createElement(tag), { className: "muted", textContent: t(key) });
  const pct = v => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);

  // 好差评: this month's figures (the server computes them at most every 30 s), the best and worst units
  function renderRatings(r) {
    if (!r) return;
    $("rt-month").textContent = r.month;
    $("rt-satisfaction").textContent = pct(r.satisfaction_rate);
    $("rt-ratings").textContent = fmt(r.ratings);
    $("rt-bad").textContent = fmt(r.bad);
    $("rt-open").textContent = fmt(r.open_cases);
    $("rt-overdue").textContent = fmt(r.overdue_cases);
    $("rt-overdue").classList.toggle("alert", r.overdue_cases > 0);
    const units = (id, list) => $(id).replaceChildren(...(list.length ? list.map(u => {
      const item = li(`${u.rank}. ${SSLang.pick(u.name_zh, u.name_en)}`, pct(u.satisfaction_rate), t("rtCount").replace("{n}", u.ratings));
      item.dataset.unit = u.unit;
      return item;
    }) : [muted("li", "noneYet")]));
    units("rt-top", r.top);
    units("rt-bottom", r.bottom);
  }

  function render(f) {
    $("kpi-scans").textContent = fmt(f.scans.total);
    $("kpi-minute").textContent = fmt(f.scans.last_minute);
    $("kpi-denied").textContent = fmt(f.scans.denied);
    $("kpi-p50").textContent = fmt(f.latency_ms.p50);
    $("kpi-p99").textContent = fmt(f.latency_ms.p99);
    $("kpi-backlog").textContent = fmt(f.webhooks.pending + f.webhooks.outbox);
    $("updated").textContent = `${t("updated")} ${SSLang.hhmmss(f.at)}`;

    const series = f.scans.per_app.map(a => ({ name: SSLang.pick(a.name_zh, a.name_en), values: a.counts }));
    const labels = f.scans.minutes.map(SSLang.hhmm);
    SSCharts.lines($("chart-scans"), labels, series.length ? series : [{ name: "—", values: labels.map(() => 0) }]);
    SSCharts.legend($("legend-scans"), series);

    $("refusals").replaceChildren(...(f.refusals.length
      ? f.refusals.map(r => { const item = li(SSLang.pick(r.label_zh, r.label_en), r.count, r.reason); item.dataset.reason = r.reason; return item; })
      : [muted("li", "noneYet")]));

    const p = f.payments;
    const pay = [
      { name: t("paid"), values: p.paid_count, color: "#22c55e" },
      { name: t("refunded"), values: p.refund_count, color: "#f59e0b" },
    ];
    SSCharts.bars($("chart-payments"), p.hours.map(SSLang.hhmm), pay);
    const paidFen = p.paid_fen.reduce((a, b) => a + b, 0), refundFen = p.refund_fen.reduce((a, b) => a + b, 0);
    SSCharts.legend($("legend-payments"), [
      { ...pay[0], name: `${t("paid")} ¥${yuan(paidFen)}` }, { ...pay[1], name: `${t("refunded")} ¥${yuan(refundFen)}` },
    ]);

    const w = f.webhooks;
    $("webhooks").replaceChildren(li(t("pending"), w.pending), li(t("outbox"), w.outbox), li(t("dead"), w.dead));

    $("gauges").replaceChildren(...(f.gauges.length ? f.gauges.map(g => {
      const div = document.createElement("div"); div.className = "gauge";
      const label = document.createElement("div");
      label.textContent = `${SSLang.pick(g.label_zh, g.label_en)} · ${g.value}${g.of ? " / " + g.of : ""}`;
      div.append(label);
      if (g.of) {
        const track = document.createElement("div"); track.className = "track";
        const fill = document.createElement("div"); fill.className = "fill";
        fill.style.width = Math.max(0, Math.min(100, 100 * g.value / g.of)) + "%";
        track.append(fill); div.append(track);
      }
      return div;
    }) : [muted("p", "none")]));

    renderRatings(f.ratings);
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
  $("lang").addEventListener("click", () => SSLang.toggle());
  SSLang.onChange(() => { SSLang.apply(T); if (last) render(last); });
  SSLang.apply(T);
  window.addEventListener("resize", () => last && render(last));
  connect();
})();
