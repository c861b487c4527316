// The web wallet's pay code (付款码, docs/payments.md "The citizen code as a pay code"), the card
// /wallet#paycode: paying at a merchant's till with the citizen code turned on or off, what it pays with
// (the deferred-payment credit, or a channel the citizen holds a payment agreement with), the most one
// payment takes without asking (yuan here, fen in the API), what is owed on credit, and the payments
// waiting for the citizen's confirmation with the time left to approve or decline each. In the page's
// language (lang.js); wallet.js starts it, stops it, and refreshes it when the wallet's stream says a
// till asks (the event `paycode_confirmation`) or a message arrives.
"use strict";
const SSPaycode = (() => {
  const API = "/api/v1/me/paycode";
  const T = {
    zh: {
      pcTitle: "付款码", pcHint: "开通后，在商户收银台出示市民码即可付款；超过单笔限额的付款须在这里确认。",
      pcEnabled: "开通付款码支付", pcMethod: "付款方式", pcLimit: "单笔免确认限额（元）", pcSave: "保存",
      pcSaved: "已保存", pcPending: "待确认的付款", pcNoPending: "暂无待确认的付款",
      pcApprove: "确认付款", pcDecline: "拒绝", pcLeft: "剩余 {left}", pcOwed: "信用待付 {owed}（额度 {limit}）",
      pcMaxLimit: "最高 {max}", pcBadLimit: "请输入 0.01 至 {max} 元之间的金额", pcSigned: "已签约",
      pcNoAgreement: "未签约", pcMerchant: "商户",
      pc_credit: "先享后付（信用额度）", ch_sandbox: "沙箱支付（测试）", ch_wechatpay: "微信支付", ch_alipay: "支付宝",
      pr_paid: "已付款 {amount}", pr_deferred: "已记入先享后付 {amount}", pr_pending: "付款处理中 {amount}",
      pr_declined: "已拒绝这笔付款", pr_failed: "付款未成功", pr_expired: "确认时间已过，付款已取消",
      neterror: "网络不可用，请稍后再试",
    },
    en: {
      pcTitle: "Pay code", pcHint: "Once on, show your citizen code at a merchant's till to pay; a payment above your limit waits for you to confirm it here.",
      pcEnabled: "Pay with my citizen code", pcMethod: "Pay with", pcLimit: "Limit per payment without asking (yuan)",
      pcSave: "Save", pcSaved: "Saved", pcPending: "Payments to confirm", pcNoPending: "No payments to confirm",
      pcApprove: "Approve", pcDecline: "Decline", pcLeft: "{left} left", pcOwed: "Owed on credit {owed} (limit {limit})",
      pcMaxLimit: "at most {max}", pcBadLimit: "Enter an amount from 0.01 to {max} yuan", pcSigned: "agreement signed",
      pcNoAgreement: "no agreement", pcMerchant: "Merchant",
      pc_credit: "Pay later (credit)", ch_sandbox: "Sandbox (test)", ch_wechatpay: "WeChat Pay", ch_alipay: "Alipay",
      pr_paid: "Paid {amount}", pr_deferred: "Put on credit: {amount}", pr_pending: "Payment processing: {amount}",
      pr_declined: "You declined this payment", pr_failed: "The payment did not go through",
      pr_expired: "Too late to confirm: the payment was cancelled", neterror: "Network unavailable; try again shortly",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const tf = (key, args) => t(key).replace(/\{(\w+)\}/g, (_, name) => args[name]);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const yuan = fen => `¥${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;
  const plain = fen => `${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;
  const call = (...args) => SSCitizen.call(...args);
  const methodName = m => (T.zh[m === "credit" ? "pc_credit" : "ch_" + m] ? t(m === "credit" ? "pc_credit" : "ch_" + m) : m);
  const blank = () => ({ on: false, settings: null, pending: [], note: null, error: null, busy: false, tick: null, scrolled: false, now: () => Date.now() / 1000 });
  let s = blank();

  // yuan as typed ("12", "12.5", "12.50") to integer fen, exactly (no floating point); null if not money
  function toFen(text) {
    const m = /^\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(text);
    return m ? Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0")) : null;
  }

  // an error in the server's words comes in the page's language: kept with it, shown only in it
  function failed(e) {
    if (e.status === 401) { SSCitizen.end(); return; }
    s.error = e.status ? { text: e.message, lang: SSLang.get() } : { key: "neterror" };
    renderMessages();
  }

  async function refresh() {
    if (!s.on) return;
    const on = s;
    try {
      const [settings, pending] = await Promise.all([call(API), call(`${API}/confirmations`)]);
      if (on !== s) return;  // signed out meanwhile
      const first = s.settings === null;
      Object.assign(s, { settings, pending: pending.items });
      render(first);
      if (!s.scrolled && location.hash === "#paycode") { s.scrolled = true; $("paycode").scrollIntoView(); }
    } catch (e) { if (on === s) failed(e); }
  }

  async function save(event) {
    event.preventDefault();
    if (!s.settings || s.busy) return;
    const limit = toFen($("paycode-limit").value);
    if (limit === null || limit < 1 || limit > s.settings.max_limit) {
      s.note = null; s.error = { key: "pcBadLimit", args: { max: plain(s.settings.max_limit) } };
      renderMessages();
      return;
    }
    s.busy = true; s.error = s.note = null;
    const on = s;
    try {
      const settings = await call(API, { method: "PUT", body: { enabled: $("paycode-enabled").checked, method: $("paycode-method").value, limit } });
      if (on !== s) return;
      s.settings = settings; s.note = { key: "pcSaved" };
      render(true);
    } catch (e) { if (on === s) failed(e); } finally { on.busy = false; }
  }

  async function decide(c, decision) {
    if (s.busy) return;
    s.busy = true; s.error = s.note = null;
    const on = s;
    renderPending();
    try {
      const out = await call(`${API}/confirmations/${encodeURIComponent(c.confirmation_id)}`, { method: "POST", body: { decision } });
      if (on !== s) return;
      s.note = T.zh["pr_" + out.result] ? { key: "pr_" + out.result, args: { amount: yuan(out.amount) } } : null;
    } catch (e) { if (on === s) failed(e); } finally { on.busy = false; }
    await refresh();
  }

  function renderMessages() {
    const say = m => (!m ? "" : m.key ? tf(m.key, m.args || {}) : m.lang === SSLang.get() ? m.text : "");
    $("paycode-note").textContent = say(s.note);
    $("paycode-error").textContent = say(s.error);
  }

  // the form from the settings: `fresh` when they came from the server (what was typed is replaced)
  function render(fresh) {
    const st = s.settings;
    if (!st) return;
    const signed = new Set(st.agreements.filter(a => a.state === "signed").map(a => a.channel));
    const chosen = fresh ? (st.method || "credit") : $("paycode-method").value || st.method || "credit";
    $("paycode-method").replaceChildren(...st.methods.map(m => {
      const label = m === "credit" ? methodName(m) : `${methodName(m)} · ${t(signed.has(m) ? "pcSigned" : "pcNoAgreement")}`;
      return new Option(label, m, false, m === chosen);
    }));
    if (fresh) {
      $("paycode-enabled").checked = st.enabled;
      $("paycode-limit").value = plain(st.limit);
    }
    $("paycode-form").dataset.enabled = String(st.enabled);
    $("paycode-max").textContent = tf("pcMaxLimit", { max: yuan(st.max_limit) });
    $("paycode-owed").textContent = st.unpaid_total ? tf("pcOwed", { owed: yuan(st.unpaid_total), limit: yuan(st.credit_limit) }) : "";
    renderPending();
    renderMessages();
  }

  function renderPending() {
    clearInterval(s.tick);
    const rows = s.pending.map(c => {
      const left = el("span", { className: "pill warn countdown-left" });
      const approve = el("button", { type: "button", className: "small approve", textContent: t("pcApprove"), disabled: s.busy });
      approve.addEventListener("click", () => decide(c, "approve"));
      const decline = el("button", { type: "button", className: "ghost small decline", textContent: t("pcDecline"), disabled: s.busy });
      decline.addEventListener("click", () => decide(c, "decline"));
      const li = el("li", {},
        el("span", {}, el("b", { className: "pc-merchant", textContent: c.merchant_name || t("pcMerchant") }), " ",
          el("b", { className: "pc-amount", textContent: yuan(c.amount) }), " ", left,
          c.description ? el("div", { className: "muted", textContent: c.description }) : "",  // the merchant's own words
          el("div", { className: "muted", textContent: methodName(c.method) })),
        el("span", { className: "pc-actions" }, approve, " ", decline));
      li.dataset.confirmation = c.confirmation_id;
      li.dataset.confirmBy = c.confirm_by;
      return li;
    });
    $("paycode-confirmations").replaceChildren(...(rows.length ? rows : [el("li", { className: "muted", textContent: t("pcNoPending") })]));
    if (!rows.length) return;
    const show = () => {
      let over = false;
      for (const li of $("paycode-confirmations").querySelectorAll("li[data-confirmation]")) {
        const left = Math.max(0, Math.ceil(Date.parse(li.dataset.confirmBy) / 1000 - s.now()));
        li.querySelector(".countdown-left").textContent = tf("pcLeft", { left: `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` });
        if (left === 0) over = true;
      }
      if (over && !s.busy) { clearInterval(s.tick); refresh(); }  // past its window: the server drops it
    };
    show();
    s.tick = setInterval(show, 1000);
  }

  $("paycode-form").addEventListener("submit", save);

  return {
    texts: T,
    // now(): the server's clock in seconds (the wallet's, corrected for this device's skew)
    start(now) { clearInterval(s.tick); s = blank(); s.on = true; if (now) s.now = now; refresh(); },
    refresh,
    applyLang() { if (s.on) { render(false); refresh(); } },
    stop() {
      clearInterval(s.tick);
      s = blank();
      $("paycode-confirmations").replaceChildren(); $("paycode-method").replaceChildren();
      $("paycode-enabled").checked = false; $("paycode-limit").value = "";
      for (const id of ["paycode-note", "paycode-error", "paycode-owed", "paycode-max"]) $(id).textContent = "";
    },
  };
})();
