// The console's 电子证照 page (/admin/licences): the register of the departments that issue e-licences
// (code, names, department, the licence types each may issue, its credential's client id, its state) with
// each one's published signing keys (which signs, which waits for the inspectors' trust lists, which only
// verifies what it signed); an admin registers an issuer (its key and credential are made, the secret is
// shown here once), rotates an issuer's key and revokes an issuer (two clicks). Reads need a console
// session; changes the admin role and the CSRF token (console/_licences_controller.py). What the server
// says (errors) comes in the page's language.
"use strict";
(() => {
  const T = {
    zh: {
      title: "电子证照 · 盛事通", heading: "电子证照 · 发证机关", console: "后台", dashboard: "运管中心", ratingsLink: "好差评",
      issuersTitle: "发证机关",
      issuersHint: "发证机关以自己的密钥签发电子证照；在用的机关及其公钥列入由平台根密钥签名的信任列表，检查设备据此离线核验亮证。",
      colCode: "编码", colName: "名称", colDepartment: "部门", colTypes: "可签发证照", colClient: "客户端编号", colStatus: "状态",
      colKeys: "签名密钥", colCreated: "登记时间", colActions: "操作", noIssuers: "暂无发证机关",
      st_active: "在用", st_revoked: "已吊销", key_signing: "签发中", key_waiting: "{when} 起签发", key_retired: "仅核验，公布至 {when}",
      rotate: "更换密钥", revoke: "吊销", confirmRevoke: "确认吊销？", rotated: "已为 {code} 生成新密钥 {kid}，{when} 起签发（检查设备届时均已取得）",
      revoked: "已吊销 {code}：已移出信任列表，其凭证停止使用",
      registerTitle: "登记发证机关", code: "编码", nameZh: "中文名称", nameEn: "英文名称", department: "部门", types: "可签发的证照类型",
      register: "登记", registerHint: "编码为小写字母开头的小写字母、数字和连字符；登记后生成该机关的签名密钥和调用凭证，凭证密钥只显示这一次。",
      secretTitle: "新机关的调用凭证", clientId: "客户端编号", clientSecret: "客户端密钥",
      secretOnce: "密钥只显示这一次，平台只保存其哈希。请现在交给该发证机关，离开本页后无法再查看。", secretDone: "已妥善保存",
      registered: "已登记 {code}", badCode: "编码须以小写字母开头，由小写字母、数字和连字符组成（2–32 位）",
      needNames: "请填写中文和英文名称", needTypes: "请至少选择一种证照类型", neterror: "网络不可用，请稍后再试",
    },
    en: {
      title: "E-licences · Shengshitong", heading: "E-licences · Issuers", console: "Console", dashboard: "Dashboard", ratingsLink: "Ratings",
      issuersTitle: "Issuers",
      issuersHint: "Issuers sign e-licences with keys of their own; the active ones and their public keys are in the trust list the platform's root key signs, with which inspectors' devices check a shown licence offline.",
      colCode: "Code", colName: "Name", colDepartment: "Department", colTypes: "Licence types", colClient: "Client ID", colStatus: "Status",
      colKeys: "Signing keys", colCreated: "Registered", colActions: "Actions", noIssuers: "No issuers yet",
      st_active: "Active", st_revoked: "Revoked", key_signing: "signing", key_waiting: "signs from {when}", key_retired: "verifies only, published until {when}",
      rotate: "Rotate key", revoke: "Revoke", confirmRevoke: "Really revoke?", rotated: "New key {kid} for {code}: it signs from {when}, once every inspector holds it",
      revoked: "Revoked {code}: out of the trust list, its credential stopped",
      registerTitle: "Register an issuer", code: "Code", nameZh: "Chinese name", nameEn: "English name", department: "Department", types: "Licence types it issues",
      register: "Register", registerHint: "A lower-case letter, then lower-case letters, digits and hyphens. Registering makes the issuer's signing key and its credential; the secret is shown once.",
      secretTitle: "The new issuer's credential", clientId: "Client ID", clientSecret: "Client secret",
      secretOnce: "The secret is shown this once; the platform keeps only its hash. Hand it to the issuer now: it cannot be shown again.", secretDone: "Saved it",
      registered: "Registered {code}", badCode: "A lower-case letter first, then lower-case letters, digits and hyphens (2-32)",
      needNames: "Give the Chinese and the English name", needTypes: "Choose at least one licence type", neterror: "Network unavailable; try again shortly",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const tf = (key, args) => t(key).replace(/\{(\w+)\}/g, (_, name) => args[name]);
  const el = (tag, props = {}, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const csrf = () => (document.cookie.split("; ").find(c => c.startsWith("csrftoken=")) || "").slice(10);
  const when = iso => (iso ? new Intl.DateTimeFormat(SSLang.get() === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso)) : "–");

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

  // note: what was last done, said again in the other language when it changes
  const s = { admin: false, departments: [], issuers: [], note: null, arming: null, armTimer: null };
  const typeName = code => {
    for (const d of s.departments) for (const ty of d.types) if (ty.code === code) return SSLang.pick(ty.zh, ty.en);
    return code;
  };

  // ---- the register --------------------------------------------------------------------------------------
  async function loadIssuers() {
    try {
      s.issuers = await call("/admin/licences/issuers");
      $("issuers-error").textContent = "";
    } catch (e) { $("issuers-error").textContent = e.message; }
    renderIssuers();
  }

  function keyLine(k) {
    const said = k.state === "signing" ? t("key_signing")
      : k.state === "waiting" ? tf("key_waiting", { when: when(k.active_from) }) : tf("key_retired", { when: when(k.publish_until) });
    const li = el("li", {}, el("span", { className: "mono", textContent: k.kid }), " ",
      el("span", { className: "pill " + (k.state === "signing" ? "ok" : k.state === "waiting" ? "warn" : ""), textContent: said }));
    li.dataset.kid = k.kid;
    li.dataset.state = k.state;
    return li;
  }

  function actions(issuer) {
    const cell = el("td", { className: "admin-only actions" });
    if (!s.admin || issuer.status !== "active") return cell;
    const rotate = el("button", { type: "button", className: "ghost small rotate", textContent: t("rotate") });
    rotate.addEventListener("click", () => act(issuer, "rotate", rotate));
    const armed = s.arming === issuer.code;
    const revoke = el("button", { type: "button", className: "small revoke" + (armed ? " armed" : " ghost"), textContent: t(armed ? "confirmRevoke" : "revoke") });
    revoke.addEventListener("click", () => {
      if (s.arming !== issuer.code) {  // the first click asks; the second, within five seconds, revokes
        s.arming = issuer.code;
        clearTimeout(s.armTimer);
        s.armTimer = setTimeout(() => { s.arming = null; renderIssuers(); }, 5000);
        renderIssuers();
        return;
      }
      s.arming = null;
      clearTimeout(s.armTimer);
      act(issuer, "revoke", revoke);
    });
    cell.append(rotate, revoke);
    return cell;
  }

  function renderIssuers() {
    document.querySelectorAll(".admin-only").forEach(n => n.classList.toggle("hidden", !s.admin));
    $("issuers").tBodies[0].replaceChildren(...(s.issuers.length ? s.issuers.map(i => {
      const status = el("span", { className: "pill status " + (i.status === "active" ? "ok" : "no"), textContent: t("st_" + i.status) || i.status });
      const tr = el("tr", {},
        el("td", { className: "mono", textContent: i.code }),
        el("td", { className: "wrap", textContent: SSLang.pick(i.name_zh, i.name_en) }),
        el("td", { textContent: SSLang.pick(i.department_zh, i.department_en) || i.department }),
        el("td", { className: "wrap types-cell", textContent: i.types.map(typeName).join(SSLang.get() === "en" ? ", " : "、") }),
        el("td", { className: "mono", textContent: i.client_id }),
        el("td", {}, status, i.revoked_at ? el("div", { className: "muted", textContent: when(i.revoked_at) }) : ""),
        el("td", {}, el("ul", { className: "keys" }, ...i.keys.map(keyLine))),
        el("td", { textContent: when(i.created_at) }),
        actions(i));
      tr.dataset.code = i.code;
      tr.dataset.status = i.status;
      return tr;
    }) : [el("tr", {}, el("td", { colSpan: 9, className: "muted", textContent: t("noIssuers") }))]));
    renderNote();
  }

  function renderNote() {
    const n = s.note;
    $("issuers-note").textContent = n ? tf(n.key, { ...n.args, when: n.args.when ? when(n.args.when) : "" }) : "";
  }

  async function act(issuer, action, button) {
    button.disabled = true;
    s.note = null;
    $("issuers-error").textContent = "";
    try {
      const after = await post(`/admin/licences/issuers/${encodeURIComponent(issuer.code)}/${action}`, {});
      if (action === "rotate") {
        const fresh = after.keys[0];  // newest first: the one just made
        s.note = { key: "rotated", args: { code: after.code, kid: fresh.kid, when: fresh.active_from } };
      } else {
        s.note = { key: "revoked", args: { code: after.code } };
      }
      s.issuers = s.issuers.map(i => (i.code === after.code ? after : i));
      renderIssuers();
    } catch (e) {
      $("issuers-error").textContent = e.message;
      button.disabled = false;
    }
  }

  // ---- registering an issuer ---------------------------------------------------------------------------
  function renderDepartments() {
    const select = $("issuer-department");
    const picked = select.value;
    select.replaceChildren(...s.departments.map(d => el("option", { value: d.code, textContent: SSLang.pick(d.zh, d.en) })));
    if (picked) select.value = picked;
    renderTypes();
  }

  function renderTypes() {
    const ticked = new Set(Array.from(document.querySelectorAll("#issuer-types input:checked"), i => i.value));
    const dept = s.departments.find(d => d.code === $("issuer-department").value);
    $("issuer-types").replaceChildren(...(dept ? dept.types : []).map(ty => {
      const box = el("input", { type: "checkbox", value: ty.code, checked: ticked.has(ty.code) });
      box.dataset.type = ty.code;
      return el("label", { className: "check" }, box, el("span", { textContent: SSLang.pick(ty.zh, ty.en) }));
    }));
  }

  $("issuer-department").addEventListener("change", renderTypes);

  $("register-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const code = $("issuer-code").value.trim();
    const nameZh = $("issuer-name-zh").value.trim(), nameEn = $("issuer-name-en").value.trim();
    const types = Array.from(document.querySelectorAll("#issuer-types input:checked"), i => i.value);
    $("register-error").textContent = "";
    if (!/^[a-z][a-z0-9-]{1,31}$/.test(code)) { $("register-error").textContent = t("badCode"); return; }
    if (!nameZh || !nameEn) { $("register-error").textContent = t("needNames"); return; }
    if (!types.length) { $("register-error").textContent = t("needTypes"); return; }
    $("register").disabled = true;
    try {
      const made = await post("/admin/licences/issuers", {
        code, name_zh: nameZh, name_en: nameEn, department: $("issuer-department").value, types,
      });
      // the secret: on this screen only, until the operator says it is kept (never stored by the page)
      $("new-client-id").textContent = made.client_id;
      $("new-client-secret").textContent = made.client_secret || "";
      $("secret-box").classList.remove("hidden");
      $("secret-box").dataset.code = made.code;
      ["issuer-code", "issuer-name-zh", "issuer-name-en"].forEach(id => { $(id).value = ""; });
      document.querySelectorAll("#issuer-types input").forEach(i => { i.checked = false; });
      s.note = { key: "registered", args: { code: made.code } };
      await loadIssuers();
    } catch (e) { $("register-error").textContent = e.message; } finally { $("register").disabled = false; }
  });

  $("secret-done").addEventListener("click", () => {
    $("new-client-id").textContent = $("new-client-secret").textContent = "";
    $("secret-box").classList.add("hidden");
  });

  // ---- the page ----------------------------------------------------------------------------------------
  function applyLang() {
    SSLang.apply(T);
    ["issuers-error", "register-error"].forEach(id => { $(id).textContent = ""; });  // said in the other language
    renderDepartments();
    renderIssuers();
  }

  async function start() {
    SSLang.apply(T);
    const [texts, departments] = await Promise.all([
      call("/admin/console/texts").catch(() => null), call("/admin/licences/departments").catch(() => []),
    ]);
    s.admin = !!texts && texts.role === "admin";
    s.departments = departments || [];
    $("register-card").classList.toggle("hidden", !s.admin);
    document.body.dataset.role = texts ? texts.role || "" : "";
    renderDepartments();
    await loadIssuers();
    document.body.dataset.ready = "yes";  // the browser test waits for it
  }

  $("lang").addEventListener("click", () => SSLang.toggle());
  SSLang.onChange(applyLang);
  start();
})();
