// The web wallet's non-tax fees (非税缴费, docs/fees.md), the card /wallet#fees that a payment notice's
// inbox message links to: the notices addressed to the citizen (item, department, amount with any late
// fee, due date, state, the e-receipt number once paid), and paying one by its notice number (缴款码),
// typed in or picked from the list: looked up, then paid through one of the enabled channels as the
// wallet pays a merchant's pay link (the sandbox at once; WeChat Pay and Alipay finish in the app). In
// the page's language (lang.js); names come from the departments as they wrote them. wallet.js starts
// it, stops it, and refreshes it when a message arrives on the wallet's stream.
"use strict";
const SSFees = (() => {
  const T = {
    zh: {
      feeTitle: "非税缴费", feeMine: "我的缴款通知", feeNone: "暂无缴款通知", feeByNo: "按缴款码缴费",
      feeNoLabel: "缴款码", feeLookup: "查询", feePay: "缴费", feeDue: "缴费期限 {day}", feeLate: "含滞纳金 {fee}",
      feeDept: "执收单位", feeItem: "收费项目", feeAmount: "应缴金额", feePayer: "缴款人", feeState: "状态",
      feeReceipt: "电子票据号", feePaidAt: "缴费时间", feePayWith: "选择支付方式", feeBadNo: "缴款码为 20 位数字，请核对后重新输入",
      feePaid: "缴费成功", feeInApp: "{channel}须在盛事通 App 中完成支付；支付完成后本页会更新。",
      feeNoChannels: "本服务暂未开通任何支付方式。", feeOverdue: "已逾期",
      fs_open: "待缴费", fs_paid: "已缴费", fs_cancelled: "已撤销",
      ch_sandbox: "沙箱支付（测试）", ch_wechatpay: "微信支付", ch_alipay: "支付宝", neterror: "网络不可用，请稍后再试",
    },
    en: {
      feeTitle: "Non-tax fees", feeMine: "My payment notices", feeNone: "No payment notices", feeByNo: "Pay by notice number",
      feeNoLabel: "Notice number", feeLookup: "Look up", feePay: "Pay", feeDue: "Due {day}", feeLate: "incl. late fee {fee}",
      feeDept: "Department", feeItem: "Item", feeAmount: "Amount due", feePayer: "Payer", feeState: "State",
      feeReceipt: "E-receipt no.", feePaidAt: "Paid at", feePayWith: "Pay with", feeBadNo: "A notice number is 20 digits: check it and type it again",
      feePaid: "Paid", feeInApp: "Paying with {channel} is finished in the Shengshitong app; this page updates once it is paid.",
      feeNoChannels: "No way to pay is enabled on this service yet.", feeOverdue: "Overdue",
      fs_open: "To pay", fs_paid: "Paid", fs_cancelled: "Withdrawn",
      ch_sandbox: "Sandbox (test)", ch_wechatpay: "WeChat Pay", ch_alipay: "Alipay", neterror: "Network unavailable; try again shortly",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const tf = (key, args) => t(key).replace(/\{(\w+)\}/g, (_, name) => args[name]);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const yuan = fen => `¥${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;
  const call = (...args) => SSCitizen.call(...args);
  const when = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
  const channelName = name => (T.zh["ch_" + name] ? t("ch_" + name) : name);
  const blank = () => ({ on: false, notices: null, channels: null, found: null, note: null, error: null, busy: false, poll: null, scrolled: false });
  let s = blank();

  // the Luhn check digit of the first nineteen (docs/fees.md): a typo is caught here, before any lookup
  function validNo(no) {
    if (!/^\d{20}$/.test(no)) return false;
    let sum = 0;
    for (let i = 18, double = true; i >= 0; i--, double = !double) {
      let d = Number(no[i]) * (double ? 2 : 1);
      if (d > 9) d -= 9;
      sum += d;
    }
    return (10 - (sum % 10)) % 10 === Number(no[19]);
  }

  // an error in the server's words comes in the page's language: kept with it, shown only in it
  function failed(e) {
    if (e.status === 401) { SSCitizen.end(); return; }
    s.error = e.status ? { text: e.message, lang: SSLang.get() } : { key: "neterror" };
    renderFound();
  }

  async function refresh() {
    if (!s.on) return;
    const on = s;
    try {
      const [mine, channels] = await Promise.all([
        call("/api/v1/me/fees?limit=50"),
        s.channels || call("/api/v1/payments/channels").then(c => c.channels),
      ]);
      if (on !== s) return;  // signed out meanwhile
      Object.assign(s, { notices: mine.items, channels });
      // the notice on screen as the list now has it (paid meanwhile, from another device or the inbox)
      const listed = s.found && mine.items.find(n => n.notice_no === s.found.notice_no);
      if (listed) s.found = listed;
      render();
      if (!s.scrolled && location.hash === "#fees") { s.scrolled = true; $("fees").scrollIntoView(); }
    } catch (e) { if (on === s) failed(e); }
  }

  async function lookup(no) {
    const on = s;
    clearTimeout(s.poll);
    s.error = s.note = null;
    if (!validNo(no)) { s.found = null; s.error = { key: "feeBadNo" }; renderFound(); return; }
    try {
      const found = await call(`/api/v1/fees/${no}`);
      if (on !== s) return;
      s.found = found;
    } catch (e) { if (on === s) { s.found = null; failed(e); } return; }
    renderFound();
  }

  // paid at the channel: the notice says so once the payment centre's event reached the fee centre
  function follow(no, tries) {
    clearTimeout(s.poll);
    const on = s;
    s.poll = setTimeout(async () => {
      try {
        const found = await call(`/api/v1/fees/${no}`);
        if (on !== s || !s.found || s.found.notice_no !== no) return;
        s.found = found;
        renderFound();
        if (found.state === "open" && tries > 1) follow(no, tries - 1);
        else refresh();
      } catch (e) { /* the next message or refresh shows it */ }
    }, 1500);
  }

  async function pay(channel) {
    const n = s.found;
    if (!n || s.busy) return;
    const on = s;
    s.busy = true; s.error = s.note = null;
    renderFound();
    try {
      // the notice's payment order, claimed for this citizen; then the channel's own step
      const paying = await call(`/api/v1/fees/${n.notice_no}/pay`, { method: "POST", body: { channel } });
      if (channel === "sandbox") {
        const order = await call(`/api/v1/payments/sandbox/orders/${encodeURIComponent(paying.order_id)}/pay`, { method: "POST" });
        if (on !== s) return;
        if (order.state === "paid") s.note = { key: "feePaid" };
        follow(n.notice_no, 10);
      } else {
        if (on !== s) return;
        s.note = { key: "feeInApp", args: { channel: channelName(channel) } };
        follow(n.notice_no, 200);  // some 5 minutes
      }
    } catch (e) {
      if (on === s) {
        failed(e);
        // the server's words about a channel (WeChat Pay's 503 where it cannot be started) name it
        if (s.error && s.error.text && e.problem && e.problem.code && e.problem.code.startsWith("channel_")) {
          s.error.text = `${channelName(channel)}${SSLang.get() === "en" ? ": " : "："}${s.error.text}`;
        }
      }
    } finally { on.busy = false; }
    if (on === s) renderFound();
  }

  function statePill(n) {
    const overdue = n.state === "open" && n.late_fee > 0;
    const pill = el("span", { className: "pill " + (n.state === "paid" ? "ok" : n.state === "open" ? "warn" : "no"), textContent: t(overdue ? "feeOverdue" : "fs_" + n.state) });
    pill.dataset.state = n.state;
    return pill;
  }

  const money = n => yuan(n.amount_due) + (n.late_fee ? ` (${tf("feeLate", { fee: yuan(n.late_fee) })})` : "");

  function render() {
    if (s.notices) {
      $("fee-notices").replaceChildren(...(s.notices.length ? s.notices.map(n => {
        const li = el("li", {},
          el("span", {}, el("b", { textContent: n.item_name }), " ", statePill(n),
            el("div", { className: "muted", textContent: `${n.department_name} · ${tf("feeDue", { day: n.due_date })}` }),
            n.receipt_no ? el("div", { className: "muted", textContent: `${t("feeReceipt")} ${n.receipt_no}` }) : ""),
          el("span", {}, el("b", { className: "fee-amount", textContent: money(n) }),
            n.state === "open" ? el("button", { type: "button", className: "small fee-pick", textContent: t("feePay"), onclick: () => pick(n) }) : ""));
        li.dataset.notice = n.notice_no;
        return li;
      }) : [el("li", { className: "muted", textContent: t("feeNone") })]));
    }
    renderFound();
  }

  function pick(n) {
    $("fee-no").value = n.notice_no;
    s.found = n; s.error = s.note = null;
    renderFound();
    $("fee-lookup").scrollIntoView({ block: "nearest" });
  }

  function renderFound() {
    const n = s.found;
    $("fee-found").classList.toggle("hidden", !n);
    if (n) {
      const facts = [
        ["feeItem", n.item_name + (n.description ? ` · ${n.description}` : "")], ["feeDept", n.department_name],
        ["feeAmount", money(n)], ["feePayer", n.payer_name], ["feeDue", null],
      ];
      const rows = [];
      for (const [key, value] of facts) {
        if (key === "feeDue") rows.push(el("dt", { textContent: t("feeState") }), el("dd", {}, statePill(n), " ", tf("feeDue", { day: n.due_date })));
        else rows.push(el("dt", { textContent: t(key) }), el("dd", { textContent: value }));
      }
      if (n.paid_at) rows.push(el("dt", { textContent: t("feePaidAt") }), el("dd", { textContent: when(n.paid_at) }));
      if (n.receipt_no) rows.push(el("dt", { textContent: t("feeReceipt") }), el("dd", { textContent: n.receipt_no }));
      $("fee-facts").replaceChildren(...rows);
      $("fee-found").dataset.notice = n.notice_no;
      $("fee-found").dataset.state = n.state;
      const open = n.state === "open";
      $("fee-choose").classList.toggle("hidden", !open || !(s.channels && s.channels.length));
      $("fee-channels").replaceChildren(...(open ? (s.channels || []) : []).map(name => {
        const b = el("button", { type: "button", textContent: channelName(name), disabled: s.busy });
        b.dataset.channel = name;
        b.addEventListener("click", () => pay(name));
        return b;
      }));
    }
    const say = m => (!m ? "" : m.key ? tf(m.key, m.args || {}) : m.lang === SSLang.get() ? m.text : "");
    const none = n && n.state === "open" && s.channels && !s.channels.length ? { key: "feeNoChannels" } : null;
    $("fee-note").textContent = say(s.note);
    $("fee-error").textContent = say(s.error || none);
  }

  $("fee-lookup").addEventListener("submit", event => {
    event.preventDefault();
    lookup($("fee-no").value.replace(/\s+/g, ""));  // typed in groups as printed: "2101 2026 …"
  });

  return {
    texts: T,
    start() { clearTimeout(s.poll); s = blank(); s.on = true; refresh(); },
    refresh,
    applyLang() { if (s.on) { render(); refresh(); } },
    stop() {
      clearTimeout(s.poll);
      s = blank();
      $("fee-notices").replaceChildren(); $("fee-facts").replaceChildren(); $("fee-channels").replaceChildren();
      $("fee-found").classList.add("hidden"); $("fee-no").value = "";
      $("fee-note").textContent = ""; $("fee-error").textContent = "";
    },
  };
})();
