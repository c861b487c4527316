// The web wallet's ratings (好差评, docs/web.md "The wallet's ratings"), the card /wallet#ratings opens
// (the invitation's and the unit's answer's link): the services the citizen had and may still rate, each
// with its form (the five national levels, the service's own indicators as the server lists them, a
// comment), and "my ratings" — a bad rating's case as it stands, the unit's answer and the call-back form.
// In the page's language (lang.js); service, unit and indicator names come from the server in it (the
// lists are fetched again when the language changes). wallet.js starts it, stops it, and refreshes it
// when a message arrives on the wallet's stream (a unit's answer is one).
"use strict";
const SSRatings = (() => {
  const T = {
    zh: {
      ratingsTitle: "服务评价", toRate: "待评价", myRatings: "我的评价", noPending: "暂无待评价的服务", noRatings: "暂无评价",
      rate: "评价", rateTitle: "您对本次服务满意吗？", ratebefore: "{closes} 前可评价", indicatorsHint: "分项评价（可选）",
      notRated: "不评", comment: "意见建议（可选）", submitRating: "提交评价", cancel: "取消", pickLevel: "请选择满意程度",
      thanks: "感谢您的评价", caseOpened: "已转交{unit}核实整改，处理结果会通知您",
      lv_very_satisfied: "非常满意", lv_satisfied: "满意", lv_basically_satisfied: "基本满意", lv_dissatisfied: "不满意", lv_very_dissatisfied: "非常不满意",
      cs_open: "待核实", cs_rectifying: "整改中", cs_answered: "已答复，待回访", cs_closed: "已办结", cs_appealed: "单位申诉中", cs_void: "已撤销",
      answerBy: "{when} 前答复", unitAnswer: "单位答复（{outcome}）", out_rectified: "已整改", out_explained: "解释说明",
      callbackTitle: "您对处理结果满意吗？", submitCallback: "提交回访", yourCallback: "您的回访：{level}",
      notCounted: "经核实，该评价不计入统计", more: "加载更多", neterror: "网络不可用，请稍后再试",
    },
    en: {
      ratingsTitle: "Rate our services", toRate: "To rate", myRatings: "My ratings", noPending: "Nothing to rate",
      noRatings: "No ratings yet", rate: "Rate", rateTitle: "How satisfied were you?", ratebefore: "Rate it by {closes}",
      indicatorsHint: "Each aspect (optional)", notRated: "Skip", comment: "Comments (optional)", submitRating: "Send rating",
      cancel: "Cancel", pickLevel: "Choose how satisfied you were", thanks: "Thank you for your rating",
      caseOpened: "Passed to {unit} to look into; you will hear what they did",
      lv_very_satisfied: "Very satisfied", lv_satisfied: "Satisfied", lv_basically_satisfied: "Basically satisfied",
      lv_dissatisfied: "Dissatisfied", lv_very_dissatisfied: "Very dissatisfied",
      cs_open: "To be looked into", cs_rectifying: "Being put right", cs_answered: "Answered: your view?", cs_closed: "Closed",
      cs_appealed: "Contested by the unit", cs_void: "Withdrawn",
      answerBy: "Answer due by {when}", unitAnswer: "The unit's answer ({outcome})", out_rectified: "Put right", out_explained: "Explained",
      callbackTitle: "Are you satisfied with how it was handled?", submitCallback: "Send", yourCallback: "Your view: {level}",
      notCounted: "Found not to count in the statistics", more: "Load more", neterror: "Network unavailable; try again shortly",
    },
  };
  const LEVELS = ["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"];
  const BAD = ["dissatisfied", "very_dissatisfied"];
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const tf = (key, args) => t(key).replace(/\{(\w+)\}/g, (_, name) => args[name]);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const call = (...args) => SSCitizen.call(...args);
  const when = iso => new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
  const PAGE = 20;

  // lang: the language the server wrote the shown names in; open: the event whose form is open; forms:
  // the forms shown, kept across refreshes (a message arriving must not wipe what the citizen is typing)
  // changes: ratings and call-backs this page sent (lists fetched before one of them are stale)
  const blank = () => ({ on: false, lang: null, pending: [], mine: [], next: null, open: null, notes: {}, forms: {}, scrolled: false, changes: 0 });
  const kept = (key, build) => (s.forms[key] = s.forms[key] || build());
  let s = blank();

  function failed(e) {
    if (e.status === 401) { SSCitizen.end(); return; }
    $("ratings-error").textContent = e.status ? e.message : t("neterror");
  }

  async function refresh() {
    if (!s.on) return;
    const on = s, lang = SSLang.get(), changes = s.changes;
    try {
      const limit = Math.min(100, Math.max(PAGE, s.mine.length));
      const [pending, mine] = await Promise.all([
        call("/api/v1/me/ratings/pending?limit=50"), call(`/api/v1/me/ratings?limit=${limit}`),
      ]);
      if (on !== s || lang !== SSLang.get()) return;  // signed out, or asked again in the other language
      if (changes !== s.changes) return;  // rated or called back meanwhile: the refresh after it follows
      Object.assign(s, { lang, pending: pending.items, mine: mine.items, next: mine.next });
      $("ratings-error").textContent = "";
      render();
      if (!s.scrolled && location.hash === "#ratings") { s.scrolled = true; $("ratings").scrollIntoView(); }
    } catch (e) { failed(e); }
  }

  async function more() {
    if (!s.next || s.lang !== SSLang.get()) return;
    try {
      const page = await call(s.next);
      const seen = new Set(s.mine.map(r => r.id));
      s.mine.push(...page.items.filter(r => !seen.has(r.id)));
      s.next = page.next;
      render();
    } catch (e) { failed(e); }
  }

  // five levels as radio buttons, the worst last (as the national scale reads)
  function levels(name, required) {
    return el("div", { className: "levels", role: "radiogroup" }, ...LEVELS.map(level => {
      const input = el("input", { type: "radio", name, value: level, required });
      return el("label", {}, input, t("lv_" + level));
    }));
  }

  function rateForm(event) {
    const form = el("form", { className: "rate-form", noValidate: true });
    form.append(el("p", { className: "muted", textContent: t("rateTitle") }), levels(`level-${event.id}`, true));
    const aspects = event.indicators.filter(i => i.name !== "overall");
    if (aspects.length) {
      form.append(el("p", { className: "muted", textContent: t("indicatorsHint") }));
      for (const aspect of aspects) {
        const select = el("select", {}, el("option", { value: "", textContent: t("notRated") }),
          ...LEVELS.map(level => el("option", { value: level, textContent: t("lv_" + level) })));
        select.dataset.indicator = aspect.name;
        select.setAttribute("aria-label", aspect.label);
        form.append(el("label", { className: "indicator" }, el("span", { textContent: aspect.label }), select));
      }
    }
    const comment = el("textarea", { className: "comment", rows: 2, maxLength: 500, placeholder: t("comment") });
    comment.setAttribute("aria-label", t("comment"));
    const error = el("p", { className: "error", role: "alert" });
    const send = el("button", { type: "submit", className: "rate-submit", textContent: t("submitRating") });
    const cancel = el("button", { type: "button", className: "ghost", textContent: t("cancel") });
    cancel.addEventListener("click", () => { s.open = null; delete s.forms["rate:" + event.id]; render(); });
    form.append(comment, el("p", {}, send, " ", cancel), error);
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const picked = form.querySelector(`input[name="level-${event.id}"]:checked`);
      if (!picked) { error.textContent = t("pickLevel"); return; }
      const indicators = {};
      form.querySelectorAll("select[data-indicator]").forEach(sel => { if (sel.value) indicators[sel.dataset.indicator] = sel.value; });
      send.disabled = true;
      try {
        const rating = await call("/api/v1/me/ratings", {
          method: "POST", body: { event_id: event.id, level: picked.value, indicators, comment: comment.value.trim() },
        });
        s.open = null;
        s.changes += 1;
        delete s.forms["rate:" + event.id];
        s.notes[rating.id] = rating.case ? "caseOpened" : "thanks";
        await refresh();
      } catch (e) {
        if (e.status === 401) { SSCitizen.end(); return; }
        error.textContent = e.status ? e.message : t("neterror");
        send.disabled = false;
        if (e.status === 409 || e.status === 410) refresh();  // rated already, or its time has passed
      }
    });
    return form;
  }

  function callbackForm(rating) {
    const form = el("form", { className: "callback-form", noValidate: true });
    const comment = el("textarea", { className: "comment", rows: 2, maxLength: 500, placeholder: t("comment") });
    comment.setAttribute("aria-label", t("comment"));
    const error = el("p", { className: "error", role: "alert" });
    const send = el("button", { type: "submit", className: "callback-submit", textContent: t("submitCallback") });
    form.append(el("p", { className: "muted", textContent: t("callbackTitle") }), levels(`callback-${rating.id}`, true), comment, el("p", {}, send), error);
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const picked = form.querySelector(`input[name="callback-${rating.id}"]:checked`);
      if (!picked) { error.textContent = t("pickLevel"); return; }
      send.disabled = true;
      try {
        await call(`/api/v1/me/ratings/${encodeURIComponent(rating.id)}/callback`, {
          method: "POST", body: { level: picked.value, comment: comment.value.trim() },
        });
        s.changes += 1;
        await refresh();
      } catch (e) {
        if (e.status === 401) { SSCitizen.end(); return; }
        error.textContent = e.status ? e.message : t("neterror");
        send.disabled = false;
        if (e.status === 409) refresh();  // called back already, or closed meanwhile
      }
    });
    return form;
  }

  function render() {
    if (!s.on) return;
    if (s.lang && s.lang !== SSLang.get()) {  // names in the other language: wait for this one's
      $("pending-ratings").replaceChildren(el("li", { className: "muted", textContent: "…" }));
      $("my-ratings").replaceChildren();
      return;
    }
    $("pending-ratings").replaceChildren(...(s.pending.length ? s.pending.map(event => {
      const head = el("div", { className: "card-head" },
        el("span", {}, el("b", { textContent: event.service_name }), " · ", event.unit_name));
      const li = el("li", {}, head, el("span", { className: "muted", textContent: tf("ratebefore", { closes: when(event.closes_at) }) }));
      li.dataset.event = event.id;
      if (s.open === event.id) li.append(kept("rate:" + event.id, () => rateForm(event)));
      else {
        const open = el("button", { type: "button", className: "small rate-open", textContent: t("rate") });
        open.addEventListener("click", () => { s.open = event.id; render(); });
        head.append(open);
      }
      return li;
    }) : [el("li", { className: "muted", textContent: t("noPending") })]));

    $("my-ratings").replaceChildren(...(s.mine.length ? s.mine.map(rating => {
      const bad = BAD.includes(rating.level);
      const li = el("li", {},
        el("div", { className: "card-head" },
          el("span", {}, el("b", { textContent: rating.service_name }), " · ", rating.unit_name),
          el("span", { className: "pill level " + (bad ? "no" : "ok"), textContent: t("lv_" + rating.level) })),
        el("span", { className: "muted", textContent: when(rating.created_at) }));
      li.dataset.rating = rating.id;
      if (rating.comment) li.append(el("div", { className: "rating-comment", textContent: rating.comment }));
      const note = s.notes[rating.id];  // what was just sent, until the unit has moved the case on
      if (note && (!rating.case || rating.case.state === "open")) li.append(el("div", { className: "note-line rating-note", textContent: tf(note, { unit: rating.unit_name }) }));
      if (!rating.counted) li.append(el("div", { className: "muted", textContent: t("notCounted") }));
      const c = rating.case;
      if (c) {
        const state = el("span", { className: "pill case-state " + (c.state === "closed" ? "ok" : c.state === "answered" ? "warn" : ""), textContent: t("cs_" + c.state) });
        state.dataset.state = c.state;
        const line = el("div", {}, state);
        if (["open", "rectifying"].includes(c.state)) line.append(" ", el("span", { className: "muted", textContent: tf("answerBy", { when: when(c.deadline) }) }));
        li.append(line);
        if (c.answer) {
          li.append(el("div", { className: "answer" },
            el("b", { textContent: tf("unitAnswer", { outcome: t("out_" + c.outcome) }) }), el("br"), el("span", { className: "answer-text", textContent: c.answer })));
        }
        if (c.callback) li.append(el("div", { className: "muted callback-given", textContent: tf("yourCallback", { level: t("lv_" + c.callback) }) }));
        else if (c.state === "answered") li.append(kept("callback:" + rating.id, () => callbackForm(rating)));
      }
      return li;
    }) : [el("li", { className: "muted", textContent: t("noRatings") })]));
    $("ratings-more").classList.toggle("hidden", !s.next);
  }

  $("ratings-more").addEventListener("click", more);

  return {
    texts: T,
    start() { s = blank(); s.on = true; refresh(); },
    refresh,
    applyLang() {
      if (!s.on) return;
      $("ratings-error").textContent = "";  // said in the other language
      s.forms = {};  // their labels are in the other language
      render();
      refresh();  // the server writes the names in the request's language
    },
    stop() {
      s = blank();
      $("pending-ratings").replaceChildren(); $("my-ratings").replaceChildren();
      $("ratings-error").textContent = "";
    },
  };
})();
