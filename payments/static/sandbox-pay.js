// The sandbox payment page: sign in if needed, show the order, pay it with one button.
// Tokens are kept the way the web wallet keeps them (this tab's sessionStorage, rotated on refresh), so a
// citizen signed in to the wallet in this tab is signed in here too.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const store = sessionStorage;
  const orderId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  const STATES = {
    created: "待支付 Unpaid", paying: "待支付 Unpaid", paid: "已支付 Paid", failed: "支付失败 Failed",
    partially_refunded: "部分退款 Partly refunded", refunded: "已退款 Refunded", closed: "已关闭 Closed",
  };
  const state = { order: null, apps: [] };
  const yuan = fen => `¥${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;
  const say = text => { $("error").textContent = text; };

  const deviceId = () => {
    let id = localStorage.getItem("sst.device");
    if (!id) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = "web-" + Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem("sst.device", id);
    }
    return id;
  };

  async function call(path, opts = {}, retry = true) {
    const headers = { "Accept": "application/json", ...(opts.headers || {}) };
    const access = store.getItem("sst.access");
    if (access) headers.Authorization = "Bearer " + access;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { ...opts, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    if (res.status === 401 && retry && store.getItem("sst.refresh")) {
      if (await refresh()) return call(path, opts, false);
    }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) {
      const e = new Error((data && data.detail) || res.statusText);
      e.status = res.status; e.retryAfter = res.headers.get("Retry-After");
      throw e;
    }
    return data;
  }

  let refreshing = null;
  function refresh() {  // one refresh at a time: a refresh token is spent once
    refreshing = refreshing || (async () => {
      try {
        const pair = await call("/api/v1/auth/refresh", { method: "POST", body: { refresh_token: store.getItem("sst.refresh") } }, false);
        store.setItem("sst.access", pair.access_token); store.setItem("sst.refresh", pair.refresh_token);
        return true;
      } catch (e) { signedOut(); return false; } finally { refreshing = null; }
    })();
    return refreshing;
  }

  function signedOut() {
    store.removeItem("sst.access"); store.removeItem("sst.refresh");
    state.order = null;
    $("order-view").classList.add("hidden"); $("logout").classList.add("hidden");
    $("login-view").classList.remove("hidden");
  }

  // ---- sign in (the development SMS inbox shows the code where the server has one) ----------------
  $("otp-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const phone = $("phone").value.trim();
    say("");
    if (!/^\+?\d{5,20}$/.test(phone.replace(/[\s-]/g, ""))) { say("请输入正确的手机号 Enter a valid mobile number"); return; }
    $("send-code").disabled = true;
    try {
      await call("/api/v1/auth/otp", { method: "POST", body: { phone } });
      say("验证码已发送 Code sent");
    } catch (e) {
      // a code sent moments ago (429) is still good: the citizen may have it already
      say(e.status === 429
        ? `验证码刚刚已发送，用过了请稍后再获取 A code was sent moments ago; used already? Ask again in ${e.retryAfter || 60} s`
        : "发送失败 Could not send the code: " + e.message);
      if (e.status !== 429) return;
    } finally { setTimeout(() => { $("send-code").disabled = false; }, 3000); }
    try {  // only where the server runs the development SMS gateway
      const sms = await call("/api/v1/dev/sms?phone=" + encodeURIComponent(phone));
      const m = /(\d{6})/.exec(sms.text);
      $("dev-sms").textContent = m ? m[1] : sms.text;
      $("dev-inbox").classList.remove("hidden");
    } catch (e) { $("dev-inbox").classList.add("hidden"); }
    $("code").focus();
  });

  $("login-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const code = $("code").value.trim();
    if (!/^\d{6}$/.test(code)) { say("请输入6位验证码 Enter the 6-digit code"); return; }
    try {
      const pair = await call("/api/v1/auth/login", { method: "POST", body: {
        phone: $("phone").value.trim(), code, device_id: deviceId(), device_name: "Web wallet",
      } });
      store.setItem("sst.access", pair.access_token); store.setItem("sst.refresh", pair.refresh_token);
      $("code").value = ""; say("");
      load();
    } catch (e) { say("登录失败 Sign-in failed: " + e.message); }
  });

  $("logout").addEventListener("click", async () => {
    try { await call("/api/v1/auth/logout", { method: "POST" }, false); } catch (e) { /* signed out anyway */ }
    signedOut();
  });

  // ---- the order ---------------------------------------------------------------------------------------
  function render(order) {
    state.order = order;
    const app = state.apps.find(a => a.id === order.app_id);
    const expired = order.expires_at !== null && Date.parse(order.expires_at) <= Date.now();
    const open = order.state === "created" || order.state === "paying";
    $("amount").textContent = yuan(order.amount);
    $("description").textContent = order.description || "–";
    $("payee").textContent = app ? `${app.name_zh} ${app.name_en}` : order.owner.startsWith("merchant:") ? "商户 Merchant" : order.app_id || "–";
    $("state").textContent = open && expired ? "已过期 Expired" : STATES[order.state] || order.state;
    $("order-id").textContent = order.order_id;
    $("pay-amount").textContent = yuan(order.amount);
    $("pay").classList.toggle("hidden", !open || expired);
    $("paid").classList.toggle("hidden", order.state !== "paid");
    $("login-view").classList.add("hidden");
    $("order-view").classList.remove("hidden"); $("logout").classList.remove("hidden");
  }

  async function load() {
    say("");
    if (!store.getItem("sst.access")) { signedOut(); return; }
    try {
      const [order, apps] = await Promise.all([
        call("/api/v1/payments/orders/" + encodeURIComponent(orderId)),
        call("/api/v1/miniapps?limit=100").catch(() => ({ items: [] })),
      ]);
      state.apps = apps.items;
      render(order);
    } catch (e) {
      if (e.status === 401) { signedOut(); return; }
      $("order-view").classList.add("hidden"); $("logout").classList.remove("hidden");
      say(e.status === 404
        ? "未找到这笔订单，或它不属于当前登录的账号。 No such order, or it is not this account's."
        : "无法加载订单 Could not load the order: " + e.message);
    }
  }

  $("pay").addEventListener("click", async () => {
    $("pay").disabled = true; say("");
    try {
      render(await call(`/api/v1/payments/sandbox/orders/${encodeURIComponent(orderId)}/pay`, { method: "POST" }));
    } catch (e) {
      if (e.status === 401) signedOut(); else say("支付失败 Payment failed: " + e.message);
    } finally { $("pay").disabled = false; }
  });

  if (!/^[0-9a-fA-F-]{8,64}$/.test(orderId)) { say("订单号无效 Not a valid order number"); return; }
  load();
})();
