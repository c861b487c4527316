// The web wallet's messages (docs/web.md, "The wallet's messages"): the inbox with its unread badge, a
// banner when a message arrives live (the wallet's event stream, wallet.js, hands `message` events here),
// the reminders a citizen subscribes to, channels and quiet hours, and Web Push on this device through
// the service worker /wallet-sw.js. Everything in the page's language (lang.js); titles and bodies come
// from the server already in it (the inbox is fetched again when the language changes).
"use strict";
const SSMessages = (() => {
  const T = {
    zh: {
      messages: "消息", loading: "加载中…", readall: "全部已读", more: "加载更多", nomessages: "暂无消息", del: "删除", open: "查看",
      unreadmark: "未读", newmessage: "新消息", msgsettings: "消息设置", pushhead: "通知", pushdevice: "在此设备接收通知",
      reminders: "提醒订阅", noreminders: "暂无可订阅的提醒", channels: "接收方式", quiethours: "免打扰时段", quieton: "开启免打扰",
      quiethint: "免打扰时段内非紧急消息的推送会在时段结束后送达；消息中心照常接收。", save: "保存", saved: "已保存",
      smshint: "短信只用于长时间未读的紧急交易通知（如乘车权益暂停）。",
      cat_transactional: "交易通知", cat_reminder: "服务提醒", cat_announcement: "城市公告",
      ch_inbox: "消息中心", ch_webpush: "推送通知", ch_sms: "短信",
      sub_standing: "长期订阅", sub_once: "剩余 {n} 次", sub_none: "未订阅",
      subonce: "订阅一次", substanding: "长期订阅", subwithdraw: "取消订阅",
      platform: "盛事通", neterror: "网络不可用，请稍后再试", badtime: "请按 24 小时制填写时间，如 22:00",
      push_unsupported: "此浏览器不支持推送通知。",
      push_denied: "通知权限已被拒绝：请在浏览器的网站设置中允许本站发送通知后再开启。",
      push_unavailable: "此设备暂时无法接收推送：浏览器的推送服务不可用。消息仍会在消息中心显示。",
      push_disabled: "本服务暂未开通推送通知。", push_on: "此设备会收到消息通知。", push_working: "正在设置…",
    },
    en: {
      messages: "Messages", loading: "Loading…", readall: "Mark all read", more: "Load more", nomessages: "No messages", del: "Delete",
      open: "Open", unreadmark: "Unread", newmessage: "New message", msgsettings: "Message settings",
      pushhead: "Notifications", pushdevice: "Receive notifications on this device", reminders: "Reminders",
      noreminders: "No reminders to subscribe to", channels: "How messages reach you", quiethours: "Quiet hours", quieton: "Hold notifications during quiet hours",
      quiethint: "During quiet hours, notifications of messages that are not urgent wait until they end; the inbox still receives them.",
      save: "Save", saved: "Saved",
      smshint: "SMS is only used for urgent transactional messages left unread (such as riding paused).",
      cat_transactional: "Transactions", cat_reminder: "Service reminders", cat_announcement: "City notices",
      ch_inbox: "Inbox", ch_webpush: "Notifications", ch_sms: "SMS",
      sub_standing: "Subscribed", sub_once: "{n} left", sub_none: "Not subscribed",
      subonce: "Once", substanding: "Always", subwithdraw: "Unsubscribe",
      platform: "Shengshitong", neterror: "Network unavailable; try again shortly", badtime: "Enter 24-hour times, such as 22:00",
      push_unsupported: "This browser cannot receive notifications.",
      push_denied: "Notifications are blocked: allow this site to send notifications in the browser's site settings, then turn this on.",
      push_unavailable: "This device cannot receive notifications now: the browser's push service is unavailable. Messages still arrive in the inbox.",
      push_disabled: "Notifications are not offered by this service yet.", push_on: "This device receives notifications of your messages.",
      push_working: "Setting up…",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const call = (...args) => SSCitizen.call(...args);
  const CATEGORIES = ["transactional", "reminder", "announcement"];
  const CHANNELS = ["inbox", "webpush", "sms"];
  const PUSH = "sst.push";  // {id, endpoint}: this browser's subscription as the server knows it
  const PAGE = 20;

  // lang, settingsLang: the language the server wrote the shown titles and bodies in; changes: how many
  // reads and deletions this page made (a list fetched before one of them is not shown: it is stale)
  const blank = () => ({ lang: null, settingsLang: null, items: [], next: null, unread: 0, apps: null, toast: null, toastTimer: null, prefs: null, consents: null, push: null, worker: null, on: false, changes: 0 });
  let s = blank();

  // ---- the inbox -----------------------------------------------------------------------------------
  const when = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
  const senderName = id => {
    if (id === "platform") return t("platform");
    const app = (s.apps || []).find(a => a.id === id);
    return app ? SSLang.pick(app.name_zh, app.name_en) : id;
  };

  function failed(e, where) {
    if (e.status === 401) { SSCitizen.end(); return; }
    $(where).textContent = e.status ? e.message : t("neterror");
  }

  // the first pages again (as many messages as are shown, so "load more" goes on from the right place)
  async function refresh() {
    if (!s.on) return;
    const on = s, lang = SSLang.get(), changes = s.changes;
    try {
      const limit = Math.min(100, Math.max(PAGE, s.items.length));
      const [page, apps] = await Promise.all([
        call(`/api/v1/me/messages?limit=${limit}`),
        s.apps ? Promise.resolve(null) : call("/api/v1/miniapps?limit=100").catch(() => null),
      ]);
      if (on !== s) return;  // signed out meanwhile
      if (apps) s.apps = apps.items;
      if (changes !== s.changes) { refresh(); return; }  // a read or a deletion meanwhile: ask again
      if (lang !== SSLang.get()) return;  // the language changed meanwhile: its own request follows
      Object.assign(s, { lang, items: page.items, next: page.next, unread: page.unread });
      $("inbox-error").textContent = "";
      render();
    } catch (e) { failed(e, "inbox-error"); }
  }

  async function more() {
    if (!s.next || s.lang !== SSLang.get()) return;
    try {
      const page = await call(s.next);
      if (s.lang !== SSLang.get()) return;
      const seen = new Set(s.items.map(m => m.id));
      s.items.push(...page.items.filter(m => !seen.has(m.id)));
      Object.assign(s, { next: page.next, unread: page.unread });
      render();
    } catch (e) { failed(e, "inbox-error"); }
  }

  function badge(n) {
    s.unread = n;
    for (const id of ["unread-badge", "inbox-unread"]) {
      $(id).textContent = n > 99 ? "99+" : String(n);
      $(id).dataset.count = String(n);
      $(id).classList.toggle("hidden", n === 0);
    }
  }

  async function markRead(m) {
    if (m.read) return;
    try {
      const { unread } = await call(`/api/v1/me/messages/${encodeURIComponent(m.id)}/read`, { method: "POST" });
      // by its id: a refresh may have replaced the list's objects since the tap
      for (const x of [m, ...s.items]) if (x.id === m.id) x.read = true;
      s.changes += 1;
      badge(unread);
      render();
    } catch (e) { failed(e, "inbox-error"); }
  }

  async function remove(m) {
    try {
      await call(`/api/v1/me/messages/${encodeURIComponent(m.id)}`, { method: "DELETE" });
    } catch (e) { if (e.status !== 404) { failed(e, "inbox-error"); return; } }
    s.items = s.items.filter(x => x.id !== m.id);
    s.changes += 1;
    await refresh();
  }

  function render() {
    badge(s.unread);
    // written in the other language: nothing of it is shown until the inbox comes in this one
    if (s.lang && s.lang !== SSLang.get()) { $("inbox").replaceChildren(el("li", { className: "muted", textContent: t("loading") })); return; }
    $("inbox").replaceChildren(...(s.items.length ? s.items.map(m => {
      const head = el("div", { className: "msg-head" }, el("b", { textContent: m.title }));
      if (!m.read) head.prepend(el("i", { className: "dot", title: t("unreadmark") }));
      const meta = el("div", { className: "muted" }, `${senderName(m.sender)} · ${when(m.at)}`);
      const text = el("div", { className: "msg-text" }, head, el("div", { className: "msg-body", textContent: m.body }), meta);
      if (m.link) {  // a path of this site (the server allows nothing else)
        const a = el("a", { href: m.link, textContent: t("open"), className: "msg-link" });
        a.addEventListener("click", () => markRead(m));
        meta.append(" · ", a);
      }
      const del = el("button", { type: "button", className: "ghost small", textContent: t("del") });
      del.addEventListener("click", ev => { ev.stopPropagation(); remove(m); });
      const li = el("li", { className: "msg" + (m.read ? "" : " unread"), tabIndex: 0 }, text, del);
      li.dataset.id = m.id;
      li.addEventListener("click", ev => { if (ev.target.tagName !== "A") markRead(m); });
      li.addEventListener("keydown", ev => { if (ev.key === "Enter") markRead(m); });
      return li;
    }) : [el("li", { className: "muted", textContent: t("nomessages") })]));
    $("inbox-more").classList.toggle("hidden", !s.next);
    $("read-all").disabled = s.unread === 0;
  }

  // ---- a message arrives while the wallet is open: a banner now, the list and the badge refreshed ----
  function arrived(data) {
    if (!s.on || !data || typeof data.id !== "string") return;
    s.toast = data;
    showToast();
    clearTimeout(s.toastTimer);
    s.toastTimer = setTimeout(hideToast, 8000);
    refresh();
  }

  function showToast() {
    const d = s.toast;
    if (!d) return;
    const title = d.title && typeof d.title === "object" ? (d.title[SSLang.tag()] || d.title["zh-CN"] || "") : "";
    const box = $("toast");
    box.replaceChildren(el("span", { className: "muted", textContent: t("newmessage") + " · " + senderName(d.sender) }), el("b", { textContent: title }));
    box.dataset.id = d.id;
    if (!box.dataset.shownFor || box.dataset.shownFor !== d.id) {
      box.dataset.shownFor = d.id;
      box.dataset.shownAt = String(Date.now());  // when it was put on screen (the browser test reads it)
    }
    box.classList.remove("hidden");
  }

  function hideToast() { s.toast = null; $("toast").classList.add("hidden"); }

  $("toast").addEventListener("click", () => { hideToast(); $("inbox-card").scrollIntoView({ behavior: "smooth" }); });
  $("inbox-button").addEventListener("click", () => $("inbox-card").scrollIntoView({ behavior: "smooth" }));
  $("inbox-more").addEventListener("click", more);
  $("read-all").addEventListener("click", async () => {
    try {
      const { unread } = await call("/api/v1/me/messages/read-all", { method: "POST" });
      s.items.forEach(m => { m.read = true; });
      s.changes += 1;
      badge(unread);
      render();
    } catch (e) { failed(e, "inbox-error"); }
  });

  // ---- reminders to subscribe to; channels and quiet hours -------------------------------------------
  async function loadSettings() {
    const on = s, lang = SSLang.get();
    try {
      const [consents, prefs] = await Promise.all([
        call("/api/v1/me/message-subscriptions"), call("/api/v1/me/message-preferences"),
      ]);
      if (on !== s || lang !== SSLang.get()) return;
      Object.assign(s, { consents, prefs, settingsLang: lang });
      $("settings-error").textContent = "";
      renderSettings();
    } catch (e) { failed(e, "settings-error"); }
  }

  async function consent(templateId, mode) {
    const path = `/api/v1/me/message-subscriptions/${encodeURIComponent(templateId)}`;
    try {
      const row = mode ? await call(path, { method: "PUT", body: { mode } }) : await call(path, { method: "DELETE" });
      s.consents = s.consents.map(c => (c.template_id === templateId ? row : c));
      $("settings-error").textContent = "";
      renderSettings();
    } catch (e) { failed(e, "settings-error"); }
  }

  const quietOk = v => /^([01]\d|2[0-3]):[0-5]\d$/.test(v);

  function renderSettings() {
    const consents = s.consents || [];
    const stale = s.settingsLang && s.settingsLang !== SSLang.get();  // titles in the other language
    if (stale) $("subscriptions").replaceChildren(el("li", { className: "muted", textContent: t("loading") }));
    else $("subscriptions").replaceChildren(...(consents.length ? consents.map(c => {
      const said = c.standing ? t("sub_standing") : c.once_left > 0 ? t("sub_once").replace("{n}", c.once_left) : t("sub_none");
      const button = (key, mode) => {
        const b = el("button", { type: "button", className: "ghost small", textContent: t(key) });
        b.dataset.mode = mode || "withdraw";
        b.addEventListener("click", () => consent(c.template_id, mode));
        return b;
      };
      const actions = el("span", { className: "actions" });
      if (!c.standing) actions.append(button("subonce", "once"), button("substanding", "standing"));
      if (c.standing || c.once_left > 0) actions.append(button("subwithdraw", null));
      const li = el("li", {}, el("span", {}, el("b", { textContent: c.title || c.template_id }), el("br"),
        el("span", { className: "pill" + (c.standing || c.once_left > 0 ? " ok" : ""), textContent: said })), actions);
      li.dataset.template = c.template_id;
      return li;
    }) : [el("li", { className: "muted", textContent: t("noreminders") })]));

    const p = s.prefs;
    if (!p) return;
    const head = el("tr", {}, el("th"), ...CHANNELS.map(ch => el("th", { textContent: t("ch_" + ch) })));
    const rows = CATEGORIES.map(cat => el("tr", {}, el("th", { textContent: t("cat_" + cat) }), ...CHANNELS.map(ch => {
      if (ch === "sms" && cat !== "transactional") return el("td", { className: "muted", textContent: "–" });
      const box = el("input", { type: "checkbox", checked: allowed(p, cat, ch) });
      box.dataset.category = cat; box.dataset.channel = ch;
      box.setAttribute("aria-label", `${t("cat_" + cat)} · ${t("ch_" + ch)}`);
      if (cat === "transactional" && ch === "inbox") { box.checked = true; box.disabled = true; }  // always kept
      return el("td", {}, box);
    })));
    $("prefs-table").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    $("quiet").checked = p.quiet;
    $("quiet-start").value = p.quiet_start;
    $("quiet-end").value = p.quiet_end;
  }

  const allowed = (p, cat, ch) => {
    const c = p.channels && p.channels[cat];
    return c && typeof c[ch] === "boolean" ? c[ch] : !(cat === "announcement" && ch === "sms");
  };

  $("prefs-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const start = $("quiet-start").value.trim(), end = $("quiet-end").value.trim();
    $("prefs-note").textContent = "";
    if (!quietOk(start) || !quietOk(end)) { $("settings-error").textContent = t("badtime"); return; }
    const channels = {};
    for (const cat of CATEGORIES) {
      channels[cat] = {};
      for (const ch of CHANNELS) {
        const box = document.querySelector(`#prefs-table input[data-category=${cat}][data-channel=${ch}]`);
        channels[cat][ch] = box ? box.checked : allowed(s.prefs, cat, ch);
      }
    }
    try {
      s.prefs = await call("/api/v1/me/message-preferences", { method: "PUT", body: { channels, quiet: $("quiet").checked, quiet_start: start, quiet_end: end } });
      $("settings-error").textContent = "";
      $("prefs-note").textContent = t("saved");
      renderSettings();
    } catch (e) { failed(e, "settings-error"); }
  });

  // ---- Web Push on this device ---------------------------------------------------------------------
  const pushable = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window && window.isSecureContext;
  const b64u = b64 => Uint8Array.from(atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - b64.length % 4) % 4)), ch => ch.charCodeAt(0));
  const sameKey = (buffer, key) => {
    if (!buffer) return false;
    const a = new Uint8Array(buffer), b = b64u(key);
    return a.length === b.length && a.every((x, i) => x === b[i]);
  };
  const saved = () => { try { return JSON.parse(localStorage.getItem(PUSH)); } catch (e) { return null; } };

  // the worker, registered for the wallet's scope (its path: /wallet-sw.js, console/controllers.py)
  function register() {
    if (!("serviceWorker" in navigator)) return null;
    if (!s.worker) {
      s.worker = navigator.serviceWorker.register("/wallet-sw.js", { scope: "/wallet" }).then(reg => {
        document.body.dataset.worker = "registered";
        tellLanguage();
        return reg;
      }, e => { document.body.dataset.worker = "failed"; throw e; });
      s.worker.catch(() => {});
    }
    return s.worker;
  }

  function tellLanguage() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.ready.then(reg => { if (reg.active) reg.active.postMessage({ lang: SSLang.get() }); }).catch(() => {});
  }

  // what the toggle says: one of the texts above, or the server's words (shown in the language they came in)
  function pushNote(key, text) {
    s.push = key ? { key, text, lang: SSLang.get() } : null;
    showPushNote();
  }

  function showPushNote() {
    const p = s.push;
    $("push-note").textContent = !p ? "" : p.text ? (p.lang === SSLang.get() ? p.text : "") : t(p.key);
    $("push-note").dataset.state = p ? p.key : "";
  }

  async function syncPush() {
    const box = $("push-toggle");
    if (!pushable()) { box.checked = false; box.disabled = true; pushNote("push_unsupported"); return; }
    box.disabled = false;
    try {
      const reg = await register();
      const sub = await reg.pushManager.getSubscription();
      const mine = saved();
      const known = mine && sub && sub.endpoint === mine.endpoint
        ? (await call("/api/v1/me/push-subscriptions")).some(x => x.id === mine.id && !x.gone) : false;
      box.checked = known;
      if (known) pushNote("push_on");
      else if (Notification.permission === "denied") pushNote("push_denied");
      else if (!s.push || s.push.key === "push_on") pushNote(null);
    } catch (e) {
      if (e.status === 401) { SSCitizen.end(); return; }
      box.checked = false;
    }
  }

  async function pushOn() {
    const box = $("push-toggle");
    pushNote("push_working");
    const permission = await Notification.requestPermission();
    if (permission !== "granted") { box.checked = false; pushNote("push_denied"); return; }
    let sub;
    try {
      const key = await call("/api/v1/push/key");
      if (!key.enabled) { box.checked = false; pushNote("push_disabled"); return; }
      const reg = await register();
      await navigator.serviceWorker.ready;
      sub = await reg.pushManager.getSubscription();
      if (sub && !sameKey(sub.options.applicationServerKey, key.application_server_key)) { await sub.unsubscribe(); sub = null; }
      // a browser without a push service (or one it cannot reach) refuses here
      if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64u(key.application_server_key) });
    } catch (e) {
      box.checked = false;
      if (e.status === 401) { SSCitizen.end(); return; }
      pushNote(e.status ? "push_server" : "push_unavailable", e.status ? e.message : "");
      return;
    }
    try {
      const added = await call("/api/v1/me/push-subscriptions", { method: "POST", body: sub.toJSON() });
      localStorage.setItem(PUSH, JSON.stringify({ id: added.id, endpoint: sub.endpoint }));
      pushNote("push_on");
    } catch (e) {
      box.checked = false;
      await sub.unsubscribe().catch(() => {});
      if (e.status === 401) { SSCitizen.end(); return; }
      pushNote("push_server", e.message);  // the server's words (a push service it does not allow)
    }
  }

  // stop on this device: the browser's subscription ends and the server forgets it
  async function pushOff(tellServer = true) {
    const mine = saved();
    localStorage.removeItem(PUSH);
    try {
      const reg = pushable() ? await navigator.serviceWorker.getRegistration("/wallet") : null;
      const sub = reg ? await reg.pushManager.getSubscription() : null;
      if (sub) await sub.unsubscribe();
    } catch (e) { /* nothing to stop */ }
    if (tellServer && mine && mine.id) {
      await call(`/api/v1/me/push-subscriptions/${encodeURIComponent(mine.id)}`, { method: "DELETE" }).catch(() => {});
    }
    pushNote(null);
  }

  $("push-toggle").addEventListener("change", () => {
    const box = $("push-toggle");
    box.disabled = true;
    (box.checked ? pushOn() : pushOff()).finally(() => { box.disabled = !pushable(); });
  });

  if ("serviceWorker" in navigator) {
    // a tap on a notification while the wallet is open (the worker focuses this tab)
    navigator.serviceWorker.addEventListener("message", ev => {
      if (ev.data && ev.data.open) { refresh(); $("inbox-card").scrollIntoView(); }
    });
  }

  // ---- the wallet's calls -------------------------------------------------------------------------
  return {
    texts: T,
    start() {
      s = blank();
      s.on = true;
      $("inbox-button").classList.remove("hidden");
      refresh(); loadSettings(); syncPush();
    },
    // the live stream is open again: what it may have missed is fetched (events are only hints)
    live(on) { document.body.dataset.live = on ? "on" : "off"; if (on) refresh(); },
    arrived,
    applyLang() {
      if (!s.on) return;
      $("inbox-error").textContent = $("settings-error").textContent = $("prefs-note").textContent = "";  // said in the other language
      render(); renderSettings(); showToast(); showPushNote(); tellLanguage();
      refresh(); loadSettings();  // the server writes titles and bodies in the request's language
    },
    // signing out on purpose: this device stops receiving the citizen's notifications
    leaving: () => pushOff(true),
    stop() {
      clearTimeout(s.toastTimer);
      const had = s.on;
      s = blank();
      document.body.dataset.live = "off";
      $("inbox-button").classList.add("hidden");
      hideToast();
      $("inbox").replaceChildren(); $("subscriptions").replaceChildren(); $("prefs-table").replaceChildren();
      badge(0);
      pushNote(null);
      if (had) pushOff(false);  // a session refused: the browser unsubscribes (the push service then forgets it)
    },
  };
})();
