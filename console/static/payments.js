// The console's payments page (/admin/payments): the payment statistics of a range of days per channel,
// merchant or day (from the ledger, with their CSV), and the reconciliation runs of those days per
// channel with their mismatches and each run's CSV. Reads need a console session
// (console/_payments_controller.py).
"use strict";
(() => {
  const T = {
    zh: {
      title: "支付对账 · 盛事通", heading: "支付中心 · 对账与统计", console: "后台", dashboard: "运管中心", ratingsLink: "好差评",
      from: "起始日期", to: "截止日期", groupBy: "统计分组", byChannel: "按渠道", byMerchant: "按商户", byDay: "按日", show: "查询", csv: "下载 CSV",
      statsTitle: "收付统计", colKey: "分组", colPayments: "支付笔数", colPaid: "支付金额", colRefunds: "退款笔数", colRefunded: "退款金额", colNet: "净额",
      total: "合计", runsTitle: "对账结果", colDay: "日期", colChannel: "渠道", colSource: "来源", colStatementRows: "对账单行数", colLedgerRows: "账本行数",
      colMismatches: "差异", colRunAt: "对账时间", noRuns: "所选日期内没有对账记录", mismatchesOf: "差异明细", details: "明细",
      colKind: "差异", colType: "类型", colTxn: "交易号", colOrder: "订单", colOurs: "我方金额", colTheirs: "渠道金额",
      src_auto: "自动", src_cli: "命令行", src_native: "渠道原始账单",
      k_missing_ours: "我方缺失", k_missing_theirs: "渠道缺失", k_amount_differs: "金额不符", k_txn_differs: "交易号不符",
      k_duplicate_ours: "我方重复", k_duplicate_theirs: "渠道重复", t_payment: "支付", t_refund: "退款", neterror: "网络不可用，请稍后重试",
    },
    en: {
      title: "Payments reconciliation · Shengshitong", heading: "Payment centre · reconciliation and statistics", console: "Console", dashboard: "Dashboard", ratingsLink: "Ratings",
      from: "From", to: "To", groupBy: "Group by", byChannel: "Channel", byMerchant: "Merchant", byDay: "Day", show: "Show", csv: "Download CSV",
      statsTitle: "Payments and refunds", colKey: "Group", colPayments: "Payments", colPaid: "Paid", colRefunds: "Refunds", colRefunded: "Refunded", colNet: "Net",
      total: "Total", runsTitle: "Reconciliation runs", colDay: "Day", colChannel: "Channel", colSource: "Source", colStatementRows: "Statement rows", colLedgerRows: "Ledger rows",
      colMismatches: "Differences", colRunAt: "Run at", noRuns: "No reconciliation in these days", mismatchesOf: "Differences of", details: "Details",
      colKind: "Difference", colType: "Type", colTxn: "Transaction", colOrder: "Order", colOurs: "Ours", colTheirs: "Channel's",
      src_auto: "automatic", src_cli: "command line", src_native: "channel's own file",
      k_missing_ours: "missing here", k_missing_theirs: "missing at the channel", k_amount_differs: "amount differs", k_txn_differs: "transaction differs",
      k_duplicate_ours: "booked twice here", k_duplicate_theirs: "listed twice by the channel", t_payment: "payment", t_refund: "refund", neterror: "Network unavailable; try again shortly",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const word = (prefix, key) => (T.zh[prefix + key] ? t(prefix + key) : key);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const yuan = fen => (fen === null || fen === undefined ? "–" : (fen / 100).toFixed(2));
  const when = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
  const chinaDay = offset => new Date(Date.now() + 8 * 3600e3 + offset * 86400e3).toISOString().slice(0, 10);
  const s = { stats: null, runs: [], open: null };

  async function call(path) {
    let res;
    try {
      res = await fetch(path, { credentials: "same-origin", headers: SSLang.headers() });
    } catch (e) { throw new Error(t("neterror")); }
    const data = await res.json().catch(() => null);
    if (res.status === 401) { location.href = "/admin/"; throw new Error("sign in"); }
    if (!res.ok) throw new Error((data && data.detail) || res.statusText);
    return data;
  }

  function query(extra = {}) {
    return new URLSearchParams({ from: $("from").value, to: $("to").value, ...extra }).toString();
  }

  async function load() {
    $("stats-csv").href = `/admin/payments/statistics?${query({ group: $("group").value, format: "csv" })}`;
    try {
      const [stats, runs] = await Promise.all([
        call(`/admin/payments/statistics?${query({ group: $("group").value })}`),
        call(`/admin/payments/runs?${query()}`),
      ]);
      s.stats = stats; s.runs = runs.runs; s.open = null;
      $("range-error").textContent = "";
    } catch (e) { $("range-error").textContent = e.message; }
    render();
  }

  function statRow(cells) {
    return el("tr", {}, ...cells.map((c, i) => el("td", { className: i ? "num" : "", textContent: c })));
  }

  function render() {
    const body = $("stats").querySelector("tbody"), foot = $("stats").querySelector("tfoot");
    body.replaceChildren(); foot.replaceChildren();
    if (s.stats) {
      for (const r of s.stats.rows) {
        body.append(statRow([r.key, r.payments, yuan(r.payment_total), r.refunds, yuan(r.refund_total), yuan(r.net)]));
      }
      const x = s.stats.totals;
      foot.append(statRow([t("total"), x.payments, yuan(x.payment_total), x.refunds, yuan(x.refund_total), yuan(x.net)]));
    }
    const runs = $("runs").querySelector("tbody");
    runs.replaceChildren();
    const seen = new Set();
    for (const r of s.runs) {
      const latest = !seen.has(`${r.day}/${r.channel}`);
      seen.add(`${r.day}/${r.channel}`);
      const csv = el("a", { href: `/admin/payments/reconciliation.csv?${new URLSearchParams({ date: r.day, channel: r.channel })}`, textContent: "CSV" });
      const more = el("button", { type: "button", className: "ghost small", textContent: t("details") });
      more.addEventListener("click", () => { s.open = r; renderMismatches(); });
      runs.append(el("tr", { className: r.mismatches.length ? "warn" : "" },
        el("td", { textContent: r.day }), el("td", { textContent: r.channel }), el("td", { textContent: word("src_", r.source) }),
        el("td", { className: "num", textContent: r.statement_rows }), el("td", { className: "num", textContent: r.ledger_rows }),
        el("td", { className: "num", textContent: r.mismatches.length }), el("td", { textContent: when(r.created_at) }),
        el("td", {}, r.mismatches.length ? more : "", " ", latest ? csv : "")));
    }
    $("no-runs").classList.toggle("hidden", s.runs.length > 0);
    renderMismatches();
  }

  function renderMismatches() {
    $("mismatches").classList.toggle("hidden", !s.open);
    if (!s.open) return;
    $("mismatches-of").textContent = `${s.open.channel} ${s.open.day}`;
    const body = $("mismatches").querySelector("tbody");
    body.replaceChildren(...s.open.mismatches.map(m => el("tr", {},
      el("td", { textContent: word("k_", m.kind) }), el("td", { textContent: word("t_", m.type) }),
      el("td", { className: "mono", textContent: m.their_txn_id ? `${m.txn_id} / ${m.their_txn_id}` : m.txn_id }),
      el("td", { className: "mono", textContent: m.order_id }),
      el("td", { className: "num", textContent: yuan(m.our_amount) }), el("td", { className: "num", textContent: yuan(m.their_amount) }))));
  }

  $("range-form").addEventListener("submit", e => { e.preventDefault(); load(); });
  $("lang").addEventListener("click", () => SSLang.toggle());
  SSLang.onChange(() => { SSLang.apply(T); render(); });
  SSLang.apply(T);
  $("from").value = chinaDay(-7);
  $("to").value = chinaDay(-1);
  load().then(() => { document.body.dataset.ready = "yes"; });
})();
