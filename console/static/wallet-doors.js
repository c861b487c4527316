// The web wallet's door passes (扫码门禁, docs/miniapps.md "扫码门禁 doors"), the card /wallet#doors: the
// places the citizen lives or works in (and the doors each opens), the visitor passes they hold, and those
// they issued (with each one's entries left, and a button to cancel it at once). In the page's language
// (lang.js); place and door names come from the server in it (fetched again when the language changes).
// wallet.js starts it, stops it, and refreshes it when a message arrives (an invitation is one).
"use strict";
const SSDoors = (() => {
  const T = {
    zh: {
      doorsTitle: "门禁通行", doorsHomes: "我的住所", doorsHeld: "我收到的访客通行证", doorsIssued: "我发出的访客通行证",
      doorsNoHomes: "暂无登记的住所", doorsNoHeld: "暂无访客通行证", doorsNoIssued: "暂未邀请访客",
      doorsOpens: "可通行：{doors}", doorsLeft: "剩余 {left}/{entries} 次", doorsWindow: "{from} 至 {to}",
      doorsVisitor: "访客 {who}", doorsCancel: "取消通行证", doorsHint: "到门口出示市民码即可开门；门禁断网时住户照常通行。",
      rs_active: "已生效", rs_pending: "待物业审核", rs_refused: "未通过", rs_removed: "已移除",
      ps_active: "可用", ps_upcoming: "未开始", ps_used_up: "次数已用完", ps_expired: "已过期", ps_cancelled: "已取消",
      neterror: "网络不可用，请稍后再试",
    },
    en: {
      doorsTitle: "Door access", doorsHomes: "Where I live", doorsHeld: "Visitor passes I hold", doorsIssued: "Visitor passes I issued",
      doorsNoHomes: "No residence registered", doorsNoHeld: "No visitor passes", doorsNoIssued: "No visitors invited",
      doorsOpens: "Opens: {doors}", doorsLeft: "{left} of {entries} entries left", doorsWindow: "{from} to {to}",
      doorsVisitor: "Visitor {who}", doorsCancel: "Cancel pass", doorsHint: "Show your citizen code at the door; residents pass even when the door is offline.",
      rs_active: "Active", rs_pending: "Awaiting the manager", rs_refused: "Refused", rs_removed: "Removed",
      ps_active: "Valid", ps_upcoming: "Not started", ps_used_up: "Used up", ps_expired: "Expired", ps_cancelled: "Cancelled",
      neterror: "Network unavailable; try again shortly",
    },
  };
  const APP = "/api/v1/apps/doors";
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const tf = (key, args) => t(key).replace(/\{(\w+)\}/g, (_, name) => args[name]);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const when = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
  const blank = () => ({ on: false, homes: [], held: [], issued: [] });
  let s = blank();

  function failed(e) {
    if (e.status === 401) { SSCitizen.end(); return; }
    $("doors-error").textContent = e.status ? e.message : t("neterror");
  }

  async function refresh() {
    if (!s.on) return;
    const on = s, lang = SSLang.get();
    try {
      const [homes, held, issued] = await Promise.all([
        SSCitizen.call(`${APP}/residences?limit=20`),
        SSCitizen.call(`${APP}/passes?role=held&limit=20`),
        SSCitizen.call(`${APP}/passes?role=issued&limit=20`),
      ]);
      if (on !== s || lang !== SSLang.get()) return;  // signed out, or asked again in the other language
      Object.assign(s, { homes: homes.items, held: held.items, issued: issued.items });
      $("doors-error").textContent = "";
      render();
    } catch (e) { failed(e); }
  }

  const pill = (kind, state, ok) => {
    const p = el("span", { className: "pill " + (ok ? "ok" : ""), textContent: t(kind + state) });
    p.dataset.state = state;
    return p;
  };

  function passItem(p, issued) {
    const li = el("li", {}, el("b", { textContent: p.place.name }), " ", pill("ps_", p.state, p.state === "active"));
    li.dataset.pass = p.id;
    li.append(el("div", { className: "muted", textContent: p.doors.map(d => d.name || d.code).join("、") }));
    li.append(el("div", { className: "muted", textContent: tf("doorsWindow", { from: when(p.starts_at), to: when(p.ends_at) }) }));
    li.append(el("div", { className: "pass-left", textContent: tf("doorsLeft", { left: p.left, entries: p.entries }) }));
    if (issued) {
      li.append(el("div", { className: "muted", textContent: tf("doorsVisitor", { who: p.visitor }) }));
      if (["active", "upcoming"].includes(p.state)) {
        const cancel = el("button", { type: "button", className: "ghost small pass-cancel", textContent: t("doorsCancel") });
        cancel.addEventListener("click", async () => {
          cancel.disabled = true;
          try { await SSCitizen.call(`${APP}/passes/${encodeURIComponent(p.id)}`, { method: "DELETE" }); await refresh(); }
          catch (e) { cancel.disabled = false; failed(e); }
        });
        li.append(el("p", {}, cancel));
      }
    }
    return li;
  }

  function render() {
    const list = (id, items, empty, build) =>
      $(id).replaceChildren(...(items.length ? items.map(build) : [el("li", { className: "muted", textContent: t(empty) })]));
    list("door-homes", s.homes, "doorsNoHomes", r => {
      const name = r.place.name + (r.building ? " · " + r.building.name : "");
      const li = el("li", {}, el("b", { textContent: name }), " ", pill("rs_", r.state, r.state === "active"));
      li.dataset.residence = r.id;
      if (r.doors.length) li.append(el("div", { className: "muted", textContent: tf("doorsOpens", { doors: r.doors.map(d => d.name).join("、") }) }));
      return li;
    });
    list("door-passes-held", s.held, "doorsNoHeld", p => passItem(p, false));
    list("door-passes-issued", s.issued, "doorsNoIssued", p => passItem(p, true));
  }

  return {
    texts: T,
    start() { s = blank(); s.on = true; refresh(); },
    refresh,
    applyLang() { if (!s.on) return; $("doors-error").textContent = ""; render(); refresh(); },
    stop() {
      s = blank();
      for (const id of ["door-homes", "door-passes-held", "door-passes-issued"]) $(id).replaceChildren();
      $("doors-error").textContent = "";
    },
  };
})();
