// 扫码挪车's public page: what any phone camera opens from a car sticker (no login). It asks the owner
// to move the car, attaches a photo, polls for the answer and can bind a privacy number for a call. The
// request token lives in this tab's sessionStorage only: nobody else can read the answer.
"use strict";
(function () {
  const base = "/api/v1/apps/carmove";
  const code = location.pathname.split("/").pop();
  const en = (navigator.language || "").toLowerCase().startsWith("en");
  const t = (zh, e) => (en ? e : zh);
  const $ = (id) => document.getElementById(id);
  let device = localStorage.getItem("carmove-device");
  if (!device) {
    // crypto.randomUUID needs a secure context; a sticker's page may be opened over plain http
    device = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("carmove-device", device);
  }
  const headers = { "Accept-Language": en ? "en" : "zh-CN", "X-Carmove-Device": device };
  const say = (text) => { $("status").textContent = text; };

  async function problem(r) {
    try {
      const body = await r.json();
      return body.detail || body.title || String(r.status);
    } catch (e) {
      return String(r.status);
    }
  }

  // A phone camera's photo is several megabytes, over the upload's limit: it is drawn again here at most
  // 1600 px a side as a JPEG (what the server keeps of it anyway), upright as taken. The file as it is
  // when the browser cannot draw it.
  async function shrunk(file) {
    try {
      const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
      const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
      return blob || file;
    } catch (e) {
      return file;
    }
  }

  async function poll(token) {
    const r = await fetch(`${base}/sent`, { headers: { ...headers, "X-Carmove-Token": token } });
    if (!r.ok) return say(await problem(r));
    const q = await r.json();
    $("sent").hidden = false;
    if (q.state === "answered") {
      $("answer").textContent = t("车主回复：", "The owner answers: ") + q.answer_text +
        (q.answer_note ? ` (${q.answer_note})` : "");
      $("call").hidden = true;
      return;
    }
    if (q.state === "expired") {
      $("answer").textContent = t("请求已过期。", "The request has expired.");
      return;
    }
    $("answer").textContent = t("已通知车主，等待回复…", "The owner was told; waiting for an answer…");
    setTimeout(() => poll(token), 5000);
  }

  async function load() {
    const r = await fetch(`${base}/stickers/${encodeURIComponent(code)}`, { headers });
    if (!r.ok) return say(await problem(r));
    const s = await r.json();
    $("plate").textContent = t("车牌：", "Plate: ") + s.plate +
      (s.owner_verified ? t("（车主已核验）", " (owner verified)") : t("（车主未核验）", " (owner not verified)"));
    for (const reason of s.reasons) $("reason").add(new Option(reason.text, reason.code));
    for (const kind of s.reports) $("report-kind").add(new Option(kind.text, kind.code));
    if (s.refusal === "sticker_paused") return say(t("车主已暂停此挪车码。", "The owner has paused this sticker."));
    if (s.refusal === "sticker_suspended") return say(t("此挪车码因被举报已由运营人员停用。", "The operators suspended this sticker after a report of misuse."));
    if (s.refusal) return say(t("此挪车码已失效。", "This sticker is no longer valid."));
    const token = sessionStorage.getItem(`carmove-${code}`);
    if (token) return poll(token);
    $("ask").hidden = false;
  }

  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const r = await fetch(`${base}/stickers/${encodeURIComponent(code)}/requests`, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ reason: $("reason").value, note: $("note").value }),
    });
    if (!r.ok) return say(await problem(r));
    const made = await r.json();
    sessionStorage.setItem(`carmove-${code}`, made.request_token);
    $("ask").hidden = true;
    const file = $("photo").files[0];
    if (file) {
      const photo = await shrunk(file);
      const p = await fetch(`${base}/sent/photo`, {
        method: "PUT", headers: { ...headers, "Content-Type": photo.type, "X-Carmove-Token": made.request_token }, body: photo,
      });
      if (!p.ok) say(await problem(p));
    }
    poll(made.request_token);
  });

  $("call").addEventListener("click", async () => {
    const token = sessionStorage.getItem(`carmove-${code}`);
    const r = await fetch(`${base}/sent/call`, { method: "POST", headers: { ...headers, "X-Carmove-Token": token } });
    if (!r.ok) return say(await problem(r));
    const b = await r.json();
    const until = new Date(b.expires_at).toLocaleTimeString();
    $("number").textContent = t(`请拨打 ${b.number}（${until} 前有效）`, `Call ${b.number} (until ${until})`);
  });

  $("report").addEventListener("click", async () => {
    const r = await fetch(`${base}/stickers/${encodeURIComponent(code)}/reports`, {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ kind: $("report-kind").value }),
    });
    $("reported").textContent = r.ok ? t("已提交，感谢。", "Sent, thank you.") : await problem(r);
  });

  if (en) {
    $("title").textContent = "Car moving";
    $("reason-label").textContent = "Why";
    $("note-label").textContent = "Note (optional, 60 characters)";
    $("photo-label").textContent = "Photo (optional, JPEG or PNG)";
    $("send").textContent = "Ask the owner to move the car";
    $("call").textContent = "Call the owner through a privacy number";
    $("report-title").textContent = "Report misuse";
    $("report").textContent = "Report";
  }
  load();
})();
