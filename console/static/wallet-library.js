// The web wallet's library card (一码借阅, docs/miniapps.md "一码借阅 libraries"), the card /wallet#library
// opens (the due-date reminder's and the hold notice's link): the citizen's loans with their due dates,
// fines and a renew button, their holds (a ready one with how long it is kept, a cancel button), and their
// standing at each library (信用免押: good standing borrows with no deposit; unpaid fines with a pay
// button). In the page's language (lang.js); names come from the server in it. wallet.js starts it, stops
// it, and refreshes it when a message arrives on the wallet's stream.
"use strict";
const SSLibrary = (() => {
  const T = {
    zh: {
      libTitle: "一码借阅", libLoans: "我的借阅", libHolds: "我的预约", libStanding: "借阅信用",
      libNoLoans: "暂无借阅", libNoHolds: "暂无预约", libDue: "{when} 到期", libReturned: "已于 {when} 归还",
      libOverdue: "已逾期", libRenew: "续借", libRenewed: "已续借，{when} 到期", libRenewals: "已续借 {n}/{max} 次",
      libFine: "罚款 {amount}", libFinePaid: "已缴", libFineUnpaid: "未缴", libPayFines: "缴清罚款",
      libGood: "信用良好 · 免押金借阅", libNotGood: "有未缴罚款 · 借阅需缴清罚款或押金", libBlocked: "借阅已暂停",
      libDeposit: "押金 {amount}（{state}）", dep_pending: "待支付", dep_paid: "已缴纳", dep_refunded: "已退还",
      hold_waiting: "排队中", hold_ready: "已到馆，保留至 {when}", hold_collected: "已借出", hold_cancelled: "已取消",
      hold_expired: "已过期", libCancel: "取消预约", libPaid: "罚款已缴清", neterror: "网络不可用，请稍后再试",
    },
    en: {
      libTitle: "Library", libLoans: "My loans", libHolds: "My holds", libStanding: "Standing",
      libNoLoans: "No loans", libNoHolds: "No holds", libDue: "Due {when}", libReturned: "Returned {when}",
      libOverdue: "Overdue", libRenew: "Renew", libRenewed: "Renewed: due {when}", libRenewals: "Renewed {n} of {max}",
      libFine: "Fine {amount}", libFinePaid: "paid", libFineUnpaid: "unpaid", libPayFines: "Pay fines",
      libGood: "Good standing: borrow with no deposit", libNotGood: "Unpaid fines: pay them or a deposit to borrow",
      libBlocked: "Borrowing suspended", libDeposit: "Deposit {amount} ({state})", dep_pending: "to pay",
      dep_paid: "paid", dep_refunded: "refunded", hold_waiting: "Waiting", hold_ready: "Ready: kept until {when}",
      hold_collected: "Collected", hold_cancelled: "Cancelled", hold_expired: "Expired", libCancel: "Cancel hold",
      libPaid: "Fines paid", neterror: "Network unavailable; try again shortly",
    },
  };
  const API = "/api/v1/apps/library";
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const tf = (key, args) => t(key).replace(/\{(\w+)\}/g, (_, name) => args[name]);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const yuan = fen => `¥${Math.floor(fen / 100)}.${String(fen % 100).padStart(2, "0")}`;
  const call = (...args) => SSCitizen.call(...args);
  const day = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit",
  }).format(new Date(iso));
  const blank = () => ({ on: false, loans: [], holds: [], standing: [], note: "", scrolled: false });
  let s = blank();

  function failed(e) {
    if (e.status === 401) { SSCitizen.end(); return; }
    $("library-error").textContent = e.status ? e.message : t("neterror");
  }

  async function refresh() {
    if (!s.on) return;
    const on = s;
    try {
      const [loans, holds, libs] = await Promise.all([
        call(`${API}/loans?limit=50`), call(`${API}/holds?limit=50`), call(`${API}/libraries?limit=50`),
      ]);
      // the standing only where the citizen has borrowed or holds something
      const used = new Set([...loans.items.map(l => l.library), ...holds.items.map(h => h.library)]);
      const standing = await Promise.all(libs.items.filter(l => used.has(l.code)).map(async l => ({
        name: l.name, ...(await call(`${API}/standing?library=${encodeURIComponent(l.code)}`)),
      })));
      if (on !== s) return;
      Object.assign(s, { loans: loans.items, holds: holds.items, standing });
      $("library-error").textContent = "";
      render();
      if (!s.scrolled && location.hash === "#library") { s.scrolled = true; $("library").scrollIntoView(); }
    } catch (e) { failed(e); }
  }

  async function act(path, opts, note) {
    try {
      const out = await call(path, opts);
      s.note = note ? note(out) : "";
      await refresh();
    } catch (e) { failed(e); }
  }

  function render() {
    $("library-note").textContent = s.note;
    $("library-standing").replaceChildren(...s.standing.map(st => el("li", {},
      el("span", {}, el("strong", { textContent: st.name }), " ",
        el("span", {
          className: "pill " + (st.blocked ? "no" : st.good_standing ? "ok" : "warn"),
          textContent: t(st.blocked ? "libBlocked" : st.good_standing ? "libGood" : "libNotGood"),
        }),
        st.deposit.state !== "none"
          ? el("span", { className: "muted", textContent: " " + tf("libDeposit", { amount: yuan(st.deposit.amount), state: t("dep_" + st.deposit.state) }) })
          : ""),
      st.unpaid_fines > 0
        ? el("button", { type: "button", className: "small", textContent: `${t("libPayFines")} ${yuan(st.unpaid_fines)}`,
          onclick: () => act(`${API}/fines/pay`, { method: "POST" }, () => t("libPaid")) })
        : "")));
    $("library-loans").replaceChildren(...(s.loans.length ? s.loans.map(l => {
      const open = !l.returned_at;
      const info = [el("strong", { textContent: l.title }), " ", el("span", { className: "muted", textContent: l.library_name })];
      info.push(el("br"), el("span", { className: "muted", textContent: open ? tf("libDue", { when: day(l.due_at) }) : tf("libReturned", { when: day(l.returned_at) }) }));
      if (open && l.overdue) info.push(" ", el("span", { className: "pill no", textContent: t("libOverdue") }));
      if (l.renewals) info.push(" ", el("span", { className: "muted", textContent: tf("libRenewals", { n: l.renewals, max: l.max_renewals }) }));
      if (l.fine) info.push(" ", el("span", { className: "pill " + (l.fine_paid ? "ok" : "warn"), textContent: `${tf("libFine", { amount: yuan(l.fine) })} · ${t(l.fine_paid ? "libFinePaid" : "libFineUnpaid")}` }));
      const renew = open && !l.overdue && l.renewals < l.max_renewals
        ? el("button", { type: "button", className: "small", textContent: t("libRenew"),
          onclick: () => act(`${API}/loans/${encodeURIComponent(l.loan_id)}/renew`, { method: "POST" }, out => tf("libRenewed", { when: day(out.due_at) })) })
        : "";
      return el("li", {}, el("span", {}, ...info), renew);
    }) : [el("li", { className: "muted", textContent: t("libNoLoans") })]));
    $("library-holds").replaceChildren(...(s.holds.length ? s.holds.map(h => {
      const live = h.state === "waiting" || h.state === "ready";
      const state = h.state === "ready" ? tf("hold_ready", { when: day(h.ready_until) }) : t("hold_" + h.state);
      return el("li", {},
        el("span", {}, el("strong", { textContent: h.title }), " ", el("span", { className: "pill" + (h.state === "ready" ? " ok" : ""), textContent: state })),
        live ? el("button", { type: "button", className: "ghost small", textContent: t("libCancel"),
          onclick: () => act(`${API}/holds/${encodeURIComponent(h.hold_id)}`, { method: "DELETE" }) }) : "");
    }) : [el("li", { className: "muted", textContent: t("libNoHolds") })]));
  }

  return {
    texts: T,
    start() { s = blank(); s.on = true; refresh(); },
    refresh,
    applyLang() { if (s.on) { s.note = ""; render(); refresh(); } },
    stop() {
      s = blank();
      for (const id of ["library-loans", "library-holds", "library-standing"]) $(id).replaceChildren();
      $("library-error").textContent = ""; $("library-note").textContent = "";
    },
  };
})();
