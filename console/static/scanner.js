// Scanner simulator: choose a scanner, give it a code (text or a picture), see what its screen shows.
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const csrf = () => (document.cookie.split("; ").find(c => c.startsWith("csrftoken=")) || "").slice(10);

  async function call(path, opts = {}) {
    const res = await fetch(path, { credentials: "same-origin", ...opts, headers: { "X-CSRFToken": csrf(), ...(opts.headers || {}) } });
    const data = await res.json().catch(() => null);
    if (res.status === 401) { location.href = "/admin/"; throw new Error("sign in"); }
    if (!res.ok) throw new Error((data && data.detail) || res.statusText);
    return data;
  }

  async function loadScanners() {
    const list = await call("/admin/scanner/scanners");
    $("scanner").replaceChildren(...list.map(s => Object.assign(document.createElement("option"), {
      value: s.client_id, textContent: `${s.app_id} · ${s.context} · ${s.place || "-"} · ${s.name || s.client_id}`,
    })));
    if (!list.length) $("error").textContent = "没有可用的扫码设备 No scanners enrolled (shengshi scanners add …)";
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
      $("gate-title").textContent = d.display.title;
      $("gate-sub").textContent = `${d.display.subtitle || ""} · ${d.result} / ${d.reason}`;
      $("gate-data").textContent = Object.keys(d.data || {}).length ? JSON.stringify(d.data) : "";
    } catch (e) {
      gate.className = "gate"; $("error").textContent = e.message;
    }
  });

  loadScanners().catch(e => { $("error").textContent = e.message; });
})();
