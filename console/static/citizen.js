// A citizen's session on the pages that sign one in (the web wallet, the sandbox's payment page): the SMS
// sign-in card, tokens kept in this tab (sessionStorage: a citizen signed in to the wallet is signed in on
// a payment page opened in the same tab), one refresh at a time (a refresh token is spent once and
// rotated), and API calls with the bearer token and the page's language (lang.js, loaded first).
"use strict";
const SSCitizen = (() => {
  const store = sessionStorage;
  const $ = id => document.getElementById(id);
  const ended = [];
  const leaving = [];  // what a page does before the citizen signs out on purpose (still signed in)

  const deviceId = () => {
    let id = localStorage.getItem("sst.device");
    if (!id) {  // getRandomValues works on plain http too (a phone on the LAN), randomUUID does not
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = "web-" + Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem("sst.device", id);
    }
    return id;
  };
  const keep = pair => { store.setItem("sst.access", pair.access_token); store.setItem("sst.refresh", pair.refresh_token); };

  // the session is over (signed out, or its refresh token refused): the page shows its sign-in card
  function end() {
    store.removeItem("sst.access"); store.removeItem("sst.refresh");
    ended.forEach(fn => fn());
  }

  // a JSON API call; a refused call throws an Error with the server's detail (in the page's language),
  // its status, its problem+json body and Retry-After; a network failure throws one without a status
  async function call(path, opts = {}, retry = true) {
    const headers = { "Accept": "application/json", ...SSLang.headers(), ...(opts.headers || {}) };
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
      e.status = res.status; e.problem = data; e.retryAfter = res.headers.get("Retry-After");
      throw e;
    }
    return data;
  }

  let refreshing = null;
  function refresh() {  // one refresh at a time: a refresh token is spent once
    refreshing = refreshing || (async () => {
      try {
        keep(await call("/api/v1/auth/refresh", { method: "POST", body: { refresh_token: store.getItem("sst.refresh") } }, false));
        return true;
      } catch (e) { end(); return false; } finally { refreshing = null; }
    })();
    return refreshing;
  }

  // The sign-in card (#otp-form with #phone and #send-code, #login-form with #code, #dev-inbox with
  // #dev-sms) and #logout. Its messages go to #login-error in the page's language: the page's texts
  // (texts.zh / texts.en) have badphone, badcode, sent and neterror; the server's words are shown while
  // the page is still in the language they came in.
  function signInCard(texts, signedIn) {
    let said = null;
    const show = () => {
      $("login-error").textContent = !said ? "" : said.key ? SSLang.t(texts, said.key) : said.lang === SSLang.get() ? said.text : "";
    };
    const say = what => { said = what; show(); };
    const problem = e => (e.status ? { text: e.message, lang: SSLang.get() } : { key: "neterror" });
    SSLang.onChange(show);

    $("otp-form").addEventListener("submit", async ev => {
      ev.preventDefault();
      const phone = $("phone").value.trim();
      say(null);
      if (!/^\+?\d{5,20}$/.test(phone.replace(/[\s-]/g, ""))) { say({ key: "badphone" }); return; }
      $("send-code").disabled = true;
      setTimeout(() => { $("send-code").disabled = false; }, 3000);
      try {
        await call("/api/v1/auth/otp", { method: "POST", body: { phone } });
        say({ key: "sent" });
      } catch (e) {
        say(problem(e));
        if (e.status !== 429) return;  // 429: a code sent moments ago is still good, the citizen may have it
      }
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
      if (!/^\d{6}$/.test(code)) { say({ key: "badcode" }); return; }
      try {
        keep(await call("/api/v1/auth/login", { method: "POST", body: {
          phone: $("phone").value.trim(), code, device_id: deviceId(), device_name: "Web wallet",
        } }));
        $("code").value = ""; say(null);
        signedIn();
      } catch (e) { say(problem(e)); }
    });

    $("logout").addEventListener("click", async () => {
      await Promise.all(leaving.map(fn => Promise.resolve().then(fn).catch(() => {})));
      try { await call("/api/v1/auth/logout", { method: "POST" }, false); } catch (e) { /* signed out anyway */ }
      end();
    });
  }

  return {
    call,
    end,
    signInCard,
    signedIn: () => store.getItem("sst.access") !== null,
    onEnd: fn => ended.push(fn),
    onLeaving: fn => leaving.push(fn),
  };
})();
