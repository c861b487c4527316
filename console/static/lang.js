// One language per screen for the web faces: the server picks the page's language from the browser's
// Accept-Language (zh-CN by default) and writes it in <html lang>; a tap on the language button switches
// and is remembered on this device. The pages' API requests carry it, so what the server says (errors,
// what a gate shows) comes in the same language. Times are 24-hour in both languages.
"use strict";
const SSLang = (() => {
  const KEY = "sst.lang";
  let current = localStorage.getItem(KEY) || (document.documentElement.lang === "en" ? "en" : "zh");
  const listeners = [];
  const tag = () => (current === "en" ? "en" : "zh-CN");
  const time = (opts) => new Intl.DateTimeFormat(current === "en" ? "en-GB" : "zh-CN", { hourCycle: "h23", ...opts });
  return {
    get: () => current,
    tag,
    // texts: {zh: {...}, en: {...}}
    t: (texts, key) => (texts[current] && texts[current][key]) || texts.zh[key] || key,
    pick: (zh, en) => (current === "en" ? en : zh),
    hhmm: seconds => time({ hour: "2-digit", minute: "2-digit" }).format(new Date(seconds * 1000)),
    hhmmss: seconds => time({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(seconds * 1000)),
    headers: () => ({ "Accept-Language": tag() }),
    apply(texts) {
      document.documentElement.lang = tag();
      document.querySelectorAll("[data-i18n]").forEach(n => { n.textContent = SSLang.t(texts, n.dataset.i18n); });
      const button = document.getElementById("lang");
      if (button) button.textContent = current === "en" ? "中文" : "EN";
      if (texts[current] && texts[current].title) document.title = texts[current].title;
    },
    onChange: fn => listeners.push(fn),
    toggle() {
      current = current === "en" ? "zh" : "en";
      localStorage.setItem(KEY, current);
      listeners.forEach(fn => fn(current));
    },
  };
})();
