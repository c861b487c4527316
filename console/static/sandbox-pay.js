// The sandbox's payment page (a sandbox payment's pay_url): sign in if needed, show the order, pay it with
// one button. One language per screen, the page's (lang.js); the citizen's session is the web wallet's
// (citizen.js), so a citizen signed in to the wallet in this tab is signed in here too.
"use strict";
(() => {
  const T = {
    zh: {
      title: "沙箱支付 · 盛事通", heading: "盛事通 · 沙箱支付", logout: "退出",
      note: "开发与演示用的沙箱支付，不会真实扣款。", signinfirst: "请先登录",
      signinhint: "用这笔订单所属账号的手机号登录。", phone: "手机号", send: "获取验证码", code: "短信验证码",
      signin: "登录", devinbox: "开发短信收件箱", sent: "验证码已发送", badphone: "请输入正确的手机号",
      badcode: "请输入6位验证码", order: "订单", item: "商品", payee: "收款方", status: "状态", orderno: "订单号",
      pay: "确认支付", paid: "支付成功", merchant: "商户",
      // created and paying are both unpaid here: the pay_url was handed out when the payment started
      st_created: "待支付", st_paying: "待支付", st_paid: "已支付", st_failed: "支付失败",
      st_partially_refunded: "部分退款", st_refunded: "已退款", st_closed: "已关闭", st_expired: "已过期",
      notfound: "未找到这笔订单，或它不属于当前登录的账号。", loadfailed: "无法加载订单", payfailed: "支付失败",
      badorder: "订单号无效", neterror: "网络不可用，请稍后再试", colon: "：",
    },
    en: {
      title: "Sandbox payment · Shengshitong", heading: "Shengshitong · Sandbox payment", logout: "Sign out",
      note: "A sandbox for development and demos: no real money moves.", signinfirst: "Sign in first",
      signinhint: "Sign in with the mobile number this order belongs to.", phone: "Mobile number",
      send: "Send code", code: "SMS code", signin: "Sign in", devinbox: "Development SMS inbox", sent: "Code sent",
      badphone: "Enter a valid mobile number", badcode: "Enter the 6-digit code", order: "Order", item: "Item",
      payee: "Payee", status: "Status", orderno: "Order no.", pay: "Pay", paid: "Payment received",
      merchant: "Merchant",
      st_created: "Unpaid", st_paying: "Unpaid", st_paid: "Paid", st_failed: "Payment failed",
      st_partially_refunded: "Partly refunded", st_refunded: "Refunded", st_closed: "Closed", st_expired: "Expired",
      notfound: "No such order, or it is not this account's.", loadfailed: "Could not load the order",
      payfailed: "Payment failed", badorder: "Not a valid order number",
      neterror: "Network unavailable; try again shortly", colon: ": ",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const call = SSCitizen.call;
  const orderId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  // error: {key} in the page's words, with the server's detail while the page is in the language it came in
  const state = { order: null, apps: [], error: null };
  const yuan = fen => `¥${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;  // fen are integers

  function showError() {
    const e = state.error;
    $("error").textContent = !e ? "" : t(e.key) + (e.detail && e.lang === SSLang.get() ? t("colon") + e.detail : "");
  }
  function fail(key, e) {
    state.error = e && !e.status ? { key: "neterror" } : { key, detail: e ? e.message : "", lang: SSLang.get() };
    showError();
  }

  function signedOut() {
    state.order = null;
    $("order-view").classList.add("hidden"); $("logout").classList.add("hidden");
    $("login-view").classList.remove("hidden");
  }

  // ---- the order ---------------------------------------------------------------------------------------
  function render(order) {
    state.order = order;
    const app = state.apps.find(a => a.id === order.app_id);
    const expired = order.expires_at !== null && Date.parse(order.expires_at) <= Date.now();
    const open = order.state === "created" || order.state === "paying";
    const shown = open && expired ? "expired" : order.state;
    $("amount").textContent = yuan(order.amount);
    $("description").textContent = order.description || "–";  // the payee's own words, as written
    // a mini-app by its name in the page's language; a merchant by the name it registered (its own words)
    $("payee").textContent = app ? SSLang.pick(app.name_zh, app.name_en)
      : order.owner.startsWith("merchant:") ? order.merchant_name || t("merchant") : order.app_id || "–";
    $("state").textContent = T.zh["st_" + shown] ? t("st_" + shown) : shown;
    $("state").dataset.state = shown;
    $("order-id").textContent = order.order_id;
    $("pay-amount").textContent = yuan(order.amount);
    $("pay").classList.toggle("hidden", !open || expired);
    $("paid").classList.toggle("hidden", order.state !== "paid");
    $("login-view").classList.add("hidden");
    $("order-view").classList.remove("hidden"); $("logout").classList.remove("hidden");
  }

  async function load() {
    state.error = null; showError();
    if (!SSCitizen.signedIn()) { signedOut(); return; }
    try {
      const [order, apps] = await Promise.all([
        call("/api/v1/payments/orders/" + encodeURIComponent(orderId)),
        call("/api/v1/miniapps?limit=100").catch(() => ({ items: [] })),
      ]);
      state.apps = apps.items;
      render(order);
    } catch (e) {
      if (e.status === 401) { SSCitizen.end(); return; }
      $("order-view").classList.add("hidden"); $("logout").classList.remove("hidden");
      $("login-view").classList.add("hidden");
      if (e.status === 404) fail("notfound"); else fail("loadfailed", e);
    }
  }

  $("pay").addEventListener("click", async () => {
    $("pay").disabled = true; state.error = null; showError();
    try {
      render(await call(`/api/v1/payments/sandbox/orders/${encodeURIComponent(orderId)}/pay`, { method: "POST" }));
    } catch (e) {
      if (e.status === 401) SSCitizen.end(); else fail("payfailed", e);
    } finally { $("pay").disabled = false; }
  });

  SSCitizen.onEnd(signedOut);
  SSCitizen.signInCard(T, load);
  $("lang").addEventListener("click", () => SSLang.toggle());
  SSLang.onChange(() => {
    SSLang.apply(T);
    if (state.order) render(state.order);
    showError();
  });
  SSLang.apply(T);

  if (!/^[0-9a-fA-F-]{8,64}$/.test(orderId)) { fail("badorder"); return; }
  load();
})();
