// The citizen web wallet: SMS login, the rotating citizen code, entitlements, unpaid orders, recent
// scans and the mini-app catalogue. Tokens stay in this tab (sessionStorage) and rotate on refresh.
"use strict";
(() => {
  const T = {
    zh: {
      title: "盛事通 · 市民码", login: "手机号登录", phone: "手机号", send: "获取验证码", code: "短信验证码",
      signin: "登录", devinbox: "开发短信收件箱", logout: "退出", mycode: "我的市民码", refreshes: "自动刷新",
      seconds: "秒", codehint: "出示给闸机、公交、医院或景区扫码设备。请勿截图转发。", entitlements: "已合并的权益",
      unpaid: "待支付", scans: "最近扫码", apps: "小程序", none: "暂无", sent: "验证码已发送",
      medical: "医保", transit: "乘车", health: "健康", tickets: "门票", social: "社保",
      yes: "可用", no: "不可用", green: "绿码", yellow: "黄码", red: "红码", allow: "通过", deny: "未通过",
      owed: "合计待付", offline: "离线", refreshing: "正在刷新…", failed: "网络不可用，正在重试",
      badphone: "请输入正确的手机号", badcode: "请输入6位验证码", unpaidfares: "有未支付车费", expired: "已过期",
    },
    en: {
      title: "Shengshitong · Citizen code", login: "Sign in with your phone", phone: "Mobile number",
      send: "Send code", code: "SMS code", signin: "Sign in", devinbox: "Development SMS inbox", logout: "Sign out",
      mycode: "My citizen code", refreshes: "Refreshes in", seconds: "s",
      codehint: "Show it to gates, buses, hospitals and attractions. Do not share screenshots.",
      entitlements: "Merged entitlements", unpaid: "Unpaid", scans: "Recent scans", apps: "Mini-apps", none: "None",
      sent: "Code sent", medical: "Medical insurance", transit: "Transit", health: "Health", tickets: "Tickets",
      social: "Social security", yes: "OK", no: "Not available", green: "Green", yellow: "Yellow", red: "Red",
      allow: "Passed", deny: "Refused", owed: "Total owed", offline: "offline", refreshing: "Refreshing…",
      failed: "Network unavailable, retrying", badphone: "Enter a valid mobile number", badcode: "Enter the 6-digit code",
      unpaidfares: "unpaid fares", expired: "expired",
    },
  };
  const $ = id => document.getElementById(id);
  // the page's language as the server chose it from Accept-Language (Chinese first), or the one picked here
  let lang = localStorage.getItem("sst.lang") || (document.documentElement.lang === "en" ? "en" : "zh");
  const t = key => (T[lang] && T[lang][key]) || T.zh[key] || key;
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };

  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach(n => { n.textContent = t(n.dataset.i18n); });
    $("lang").textContent = lang === "zh" ? "EN" : "中文";
    document.title = t("title");
    if (state.code) renderCode(state.code, false);
    if (state.home) renderHome(state.home);
  }

  const state = { code: null, home: null, skew: 0, timer: null, tick: null };
  const store = sessionStorage;
  const deviceId = () => {
    let id = localStorage.getItem("sst.device");
    if (!id) {  // getRandomValues works on plain http too (a phone on the LAN), randomUUID does not
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = "web-" + Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem("sst.device", id);
    }
    return id;
  };

  async function call(path, opts = {}, retry = true) {
    // the server answers (errors) in the page's language
    const headers = { "Accept": "application/json", "Accept-Language": lang === "en" ? "en" : "zh-CN", ...(opts.headers || {}) };
    const access = store.getItem("sst.access");
    if (access) headers.Authorization = "Bearer " + access;
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { ...opts, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    if (res.status === 401 && retry && store.getItem("sst.refresh")) {
      if (await refresh()) return call(path, opts, false);
    }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) { const e = new Error((data && data.detail) || res.statusText); e.status = res.status; e.problem = data; throw e; }
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
    clearTimeout(state.timer); clearInterval(state.tick);
    state.code = state.home = null;
    $("home-view").classList.add("hidden"); $("logout").classList.add("hidden");
    $("login-view").classList.remove("hidden");
  }

  // ---- login ---------------------------------------------------------------------------------------
  $("otp-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const phone = $("phone").value.trim();
    $("login-error").textContent = "";
    if (!/^\+?\d{5,20}$/.test(phone.replace(/[\s-]/g, ""))) { $("login-error").textContent = t("badphone"); return; }
    $("send-code").disabled = true;
    try {
      await call("/api/v1/auth/otp", { method: "POST", body: { phone } });
      $("login-error").textContent = t("sent");
      showDevInbox(phone);
      $("code").focus();
    } catch (e) { $("login-error").textContent = e.message; }
    finally { setTimeout(() => { $("send-code").disabled = false; }, 3000); }
  });

  async function showDevInbox(phone) {  // only where the server runs the development SMS gateway
    try {
      const sms = await call("/api/v1/dev/sms?phone=" + encodeURIComponent(phone));
      const m = /(\d{6})/.exec(sms.text);
      $("dev-sms").textContent = m ? m[1] : sms.text;
      $("dev-inbox").classList.remove("hidden");
    } catch (e) { $("dev-inbox").classList.add("hidden"); }
  }

  $("login-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const code = $("code").value.trim();
    if (!/^\d{6}$/.test(code)) { $("login-error").textContent = t("badcode"); return; }
    try {
      const pair = await call("/api/v1/auth/login", { method: "POST", body: {
        phone: $("phone").value.trim(), code, device_id: deviceId(), device_name: "Web wallet",
      } });
      store.setItem("sst.access", pair.access_token); store.setItem("sst.refresh", pair.refresh_token);
      $("code").value = ""; $("login-error").textContent = "";
      start();
    } catch (e) { $("login-error").textContent = e.message; }
  });

  $("logout").addEventListener("click", async () => {
    try { await call("/api/v1/auth/logout", { method: "POST" }, false); } catch (e) { /* signed out anyway */ }
    signedOut();
  });
  $("lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("sst.lang", lang); applyLang(); });

  // ---- the code --------------------------------------------------------------------------------------
  const serverNow = () => Date.now() / 1000 + state.skew;

  async function loadCode() {
    clearTimeout(state.timer);
    state.loading = true;
    try {
      const code = await call("/api/v1/codes/current?qr=svg");
      state.skew = Date.parse(code.server_time) / 1000 - Date.now() / 1000;
      $("code-error").textContent = "";
      renderCode(code, true);
      // a fresh code before this one is due for refresh; the server keeps the same one until then
      const wait = Math.max(1, Date.parse(code.refresh_after) / 1000 - serverNow());
      state.timer = setTimeout(loadCode, wait * 1000);
    } catch (e) {
      if (e.status === 401 || e.status === 403) { $("code-error").textContent = e.message; if (e.status === 401) signedOut(); return; }
      $("code-error").textContent = t("failed");
      state.timer = setTimeout(loadCode, 3000);
    } finally { state.loading = false; }
  }

  // a phone wakes up or the tab comes back: timers were throttled, fetch a fresh code at once
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.code && store.getItem("sst.access")
        && serverNow() >= Date.parse(state.code.refresh_after) / 1000) loadCode();
  });

  function renderCode(code, fresh) {
    state.code = code;
    if (fresh) {
      const box = $("qr");
      box.innerHTML = code.qr_svg;  // segno's SVG, made by our server from the token
      box.dataset.expiresAt = code.expires_at;
      box.dataset.serial = String((+box.dataset.serial || 0) + 1);
    }
    const e = code.entitlements;
    const pill = (label, ok, extra = "") => el("span", { className: "pill " + (ok ? "ok" : "no"), textContent: `${label} · ${ok ? t("yes") : t("no")}${extra}` });
    const health = e.health.status;
    $("entitlements").replaceChildren(
      pill(t("medical"), e.medical.insured, e.medical.region ? ` (${e.medical.region})` : ""),
      pill(t("transit"), e.transit.allowed, e.transit.refused_reason ? ` (${t("unpaidfares")})` : ""),
      el("span", { className: "pill " + (health === "green" ? "ok" : health === "yellow" ? "warn" : "no"), textContent: `${t("health")} · ${t(health)}` }),
      pill(t("tickets"), e.tickets.has_tickets),
      pill(t("social"), e.social_security.insured),
    );
    clearInterval(state.tick);
    const total = Math.max(1, (Date.parse(code.refresh_after) - Date.parse(code.issued_at)) / 1000);
    const show = () => {
      const left = Math.max(0, Math.ceil(Date.parse(code.refresh_after) / 1000 - serverNow()));
      const expired = serverNow() >= Date.parse(code.expires_at) / 1000;
      $("countdown").textContent = expired ? t("expired") : String(left);
      $("qr").classList.toggle("expired", expired);  // a gate would refuse it: do not offer it
      $("bar").style.width = (100 * left / total) + "%";
      if (left === 0 && !expired && !document.hidden && !state.loading) loadCode();
    };
    show();
    state.tick = setInterval(show, 1000);
  }

  // ---- the rest of the home page -----------------------------------------------------------------
  async function loadHome() {
    try {
      const [orders, scans, apps] = await Promise.all([
        call("/api/v1/me/orders?unpaid=true&limit=10"), call("/api/v1/me/scans?limit=8"), call("/api/v1/miniapps"),
      ]);
      renderHome({ orders, scans, apps });
    } catch (e) { if (e.status === 401) signedOut(); }
  }

  function renderHome(h) {
    state.home = h;
    const none = () => el("li", { className: "muted", textContent: t("none") });
    const yuan = fen => "¥" + (fen / 100).toFixed(2);
    const apps = Object.fromEntries(h.apps.items.map(a => [a.id, a]));
    // an order's description is the mini-app's own text, in Chinese: an English screen names the mini-app
    const what = o => (lang === "zh" ? o.description : "") || (apps[o.app_id] ? (lang === "zh" ? apps[o.app_id].name_zh : apps[o.app_id].name_en) : o.app_id);
    const orders = h.orders.items.map(o => el("li", {}, el("span", { textContent: what(o) }), el("b", { textContent: yuan(o.amount - o.refunded) })));
    if (h.orders.unpaid_total) orders.push(el("li", {}, el("span", { textContent: t("owed") }), el("b", { textContent: yuan(h.orders.unpaid_total) })));
    $("unpaid").replaceChildren(...(orders.length ? orders : [none()]));
    $("scans").replaceChildren(...(h.scans.items.length ? h.scans.items.map(s => el("li", {},
      el("span", { textContent: `${lang === "zh" ? s.app_name_zh : s.app_name_en} · ${s.place || s.context}${s.offline ? " · " + t("offline") : ""}` }),
      el("span", { className: "pill " + (s.result === "allow" ? "ok" : "no"), textContent: t(s.result), title: s.reason }),
    )) : [none()]));
    $("apps").replaceChildren(...h.apps.items.map(a => el("div", { className: "app-tile" },
      el("b", { textContent: lang === "zh" ? a.name_zh : a.name_en }), el("span", { className: "muted", textContent: lang === "zh" ? a.description_zh : a.description_en }))));
  }

  function start() {
    $("login-view").classList.add("hidden");
    $("home-view").classList.remove("hidden"); $("logout").classList.remove("hidden");
    loadCode(); loadHome();
    clearInterval(state.homeTimer);
    state.homeTimer = setInterval(() => { if (store.getItem("sst.access")) loadHome(); }, 15000);
  }

  applyLang();
  if (store.getItem("sst.access")) start(); else signedOut();
})();
