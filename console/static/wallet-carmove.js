// The web wallet's 扫码挪车 (car moving, docs/miniapps.md "扫码挪车 car moving"), the card /wallet#carmove
// opens (the owner's messages link to it): the citizen's cars, whether each is proven by their vehicle
// licence, each car's sticker (print it as PNG, SVG or PDF; pause, resume or regenerate it), and the
// requests received, answered here. In the page's language (lang.js); wallet.js starts it, stops it, and
// refreshes it when a message arrives on the wallet's stream (a request is one).
"use strict";
const SSCarmove = (() => {
  const API = "/api/v1/apps/carmove";
  const T = {
    zh: {
      cmTitle: "扫码挪车", cmCars: "我的车辆", cmRequests: "收到的挪车请求", cmNoCars: "尚未登记车辆", cmNoRequests: "暂无挪车请求",
      cmPlate: "车牌号码", cmAdd: "登记车辆", cmProven: "已核验", cmUnproven: "未核验（请在电子证照中同意出示行驶证）",
      cmMismatch: "未核验：行驶证号牌与车牌不符", cmSticker: "挪车码", cmActive: "使用中", cmPaused: "已暂停",
      cmSuspended: "已被运营停用", cmSuspendedWhy: "因被举报，运营人员已停用此挪车码；如有异议请联系客服。",
      cmPause: "暂停", cmResume: "恢复", cmRegenerate: "重新生成", cmRegenerated: "已生成新挪车码，旧车贴已失效",
      cmPrint: "下载车贴", cmRemove: "删除", cmWaiting: "等待回复", cmAnswered: "已回复", cmExpired: "已过期",
      cmAnswer: "回复", cmPhoto: "查看照片", cmNote: "附言（选填）", neterror: "网络不可用，请稍后再试",
      cm_coming_5: "马上到，5 分钟内挪车", cm_coming_15: "15 分钟内到", cm_moved: "已挪走", cm_not_my_car: "这不是我的车",
      cm_cannot_come: "暂时无法挪车，请谅解",
    },
    en: {
      cmTitle: "Car moving", cmCars: "My cars", cmRequests: "Requests to move my cars", cmNoCars: "No car registered",
      cmNoRequests: "No requests", cmPlate: "Plate", cmAdd: "Register a car", cmProven: "Verified",
      cmUnproven: "Not verified (approve sharing your vehicle licence under E-licences)",
      cmMismatch: "Not verified: the vehicle licence is for another plate", cmSticker: "Sticker", cmActive: "In use",
      cmPaused: "Paused", cmSuspended: "Suspended by the operators",
      cmSuspendedWhy: "The operators suspended this sticker after a report of misuse; contact the service to have it lifted.",
      cmPause: "Pause", cmResume: "Resume", cmRegenerate: "Regenerate",
      cmRegenerated: "A new sticker was made; the old one no longer works", cmPrint: "Download the sticker",
      cmRemove: "Remove", cmWaiting: "Waiting for you", cmAnswered: "Answered", cmExpired: "Expired", cmAnswer: "Answer",
      cmPhoto: "See the photo", cmNote: "Note (optional)", neterror: "Network unavailable; try again shortly",
      cm_coming_5: "Coming, moving it within 5 minutes", cm_coming_15: "There within 15 minutes", cm_moved: "Moved already",
      cm_not_my_car: "This is not my car", cm_cannot_come: "Cannot come now, sorry",
    },
  };
  const ANSWERS = ["coming_5", "coming_15", "moved", "not_my_car", "cannot_come"];
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const call = (...args) => SSCitizen.call(...args);
  const when = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
  let s = { on: false, cars: [], requests: [], note: "" };

  function failed(e) {
    if (e.status === 401) { SSCitizen.end(); return; }
    $("carmove-error").textContent = e.status ? e.message : t("neterror");
  }

  async function refresh() {
    if (!s.on) return;
    const on = s;
    try {
      const [cars, requests] = await Promise.all([call(`${API}/cars?limit=50`), call(`${API}/requests?limit=20`)]);
      if (on !== s) return;
      Object.assign(s, { cars: cars.items, requests: requests.items });
      $("carmove-error").textContent = "";
      render();
    } catch (e) { failed(e); }
  }

  async function act(fn) {
    try { await fn(); await refresh(); } catch (e) { failed(e); }
  }

  // an image the server gives only to the signed-in owner: fetched with the token, saved or shown as a blob
  async function blob(path) {
    const res = await fetch(path, { headers: { Authorization: "Bearer " + sessionStorage.getItem("sst.access") } });
    if (!res.ok) throw Object.assign(new Error(res.statusText), { status: res.status });
    return URL.createObjectURL(await res.blob());
  }

  async function download(car, kind) {
    try {
      const url = await blob(`${API}/cars/${car.car_id}/sticker.${kind}`);
      const a = el("a", { href: url, download: `carmove-${car.plate}.${kind}` });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) { failed(e); }
  }

  function proof(car) {
    if (car.proof === "proven") return el("span", { className: "pill ok", textContent: t("cmProven") });
    return el("span", { className: "pill warn", textContent: t(car.reason === "mismatch" ? "cmMismatch" : "cmUnproven") });
  }

  function carItem(car) {
    const li = el("li", {}, el("b", { textContent: car.plate_shown }), " ", proof(car));
    li.dataset.car = car.car_id;
    const st = car.sticker;
    if (st) {
      const label = { active: "cmActive", paused: "cmPaused", suspended: "cmSuspended" }[st.state] || "cmPaused";
      const state = el("span", { className: "pill " + ({ active: "ok", suspended: "warn" }[st.state] || ""), textContent: t(label) });
      state.dataset.state = st.state;
      if (st.state === "suspended") {
        // the operators' suspension: no resume, regenerate or remove here (the server refuses them too)
        li.append(el("div", {}, t("cmSticker") + " ", state), el("div", { className: "muted", textContent: t("cmSuspendedWhy") }));
        return li;
      }
      const pause = el("button", { type: "button", className: "ghost small", textContent: t(st.state === "active" ? "cmPause" : "cmResume") });
      pause.addEventListener("click", () => act(() => call(`${API}/cars/${car.car_id}/sticker`, { method: "PUT", body: { paused: st.state === "active" } })));
      const again = el("button", { type: "button", className: "ghost small", textContent: t("cmRegenerate") });
      again.addEventListener("click", () => act(async () => {
        await call(`${API}/cars/${car.car_id}/sticker/regenerate`, { method: "POST" });
        s.note = t("cmRegenerated");
      }));
      const line = el("div", {}, t("cmSticker") + " ", state, " ", pause, " ", again, " ", t("cmPrint") + ":");
      for (const kind of ["png", "svg", "pdf"]) {
        const b = el("button", { type: "button", className: "ghost small", textContent: kind.toUpperCase() });
        b.addEventListener("click", () => download(car, kind));
        line.append(" ", b);
      }
      li.append(line);
    }
    const remove = el("button", { type: "button", className: "ghost small", textContent: t("cmRemove") });
    remove.addEventListener("click", () => act(() => call(`${API}/cars/${car.car_id}`, { method: "DELETE" })));
    li.append(remove);
    return li;
  }

  function requestItem(r) {
    const state = el("span", { className: "pill " + (r.state === "waiting" ? "warn" : ""), textContent: t({ waiting: "cmWaiting", answered: "cmAnswered", expired: "cmExpired" }[r.state]) });
    state.dataset.state = r.state;
    const li = el("li", {}, el("b", { textContent: r.plate }), " ", state, " ", el("span", { className: "muted", textContent: when(r.created_at) }),
      el("div", { textContent: r.reason_text + (r.note ? ` — ${r.note}` : "") }));
    li.dataset.request = r.request_id;
    if (r.photo) {
      const see = el("button", { type: "button", className: "ghost small", textContent: t("cmPhoto") });
      see.addEventListener("click", async () => {
        try { see.replaceWith(el("img", { className: "carmove-photo", alt: "", src: await blob(`${API}/requests/${r.request_id}/photo`) })); } catch (e) { failed(e); }
      });
      li.append(see);
    }
    if (r.state === "answered") li.append(el("div", { className: "answer", textContent: r.answer_text + (r.answer_note ? ` (${r.answer_note})` : "") }));
    if (r.state === "waiting") {
      const pick = el("select", {}, ...ANSWERS.map(a => new Option(t("cm_" + a), a)));
      const note = el("input", { maxLength: 60, placeholder: t("cmNote") });
      const send = el("button", { type: "button", textContent: t("cmAnswer") });
      send.addEventListener("click", () => act(() => call(`${API}/requests/${r.request_id}/answer`, { method: "POST", body: { answer: pick.value, note: note.value } })));
      li.append(el("div", { className: "answer-form" }, pick, " ", note, " ", send));
    }
    return li;
  }

  function render() {
    $("carmove-cars").replaceChildren(...(s.cars.length ? s.cars.map(carItem) : [el("li", { className: "muted", textContent: t("cmNoCars") })]));
    $("carmove-requests").replaceChildren(...(s.requests.length ? s.requests.map(requestItem) : [el("li", { className: "muted", textContent: t("cmNoRequests") })]));
    $("carmove-note").textContent = s.note;
  }

  $("carmove-add").addEventListener("submit", event => {
    event.preventDefault();
    const plate = $("carmove-plate").value;
    act(async () => { await call(`${API}/cars`, { method: "POST", body: { plate } }); $("carmove-plate").value = ""; });
  });

  return {
    texts: T,
    start() { s = { on: true, cars: [], requests: [], note: "" }; refresh(); },
    refresh,
    applyLang() { if (s.on) { $("carmove-error").textContent = ""; render(); refresh(); } },
    stop() {
      s = { on: false, cars: [], requests: [], note: "" };
      $("carmove-cars").replaceChildren(); $("carmove-requests").replaceChildren();
      $("carmove-error").textContent = ""; $("carmove-note").textContent = "";
    },
  };
})();
