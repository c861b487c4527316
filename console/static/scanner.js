// Scanner simulator: choose a scanner, give it a code (text or a picture), see what its screen shows,
// in the page's language (the scan is made with it, as a gate's request carries its own).
"use strict";
(() => {
  const T = {
    zh: {
      title: "扫码模拟 · 盛事通", heading: "扫码模拟", console: "后台", dashboard: "运管中心",
      scannerLabel: "扫码设备", codeLabel: "市民码（SC1:…）", imageLabel: "或上传二维码图片", scan: "扫码",
      hint: "真实扫码：每种闸机一码一次", waiting: "等待扫码", noScanners: "没有可用的扫码设备（shengshi scanners add …）",
      allow: "通过", deny: "拒绝", reason: "原因代码",
    },
    en: {
      title: "Scanner simulator · Shengshitong", heading: "Scanner simulator", console: "Console",
      dashboard: "Dashboard", scannerLabel: "Scanner", codeLabel: "Citizen code (SC1:…)",
      imageLabel: "Or upload a picture of the QR code", scan: "Scan",
      hint: "A real scan: each code once per kind of gate", waiting: "Waiting for a code",
      noScanners: "No scanners enrolled (shengshi scanners add …)", allow: "allowed", deny: "refused",
      reason: "reason code",
    },
  };
  const $ = id => document.getElementById(id);
  const t = key => SSLang.t(T, key);
  const csrf = () => (document.cookie.split("; ").find(c => c.startsWith("csrftoken=")) || "").slice(10);

  async function call(path, opts = {}) {
    const res = await fetch(path, { credentials: "same-origin", ...opts, headers: { "X-CSRFToken": csrf(), ...SSLang.headers(), ...(opts.headers || {}) } });
    const data = await res.json().catch(() => null);
    if (res.status === 401) { location.href = "/admin/"; throw new Error("sign in"); }
    if (!res.ok) throw new Error((data && data.detail) || res.statusText);
    return data;
  }

  let scanners = null;
  async function loadScanners() {
    scanners = await call("/admin/scanner/scanners");
    $("scanner").replaceChildren(...scanners.map(s => Object.assign(document.createElement("option"), {
      value: s.client_id, textContent: `${s.app_id} · ${s.context} · ${s.place || "-"} · ${s.name || s.client_id}`,
    })));
    if (!scanners.length) $("error").textContent = t("noScanners");
  }

  $("image").addEventListener("change", async () => {
    const file = $("image").files[0];
    if (!file) return;
    $("error").textContent = "";
    try {
      const { code } = await call("/admin/scanner/decode", { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
      $("code").value = code;
    } catch (e) { $("error").textContent = e.message; }
  });

  $("scan").addEventListener("click", async () => {
    $("error").textContent = "";
    const gate = $("gate");
    try {
      const d = await call("/admin/scanner/scan", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ scanner_id: $("scanner").value, code: $("code").value.trim() }),
      });
      gate.className = "gate " + (d.display.color || (d.result === "allow" ? "green" : "red"));
      gate.dataset.result = d.result;
      gate.dataset.reason = d.reason;
      $("gate-title").removeAttribute("data-i18n");
      $("gate-title").textContent = d.display.title;
      $("gate-sub").textContent = d.display.subtitle || "";
      // for support: the machine result and reason code, as the gate's log has them
      $("gate-code").textContent = `${t(d.result)} · ${t("reason")}: ${d.reason}`;
      $("gate-data").textContent = Object.keys(d.data || {}).length ? JSON.stringify(d.data) : "";
    } catch (e) {
      gate.className = "gate"; $("error").textContent = e.message;
    }
  });

  $("lang").addEventListener("click", () => SSLang.toggle());
  SSLang.onChange(() => {
    // the last gate screen was in the other language: back to waiting
    $("gate").className = "gate"; delete $("gate").dataset.result;
    $("gate-title").dataset.i18n = "waiting";
    ["gate-sub", "gate-code", "gate-data"].forEach(id => { $(id).textContent = ""; });
    SSLang.apply(T);
    if (scanners && !scanners.length) $("error").textContent = t("noScanners");
  });
  SSLang.apply(T);
  loadScanners().catch(e => { $("error").textContent = e.message; });
})();
