// The web wallet's e-licences (电子证照, docs/web.md "The wallet's licences"), the card /wallet#licences
// opens (the link of the messages that a licence was issued, suspended or revoked, or that someone asks
// for its fields): the citizen's licences (once their real name is verified), one licence with every field
// and the devices holding it, 亮证 (showing chosen fields to an inspector as a QR), the requests for fields
// (授权: approve, refuse, withdraw a standing consent) and the use log (who saw which fields, when, for
// what). In the page's language (lang.js); field labels come from the server in both languages.
//
// 亮证 is done on this device, as licences/holder.py does it for a native app: a device key made with
// WebCrypto (ECDSA P-256, its private half not extractable) and kept in IndexedDB for this wallet's
// citizen; a credential of the licence bound to that key (an SD-JWT VC, fetched once per licence and
// version with a proof of possession over the server's nonce, and kept in IndexedDB: it is the citizen's
// own data on their own device); the presentation discloses only the ticked fields and ends with a
// key-binding JWT over them, signed by the device key (WebCrypto's ECDSA signature is r||s, IEEE P1363:
// exactly the JWS ES256 form). The server checks it, logs the use and answers with the QR to show.
"use strict";
const SSLicences = (() => {
  const T = {
    zh: {
      licTitle: "电子证照", licMine: "我的证照", licNone: "暂无电子证照",
      licUnverified: "完成实名认证后，部门为你签发的电子证照才会出现在这里。",
      licView: "查看", licClose: "收起", licIssuer: "发证机关", licNumber: "证号", licValidUntil: "有效期至", licVersion: "版本",
      licFields: "证照信息", licPickHint: "勾选要出示的字段：只出示检查人员需要的。", licDevices: "持有此证照的设备", licNoDevices: "尚无设备领取",
      licThisDevice: "本设备", licDeviceUntil: "领取于 {minted}，有效至 {until}",
      licShow: "亮证", licShowing: "正在生成…", licPickOne: "请至少勾选一个字段",
      licShowTitle: "请检查人员扫码", licLeft: "剩余", licSeconds: "秒", licExpired: "已失效，请重新亮证",
      licShownFields: "出示的字段：{fields}", licHandover: "改为在线交接", licDone: "完成",
      licModeInline: "二维码内含所选字段，检查设备可离线核验。",
      licModeReference: "在线交接：检查设备联网读取，{seconds} 秒内有效，只能读取一次。",
      licNotValid: "此证照当前{status}，不能亮证或授权。", licReason: "原因：{reason}",
      st_valid: "有效", st_suspended: "已暂停", st_revoked: "已注销",
      licRequests: "授权申请", licNoRequests: "暂无授权申请",
      licAsks: "申请字段：{fields}", licPurpose: "用途：{purpose}", licOnce: "一次性使用", licStanding: "长期授权，至 {until}", licStandingOpen: "长期授权",
      licAnswerBy: "{when} 前答复", licApprove: "同意", licRefuse: "拒绝", licRevoke: "撤回授权",
      rq_pending: "待授权", rq_approved: "已授权", rq_refused: "已拒绝", rq_expired: "已过期", rq_used: "已使用", rq_revoked: "已撤回",
      licUses: "使用记录", licNoUses: "暂无使用记录", licYouShowed: "你亮证", licReadBy: "{name} 读取（在线交接）",
      licUseFields: "字段：{fields}", licMore: "加载更多", licNoKey: "此浏览器不支持安全密钥存储，无法亮证。",
      licNeterror: "网络不可用，请稍后再试",
    },
    en: {
      licTitle: "E-licences", licMine: "My licences", licNone: "No e-licences yet",
      licUnverified: "Once your real name is verified, the licences departments issue you appear here.",
      licView: "View", licClose: "Close", licIssuer: "Issuer", licNumber: "Number", licValidUntil: "Valid until", licVersion: "Version",
      licFields: "Details", licPickHint: "Tick the fields to show: only what the inspector needs.", licDevices: "Devices holding it", licNoDevices: "No device holds it yet",
      licThisDevice: "this device", licDeviceUntil: "since {minted}, valid until {until}",
      licShow: "Show", licShowing: "Preparing…", licPickOne: "Tick at least one field",
      licShowTitle: "Let the inspector scan this", licLeft: "Expires in", licSeconds: "s", licExpired: "Expired: show it again",
      licShownFields: "Shown: {fields}", licHandover: "Hand over online instead", licDone: "Done",
      licModeInline: "The QR holds the chosen fields; the inspector's device checks it offline.",
      licModeReference: "Online handover: the inspector's device fetches it within {seconds} s, once.",
      licNotValid: "This licence is {status}: it cannot be shown or shared.", licReason: "Reason: {reason}",
      st_valid: "valid", st_suspended: "suspended", st_revoked: "revoked",
      licRequests: "Requests for my licences", licNoRequests: "No requests",
      licAsks: "Asks for: {fields}", licPurpose: "For: {purpose}", licOnce: "Once", licStanding: "Standing, until {until}", licStandingOpen: "Standing",
      licAnswerBy: "Answer by {when}", licApprove: "Approve", licRefuse: "Refuse", licRevoke: "Withdraw consent",
      rq_pending: "Waiting for you", rq_approved: "Approved", rq_refused: "Refused", rq_expired: "Expired", rq_used: "Used", rq_revoked: "Withdrawn",
      licUses: "Use log", licNoUses: "Nothing yet", licYouShowed: "You showed it", licReadBy: "{name} fetched it (online handover)",
      licUseFields: "Fields: {fields}", licMore: "Load more", licNoKey: "This browser cannot keep a secure key: licences cannot be shown here.",
      licNeterror: "Network unavailable; try again shortly",
    },
  };
  // what the server logs as the purpose of showing a licence (its own words, in Chinese)
  const SHOWN_EN = { "亮证": "Shown to an inspector", "亮证（在线交接）": "Shown to an inspector (online handover)" };
  const INSPECT = "urn:shengshitong:inspect";  // the audience of a presentation shown to any inspector
  const PROOF_TYP = "openid4vci-proof+jwt";
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const tf = (key, args) => t(key).replace(/\{(\w+)\}/g, (_, name) => args[name]);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const call = (...args) => SSCitizen.call(...args);
  const when = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
  const day = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit",
  }).format(new Date(iso));
  const list = names => names.join(SSLang.get() === "en" ? ", " : "、");
  const label = f => SSLang.pick(f.zh, f.en);
  const PAGE = 20;

  // ---- base64url, SHA-256, JWS ES256 with WebCrypto ------------------------------------------------
  const utf8 = new TextEncoder();
  function b64u(data) {
    const bytes = new Uint8Array(data);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  const unb64u = text => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - text.length % 4) % 4)), c => c.charCodeAt(0));
  const json64 = value => b64u(utf8.encode(JSON.stringify(value)));
  const sha256 = async text => crypto.subtle.digest("SHA-256", utf8.encode(text));

  async function signJwt(key, header, payload) {
    const signed = `${json64({ alg: "ES256", ...header })}.${json64(payload)}`;
    // WebCrypto's ECDSA signature is the raw r||s (IEEE P1363), which is what JWS ES256 carries
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, utf8.encode(signed));
    return `${signed}.${b64u(signature)}`;
  }

  // ---- this device's key and the credentials it holds (IndexedDB) --------------------------------------
  const DB = "sst-licences";
  let opened = null;
  function database() {
    opened = opened || new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => { req.result.createObjectStore("keys"); req.result.createObjectStore("credentials"); };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    opened.catch(() => { opened = null; });
    return opened;
  }
  async function stored(store, mode, act) {
    const db = await database();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const req = act(tx.objectStore(store));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  }
  const load = (store, name) => stored(store, "readonly", st => st.get(name));
  const keep = (store, name, value) => stored(store, "readwrite", st => st.put(value, name));
  const drop = (store, name) => stored(store, "readwrite", st => st.delete(name));

  // RFC 7638: the thumbprint the server names a device key by
  const thumbprint = async jwk => b64u(await sha256(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })));

  // the wallet's key on this device for the signed-in citizen: made once, its private half never leaves
  // WebCrypto (not extractable; IndexedDB keeps the key object itself)
  function deviceKey() {
    if (!s.key) {
      const name = "device:" + s.me;
      s.key = (async () => {
        const held = await load("keys", name);
        if (held && held.privateKey) return held;
        const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
        const pub = await crypto.subtle.exportKey("jwk", pair.publicKey);
        const jwk = { kty: "EC", crv: "P-256", x: pub.x, y: pub.y };
        const made = { privateKey: pair.privateKey, jwk, jkt: await thumbprint(jwk) };
        await keep("keys", name, made);
        return made;
      })();
      s.key.catch(() => { s.key = null; });
    }
    return s.key;
  }

  // the licence's credential for this device: the one kept, while it is of the licence's version, bound to
  // this key and not about to expire; else a new one (the proof: this key signs the server's nonce)
  async function credential(licence, fresh = false) {
    const key = await deviceKey();
    const name = `credential:${s.me}:${licence.id}`;
    const held = fresh ? null : await load("credentials", name);
    if (held && held.version === licence.version && held.device === key.jkt
        && Date.parse(held.expires_at) / 1000 > s.now() + 300) return { key, held };
    const nonce = await call("/api/v1/me/licences/nonce", { method: "POST" });
    const proof = await signJwt(key, { typ: PROOF_TYP, jwk: key.jwk },
      { aud: nonce.audience, nonce: nonce.c_nonce, iat: Math.floor(s.now()) });
    const got = await call(`/api/v1/me/licences/${encodeURIComponent(licence.id)}/credential`, { method: "POST", body: { proof } });
    const kept = { credential: got.credential, version: got.version, device: got.device, expires_at: got.expires_at, vct: got.vct };
    await keep("credentials", name, kept);
    return { key, held: kept };
  }

  // as licences/holder.py present(): <issuer JWT>~<the chosen disclosures>~<KB-JWT>, the KB-JWT over
  // sd_hash = base64url(sha256("<issuer JWT>~<d1>~...~<dn>~")) with a fresh random nonce
  async function present(cred, fields, key) {
    const parts = cred.split("~");
    const issuerJwt = parts[0];
    const byName = {};
    for (const d of parts.slice(1)) {
      if (!d) continue;
      const [, name] = JSON.parse(new TextDecoder().decode(unb64u(d)));
      byName[name] = d;
    }
    const chosen = fields.filter(f => byName[f]).map(f => byName[f]);
    const sdHash = b64u(await sha256([issuerJwt, ...chosen, ""].join("~")));
    const nonce = b64u(crypto.getRandomValues(new Uint8Array(18)));  // 24 characters
    const kb = await signJwt(key, { typ: "kb+jwt" }, { iat: Math.floor(s.now()), aud: INSPECT, nonce, sd_hash: sdHash });
    return [issuerJwt, ...chosen, kb].join("~");
  }

  // ---- state ---------------------------------------------------------------------------------------------
  // detail: the licence open (its view), picked: the fields ticked, shown: the QR on screen (the server's
  // answer, when it was shown, the fields), apps: mini-app names for requesters that are mini-apps
  const blank = () => ({
    on: false, me: null, key: null, now: () => Date.now() / 1000, verified: true, items: [], detail: null, picked: new Set(),
    shown: null, tick: null, busy: false, requests: [], uses: [], next: null, apps: {}, scrolled: false, changes: 0,
  });
  let s = blank();

  function failed(e, where = "licences-error") {
    if (e.status === 401) { SSCitizen.end(); return; }
    // the server's words (in the page's language); WebCrypto or IndexedDB refusing; the network
    $(where).textContent = e.status ? e.message : e instanceof DOMException ? t("licNoKey") : t("licNeterror");
  }

  async function refresh() {
    if (!s.on) return;
    const on = s, changes = s.changes;
    try {
      const [mine, requests, uses, apps] = await Promise.all([
        call("/api/v1/me/licences"), call("/api/v1/me/licence-requests?limit=100"),
        call(`/api/v1/me/licence-uses?limit=${Math.min(100, Math.max(PAGE, s.uses.length))}`),
        Object.keys(s.apps).length ? null : call("/api/v1/miniapps?limit=100").catch(() => null),
      ]);
      if (on !== s) return;  // signed out meanwhile
      if (apps) s.apps = Object.fromEntries(apps.items.map(a => [a.id, a]));
      if (changes !== s.changes) { refresh(); return; }  // answered a request meanwhile: ask again
      // pending requests first, each group newest first (as the server lists them)
      const order = r => (r.state === "pending" ? 0 : 1);
      Object.assign(s, {
        verified: mine.verified, items: mine.items, uses: uses.items, next: uses.next,
        requests: requests.items.slice().sort((a, b) => order(a) - order(b)),
      });
      $("licences-error").textContent = "";
      render();
      if (!s.scrolled && location.hash === "#licences") { s.scrolled = true; $("licences").scrollIntoView(); }
      if (s.detail && !s.items.some(i => i.id === s.detail.id && i.version === s.detail.version && i.status === s.detail.status)) open(s.detail.id);
    } catch (e) { failed(e); }
  }

  async function moreUses() {
    if (!s.next) return;
    try {
      const page = await call(s.next);
      const seen = new Set(s.uses.map(u => u.id));
      s.uses.push(...page.items.filter(u => !seen.has(u.id)));
      s.next = page.next;
      renderUses();
    } catch (e) { failed(e); }
  }

  // ---- one licence -----------------------------------------------------------------------------------------
  async function open(id) {
    try {
      const view = await call(`/api/v1/me/licences/${encodeURIComponent(id)}`);
      if (!s.on) return;
      const same = s.detail && s.detail.id === view.id;
      s.detail = view;
      if (!same) { s.picked = new Set(); hideShown(); }
      s.picked = new Set([...s.picked].filter(f => view.fields.some(x => x.name === f)));
      const held = await load("keys", "device:" + s.me).catch(() => null);
      s.thisDevice = held ? held.jkt : null;
      $("licence-error").textContent = "";
      renderDetail();
      renderList();
      if (!same) $("licence-detail").scrollIntoView({ block: "nearest" });
    } catch (e) { failed(e, "licence-error"); }
  }

  function close() {
    s.detail = null;
    hideShown();
    renderDetail();
    renderList();
  }

  async function show(handover) {
    const d = s.detail;
    if (!d || s.busy) return;
    const fields = d.fields.map(f => f.name).filter(f => s.picked.has(f));  // in the licence's order
    if (!fields.length) { $("licence-error").textContent = t("licPickOne"); return; }
    if (!window.crypto || !crypto.subtle || !window.indexedDB) { $("licence-error").textContent = t("licNoKey"); return; }
    s.busy = true;
    $("licence-error").textContent = "";
    renderShowButtons();
    try {
      let answer = null;
      for (let attempt = 0; !answer; attempt++) {
        const { key, held } = await credential(d, attempt > 0);
        const presentation = await present(held.credential, fields, key);
        try {
          answer = await call("/api/v1/me/licences/presentations", { method: "POST", body: { presentation, handover } });
        } catch (e) {
          // the kept credential no longer serves (withdrawn for this device, or refused): a new one, once
          const stale = e.status === 403 || (e.problem && e.problem.code === "presentation_invalid");
          if (attempt > 0 || !stale) throw e;
        }
      }
      if (!s.detail || s.detail.id !== d.id) return;
      s.shown = { ...answer, until: Date.now() + answer.expires_in * 1000, fields };
      renderShown();
      $("show-box").scrollIntoView({ block: "center" });
      s.changes += 1;
      refresh();  // the use log has it now; the devices too
      open(d.id);
    } catch (e) { failed(e, "licence-error"); } finally { s.busy = false; renderShowButtons(); }
  }

  function hideShown() {
    clearInterval(s.tick);
    s.shown = null;
    $("show-box").classList.add("hidden");
    $("show-qr").removeAttribute("src");
  }

  function renderShown() {
    const p = s.shown;
    clearInterval(s.tick);
    $("show-box").classList.toggle("hidden", !p);
    if (!p) return;
    const box = $("show-box");
    if ($("show-qr").getAttribute("src") !== p.qr_png) {
      $("show-qr").src = p.qr_png;  // a data: URL the server drew (segno, ECC L)
      box.dataset.serial = String((+box.dataset.serial || 0) + 1);
    }
    box.dataset.mode = p.mode;
    $("show-qr").alt = t("licShowTitle");
    const names = p.fields.map(n => { const f = s.detail && s.detail.fields.find(x => x.name === n); return f ? label(f) : n; });
    $("show-fields").textContent = tf("licShownFields", { fields: list(names) });
    $("show-mode").textContent = p.mode === "inline" ? t("licModeInline") : tf("licModeReference", { seconds: p.expires_in });
    $("show-handover").classList.toggle("hidden", p.mode !== "inline");
    const tick = () => {
      const left = Math.max(0, Math.ceil((p.until - Date.now()) / 1000));
      $("show-countdown").textContent = String(left);
      box.classList.toggle("expired", left === 0);
      box.dataset.state = left === 0 ? "expired" : "live";
      $("show-expired").classList.toggle("hidden", left > 0);
      if (left === 0) clearInterval(s.tick);
    };
    tick();
    s.tick = setInterval(tick, 1000);
  }

  function renderShowButtons() {
    const d = s.detail;
    const ok = !!d && d.status === "valid";
    $("show-licence").disabled = !ok || s.busy || s.picked.size === 0;
    $("show-licence").textContent = s.busy ? t("licShowing") : t("licShow");
    $("show-handover").disabled = s.busy;
  }

  function renderDetail() {
    const d = s.detail;
    $("licence-detail").classList.toggle("hidden", !d);
    if (!d) return;
    $("licence-detail").dataset.licence = d.id;
    $("licence-detail").dataset.status = d.status;
    $("detail-name").textContent = SSLang.pick(d.name_zh, d.name_en);
    const status = $("detail-status");
    status.textContent = t("st_" + d.status);
    status.className = "pill " + (d.status === "valid" ? "ok" : d.status === "suspended" ? "warn" : "no");
    status.dataset.status = d.status;
    const facts = [[t("licIssuer"), SSLang.pick(d.issuer_zh, d.issuer_en)], [t("licNumber"), d.number]];
    if (d.valid_until) facts.push([t("licValidUntil"), day(d.valid_until)]);
    facts.push([t("licVersion"), String(d.version)]);
    $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: v })]));
    const valid = d.status === "valid";
    $("detail-invalid").textContent = valid ? "" : tf("licNotValid", { status: t("st_" + d.status) }) + (d.reason ? " " + tf("licReason", { reason: d.reason }) : "");
    $("detail-invalid").classList.toggle("hidden", valid);
    $("licence-fields").replaceChildren(...d.fields.map(f => {
      const box = el("input", { type: "checkbox", checked: s.picked.has(f.name), disabled: !valid });
      box.dataset.field = f.name;
      box.addEventListener("change", () => {
        if (box.checked) s.picked.add(f.name); else s.picked.delete(f.name);
        $("licence-error").textContent = "";
        renderShowButtons();
      });
      const li = el("li", {}, el("label", { className: "check" }, box, el("span", { className: "field-label", textContent: label(f) })),
        el("span", { className: "field-value", textContent: f.value }));
      li.dataset.field = f.name;
      return li;
    }));
    $("pick-hint").classList.toggle("hidden", !valid);
    $("licence-devices").replaceChildren(...(d.devices.length ? d.devices.map(dev => {
      const mine = dev.device_jkt === s.thisDevice;
      const li = el("li", {}, el("span", {}, el("span", { className: "mono", textContent: dev.device_jkt.slice(0, 10) + "…" }),
        mine ? el("span", { className: "pill ok this-device", textContent: t("licThisDevice") }) : ""),
        el("span", { className: "muted", textContent: tf("licDeviceUntil", { minted: day(dev.minted_at), until: day(dev.expires_at) }) }));
      li.dataset.device = dev.device_jkt;
      return li;
    }) : [el("li", { className: "muted", textContent: t("licNoDevices") })]));
    renderShowButtons();
    if (s.shown) renderShown();
  }

  // ---- the lists -----------------------------------------------------------------------------------------
  function renderList() {
    $("licences-unverified").classList.toggle("hidden", s.verified);
    $("licence-list").replaceChildren(...(s.items.length ? s.items.map(item => {
      const status = el("span", { className: "pill " + (item.status === "valid" ? "ok" : item.status === "suspended" ? "warn" : "no"), textContent: t("st_" + item.status) });
      status.dataset.status = item.status;
      const opened = !!s.detail && s.detail.id === item.id;
      const button = el("button", { type: "button", className: "ghost small licence-open", textContent: t(opened ? "licClose" : "licView") });
      button.addEventListener("click", () => (opened ? close() : open(item.id)));
      const li = el("li", { className: opened ? "open" : "" },
        el("span", {}, el("b", { textContent: SSLang.pick(item.name_zh, item.name_en) }), " ", status, el("br"),
          el("span", { className: "muted", textContent: `${SSLang.pick(item.issuer_zh, item.issuer_en)} · ${item.number}` })),
        button);
      li.dataset.licence = item.id;
      li.dataset.type = item.type;
      return li;
    }) : [el("li", { className: "muted", textContent: t("licNone") })]));
  }

  const requester = r => (r.kind === "miniapp" && s.apps[r.id] ? SSLang.pick(s.apps[r.id].name_zh, s.apps[r.id].name_en) : r.name);

  async function answer(r, action, button) {
    button.disabled = true;
    $("requests-error").textContent = "";
    try {
      await call(`/api/v1/me/licence-requests/${encodeURIComponent(r.id)}/${action}`, { method: "POST", body: action === "approve" ? {} : undefined });
      s.changes += 1;
      await refresh();
    } catch (e) {
      failed(e, "requests-error");
      button.disabled = false;
      if (e.status === 409) refresh();  // answered meanwhile (another device), or lapsed
    }
  }

  // once, or standing until a day (a standing request's days run from when it was made)
  const mode = r => (r.mode !== "standing" ? t("licOnce") : r.consent_until ? tf("licStanding", { until: day(r.consent_until) }) : t("licStandingOpen"));

  function renderRequests() {
    $("licence-requests").replaceChildren(...(s.requests.length ? s.requests.map(r => {
      const state = el("span", { className: "pill request-state " + (r.state === "approved" ? "ok" : r.state === "pending" ? "warn" : r.state === "used" ? "" : "no"), textContent: t("rq_" + r.state) });
      state.dataset.state = r.state;
      const li = el("li", {},
        el("div", { className: "card-head" }, el("span", {}, el("b", { className: "requester", textContent: requester(r.requester) }), " · ", SSLang.pick(r.type_zh, r.type_en)), state),
        el("div", { className: "asks", textContent: tf("licAsks", { fields: list(r.fields.map(label)) }) }),
        el("div", { className: "purpose", textContent: tf("licPurpose", { purpose: r.purpose }) }),
        el("div", { className: "muted mode", textContent: `${mode(r)} · ${r.state === "pending" ? tf("licAnswerBy", { when: when(r.expires_at) }) : when(r.decided_at || r.created_at)}` }));
      li.dataset.request = r.id;
      li.dataset.state = r.state;
      const buttons = [];
      const button = (key, action, cls) => {
        const b = el("button", { type: "button", className: `small ${cls}`, textContent: t(key) });
        b.addEventListener("click", () => answer(r, action, b));
        buttons.push(b);
      };
      if (r.state === "pending") { button("licApprove", "approve", "approve"); button("licRefuse", "refuse", "ghost refuse"); }
      if (r.state === "approved") button("licRevoke", "revoke", "ghost revoke");
      if (buttons.length) li.append(el("p", { className: "actions" }, ...buttons.flatMap((b, i) => (i ? [" ", b] : [b]))));
      return li;
    }) : [el("li", { className: "muted", textContent: t("licNoRequests") })]));
  }

  function renderUses() {
    $("licence-uses").replaceChildren(...(s.uses.length ? s.uses.map(u => {
      const who = u.by_kind === "self" ? t("licYouShowed")
        : u.kind === "handover" ? tf("licReadBy", { name: u.by_name })
          : requester({ kind: u.by_kind, id: u.by_id, name: u.by_name });
      const own = u.by_kind === "self" || u.by_kind === "inspector";  // the platform's words: translated
      const purpose = own && SSLang.get() === "en" ? SHOWN_EN[u.purpose] || "" : u.purpose;
      const li = el("li", {},
        el("div", { className: "card-head" }, el("span", {}, el("b", { className: "who", textContent: who }), " · ", SSLang.pick(u.type_zh, u.type_en)),
          el("span", { className: "muted", textContent: when(u.at) })),
        el("div", { className: "use-fields", textContent: tf("licUseFields", { fields: list(u.fields.map(label)) }) }));
      if (purpose) li.append(el("div", { className: "muted use-purpose", textContent: purpose }));
      li.dataset.use = u.id;
      li.dataset.kind = u.kind;
      return li;
    }) : [el("li", { className: "muted", textContent: t("licNoUses") })]));
    $("uses-more").classList.toggle("hidden", !s.next);
  }

  function render() {
    if (!s.on) return;
    renderList();
    renderDetail();
    renderRequests();
    renderUses();
  }

  $("show-licence").addEventListener("click", () => show(false));
  $("show-handover").addEventListener("click", () => show(true));
  $("show-close").addEventListener("click", () => { hideShown(); renderShowButtons(); });
  $("uses-more").addEventListener("click", moreUses);

  return {
    texts: T,
    // now: the server's time as the wallet knows it (seconds): a proof and a presentation carry it
    async start(now) {
      const on = s = blank();
      s.on = true;
      if (now) s.now = now;
      try {
        const me = await call("/api/v1/me");
        if (on !== s) return;  // signed out meanwhile
        s.me = me.id;  // the device key is this citizen's (another citizen on this browser has their own)
      } catch (e) { failed(e); return; }
      refresh();
    },
    refresh,
    applyLang() {
      if (!s.on) return;
      ["licences-error", "licence-error", "requests-error"].forEach(id => { $(id).textContent = ""; });  // the other language
      render();
    },
    stop() {
      clearInterval(s.tick);
      s = blank();
      hideShown();
      $("licence-detail").classList.add("hidden");
      ["licence-list", "licence-requests", "licence-uses"].forEach(id => $(id).replaceChildren());
      ["licences-error", "licence-error", "requests-error"].forEach(id => { $(id).textContent = ""; });
    },
  };
})();
