// The citizen web wallet: SMS login, the rotating citizen code, entitlements, unpaid orders, recent
// scans and the mini-app catalogue, in the page's language (lang.js); the messages (inbox, live banner,
// settings, Web Push) are wallet-messages.js, fed from this page's event stream; the services to rate and
// the citizen's ratings (好差评, /wallet#ratings) are wallet-ratings.js; the e-licences (电子证照: the
// licences, 亮证, requests for their fields, the use log, /wallet#licences) are wallet-licences.js; the
// library's loans, holds and standing (一码借阅, /wallet#library) are wallet-library.js; door passes
// (扫码门禁: residences, visitor passes held and issued, /wallet#doors) are wallet-doors.js; the pay code
// (付款码: on or off, its method and limit, payments to confirm, /wallet#paycode) is wallet-paycode.js;
// payment notices for non-tax fees (非税缴费, paid by number, /wallet#fees) are wallet-fees.js. The
// citizen's session (SMS sign-in, tokens in this tab's sessionStorage, rotated on refresh) is citizen.js,
// shared with the sandbox's payment page.
// /wallet?pay=<order id> is a merchant's pay link (what a till's QR code opens on a phone without the
// app): after signing in the order is shown and paid through one of the enabled channels.
"use strict";
(() => {
  const T = {
    zh: {
      title: "盛事通 · 市民码", qrtitle: "市民码", login: "手机号登录", phone: "手机号", send: "获取验证码", code: "短信验证码",
      signin: "登录", devinbox: "开发短信收件箱", logout: "退出", mycode: "我的市民码", refreshes: "自动刷新",
      seconds: "秒", codehint: "出示给闸机、公交、医院或景区扫码设备。请勿截图转发。", entitlements: "已合并的权益",
      unpaid: "待支付", scans: "最近扫码", apps: "小程序", none: "暂无", sent: "验证码已发送",
      medical: "医保", transit: "乘车", health: "健康", tickets: "门票", social: "社保",
      yes: "可用", no: "不可用", green: "绿码", yellow: "黄码", red: "红码", allow: "通过", deny: "未通过",
      owed: "合计待付", offline: "离线", refreshing: "正在刷新…", failed: "网络不可用，正在重试",
      badphone: "请输入正确的手机号", badcode: "请输入6位验证码", unpaidfares: "有未支付车费", expired: "已过期",
      // a pay link
      paysignin: "登录后即可查看并支付这笔订单", paytitle: "付款", payee: "收款方", item: "商品", status: "状态",
      orderno: "订单号", paywith: "选择支付方式", close: "关闭", openapp: "在盛事通 App 中打开", merchant: "商户",
      st_created: "待支付", st_paying: "支付中", st_paid: "已支付", st_partially_refunded: "部分退款",
      st_refunded: "已退款", st_closed: "已关闭", st_expired: "已过期",
      ch_sandbox: "沙箱支付（测试）", ch_wechatpay: "微信支付", ch_alipay: "支付宝",
      paiddone: "支付成功", alreadypaid: "这笔订单已支付", loadingorder: "正在加载订单…",
      app_wechatpay: "微信", app_alipay: "支付宝",
      inapp: "{channel}须在{app} App 中完成支付，网页无法直接调起。请在手机上的盛事通 App 中打开这笔订单，由它转到{app}；支付完成后本页会更新。",
      gone: "这笔订单已无法支付：它已由其他市民支付或已关闭，或链接有误。",
      claimed: "这笔订单已由另一位市民认领支付，你不能再支付它。",
      orderexpired: "这笔订单已过期，不能再支付。请向商户索取新的付款码。",
      orderclosed: "这笔订单已关闭，不能再支付。请向商户索取新的付款码。",
      notpayable: "这笔订单当前不能支付。", badorder: "付款链接中的订单号无效。",
      nochannels: "本服务暂未开通任何支付方式。", nochannel: "此支付方式在本服务未开通，请选择其他方式。",
      neterror: "网络不可用，请稍后再试", colon: "：",
      // why an entitlement is not available, and who says so
      why_real_name_unverified: "完成实名认证后，才会获得医保、社保和健康码等权益",
      why_no_record: "{owner}暂无你的记录", why_not_insured: "{owner}：未参保",
      why_health_yellow: "健康码黄码", why_health_red: "健康码红码", why_unpaid_fares: "有未支付的车费",
      why_no_ticket_today: "今日无有效门票", why_source_unavailable: "{owner}暂时无法查询",
      since: "自", until: "有效至", by: "来源", unknown: "未知",
    },
    en: {
      title: "Shengshitong · Citizen code", qrtitle: "Citizen code", login: "Sign in with your phone", phone: "Mobile number",
      send: "Send code", code: "SMS code", signin: "Sign in", devinbox: "Development SMS inbox", logout: "Sign out",
      mycode: "My citizen code", refreshes: "Refreshes in", seconds: "s",
      codehint: "Show it to gates, buses, hospitals and attractions. Do not share screenshots.",
      entitlements: "Merged entitlements", unpaid: "Unpaid", scans: "Recent scans", apps: "Mini-apps", none: "None",
      sent: "Code sent", medical: "Medical insurance", transit: "Transit", health: "Health", tickets: "Tickets",
      social: "Social security", yes: "OK", no: "Not available", green: "Green", yellow: "Yellow", red: "Red",
      allow: "Passed", deny: "Refused", owed: "Total owed", offline: "offline", refreshing: "Refreshing…",
      failed: "Network unavailable, retrying", badphone: "Enter a valid mobile number", badcode: "Enter the 6-digit code",
      unpaidfares: "unpaid fares", expired: "expired",
      paysignin: "Sign in to see and pay this order", paytitle: "Payment", payee: "Payee", item: "Item",
      status: "Status", orderno: "Order no.", paywith: "Choose how to pay", close: "Close",
      openapp: "Open in the Shengshitong app", merchant: "Merchant",
      st_created: "Unpaid", st_paying: "Payment started", st_paid: "Paid", st_partially_refunded: "Partly refunded",
      st_refunded: "Refunded", st_closed: "Closed", st_expired: "Expired",
      ch_sandbox: "Sandbox (test)", ch_wechatpay: "WeChat Pay", ch_alipay: "Alipay",
      paiddone: "Payment received", alreadypaid: "This order is paid", loadingorder: "Loading the order…",
      app_wechatpay: "WeChat", app_alipay: "Alipay",
      inapp: "Paying with {channel} is finished in the {app} app, which a web page cannot open. Open this order in the Shengshitong app on your phone; it takes you to {app}. This page updates once the order is paid.",
      gone: "This order can no longer be paid: another citizen has paid it or it has closed, or the link is wrong.",
      claimed: "Another citizen has taken this order to pay it; you cannot pay it.",
      orderexpired: "This order has expired and can no longer be paid. Ask the merchant for a new payment code.",
      orderclosed: "This order is closed and can no longer be paid. Ask the merchant for a new payment code.",
      notpayable: "This order cannot be paid now.", badorder: "The order number in this payment link is not valid.",
      nochannels: "No way to pay is enabled on this service yet.",
      nochannel: "This way to pay is not enabled here; choose another.", neterror: "Network unavailable; try again shortly",
      colon: ": ",
      why_real_name_unverified: "Verify your real name to receive medical insurance, social security and the health code",
      why_no_record: "{owner} has no record of you", why_not_insured: "{owner}: not insured",
      why_health_yellow: "Health code yellow", why_health_red: "Health code red", why_unpaid_fares: "Unpaid fares",
      why_no_ticket_today: "No ticket valid today", why_source_unavailable: "{owner} cannot be reached now",
      since: "since", until: "valid until", by: "source", unknown: "Unknown",
    },
  };
  for (const lang of ["zh", "en"]) Object.assign(T[lang], SSMessages.texts[lang], SSRatings.texts[lang], SSLicences.texts[lang], SSLibrary.texts[lang], SSCarmove.texts[lang], SSDoors.texts[lang], SSPaycode.texts[lang], SSFees.texts[lang]);
  const $ = id => document.getElementById(id);
  // the page's language: as the server chose it from Accept-Language (Chinese first), or as picked here
  const t = key => SSLang.t(T, key);
  const tf = (key, args) => t(key).replace(/\{(\w+)\}/g, (_, name) => args[name]);
  const yuan = fen => `¥${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;  // fen are integers
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const call = SSCitizen.call;  // the citizen's session in this tab (citizen.js)

  function applyLang() {
    SSLang.apply(T);
    if (state.code) renderCode(state.code, false);
    if (state.home) renderHome(state.home);
    renderPay();
    SSMessages.applyLang();
    SSRatings.applyLang();
    SSLicences.applyLang();
    SSLibrary.applyLang();
    SSCarmove.applyLang();
    SSDoors.applyLang();
    SSPaycode.applyLang();
    SSFees.applyLang();
  }

  // the pay link's order: kept in the page's address and here across the SMS sign-in (no navigation)
  const payParam = new URLSearchParams(location.search).get("pay");
  const newPay = id => ({ id, order: null, channels: null, apps: null, note: null, error: null, busy: false, poll: null });
  const state = { code: null, held: null, home: null, skew: 0, timer: null, tick: null, live: null, pay: payParam === null ? null : newPay(payParam) };

  function signedOut() {
    clearTimeout(state.timer); clearInterval(state.tick);
    if (state.live) { state.live.abort(); state.live = null; }
    SSMessages.stop();
    SSRatings.stop();
    SSLicences.stop();
    SSLibrary.stop();
    SSCarmove.stop();
    SSDoors.stop();
    SSPaycode.stop();
    SSFees.stop();
    state.code = state.home = state.held = null;
    if (state.pay) {  // still to be paid, by whoever signs in next: nothing of this citizen's stays
      clearTimeout(state.pay.poll);
      state.pay = newPay(state.pay.id);
    }
    $("pay-signin").classList.toggle("hidden", !state.pay);
    $("home-view").classList.add("hidden"); $("logout").classList.add("hidden");
    $("login-view").classList.remove("hidden");
  }

  // ---- login (citizen.js: the SMS sign-in, the tokens, signing out) ---------------------------------
  SSCitizen.onEnd(signedOut);
  SSCitizen.onLeaving(SSMessages.leaving);  // signing out: this device stops receiving notifications
  SSCitizen.signInCard(T, () => start());
  $("lang").addEventListener("click", () => SSLang.toggle());
  SSLang.onChange(applyLang);

  // ---- the code --------------------------------------------------------------------------------------
  const serverNow = () => Date.now() / 1000 + state.skew;

  async function loadCode() {
    clearTimeout(state.timer);
    state.loading = true;
    try {
      const [code, held] = await Promise.all([
        call("/api/v1/codes/current?qr=svg"), call("/api/v1/me/entitlements").catch(() => null),
      ]);
      state.held = held;
      state.skew = Date.parse(code.server_time) / 1000 - Date.now() / 1000;
      $("code-error").textContent = "";
      renderCode(code, true);
      // a fresh code before this one is due for refresh; the server keeps the same one until then
      const wait = Math.max(1, Date.parse(code.refresh_after) / 1000 - serverNow());
      state.timer = setTimeout(loadCode, wait * 1000);
    } catch (e) {
      if (e.status === 401 || e.status === 403) { $("code-error").textContent = e.message; if (e.status === 401) SSCitizen.end(); return; }
      $("code-error").textContent = t("failed");
      state.timer = setTimeout(loadCode, 3000);
    } finally { state.loading = false; }
  }

  // a phone wakes up or the tab comes back: timers were throttled, fetch a fresh code at once
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.code && SSCitizen.signedIn()
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
    // the picture's title (read out by screen readers) came in the language it was asked in: this one now
    const title = $("qr").querySelector("svg title");
    if (title) title.textContent = t("qrtitle");
    const e = code.entitlements;
    // each entitlement with who says so since when (the title), and why one is not available (below)
    const held = Object.fromEntries(((state.held && state.held.entitlements) || []).map(h => [h.name, h]));
    const owner = h => (h && h.source ? SSLang.pick(h.source.name_zh, h.source.name_en) : "");
    const when = iso => (iso ? new Date(iso).toLocaleString(SSLang.get() === "zh" ? "zh-CN" : "en") : "");
    const about = name => {
      const h = held[name];
      if (!h) return "";
      const parts = [];
      if (h.source) parts.push(`${t("by")}${t("colon")}${owner(h)}`);
      if (h.effective_at) parts.push(`${t("since")} ${when(h.effective_at)}`);
      if (h.valid_until) parts.push(`${t("until")} ${when(h.valid_until)}`);
      return parts.join(" · ");
    };
    const pill = (name, label, ok, extra = "", cls = null) => el("span", { className: "pill " + (cls || (ok ? "ok" : "no")), title: about(name), textContent: `${label} · ${ok ? t("yes") : t("no")}${extra}` });
    const health = e.health.status;
    $("entitlements").replaceChildren(
      pill("medical", t("medical"), e.medical.insured, e.medical.region ? ` (${e.medical.region})` : ""),
      pill("transit", t("transit"), e.transit.allowed, e.transit.refused_reason ? ` (${t("unpaidfares")})` : ""),
      el("span", { className: "pill " + (health === "green" ? "ok" : health === "yellow" ? "warn" : "no"), title: about("health"), textContent: `${t("health")} · ${t(health)}` }),
      pill("tickets", t("tickets"), e.tickets.has_tickets),
      pill("social_security", t("social"), e.social_security.insured),
    );
    const seen = new Set();
    const notes = [];
    for (const h of Object.values(held)) {
      if (!h.reason || seen.has(h.reason) || !T.zh["why_" + h.reason]) continue;
      seen.add(h.reason);
      notes.push(el("li", { className: "muted", textContent: tf("why_" + h.reason, { owner: owner(h) || t(h.name === "social_security" ? "social" : h.name) }) }));
    }
    $("entitlement-notes").replaceChildren(...notes);
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
    } catch (e) { if (e.status === 401) SSCitizen.end(); }
  }

  function renderHome(h) {
    state.home = h;
    const none = () => el("li", { className: "muted", textContent: t("none") });
    const apps = Object.fromEntries(h.apps.items.map(a => [a.id, a]));
    // an order's description is the mini-app's own text, in Chinese: an English screen names the mini-app
    const what = o => (SSLang.get() === "zh" ? o.description : "") || (apps[o.app_id] ? SSLang.pick(apps[o.app_id].name_zh, apps[o.app_id].name_en) : o.app_id);
    const orders = h.orders.items.map(o => el("li", {}, el("span", { textContent: what(o) }), el("b", { textContent: yuan(o.amount - o.refunded) })));
    if (h.orders.unpaid_total) orders.push(el("li", {}, el("span", { textContent: t("owed") }), el("b", { textContent: yuan(h.orders.unpaid_total) })));
    $("unpaid").replaceChildren(...(orders.length ? orders : [none()]));
    $("scans").replaceChildren(...(h.scans.items.length ? h.scans.items.map(s => el("li", {},
      el("span", { textContent: `${SSLang.pick(s.app_name_zh, s.app_name_en)} · ${s.place || s.context}${s.offline ? " · " + t("offline") : ""}` }),
      el("span", { className: "pill " + (s.result === "allow" ? "ok" : "no"), textContent: t(s.result), title: s.reason }),
    )) : [none()]));
    $("apps").replaceChildren(...h.apps.items.map(a => el("div", { className: "app-tile" },
      el("b", { textContent: SSLang.pick(a.name_zh, a.name_en) }), el("span", { className: "muted", textContent: SSLang.pick(a.description_zh, a.description_en) }))));
  }

  // ---- a pay link: /wallet?pay=<order id> ------------------------------------------------------------
  const OPEN = ["created", "paying"];
  const PAID = ["paid", "partially_refunded", "refunded"];
  const orderPath = id => "/api/v1/payments/orders/" + encodeURIComponent(id);
  const channelName = name => (T.zh["ch_" + name] ? t("ch_" + name) : name);
  const channelApp = name => (T.zh["app_" + name] ? t("app_" + name) : channelName(name));
  const expiredOrder = o => o.expires_at !== null && Date.parse(o.expires_at) / 1000 <= serverNow();
  // what the payment centre's refusals mean for the citizen, in the page's own words
  const PAY_PROBLEMS = {
    order_claimed: "claimed", order_expired: "orderexpired", order_not_payable: "notpayable",
    order_not_found: "gone", channel_not_enabled: "nochannel", unknown_channel: "nochannel",
  };
  function payProblem(e, channel) {
    const code = e.problem && e.problem.code;
    if (PAY_PROBLEMS[code]) return { key: PAY_PROBLEMS[code] };
    if (e.status === 404) return { key: "gone" };
    if (!e.status) return { key: "neterror" };  // fetch itself failed
    // anything else in the server's words, which come in the page's language (WeChat Pay's
    // channel_unavailable: the app pays there, this deployment cannot start it)
    return { text: (channel ? channelName(channel) + t("colon") : "") + e.message, lang: SSLang.get() };
  }

  async function loadPay() {
    const p = state.pay;
    if (!p || !SSCitizen.signedIn()) return;
    clearTimeout(p.poll);
    if (!/^[0-9a-fA-F-]{8,64}$/.test(p.id)) { p.error = { key: "badorder" }; renderPay(); return; }
    try {
      const [order, channels, apps] = await Promise.all([
        call(orderPath(p.id)),
        p.channels || call("/api/v1/payments/channels").then(c => c.channels).catch(() => null),
        p.apps || call("/api/v1/miniapps?limit=100").then(a => a.items).catch(() => null),
      ]);
      if (state.pay !== p) return;  // signed out meanwhile
      Object.assign(p, { order, channels, apps, error: null });
    } catch (e) {
      if (e.status === 401) { SSCitizen.end(); return; }
      if (state.pay !== p) return;
      p.order = null;
      p.error = payProblem(e);
    }
    // paying in another app: this page shows the payment once the payment centre has it
    if (p.note && p.note.key === "inapp" && p.order && OPEN.includes(p.order.state) && !expiredOrder(p.order)) {
      p.poll = setTimeout(loadPay, 5000);
    }
    renderPay();
  }

  async function payWith(channel) {
    const p = state.pay;
    if (!p || p.busy) return;
    p.busy = true; p.error = p.note = null;
    renderPay();
    try {
      // the channel's start: claims the order for this citizen (the first to pay it)
      await call(orderPath(p.id) + "/pay", { method: "POST", body: { channel } });
      if (channel === "sandbox") {  // what the sandbox's payment page does with its one button
        p.order = await call(`/api/v1/payments/sandbox/orders/${encodeURIComponent(p.id)}/pay`, { method: "POST" });
        if (p.order.state === "paid") p.note = { key: "paiddone" };
        loadHome();
      } else {
        // WeChat Pay's and Alipay's app payments (Alipay's answer is the signed order string) are
        // finished by the channel's SDK inside the Shengshitong app: a browser cannot do it
        p.note = { key: "inapp", channel };
      }
    } catch (e) {
      if (e.status === 401) { SSCitizen.end(); return; }
      p.error = payProblem(e, channel);
    } finally { p.busy = false; }
    // show the order as it is now (claimed by someone else, closed, paying), keeping what was said
    const said = p.error;
    await loadPay();
    if (state.pay === p && said) { p.error = said; renderPay(); }
  }

  function renderPay() {
    const p = state.pay;
    $("pay-card").classList.toggle("hidden", !p);
    if (!p) return;
    const o = p.order;
    $("pay-order").classList.toggle("hidden", !o);
    const payable = !!o && OPEN.includes(o.state) && !expiredOrder(o);
    if (o) {
      const app = (p.apps || []).find(a => a.id === o.app_id);
      $("pay-amount").textContent = yuan(o.amount);
      $("pay-payee").textContent = app ? SSLang.pick(app.name_zh, app.name_en)
        : o.owner.startsWith("merchant:") ? (o.merchant_name || t("merchant")) : o.app_id;
      $("pay-description").textContent = o.description || "–";  // the payee's own words
      const shown = OPEN.includes(o.state) && expiredOrder(o) ? "expired" : o.state;
      $("pay-state").textContent = T.zh["st_" + shown] ? t("st_" + shown) : shown;
      $("pay-state").className = "pill " + (PAID.includes(shown) ? "ok" : OPEN.includes(shown) ? "warn" : "no");
      $("pay-state").dataset.state = shown;
      $("pay-id").textContent = o.order_id;
      const channels = p.channels || [];
      $("pay-channels").replaceChildren(...channels.map(name => {
        const b = el("button", { type: "button", textContent: channelName(name), disabled: p.busy });
        b.dataset.channel = name;
        b.addEventListener("click", () => payWith(name));
        return b;
      }));
    }
    $("pay-choose").classList.toggle("hidden", !payable);
    const ch = p.note && p.note.channel;
    let note = p.note ? tf(p.note.key, { channel: ch ? channelName(ch) : "", app: ch ? channelApp(ch) : "" }) : "";
    if (!note && o && PAID.includes(o.state)) note = t("alreadypaid");
    if (!note && o && o.state === "closed" && !p.error) note = t("orderclosed");
    if (!note && o && OPEN.includes(o.state) && expiredOrder(o) && !p.error) note = t("orderexpired");
    if (!note && !o && !p.error) note = t("loadingorder");
    $("pay-message").textContent = note;
    $("pay-message").classList.toggle("hidden", !note);
    $("pay-message").classList.toggle("ok", !!o && o.state === "paid");
    // a channel paid inside the app: the app's own link to this order (a phone with the app opens it)
    const inApp = !!p.note && p.note.key === "inapp" && payable;
    $("pay-app").classList.toggle("hidden", !inApp);
    if (inApp) $("pay-app").href = "shengshitong://pay?order=" + encodeURIComponent(p.id);
    // an error the server worded stays in the language it came in: shown only in that language
    const err = p.error || (payable && p.channels && !p.channels.length ? { key: "nochannels" } : null);
    $("pay-error").textContent = !err ? "" : err.key ? t(err.key) : err.lang === SSLang.get() ? err.text : "";
  }

  $("pay-close").addEventListener("click", () => {
    if (state.pay) clearTimeout(state.pay.poll);
    state.pay = null;
    history.replaceState(null, "", location.pathname);  // the wallet without the pay link
    renderPay();
  });

  // ---- the live channel: the server says when the code changed (an entitlement's owner spoke) and when a
  // message arrived (wallet-messages.js shows it); `ready` once the stream is open -----------------------
  async function follow() {
    if (state.live) return;
    const ctl = new AbortController();
    state.live = ctl;
    let wait = 1000;
    while (state.live === ctl && SSCitizen.signedIn()) {
      try {
        await call("/api/v1/me/entitlements");  // refreshes the access token first when it must
        const res = await fetch("/api/v1/me/events", { headers: { Authorization: "Bearer " + sessionStorage.getItem("sst.access") }, signal: ctl.signal });
        if (!res.ok || !res.body) throw new Error(String(res.status));
        wait = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const name = (/^event: (.*)$/m.exec(block) || [])[1];
            if (name === "code" && !state.loading) loadCode();
            else if (name === "ready") { SSMessages.live(true); SSRatings.refresh(); SSLicences.refresh(); SSCarmove.refresh(); SSDoors.refresh(); SSPaycode.refresh(); SSFees.refresh(); }
            else if (name === "paycode_confirmation") SSPaycode.refresh();  // a till asks the citizen to confirm
            else if (name === "message") {
              const data = (/^data: (.*)$/m.exec(block) || [])[1];
              try { SSMessages.arrived(JSON.parse(data)); } catch (e) { /* not for us */ }
              loadHome();  // a fare, a payment or a refund: what is owed has changed too
              SSRatings.refresh();  // an invitation to rate, or a unit's answer to a rating
              SSLicences.refresh();  // a licence issued, suspended or revoked; a request for its fields
              SSLibrary.refresh();  // a hold ready, a reminder of a due date
              SSCarmove.refresh();  // a request to move the citizen's car
              SSDoors.refresh();  // an invitation through a door (a visitor pass)
              SSPaycode.refresh();  // a payment by code taken, or what is owed on credit changed
              SSFees.refresh();  // a payment notice issued, or paid
            }
          }
        }
        SSMessages.live(false);
      } catch (e) {
        SSMessages.live(false);
        if (ctl.signal.aborted) return;
        wait = Math.min(wait * 2, 30000);
      }
      await new Promise(r => setTimeout(r, wait));
    }
  }

  function start() {
    $("login-view").classList.add("hidden");
    $("home-view").classList.remove("hidden"); $("logout").classList.remove("hidden");
    renderPay(); loadPay();
    SSMessages.start();
    SSRatings.start();
    SSLicences.start(serverNow);  // a proof and a presentation carry the server's time
    SSLibrary.start();
    SSCarmove.start();
    SSDoors.start();
    SSPaycode.start(serverNow);  // a confirmation's time left is counted on the server's clock
    SSFees.start();
    loadCode(); loadHome(); follow();
    clearInterval(state.homeTimer);
    state.homeTimer = setInterval(() => { if (SSCitizen.signedIn()) loadHome(); }, 15000);
  }

  applyLang();
  if (SSCitizen.signedIn()) start(); else signedOut();
})();
