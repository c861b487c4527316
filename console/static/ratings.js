// The console's 好差评 page (/admin/ratings): statistics of a range of months grouped by unit (ranked),
// service, district or month, with their CSV; the cases of every unit (overdue ones on their own), each
// with its rating and steps, an appeal's decision and, for a department unit, verifying and answering on
// its behalf; the department units and a form to add one. Reads need a console session; changes the
// admin role and the CSRF token (console/_ratings_controller.py). What the server says (names, errors)
// comes in the page's language.
"use strict";
(() => {
  const T = {
    zh: {
      title: "好差评 · 盛事通", heading: "好差评 · 评价中心", console: "后台", dashboard: "运管中心", licencesLink: "电子证照",
      statsTitle: "评价统计", monthFrom: "起始月份", monthTo: "截止月份", groupBy: "分组", byUnit: "按单位（排名）",
      byService: "按服务事项", byDistrict: "按区县", byMonth: "按月份", show: "查询", csv: "下载 CSV",
      colRank: "排名", colName: "名称", colRatings: "评价数", colSatisfaction: "满意率", colBad: "差评",
      colAverage: "平均分", colCases: "工单", colFeedback: "反馈率", colRectified: "整改率", colOnTime: "按时率",
      colOverdue: "超期", colCallback: "回访满意率", noRows: "这段时间没有评价",
      casesTitle: "差评工单", state: "状态", allStates: "全部", unit: "单位", allUnits: "全部单位",
      overdueOnly: "只看超期未答复", service: "服务事项", opened: "收到", deadline: "期限", left: "剩余工作日",
      more: "加载更多", noCases: "没有符合条件的工单", overdue: "已超期", provisional: "（暂定）",
      st_open: "待核实", st_rectifying: "整改中", st_answered: "已答复", st_closed: "已办结", st_appealed: "申诉中", st_void: "已撤销",
      caseTitle: "工单", steps: "处理经过", level: "评价", comment: "评价内容", rater: "评价人（单位视角代号）",
      indicators: "分项", answerShown: "答复", callback: "回访", appealReason: "申诉理由", appealDecision: "裁定",
      appealTitle: "申诉裁定", note: "意见", uphold: "申诉成立（差评不计入统计）", reject: "驳回申诉",
      behalfTitle: "代部门处理", behalfHint: "部门单位没有自己的办件系统时，由运管人员代为核实和答复；答复会发送给评价人并邀请回访。",
      verifyNote: "核实情况（可选）", verify: "核实，开始整改", outcome: "答复类型", out_rectified: "已整改", out_explained: "解释说明",
      answerText: "答复内容", answer: "答复评价人", needText: "请填写答复内容",
      act_opened: "收到差评", act_verified: "已核实", act_answered: "已答复", act_called_back: "评价人回访",
      act_appealed: "单位申诉", act_upheld: "申诉成立", act_rejected: "申诉驳回", act_escalated: "超期督办", act_closed: "办结",
      why_mistaken: "误评", why_false: "不实评价", why_malicious: "恶意差评", why_not_our_service: "非本单位服务",
      dec_upheld: "申诉成立", dec_rejected: "申诉驳回",
      lv_very_satisfied: "非常满意", lv_satisfied: "满意", lv_basically_satisfied: "基本满意", lv_dissatisfied: "不满意", lv_very_dissatisfied: "非常不满意",
      unitsTitle: "部门单位", addUnit: "新增或更名部门单位", unitCode: "编码", nameZh: "中文名称", nameEn: "英文名称",
      district: "区县", cityWide: "全市", save: "保存", saved: "已保存：", done: "已完成：", noUnits: "暂无部门单位",
      unitHint: "编码为小写字母、数字和连字符；单位编号为 platform/编码。单位自己的办件系统凭证：shengshi units credential --unit platform/编码",
      badCode: "编码须为小写字母、数字和连字符（最长 32 位）", needNames: "请填写中文和英文名称", neterror: "网络不可用，请稍后再试",
    },
    en: {
      title: "Service ratings · Shengshitong", heading: "Service ratings (好差评)", console: "Console", dashboard: "Dashboard", licencesLink: "E-licences",
      statsTitle: "Statistics", monthFrom: "From month", monthTo: "To month", groupBy: "Group by", byUnit: "Unit (ranked)",
      byService: "Service", byDistrict: "District", byMonth: "Month", show: "Show", csv: "Download CSV",
      colRank: "Rank", colName: "Name", colRatings: "Ratings", colSatisfaction: "Satisfaction", colBad: "Bad",
      colAverage: "Average", colCases: "Cases", colFeedback: "Answered", colRectified: "Rectified", colOnTime: "On time",
      colOverdue: "Overdue", colCallback: "Call-back satisfaction", noRows: "No ratings in these months",
      casesTitle: "Cases of bad ratings", state: "State", allStates: "All", unit: "Unit", allUnits: "All units",
      overdueOnly: "Overdue with no answer only", service: "Service", opened: "Received", deadline: "Deadline",
      left: "Working days left", more: "Load more", noCases: "No cases match", overdue: "overdue", provisional: " (provisional)",
      st_open: "To verify", st_rectifying: "Rectifying", st_answered: "Answered", st_closed: "Closed", st_appealed: "Appealed", st_void: "Void",
      caseTitle: "Case", steps: "What happened", level: "Rating", comment: "Comment", rater: "Rater (the unit's handle)",
      indicators: "Indicators", answerShown: "Answer", callback: "Call-back", appealReason: "Appeal", appealDecision: "Decision",
      appealTitle: "Decide the appeal", note: "Note", uphold: "Uphold (the rating leaves the statistics)", reject: "Reject the appeal",
      behalfTitle: "Act for the department",
      behalfHint: "A department unit with no case system of its own is answered for here; the answer goes to the rater, who is asked to call back.",
      verifyNote: "What was found (optional)", verify: "Verify: rectifying now", outcome: "Answer", out_rectified: "Rectified",
      out_explained: "Explained", answerText: "Answer to the rater", answer: "Send the answer", needText: "Write the answer",
      act_opened: "Bad rating received", act_verified: "Verified", act_answered: "Answered", act_called_back: "Rater called back",
      act_appealed: "Unit appealed", act_upheld: "Appeal upheld", act_rejected: "Appeal rejected", act_escalated: "Overdue: escalated", act_closed: "Closed",
      why_mistaken: "Given by mistake", why_false: "Not true", why_malicious: "Malicious", why_not_our_service: "Not this unit's service",
      dec_upheld: "Upheld", dec_rejected: "Rejected",
      lv_very_satisfied: "Very satisfied", lv_satisfied: "Satisfied", lv_basically_satisfied: "Basically satisfied", lv_dissatisfied: "Dissatisfied", lv_very_dissatisfied: "Very dissatisfied",
      unitsTitle: "Department units", addUnit: "Add or rename a department unit", unitCode: "Code", nameZh: "Chinese name", nameEn: "English name",
      district: "District", cityWide: "City-wide", save: "Save", saved: "Saved: ", done: "Done: ", noUnits: "No department units yet",
      unitHint: "Lower-case letters, digits and hyphens; the unit is platform/<code>. A credential for its own case system: shengshi units credential --unit platform/<code>",
      badCode: "The code is lower-case letters, digits and hyphens (32 at most)", needNames: "Give the Chinese and the English name", neterror: "Network unavailable; try again shortly",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const csrf = () => (document.cookie.split("; ").find(c => c.startsWith("csrftoken=")) || "").slice(10);
  const pct = v => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
  const num = v => (v === null || v === undefined ? "–" : String(v));
  const when = iso => (iso ? new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso)) : "–");
  const text = (prefix, key) => (T.zh[prefix + key] ? t(prefix + key) : key);
  const PAGE = 20;

  async function call(path, opts = {}) {
    let res;
    try {
      res = await fetch(path, { credentials: "same-origin", ...opts, headers: { "X-CSRFToken": csrf(), ...SSLang.headers(), ...(opts.headers || {}) } });
    } catch (e) { throw Object.assign(new Error(t("neterror")), { status: 0 }); }
    const data = await res.json().catch(() => null);
    if (res.status === 401) { location.href = "/admin/"; throw new Error("sign in"); }
    if (!res.ok) throw Object.assign(new Error((data && data.detail) || res.statusText), { status: res.status, problem: data });
    return data;
  }
  const post = (path, body) => call(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

  const s = { admin: false, units: [], districts: [], stats: null, cases: [], next: null, detail: null };

  // ---- statistics --------------------------------------------------------------------------------------
  function statsQuery() {
    const q = new URLSearchParams({ by: $("by").value });
    if ($("month-from").value) q.set("month_from", $("month-from").value);
    if ($("month-to").value) q.set("month_to", $("month-to").value);
    return q.toString();
  }

  async function loadStats() {
    try {
      s.stats = await call(`/admin/ratings/stats?${statsQuery()}`);
      $("month-from").value = s.stats.month_from;
      $("month-to").value = s.stats.month_to;
      $("stats-error").textContent = "";
    } catch (e) { $("stats-error").textContent = e.message; }
    renderStats();
  }

  function renderStats() {
    $("csv").href = `/admin/ratings/stats.csv?${statsQuery()}`;
    const rows = (s.stats && s.stats.rows) || [];
    $("stats").tBodies[0].replaceChildren(...(rows.length ? rows.map(r => {
      const cells = [num(r.rank), r.name, num(r.ratings), pct(r.satisfaction_rate), num(r.bad), num(r.average), num(r.cases),
        pct(r.feedback_rate), pct(r.rectification_rate), pct(r.on_time_rate), num(r.overdue), pct(r.callback_satisfaction)];
      const tr = el("tr", {}, ...cells.map((c, i) => el("td", { className: i > 1 ? "num" : "", textContent: c })));
      tr.dataset.key = r.key;
      return tr;
    }) : [el("tr", {}, el("td", { colSpan: 12, className: "muted", textContent: t("noRows") }))]));
  }

  $("stats-form").addEventListener("submit", ev => { ev.preventDefault(); loadStats(); });
  $("by").addEventListener("change", loadStats);

  // ---- cases -----------------------------------------------------------------------------------------
  function casesQuery(offset) {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    if ($("case-state").value) q.set("state", $("case-state").value);
    if ($("case-unit").value) q.set("unit", $("case-unit").value);
    if ($("overdue").checked) q.set("overdue", "true");
    return q.toString();
  }

  async function loadCases(more = false) {
    try {
      const page = await call(more && s.next ? s.next : `/admin/ratings/cases?${casesQuery(0)}`);
      s.cases = more ? s.cases.concat(page.items) : page.items;
      s.next = page.next;
      $("cases-error").textContent = "";
    } catch (e) { $("cases-error").textContent = e.message; }
    renderCases();
  }

  function stateCell(c) {
    const cls = c.overdue ? "no" : c.state === "appealed" ? "warn" : ["closed", "answered", "void"].includes(c.state) ? "ok" : "";
    const cell = el("td", {}, el("span", { className: "pill " + cls, textContent: text("st_", c.state) }));
    if (c.overdue) cell.append(" ", el("span", { className: "pill no overdue", textContent: t("overdue") }));
    return cell;
  }

  function renderCases() {
    $("cases").tBodies[0].replaceChildren(...(s.cases.length ? s.cases.map(c => {
      const tr = el("tr", { className: "pick" + (s.detail && s.detail.id === c.id ? " picked" : ""), tabIndex: 0 },
        el("td", { textContent: c.unit_name }), el("td", { textContent: c.service_name }), stateCell(c),
        el("td", { textContent: when(c.opened_at) }),
        el("td", { textContent: when(c.deadline) + (c.deadline_exact ? "" : t("provisional")) }),
        el("td", { className: "num", textContent: num(c.working_days_left) }));
      tr.dataset.id = c.id;
      tr.dataset.state = c.state;
      tr.addEventListener("click", () => openCase(c.id));
      tr.addEventListener("keydown", ev => { if (ev.key === "Enter") openCase(c.id); });
      return tr;
    }) : [el("tr", {}, el("td", { colSpan: 6, className: "muted", textContent: t("noCases") }))]));
    $("cases-more").classList.toggle("hidden", !s.next);
  }

  $("cases-form").addEventListener("submit", ev => { ev.preventDefault(); loadCases(); });
  ["case-state", "case-unit", "overdue"].forEach(id => $(id).addEventListener("change", () => loadCases()));
  $("cases-more").addEventListener("click", () => loadCases(true));

  // ---- one case: its rating, its steps, what an admin may do --------------------------------------------
  async function openCase(id, said = "") {
    try {
      s.detail = await call(`/admin/ratings/cases/${encodeURIComponent(id)}`);
      $("detail-error").textContent = "";
    } catch (e) { $("detail-error").textContent = e.message; }
    $("detail-note").textContent = said;
    renderDetail();
    renderCases();
  }

  function renderDetail() {
    const c = s.detail;
    $("case-detail").classList.toggle("hidden", !c);
    if (!c) return;
    $("case-detail").dataset.id = c.id;
    $("case-detail").dataset.state = c.state;
    $("detail-id").textContent = c.id;
    const facts = [
      [t("unit"), `${c.unit_name} (${c.unit})`], [t("service"), c.service_name], [t("state"), text("st_", c.state)],
      [t("deadline"), when(c.deadline) + (c.deadline_exact ? "" : t("provisional")) + (c.overdue ? ` · ${t("overdue")}` : "")],
    ];
    const r = c.rating;
    if (r) {
      facts.push([t("level"), `${text("lv_", r.level)} · ${when(r.rated_at)}`]);
      const parts = Object.entries(r.indicators).filter(([k]) => k !== "overall").map(([k, v]) => `${k}: ${text("lv_", v)}`);
      if (parts.length) facts.push([t("indicators"), parts.join(" · ")]);
      if (r.comment) facts.push([t("comment"), r.comment]);
      if (r.rater) facts.push([t("rater"), r.rater]);
    }
    if (c.answer) facts.push([t("answerShown"), `${text("out_", c.outcome)} · ${c.answer}`]);
    if (c.callback) facts.push([t("callback"), `${text("lv_", c.callback)}${c.callback_comment ? " · " + c.callback_comment : ""}`]);
    if (c.appeal_reason) facts.push([t("appealReason"), text("why_", c.appeal_reason)]);
    if (c.appeal_decision) facts.push([t("appealDecision"), text("dec_", c.appeal_decision)]);
    $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: v })]));
    $("detail-steps").replaceChildren(...(c.steps || []).map(step => el("li", {},
      el("b", { textContent: text("act_", step.action) }), ` · ${when(step.at)}`,
      step.actor_kind && step.actor_kind !== "citizen" ? el("span", { className: "muted", textContent: ` · ${step.actor_kind}${step.actor_id ? ": " + step.actor_id : ""}` }) : "",
      step.note ? el("div", { className: "muted step-note", textContent: step.note }) : "")));
    $("appeal-form").classList.toggle("hidden", !(s.admin && c.state === "appealed"));
    const department = c.unit.startsWith("platform/");
    $("behalf").classList.toggle("hidden", !(s.admin && department && ["open", "rectifying"].includes(c.state)));
    $("verify-form").classList.toggle("hidden", c.state !== "open");
  }

  async function act(path, body, button) {
    const c = s.detail;
    if (!c) return;
    button.disabled = true;
    $("detail-error").textContent = $("detail-note").textContent = "";
    try {
      const after = await post(`/admin/ratings/cases/${encodeURIComponent(c.id)}/${path}`, body);
      await openCase(c.id, t("done") + text("st_", after.state));
      await Promise.all([loadCases(), loadStats()]);
    } catch (e) { $("detail-error").textContent = e.message; } finally { button.disabled = false; }
  }

  $("uphold").addEventListener("click", () => act("appeal-decision", { uphold: true, note: $("appeal-note").value.trim() }, $("uphold")));
  $("reject").addEventListener("click", () => act("appeal-decision", { uphold: false, note: $("appeal-note").value.trim() }, $("reject")));
  $("verify-form").addEventListener("submit", ev => { ev.preventDefault(); act("verify", { note: $("verify-note").value.trim() }, $("verify")); });
  $("answer-form").addEventListener("submit", ev => {
    ev.preventDefault();
    const answer = $("answer-text").value.trim();
    if (!answer) { $("detail-error").textContent = t("needText"); return; }
    act("answer", { outcome: $("answer-outcome").value, text: answer }, $("answer"));
  });

  // ---- units -------------------------------------------------------------------------------------------
  async function loadUnits() {
    try {
      s.units = await call("/admin/ratings/units");
      $("units-error").textContent = "";
    } catch (e) { $("units-error").textContent = e.message; }
    renderUnits();
  }

  const districtName = code => {
    const d = s.districts.find(x => x.code === code);
    return d ? SSLang.pick(d.name_zh, d.name_en) : code ? code : t("cityWide");
  };

  function renderUnits() {
    const chosen = $("case-unit").value;
    $("case-unit").replaceChildren(el("option", { value: "", textContent: t("allUnits") }),
      ...s.units.map(u => el("option", { value: u.unit_id, textContent: SSLang.pick(u.name_zh, u.name_en), selected: u.unit_id === chosen })));
    const departments = s.units.filter(u => u.owner === "platform");
    $("units").replaceChildren(...(departments.length ? departments.map(u => {
      const li = el("li", {}, el("span", {}, el("b", { textContent: SSLang.pick(u.name_zh, u.name_en) }), " ",
        el("span", { className: "muted mono", textContent: u.unit_id })), el("span", { className: "muted", textContent: districtName(u.district) }));
      li.dataset.unit = u.unit_id;
      return li;
    }) : [el("li", { className: "muted", textContent: t("noUnits") })]));
    const picked = $("unit-district").value;
    $("unit-district").replaceChildren(el("option", { value: "", textContent: t("cityWide") }),
      ...s.districts.map(d => el("option", { value: d.code, textContent: SSLang.pick(d.name_zh, d.name_en), selected: d.code === picked })));
  }

  $("unit-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    $("units-error").textContent = $("units-note").textContent = "";
    const body = {
      code: $("unit-code").value.trim(), name_zh: $("unit-name-zh").value.trim(),
      name_en: $("unit-name-en").value.trim(), district: $("unit-district").value,
    };
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(body.code)) { $("units-error").textContent = t("badCode"); return; }
    if (!body.name_zh || !body.name_en) { $("units-error").textContent = t("needNames"); return; }
    $("unit-add").disabled = true;
    try {
      const unit = await post("/admin/ratings/units", body);
      $("units-note").textContent = t("saved") + unit.unit_id;
      ["unit-code", "unit-name-zh", "unit-name-en"].forEach(id => { $(id).value = ""; });
      await loadUnits();
    } catch (e) { $("units-error").textContent = e.message; } finally { $("unit-add").disabled = false; }
  });

  // ---- the page ----------------------------------------------------------------------------------------
  function applyLang() {
    SSLang.apply(T);
    ["stats-error", "cases-error", "detail-error", "detail-note", "units-error", "units-note"].forEach(id => { $(id).textContent = ""; });
    renderUnits();
    // names and the server's words come in the request's language: asked again
    loadStats(); loadCases();
    if (s.detail) openCase(s.detail.id);
  }

  async function start() {
    SSLang.apply(T);
    const [texts, districts] = await Promise.all([
      call("/admin/console/texts").catch(() => null), call("/api/v1/districts").catch(() => []),
    ]);
    s.admin = !!texts && texts.role === "admin";
    s.districts = districts || [];
    $("unit-form").classList.toggle("hidden", !s.admin);
    document.body.dataset.role = texts ? texts.role || "" : "";
    await Promise.all([loadUnits(), loadStats(), loadCases()]);
    document.body.dataset.ready = "yes";  // the browser test waits for it
  }

  $("lang").addEventListener("click", () => SSLang.toggle());
  SSLang.onChange(applyLang);
  start();
})();
