/* hotlead page-view beacon. Include once per page:
 *   <script async src="https://INGEST/hotlead.js" data-lead-id="(optional)"></script>
 * Sends url, referrer, title, a first-party anonymous id (localStorage, cookie
 * fallback) and the lead id when known (data-lead-id, ?hl_lid=, or
 * hotlead.identify(id)) to POST /b with navigator.sendBeacon, or fetch keepalive. */
(function (w, d) {
  "use strict";
  var script = d.currentScript;
  if (!script || !script.src) { return; }
  var endpoint = new URL("/b", script.src).href;
  var ID = /^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$/;

  function hex(n) {
    var bytes = new Uint8Array(n);
    (w.crypto || w.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function read(key) {
    try { var v = w.localStorage.getItem(key); if (v) { return v; } } catch (e) { /* storage blocked */ }
    var m = d.cookie.match(new RegExp("(?:^|; )" + key + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function write(key, value) {
    try { w.localStorage.setItem(key, value); } catch (e) { /* storage blocked */ }
    d.cookie = key + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; SameSite=Lax";
  }
  function anonymousId() {
    var id = read("hl_aid");
    if (!id || !ID.test(id)) { id = "anon-" + hex(16); write("hl_aid", id); }
    return id;
  }
  function leadId() {
    var fromUrl = new URLSearchParams(w.location.search).get("hl_lid");
    var given = fromUrl || script.getAttribute("data-lead-id");
    if (given && ID.test(given)) { write("hl_lid", given); return given; }
    var known = read("hl_lid");
    return known && ID.test(known) ? known : null;
  }
  function send(body) {
    var text = JSON.stringify(body);
    var sent = false;
    try {
      if (w.navigator.sendBeacon) {
        sent = w.navigator.sendBeacon(endpoint, new Blob([text], { type: "text/plain" }));
      }
    } catch (e) { sent = false; }
    if (!sent && w.fetch) {
      w.fetch(endpoint, {
        method: "POST", body: text, keepalive: true, mode: "cors", credentials: "omit",
        headers: { "Content-Type": "text/plain" }
      }).catch(function () { /* nothing to do */ });
    }
  }
  function pageView() {
    var body = {
      id: hex(16),
      url: w.location.href,
      title: d.title ? d.title.slice(0, 1024) : undefined,
      referrer: d.referrer || undefined,
      anonymous_id: anonymousId()
    };
    var lead = leadId();
    if (lead) { body.lead_id = lead; }
    send(body);
  }
  w.hotlead = w.hotlead || {};
  w.hotlead.identify = function (id) { if (ID.test(id)) { write("hl_lid", id); } };
  w.hotlead.pageView = pageView;
  pageView();
})(window, document);
