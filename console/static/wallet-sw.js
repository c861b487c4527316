// The web wallet's service worker: Web Push notifications. Served at /wallet-sw.js (console/controllers.py)
// and registered by the wallet for the scope /wallet, so a tap on a notification opens the wallet.
// A push's payload (messages/_delivery.py) is {id, sender, category, title: {"zh-CN", "en"},
// body: {"zh-CN", "en"}, link}: shown in the wallet's language, which the page tells this worker
// (a worker cannot read the page's localStorage), else the browser's.
"use strict";
const STORE = "sst-wallet";
const LANG_KEY = "/wallet-sw/lang";

async function language() {
  try {
    const saved = await (await caches.open(STORE)).match(LANG_KEY);
    if (saved) return (await saved.text()) === "en" ? "en" : "zh-CN";
  } catch (e) { /* no cache storage: the browser's language */ }
  return (self.navigator.language || "").toLowerCase().startsWith("en") ? "en" : "zh-CN";
}

// only a path of this site (the server allows nothing else in a template's link)
const safeLink = link => (typeof link === "string" && /^\/(?![/\\])/.test(link) ? link : "/wallet");

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", event => event.waitUntil(self.clients.claim()));

self.addEventListener("message", event => {
  const lang = event.data && event.data.lang;
  if (lang === "en" || lang === "zh") {
    event.waitUntil(caches.open(STORE).then(c => c.put(LANG_KEY, new Response(lang))));
  }
});

self.addEventListener("push", event => {
  event.waitUntil((async () => {
    let p = {};
    try { p = event.data ? event.data.json() : {}; } catch (e) { p = {}; }
    const lang = await language();
    const pick = o => (o && typeof o === "object" ? String(o[lang] || o["zh-CN"] || o.en || "") : "");
    const title = pick(p.title) || (lang === "en" ? "Shengshitong" : "盛事通");
    await self.registration.showNotification(title, {
      body: pick(p.body),
      lang,
      tag: typeof p.id === "string" ? p.id : undefined,  // the same message twice: one notification
      data: { link: safeLink(p.link), id: p.id },
    });
  })());
});

self.addEventListener("notificationclick", event => {
  event.notification.close();
  const link = safeLink(event.notification.data && event.notification.data.link);
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const wallet = open.find(w => new URL(w.url).pathname === "/wallet");
    if (wallet && new URL(link, self.location.origin).pathname === "/wallet") {
      await wallet.focus();  // the open wallet (signed in in that tab) shows its inbox
      wallet.postMessage({ open: link });
      return;
    }
    await self.clients.openWindow(link);
  })());
});
