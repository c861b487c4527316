// The console's additions to piccolo-admin's screens (console/admin.py puts this script in its page):
// - one language per screen: the language chosen in piccolo-admin's menu (zh-CN by default) names the
//   tables, columns, menu groups, links and forms, and goes with piccolo-admin's own requests as
//   Accept-Language, so the server's answers (errors, form results) come in it too;
// - money (integer fen) shows as ¥ yuan;
// - no "add row", edit or delete where nothing may change: piccolo-admin offers them on every table,
//   the server refuses them (and stays the rule; this only stops offering what would be refused).
"use strict";
(() => {
  const LANG_KEY = "piccoloAdminDefaultLanguage";  // where piccolo-admin keeps the chosen language
  const lang = () => ((localStorage.getItem(LANG_KEY) || "zh-CN").toLowerCase().startsWith("en") ? "en" : "zh-CN");
  const pick = pair => (lang() === "en" ? pair[1] : pair[0]);

  const open = XMLHttpRequest.prototype.open;  // piccolo-admin talks to its API through XHR (axios)
  XMLHttpRequest.prototype.open = function (...args) {
    open.apply(this, args);
    try { this.setRequestHeader("Accept-Language", lang()); } catch (e) { /* not ours to break */ }
  };

  let meta = null, metaFor = null, loading = null;
  function loadMeta() {
    loading = loading || fetch("/admin/console/texts", { credentials: "same-origin" })
      .then(r => (r.ok ? r.json() : null))
      .then(m => { if (m) { meta = m; buildIndex(); } metaFor = location.hash; })
      .catch(() => {})
      .finally(() => { loading = null; schedule(); });
    return loading;
  }

  const key = text => text.trim().toLowerCase().replace(/\s+/g, "_");
  const yuan = fen => (fen < 0 ? "-¥" : "¥") + (Math.abs(fen) / 100).toFixed(2);
  const FEN = /^-?\d+$/;

  function currentTable() {
    const path = location.hash.replace(/^#\/?/, "").split(/[/?]/);
    return meta && meta.tables[path[0]] ? { name: path[0], view: meta.tables[path[0]], row: path[1] || "" } : null;
  }

  // every text we know, by each of its forms (the name piccolo-admin writes, the Chinese, the English)
  let index = new Map(), inText = [];
  function buildIndex() {
    index = new Map();
    // a table's name inside a longer text ("编辑 Machine Client"): piccolo-admin's readable name
    inText = Object.entries(meta.tables).map(([name, t]) => [new RegExp(`\\b${name.replace(/_/g, " ")}\\b`, "i"), t.label]);
    const add = (forms, pair) => forms.forEach(f => { if (f && !index.has(key(f))) index.set(key(f), pair); });
    Object.entries(meta.tables).forEach(([name, t]) => add([name, ...t.label], t.label));
    Object.entries(meta.columns).forEach(([name, pair]) => add([name, ...pair], pair));
    Object.entries(meta.texts).forEach(([zh, en]) => add([zh, en], [zh, en]));
  }

  // the texts on the page in the chosen language; data cells and inputs are never touched
  function translate(root) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
      acceptNode: n => (n.parentElement && n.parentElement.closest("td, input, textarea, select, pre, code, .sst-own")
        ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
    });
    const changes = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const raw = n.nodeValue, text = raw.trim();
      if (!text) continue;
      const pair = index.get(key(text));
      if (pair) {
        if (pick(pair) !== text) changes.push([n, raw.replace(text, pick(pair))]);
        continue;
      }
      for (const [pattern, label] of inText) {
        if (pattern.test(raw)) { changes.push([n, raw.replace(pattern, pick(label))]); break; }
      }
    }
    for (const [n, value] of changes) n.nodeValue = value;
    const title = index.get(key(document.title));
    if (title && document.title !== pick(title)) document.title = pick(title);
  }

  // money columns of a list: the cells under those headers; on a row's page, the value beside its input
  function money(table) {
    const view = table.view;
    if (!view.money.length) return;
    document.querySelectorAll("table").forEach(t => {
      if (!t.querySelector("thead")) return;
      t.querySelectorAll("tbody tr").forEach(tr => {
        view.money.forEach(col => {
          const td = tr.children[1 + view.columns.indexOf(col)];  // first cell: the row's checkbox
          if (!td) return;
          const text = td.textContent.trim();
          if (FEN.test(text)) td.textContent = yuan(parseInt(text, 10));
        });
      });
    });
    if (!table.row) return;
    view.money.forEach(col => {
      const input = document.querySelector(`input[name="${col}"]`);
      if (!input) return;
      let hint = input.parentElement.querySelector(".sst-yuan");
      if (!hint) { hint = Object.assign(document.createElement("span"), { className: "sst-yuan sst-own" }); input.after(hint); }
      const value = FEN.test(input.value.trim()) ? yuan(parseInt(input.value, 10)) : "";
      if (hint.textContent !== value) hint.textContent = value;
    });
  }

  function apply() {
    if (!meta) return;
    const table = currentTable();
    const body = document.body.classList;
    // no table of ours takes a new row or loses one here; only some may be edited, by an admin
    body.toggle("sst-no-add", !!table);
    body.toggle("sst-no-delete", !!table);
    body.toggle("sst-no-edit", !!table && !table.view.editable);
    document.documentElement.lang = lang();
    translate(document.body);
    if (table) money(table);
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; apply(); });
  }

  new MutationObserver(schedule).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
  window.addEventListener("hashchange", () => {
    // the role is known once signed in: ask again after the login page, and when the language changes
    if (!meta || meta.role === null || metaFor !== location.hash) loadMeta();
    schedule();
  });
  // a language picked in piccolo-admin's menu re-renders its own texts: the observer sees it
  loadMeta();
})();
