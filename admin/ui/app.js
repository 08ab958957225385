/*
 * tandem admin UI. Loaded by the bootstrap page (index.html) once the
 * browser is signed in; every call to the JSON API carries the session
 * cookie. Data is only ever put in the page as text (textContent), never as
 * markup. Views: overview (#/), route (#/route/NAME), sample (#/sample/ID),
 * a request's comparisons (#/request/ID, and #/request to look one up),
 * events (#/events). The hash's ?since= picks the time window and, in a
 * fleet, ?instance= narrows the report views to one instance.
 */
(function () {
  "use strict";

  const POLL_MS = 3000; // GET /api/v1/routes
  const EVENTS_REFRESH_MS = 10000;
  const BODY_PREVIEW_MAX = 100 * 1024;
  const KIND_ORDER = ["status", "header", "json", "image", "body"];
  const NEXT_STEPS = [1, 5, 10, 25, 50, 100];

  // Time windows of the since selector (the hash's ?since=), Grafana's quick
  // ranges: each with the series step its trend is drawn in. "all" is every
  // stored minute; its step follows the data's age (stepFor).
  const WINDOWS = [
    { key: "15m", ms: 15 * 60e3, step: "1m", label: "15 min", refresh: POLL_MS },
    { key: "1h", ms: 3600e3, step: "1m", label: "1 h", refresh: POLL_MS },
    { key: "6h", ms: 6 * 3600e3, step: "5m", label: "6 h", refresh: 10e3 },
    { key: "24h", ms: 24 * 3600e3, step: "15m", label: "24 h", refresh: 10e3 },
    { key: "7d", ms: 7 * 86400e3, step: "1h", label: "7 d", refresh: 30e3 },
    { key: "all", ms: 0, step: "1h", label: "all", refresh: 30e3 },
  ];
  const DEFAULT_WINDOW = "1h";
  const STEP_MS = { "1m": 60e3, "5m": 300e3, "15m": 900e3, "1h": 3600e3, "1d": 86400e3 };
  const STEP_WORDS = { "1m": "minute", "5m": "5 minutes", "15m": "15 minutes", "1h": "hour", "1d": "day" };
  // winQuery is the ?since= (and ?instance=) the links of the current page
  // carry, so a window or an instance chosen once stays while a person
  // moves between views.
  let winQuery = "";
  function withWindow(href) {
    if (!winQuery || !/^#\/(route\/|events|$)/.test(href)) return href;
    return href + (href.includes("?") ? "&" : "?") + winQuery;
  }
  function windowOf(key) {
    return WINDOWS.find((w) => w.key === key) || null;
  }
  // sinceOf is the RFC 3339 start of w now; "" for all data.
  function sinceOf(w) {
    if (!w.ms) return "";
    return new Date(Date.now() - w.ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  }
  function windowWords(w) { return w.ms ? "last " + w.label : "all stored data"; }
  // instQuery is the API's ?instance= for inst ("" for the whole fleet).
  function instQuery(inst) { return inst ? "instance=" + enc(inst) : ""; }

  // ---------------------------------------------------------------- DOM

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    return append(el, kids);
  }

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.setAttribute("class", v);
      else if (k === "text") el.textContent = String(v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "style") throw new Error("BUG: style attributes are blocked by the CSP");
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }

  // set replaces el's children with kids (nodes, strings, arrays; null and
  // false are skipped).
  function set(el, ...kids) {
    el.replaceChildren();
    return append(el, kids);
  }

  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }

  const SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return append(el, kids);
  }

  function loading(text) {
    return h("div", { class: "state loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
  }
  function empty(title, text) {
    return h("div", { class: "state empty" }, h("strong", { text: title }), text ? h("p", { text: text }) : null);
  }
  function errorBox(title, err) {
    return h("div", { class: "state error", role: "alert", "data-error": err && err.kind ? err.kind : "error" },
      h("strong", { text: title }), h("p", { text: err && err.message ? err.message : String(err) }));
  }
  function badge(text, cls, title) {
    return h("span", { class: "badge " + (cls || ""), title: title || null, text: text });
  }
  function link(href, text, cls) { return h("a", { href: withWindow(href), class: cls || null, text: text }); }
  // requestLink shows a request id as a link to its comparisons.
  function requestLink(id) {
    if (!id) return h("span", { class: "muted", text: "—" });
    return h("a", { href: "#/request/" + enc(id), class: "request-link", "data-request-link": id, title: "every comparison of this request" }, code(id));
  }
  function code(text) { return h("code", { text: text }); }

  // ---------------------------------------------------------- formatting

  function fmtInt(n) {
    return n === undefined || n === null ? "—" : Number(n).toLocaleString("en-US");
  }
  // served_errors: the error answers clients got, by who served them
  // ({legacy, new, tandem}; every answer tandem gave itself is one).
  function servedErrorsTotal(e) {
    return e ? (e.legacy || 0) + (e.new || 0) + (e.tandem || 0) : 0;
  }
  function servedErrorsLine(e) {
    const n = servedErrorsTotal(e);
    if (!n) return null;
    const parts = [["legacy", e.legacy], ["new", e.new], ["tandem", e.tandem]].filter((p) => p[1] > 0)
      .map((p) => p[0] + " " + fmtInt(p[1]));
    return h("div", { class: "small bad-text", "data-field": "served_errors", "data-value": n, text: "errors " + fmtInt(n) + " (" + parts.join(" · ") + ")" });
  }
  function fmtPercent(p) { // p in 0..100
    if (p === undefined || p === null) return "—";
    return String(Math.round(p * 100) / 100) + "%";
  }
  function fmtRate(r, compared) { // r in 0..1
    if (!compared) return "—";
    const v = r * 100;
    if (v === 0) return "0%";
    if (v < 0.01) return "<0.01%";
    return v.toFixed(2) + "%";
  }
  // sig3 prints v > 0 with 3 significant digits: 842, 84.2, 8.42, 0.842.
  function sig3(v) {
    const r = Number(v.toPrecision(3));
    if (r >= 100) return r.toFixed(0);
    if (r >= 10) return r.toFixed(1);
    if (r >= 1) return r.toFixed(2);
    return r.toFixed(2 - Math.floor(Math.log10(r))); // 0.500, 0.0842: as internal/latencyfmt
  }
  // fmtMS prints a latency as the CLI does: below 1 s in ms with 3
  // significant digits ("842 ms", "84.2 ms", "8.42 ms"), from 1 s in
  // seconds ("1.23 s", "10.1 s"); "—" for no observation.
  function fmtMS(ms) {
    if (!ms || !isFinite(ms)) return "—";
    if (Number(ms.toPrecision(3)) < 1000) return sig3(ms) + " ms";
    if (Number((ms / 1000).toPrecision(3)) >= 1000) return Math.round(ms / 1000) + " s"; // no digit dropped
    return sig3(ms / 1000) + " s";
  }
  function fmtBytes(n) {
    if (n === undefined || n === null) return "—";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1024 / 1024).toFixed(1) + " MiB";
  }
  function pad(n) { return String(n).padStart(2, "0"); }
  function fmtDuration(sec) {
    sec = Math.max(0, Math.round(sec || 0));
    const hh = Math.floor(sec / 3600), mm = Math.floor((sec % 3600) / 60), ss = sec % 60;
    if (hh) return hh + "h " + pad(mm) + "m";
    if (mm) return mm + "m " + pad(ss) + "s";
    return ss + "s";
  }
  function fmtTime(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function fmtAgo(iso) {
    const s = (Date.now() - new Date(iso).getTime()) / 1000;
    if (!isFinite(s)) return "";
    if (s < 5) return "just now";
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function rateClass(rate, compared) {
    if (!compared) return "none";
    if (rate > 0.05) return "bad";
    if (rate > 0.005) return "warn";
    return "ok";
  }
  function enc(s) { return encodeURIComponent(s); }

  // ----------------------------------------------------------------- API

  class APIError extends Error {
    constructor(kind, status, message) {
      super(message);
      this.kind = kind; // "unreachable" | "auth" | "http"
      this.status = status;
    }
  }

  async function errorText(resp) {
    try {
      const j = await resp.json();
      if (j && j.errors && j.errors.length) return j.error + ": " + j.errors.join("; ");
      if (j && j.error) return j.error;
    } catch (e) { /* not JSON */ }
    return resp.statusText || "error";
  }

  class API {
    constructor(token, onStatus) {
      this.token = token;
      this.onStatus = onStatus; // called with null (reachable) or an APIError
    }
    async fetch(path, opts) {
      opts = opts || {};
      // The session cookie (same-origin) authorizes the calls; a bearer
      // token only when the boot page hands one over.
      const headers = Object.assign(this.token ? { Authorization: "Bearer " + this.token } : {}, opts.headers || {});
      let resp;
      try {
        resp = await fetch(path, { method: opts.method || "GET", headers: headers, body: opts.body, cache: "no-store", credentials: "same-origin" });
      } catch (e) {
        const err = new APIError("unreachable", 0, "The admin API at " + location.origin + " is unreachable (" + e.message + "). Retrying every " + POLL_MS / 1000 + " s.");
        this.onStatus(err);
        throw err;
      }
      if (resp.status === 401) {
        const err = new APIError("auth", 401, "401 Unauthorized: " + (await errorText(resp)) + ". Signed out (the session ended or the token was refused); enter the token again.");
        this.onStatus(err);
        throw err;
      }
      this.onStatus(null);
      if (!resp.ok) throw new APIError("http", resp.status, "HTTP " + resp.status + ": " + (await errorText(resp)));
      return resp;
    }
    async json(path) { return (await this.fetch(path)).json(); }
    async post(path, body) {
      const resp = await this.fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      return resp.json();
    }
  }

  // ----------------------------------------------------------------- app

  class App {
    constructor(boot) {
      this.boot = boot;
      this.api = new API(boot.token, (err) => this.setConn(err));
      this.routes = null; // last GET /api/v1/routes
      this.routesAt = 0;
      this.routesError = null;
      this.win = windowOf(DEFAULT_WINDOW);
      // The chosen window's numbers, refreshed with every poll: the report
      // (GET /api/v1/report?since=) and the trend (GET /api/v1/series), by
      // route; null until the first answer for this window.
      this.windowData = null;
      this.firstData = 0; // ms of the oldest stored minute, for "all"'s step
      // In a fleet (GET /api/v1/routes has "instances"): {state: "ok" |
      // "degraded", instance: this one's name, instances: [...]}; null
      // otherwise. inst is the instance the report views are narrowed to
      // (the hash's ?instance=), "" for the whole fleet.
      this.fleet = null;
      this.inst = "";
      this.instPicker = null;
      this.view = null;
      this.conn = null; // null or the APIError of the last call
      this.pollTimer = 0;
    }

    start() {
      this.buildShell();
      window.addEventListener("hashchange", () => this.navigate());
      this.navigate();
      this.poll();
      setInterval(() => this.showConn(), 1000);
    }

    buildShell() {
      document.body.replaceChildren();
      document.body.classList.add("app");
      this.connEl = h("span", { class: "conn", id: "conn", role: "status" });
      this.banner = h("div", { id: "banner", role: "alert", hidden: true });
      this.main = h("main", { id: "view" });
      this.toasts = h("div", { id: "toasts", "aria-live": "polite" });
      const nav = h("nav", null,
        h("a", { href: "#/", "data-href": "#/", "data-nav": "overview", text: "Overview" }),
        h("a", { href: "#/request", "data-href": "#/request", "data-nav": "request", text: "Requests" }),
        h("a", { href: "#/events", "data-href": "#/events", "data-nav": "events", text: "Events" }));
      this.nav = nav;
      append(document.body, [
        h("header", { class: "top" },
          h("a", { class: "brand", href: "#/" }, "tandem", h("span", { text: "admin" })),
          nav, h("span", { class: "spacer" }), this.connEl,
          h("button", { class: "link", id: "signout", type: "button", onclick: () => this.boot.signOut(), text: "Sign out" })),
        this.banner, this.main, this.toasts,
      ]);
    }

    setConn(err) {
      const was = this.conn;
      this.conn = err;
      if (!err) {
        if (was) { this.banner.hidden = true; this.banner.replaceChildren(); }
      } else if (err.kind === "auth") {
        clearTimeout(this.pollTimer);
        this.banner.className = "bad";
        set(this.banner, h("strong", { text: "Not signed in. " }), err.message + " ",
          h("button", { type: "button", onclick: () => this.boot.signOut(), text: "Enter the token again" }));
        this.banner.hidden = false;
      } else if (err.kind === "unreachable") {
        this.banner.className = "warn";
        set(this.banner, h("strong", { text: "Admin API unreachable. " }), err.message +
          (this.routesAt ? " The numbers below are from " + fmtTime(new Date(this.routesAt)) + "." : ""));
        this.banner.hidden = false;
      }
      this.showConn();
    }

    showConn() {
      const c = this.connEl;
      if (this.conn && this.conn.kind === "auth") { c.className = "conn bad"; c.textContent = "token refused"; return; }
      if (this.conn && this.conn.kind === "unreachable") { c.className = "conn bad"; c.textContent = "unreachable"; return; }
      if (!this.routesAt) { c.className = "conn"; c.textContent = "connecting…"; return; }
      const age = Math.round((Date.now() - this.routesAt) / 1000);
      c.className = "conn ok";
      c.textContent = "live · updated " + (age < 1 ? "now" : age + " s ago");
    }

    // stepFor is the series step of w: its own, or for all data the
    // finest that draws the stored span in at most 300 buckets.
    stepFor(w) {
      if (w.ms || !this.firstData) return w.step;
      const span = Date.now() - this.firstData;
      return ["1m", "5m", "15m", "1h", "1d"].find((st) => span / STEP_MS[st] <= 300) || "1d";
    }

    async poll() {
      clearTimeout(this.pollTimer);
      const win = this.win, inst = this.inst, since = sinceOf(win), step = this.stepFor(win);
      const q = [since ? "since=" + enc(since) : "", instQuery(inst)].filter(Boolean).join("&");
      // A long window's numbers move slowly: they are read again every
      // win.refresh ms, the live route table at every poll.
      const d = this.windowData;
      const fresh = d && d.win === win && d.inst === inst && Date.now() - d.at < win.refresh - 500;
      const [rt, rep, ser] = await Promise.allSettled([
        this.api.json("/api/v1/routes"),
        fresh ? null : this.api.json("/api/v1/report" + (q ? "?" + q : "")),
        fresh ? null : this.api.json("/api/v1/series?step=" + step + (q ? "&" + q : "")),
      ]);
      if (rt.status === "fulfilled") {
        this.routes = rt.value.routes || [];
        this.routesAt = Date.now();
        this.routesError = null;
        this.fleet = Array.isArray(rt.value.instances)
          ? { state: rt.value.fleet || "ok", instance: rt.value.instance || "", instances: rt.value.instances }
          : null;
        this.updateInstancePicker();
      } else {
        this.routesError = rt.reason;
      }
      if (fresh) {
        // keep this.windowData
      } else if (win === this.win && inst === this.inst && rep.status === "fulfilled" && ser.status === "fulfilled") {
        const reports = new Map(), series = new Map();
        for (const r of rep.value.routes || []) {
          reports.set(r.route, r);
          const t = new Date(r.since).getTime();
          if (!win.ms && r.compared + r.requests > 0 && t > 0 && (!this.firstData || t < this.firstData)) this.firstData = t;
        }
        for (const r of ser.value.routes || []) series.set(r.route, r.points || []);
        this.windowData = { win: win, inst: inst, since: since, step: ser.value.step, reports: reports, series: series, at: Date.now() };
      } else if (win === this.win && inst === this.inst) {
        const e = rep.status === "rejected" ? rep.reason : ser.reason;
        const key = win.key + " " + inst;
        if (e.kind === "http" && this.windowErrorFor !== key) {
          this.windowErrorFor = key; // once per window and instance, not at every poll
          this.toast("Cannot read the " + (inst ? "numbers of instance " + inst : "window's numbers") + ": " + e.message, "warn");
        }
      }
      if (rt.status === "fulfilled") {
        if (this.view && this.view.onRoutes) this.view.onRoutes(this.routes);
      } else if (this.view && this.view.onRoutesError) {
        this.view.onRoutesError(rt.reason);
      }
      this.showConn();
      if (!this.conn || this.conn.kind !== "auth") this.pollTimer = setTimeout(() => this.poll(), POLL_MS);
    }

    // report and series are the chosen window's, for one route; null
    // before the first answer.
    report(name) {
      const d = this.windowData;
      return d && d.win === this.win && d.inst === this.inst ? d.reports.get(name) || { route: name, requests: 0, compared: 0, mismatched: 0, noise: 0, diff_rate: 0 } : null;
    }
    series(name) {
      const d = this.windowData;
      return d && d.win === this.win && d.inst === this.inst ? d.series.get(name) || [] : null;
    }

    // scopeWords says whose numbers the report views show: "" when this
    // instance is alone, else the whole fleet's or one instance's.
    scopeWords() {
      if (this.inst) return "instance " + this.inst;
      return this.fleet ? "every instance" : "";
    }

    // instancePicker is the instance selector, shown in a fleet: "all
    // instances" and each live one; a choice goes into the hash
    // (?instance=, like ?since=) and the report views are read again for
    // it. One element, moved into whichever view shows it, so that a poll
    // does not rebuild it under a person's hand.
    instancePicker() {
      if (!this.instPicker) {
        const sel = h("select", { id: "instance-picker", "aria-label": "instance" });
        sel.addEventListener("change", () => this.setParam("instance", sel.value));
        this.instPicker = h("label", { class: "instance-picker", hidden: true }, h("span", { class: "muted small", text: "Instance" }), sel);
        this.instPickerKey = null;
      }
      this.updateInstancePicker();
      return this.instPicker;
    }

    updateInstancePicker() {
      const box = this.instPicker;
      if (!box) return;
      const names = this.fleet ? this.fleet.instances.map((i) => i.name) : [];
      if (this.inst && !names.includes(this.inst)) names.push(this.inst);
      box.hidden = !this.fleet && !this.inst;
      const self = this.fleet ? this.fleet.instance : "";
      const live = new Set(this.fleet ? this.fleet.instances.map((i) => i.name) : []);
      const key = JSON.stringify([names, self, [...live], this.inst]);
      if (key === this.instPickerKey) return;
      this.instPickerKey = key;
      const sel = box.querySelector("select");
      set(sel, h("option", { value: "", text: "all instances" }),
        names.map((n) => h("option", { value: n, text: n + (n === self ? " (this one)" : live.has(n) ? "" : " (not live)") })));
      sel.value = this.inst;
    }

    // windowPicker is the since selector: one button per window, the
    // chosen one pressed; a choice goes into the hash (a shared link keeps
    // it) and the numbers are read again.
    windowPicker() {
      return h("div", { class: "window-picker", role: "group", "aria-label": "time window", id: "window-picker" },
        h("span", { class: "muted small", text: "Window" }),
        WINDOWS.map((w) => h("button", { type: "button", class: "win" + (w === this.win ? " active" : ""), "data-window": w.key,
          "aria-pressed": w === this.win ? "true" : "false", title: w.ms ? "the last " + w.label + " of stored minutes" : "every stored minute",
          onclick: () => this.setWindow(w.key), text: w.label })));
    }

    setWindow(key) { this.setParam("since", key); }

    // setParam sets (or, for "", removes) one parameter of the hash's query.
    setParam(name, value) {
      const raw = location.hash.replace(/^#\/?/, "");
      const path = raw.split("?")[0];
      const params = new URLSearchParams(raw.includes("?") ? raw.slice(raw.indexOf("?") + 1) : "");
      if (value) params.set(name, value);
      else params.delete(name);
      const q = params.toString();
      location.hash = "#/" + path + (q ? "?" + q : "");
    }

    navigate() {
      const raw0 = location.hash.replace(/^#\/?/, "");
      const qi = raw0.indexOf("?");
      const raw = qi < 0 ? raw0 : raw0.slice(0, qi);
      const params = new URLSearchParams(qi < 0 ? "" : raw0.slice(qi + 1));
      const win = windowOf(params.get("since") || DEFAULT_WINDOW) || windowOf(DEFAULT_WINDOW);
      const inst = params.get("instance") || "";
      winQuery = [params.has("since") && windowOf(params.get("since")) ? "since=" + enc(win.key) : "", instQuery(inst)].filter(Boolean).join("&");
      for (const a of this.nav.querySelectorAll("a")) a.setAttribute("href", withWindow(a.dataset.href));
      if (win !== this.win || inst !== this.inst) {
        this.win = win;
        this.inst = inst;
        this.windowData = null;
        this.updateInstancePicker();
        clearTimeout(this.pollTimer);
        this.pollTimer = setTimeout(() => this.poll(), 0);
      }
      let parts;
      try { parts = raw.split("/").map(decodeURIComponent); } catch (e) { parts = ["?"]; }
      let view;
      if (!parts[0]) view = new OverviewView(this);
      else if (parts[0] === "route" && parts[1]) view = new RouteView(this, parts[1]);
      else if (parts[0] === "sample" && parts[1]) view = new SampleView(this, parts[1]);
      else if (parts[0] === "request") view = new RequestView(this, parts.slice(1).join("/"));
      else if (parts[0] === "events") view = new EventsView(this);
      else view = new NotFoundView(this, raw);
      if (this.view && this.view.destroy) this.view.destroy();
      this.view = view;
      this.main.replaceChildren();
      this.main.dataset.view = view.name;
      this.main.dataset.ready = "0";
      for (const a of this.nav.querySelectorAll("a")) a.classList.toggle("active", a.dataset.nav === view.name);
      view.mount(this.main);
      window.scrollTo(0, 0);
    }

    ready(view) {
      if (this.view === view) this.main.dataset.ready = "1";
    }

    toast(text, cls) {
      const t = h("div", { class: "toast " + (cls || "ok"), text: text });
      this.toasts.appendChild(t);
      setTimeout(() => t.remove(), 7000);
    }

    route(name) {
      return (this.routes || []).find((r) => r.name === name) || null;
    }
  }

  // ------------------------------------------------------------ widgets

  function pctBar(p, cls) {
    const fill = h("span", { class: "fill " + (cls || "") });
    fill.style.width = Math.max(0, Math.min(100, p || 0)) + "%";
    return h("div", { class: "pct" }, h("span", { class: "pct-text", text: fmtPercent(p) }), h("span", { class: "bar" }, fill));
  }

  // xRange is the time axis of a trend: the window, or for all data from
  // the first bucket; [start, end] in ms.
  function xRange(app, points) {
    const end = Date.now();
    const d = app.windowData;
    if (app.win.ms) return [end - app.win.ms, end];
    const first = points.length ? new Date(points[0].at).getTime() : end - 3600e3;
    return [Math.min(first, end - (d ? STEP_MS[d.step] || 60e3 : 60e3)), end];
  }

  // sparkline draws a route's diff rate per bucket of the window's step,
  // from stored minutes (GET /api/v1/series): a bucket without comparisons
  // is a gap.
  function sparkline(app, points) {
    const W = 104, H = 26;
    const el = svg("svg", { class: "spark", width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
    if (!points) {
      el.appendChild(svg("title", {}, "Loading the trend…"));
      el.appendChild(svg("line", { x1: 2, x2: W - 2, y1: H - 3, y2: H - 3, class: "spark-empty" }));
      return el;
    }
    const pts = points.filter((p) => p.compared > 0);
    const step = app.windowData ? app.windowData.step : "1m";
    const title = pts.length
      ? "Diff rate per " + STEP_WORDS[step] + ", " + windowWords(app.win) + ", from stored minutes (noise applied now): " +
        pts.length + (pts.length === 1 ? " bucket, " : " buckets, ") + fmtRate(pts[0].diff_rate, 1) + " → " + fmtRate(pts[pts.length - 1].diff_rate, 1)
      : "No comparisons stored in the window (" + windowWords(app.win) + ")";
    el.appendChild(svg("title", {}, title));
    el.setAttribute("aria-label", title);
    el.setAttribute("data-points", String(pts.length));
    if (!pts.length) {
      el.appendChild(svg("line", { x1: 2, x2: W - 2, y1: H - 3, y2: H - 3, class: "spark-empty" }));
      return el;
    }
    const [t0, t1] = xRange(app, points);
    const max = Math.max(0.01, ...pts.map((p) => p.diff_rate));
    const x = (p) => 2 + ((new Date(p.at).getTime() - t0) / Math.max(1, t1 - t0)) * (W - 6);
    const y = (p) => H - 3 - (p.diff_rate / max) * (H - 7);
    // One polyline per run of adjacent buckets; a missing bucket breaks it.
    const stepMs = STEP_MS[step] || 60e3;
    let run = [];
    const flush = () => {
      if (run.length > 1) el.appendChild(svg("polyline", { points: run.map((q) => q[0].toFixed(1) + "," + q[1].toFixed(1)).join(" "), class: "spark-line" }));
      else if (run.length === 1) el.appendChild(svg("circle", { cx: run[0][0].toFixed(1), cy: run[0][1].toFixed(1), r: 1.6, class: "spark-dot" }));
      run = [];
    };
    let prev = null;
    for (const p of pts) {
      const t = new Date(p.at).getTime();
      if (prev !== null && t - prev > stepMs * 1.5) flush();
      run.push([Math.max(2, x(p)), y(p)]);
      prev = t;
    }
    flush();
    const last = pts[pts.length - 1];
    el.appendChild(svg("circle", { cx: Math.max(2, x(last)).toFixed(1), cy: y(last).toFixed(1), r: 2.2, class: "spark-dot" }));
    return el;
  }

  // trendChart draws one or more values per bucket of the window's step
  // (spec.lines: {key: field name or function, cls, label}) over the
  // window, with the last values in its legend and, when spec.limit is
  // set, a dashed line at the limit. spec.only picks the buckets a line
  // has a value in (a gap elsewhere).
  function trendChart(app, points, spec) {
    const W = 600, H = 130, L = 4, R = 4, T = 8, B = 18;
    const val = (line, p) => (typeof line.key === "function" ? line.key(p) : p[line.key]) || 0;
    const pts = points.filter(spec.only || (() => true));
    const [t0, t1] = xRange(app, points);
    let max = 0;
    for (const line of spec.lines) for (const p of pts) max = Math.max(max, val(line, p));
    if (spec.limit) max = Math.max(max, spec.limit * 1.25);
    max = max || 1;
    const x = (p) => L + ((new Date(p.at).getTime() - t0) / Math.max(1, t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / max) * (H - T - B);
    const el = svg("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img", "data-points": String(pts.length) });
    el.appendChild(svg("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "axis" }));
    if (spec.limit) el.appendChild(svg("line", { x1: L, x2: W - R, y1: y(spec.limit), y2: y(spec.limit), class: "limit" }));
    const stepMs = STEP_MS[app.windowData ? app.windowData.step : "1m"] || 60e3;
    for (const line of spec.lines) {
      let run = [], prev = null;
      const flush = () => {
        if (run.length > 1) el.appendChild(svg("polyline", { points: run.join(" "), class: "line " + line.cls }));
        else if (run.length === 1) { const [cx, cy] = run[0].split(","); el.appendChild(svg("circle", { cx: cx, cy: cy, r: 2.5, class: "dot " + line.cls })); }
        run = [];
      };
      for (const p of pts) {
        const t = new Date(p.at).getTime();
        if (prev !== null && t - prev > stepMs * 1.5) flush();
        run.push(Math.max(L, x(p)).toFixed(1) + "," + y(val(line, p)).toFixed(1));
        prev = t;
      }
      flush();
    }
    const last = pts[pts.length - 1];
    const legend = h("div", { class: "legend small" }, spec.lines.map((line) => h("span", { class: "key-" + line.cls },
      h("span", { class: "swatch-line " + line.cls }), " " + line.label + " ", h("strong", { "data-last": line.cls, text: last ? spec.fmt(val(line, last)) : "—" }))),
      spec.limit ? h("span", null, h("span", { class: "swatch-line limit" }), " limit " + spec.fmt(spec.limit)) : null,
      h("span", { class: "muted", text: " · max " + (pts.length ? spec.fmt(max) : "—") }));
    el.appendChild(svg("title", {}, spec.title + ", " + windowWords(app.win) + ": " + pts.length + " buckets"));
    return h("figure", { class: "chart-box", id: spec.id }, h("figcaption", null, h("strong", { text: spec.title })),
      pts.length ? el : h("div", { class: "state empty small", text: "No data stored in the window." }), legend);
  }

  // recordTimeRate notes the proxy's own diff rate since it started, with
  // outcomes as counted when each comparison was made (tandem_compare_total),
  // when it differs from the report's: higher while noise was still being
  // learned.
  function recordTimeRate(r) {
    if (!r.compared || fmtRate(r.diff_rate, r.compared) === fmtRate(r.report_diff_rate, r.report_compared)) return null;
    return h("div", { class: "muted small", "data-field": "record_diff_rate", "data-value": r.diff_rate,
      title: "since tandem started, each comparison counted with the noise known when it was made (tandem_compare_total); counters cannot go back",
      text: fmtRate(r.diff_rate, r.compared) + " at record time" });
  }

  function breakerBadges(breakers) {
    const names = Object.keys(breakers || {}).sort();
    if (!names.length) return h("span", { class: "muted", text: "—" });
    return names.map((n) => {
      const st = breakers[n];
      const cls = st === "closed" ? "ok" : st === "open" ? "bad" : "warn";
      return h("div", { class: "breaker" }, badge(st, cls, "circuit breaker of backend " + n), " ", h("span", { class: "muted", text: n }));
    });
  }

  function rampCell(rp) {
    if (!rp) return h("span", { class: "muted", text: "manual (no ramp)" });
    const steps = h("div", { class: "steps" }, (rp.steps || []).map((st) =>
      h("span", { class: "step" + (st === rp.current ? " current" : st < rp.current ? " past" : ""), text: fmtPercent(st) })));
    let state;
    if (rp.done) state = badge("done", "ok");
    else if (rp.halted) state = badge("halted", "bad", "halted after a rollback; promote by hand to resume");
    else if (rp.next_step) state = h("span", null, "next ", h("strong", { text: fmtPercent(rp.next_step) }));
    const held = h("div", { class: "small", "data-field": "ramp-held" },
      "at " + fmtPercent(rp.current) + " for " + fmtDuration(rp.held_seconds) + " of " + fmtDuration(rp.hold_seconds));
    const prog = h("span", { class: "fill" });
    prog.style.width = Math.min(100, rp.hold_seconds ? (100 * rp.held_seconds) / rp.hold_seconds : 0) + "%";
    const last = rp.last_decision;
    return h("div", { class: "ramp" }, steps, h("div", { class: "small" }, state), held, h("span", { class: "bar thin" }, prog),
      last ? h("div", { class: "small last", title: last.reason || "" },
        "last: ", h("strong", { text: last.action }), last.gate ? " (" + last.gate + ")" : "", " — ", last.reason || "") : null);
  }

  // dialog opens a modal with two steps: a form, then a confirmation.
  // spec: {title, fields(): [nodes], read(): {values} or throws Error,
  //        summary(values): [nodes], confirmLabel, danger, submit(values): Promise}
  function confirmDialog(spec) {
    const dlg = h("dialog", { class: "confirm", "data-dialog": spec.id });
    const err = h("p", { class: "error", role: "alert", hidden: true });
    const showErr = (e) => { err.textContent = e ? e.message || String(e) : ""; err.hidden = !e; };
    const body = h("div");
    let values = null;
    const stepForm = () => {
      showErr(null);
      const form = h("form", { method: "dialog", "data-step": "form" },
        spec.fields(),
        h("div", { class: "buttons" },
          h("button", { type: "button", class: "secondary", onclick: () => dlg.close(), text: "Cancel" }),
          h("button", { type: "submit", "data-action": "review", text: "Review…" })));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        try { values = spec.read(); } catch (e) { showErr(e); return; }
        stepConfirm();
      });
      set(body, form);
      const first = form.querySelector("input");
      if (first) first.focus();
    };
    const stepConfirm = () => {
      showErr(null);
      const confirm = h("button", { type: "button", class: spec.danger ? "danger" : "", "data-action": "confirm", text: spec.confirmLabel });
      confirm.addEventListener("click", async () => {
        confirm.disabled = true;
        showErr(null);
        try {
          await spec.submit(values);
          dlg.close();
        } catch (e) {
          showErr(e);
          confirm.disabled = false;
        }
      });
      set(body, h("div", { "data-step": "confirm" }, h("div", { class: "summary" }, spec.summary(values)),
        h("div", { class: "buttons" },
          h("button", { type: "button", class: "secondary", onclick: stepForm, text: "Back" }), confirm)));
      confirm.focus();
    };
    append(dlg, [h("h2", { text: spec.title }), body, err]);
    dlg.addEventListener("close", () => dlg.remove());
    document.body.appendChild(dlg);
    stepForm();
    dlg.showModal();
  }

  function field(label, input, hint) {
    return h("label", { class: "field" }, h("span", { text: label }), input, hint ? h("small", { class: "muted", text: hint }) : null);
  }

  function requireReason(input) {
    const v = input.value.trim();
    if (!v) throw new Error("A reason is required: it goes into the audit log.");
    return v;
  }

  // failing lists what is red on a route now, each as a sentence with its
  // numbers: a ramp gate that fails or whose value is above its limit, an
  // open circuit breaker. A route without a ramp has no diff-rate limit:
  // its diff rate is shown, never judged.
  function failing(r) {
    const out = [];
    for (const g of (r.ramp && r.ramp.gates) || []) {
      const label = (GATE_LABELS[g.name] || g.name).toLowerCase();
      const over = g.samples > 0 && g.value > g.limit;
      if (g.state === "fail") {
        out.push({ gate: g.name, text: label + " " + fmtGate(g.name, g.value) + " > limit " + fmtGate(g.name, g.limit) +
          (g.name === "latency_ratio" ? "" : " (lower bound " + fmtGate(g.name, g.lower) + ")") + " over " + fmtInt(g.samples) + " samples" });
      } else if (over) {
        out.push({ gate: g.name, text: label + " " + fmtGate(g.name, g.value) + " > limit " + fmtGate(g.name, g.limit) +
          " (not conclusive yet: " + fmtInt(g.samples) + " of " + fmtInt(g.min_samples) + " samples, bound " + fmtGate(g.name, g.bound) + ")" });
      }
    }
    for (const b of Object.keys(r.breakers || {}).sort()) {
      if (r.breakers[b] === "open") out.push({ breaker: b, text: "circuit breaker of " + b + " is open" });
    }
    return out;
  }

  // decisionFacts is what the promote dialog shows before anything is
  // typed: the gates with value, bound and limit, or for a route without a
  // ramp the window's diff rate with no limit to judge it by.
  function decisionFacts(app, r) {
    const rep = app.report(r.name);
    const rate = rep
      ? h("p", { "data-field": "dialog-diff-rate" }, "Diff rate, " + windowWords(app.win) + " (noise applied now): ",
        h("strong", { class: "rate " + (r.ramp ? rateClass(rep.diff_rate, rep.compared) : "none"), text: fmtRate(rep.diff_rate, rep.compared) }),
        " over " + fmtInt(rep.compared) + " compared" + (r.ramp ? "." : "; no limit: this route has no ramp (ramp.max_diff_rate), so nothing gates a promotion."))
      : null;
    return [rate, r.ramp ? h("div", { class: "dialog-gates" }, h("div", { class: "small muted", text: "Ramp gates (over the ramp's current step):" }), gateList(r.ramp)) : null];
  }

  function promoteDialog(app, r) {
    const current = r.serve_new;
    const red = failing(r);
    let next = r.ramp && r.ramp.next_step ? r.ramp.next_step : NEXT_STEPS.find((s) => s > current) || 100;
    const pct = h("input", { type: "number", name: "percent", min: 0, max: 100, step: 0.01, value: next, required: true });
    const reason = h("input", { type: "text", name: "reason", maxlength: 500, placeholder: "why (audit log)", required: true });
    const ack = h("input", { type: "checkbox", name: "acknowledge" });
    const redList = () => h("ul", null, red.map((f) => h("li", { "data-failing": f.gate || f.breaker, text: f.text })));
    confirmDialog({
      id: "promote",
      title: "Promote " + r.name,
      danger: red.length > 0,
      fields: () => [
        h("p", null, "Serving new now: ", h("strong", { text: fmtPercent(current) }), ". Sticky key: ", code(r.sticky || "none"), "."),
        decisionFacts(app, r),
        red.length ? h("div", { class: "failing", role: "alert", "data-field": "failing" }, h("strong", { text: "Failing now:" }), redList(),
          h("label", { class: "ack" }, ack, " Promote anyway: I have read what is failing")) : null,
        field("New percentage served by " + r.new, pct, "0–100, two decimals"),
        field("Reason", reason),
      ],
      read: () => {
        const p = Number(pct.value);
        if (pct.value === "" || !isFinite(p) || p < 0 || p > 100) throw new Error("The percentage must be a number from 0 to 100.");
        const v = { percent: Math.round(p * 100) / 100, reason: requireReason(reason) };
        if (red.length && !ack.checked && v.percent > current) {
          throw new Error("Failing: " + red.map((f) => f.text).join("; ") + ". Tick “Promote anyway” to promote regardless.");
        }
        return v;
      },
      summary: (v) => [
        h("p", { class: "big" }, "serve_new of ", h("strong", { text: r.name }), ": ",
          h("span", { class: "old", text: fmtPercent(current) }), " → ", h("span", { class: "new", text: fmtPercent(v.percent) })),
        red.length && v.percent > current ? h("div", { class: "failing", role: "alert", "data-field": "failing-confirm" },
          h("strong", { text: "Promoting while failing:" }), redList()) : null,
        h("p", { text: v.percent >= current
          ? "Requests whose bucket is below " + fmtPercent(v.percent) + " will be served by " + r.new + " from the next request; keys already on " + r.new + " stay there."
          : "Lowering the percentage moves keys back to " + r.legacy + "." }),
        h("p", null, "Reason: ", h("q", { text: v.reason })),
      ],
      confirmLabel: red.length ? "Promote anyway" : "Confirm promote",
      submit: async (v) => {
        const res = await app.api.post("/api/v1/routes/" + enc(r.name) + "/promote", v);
        app.toast(r.name + ": serve_new " + fmtPercent(current) + " → " + fmtPercent(v.percent) + " (rules version " + res.version + ")");
        app.poll();
      },
    });
  }

  function rollbackDialog(app, r) {
    const reason = h("input", { type: "text", name: "reason", maxlength: 500, placeholder: "why (audit log)", required: true });
    confirmDialog({
      id: "rollback",
      title: "Roll back " + r.name,
      danger: true,
      fields: () => [
        h("p", null, "Serving new now: ", h("strong", { text: fmtPercent(r.serve_new) }), ". A rollback sets it to 0%: every request goes to ", code(r.legacy), "."),
        field("Reason", reason),
      ],
      read: () => ({ reason: requireReason(reason) }),
      summary: (v) => [
        h("p", { class: "big" }, "serve_new of ", h("strong", { text: r.name }), ": ",
          h("span", { class: "old", text: fmtPercent(r.serve_new) }), " → ", h("span", { class: "new", text: "0%" })),
        h("p", { text: "Takes effect for the next request." + (r.ramp ? " The automatic ramp halts until someone promotes by hand." : "") }),
        h("p", null, "Reason: ", h("q", { text: v.reason })),
      ],
      confirmLabel: "Confirm rollback",
      submit: async (v) => {
        const res = await app.api.post("/api/v1/routes/" + enc(r.name) + "/rollback", v);
        app.toast(r.name + ": rolled back to 0% (rules version " + res.version + ")", "warn");
        app.poll();
      },
    });
  }

  function noiseDialog(app, route, path, done) {
    const reason = h("input", { type: "text", name: "reason", maxlength: 500, placeholder: "why this difference is harmless", required: true });
    confirmDialog({
      id: "noise",
      title: "Mark as noise",
      fields: () => [
        h("p", null, "Route ", h("strong", { text: route }), ", path ", code(path), "."),
        field("Reason", reason),
      ],
      read: () => ({ path: path, reason: requireReason(reason) }),
      summary: (v) => [
        h("p", null, "A difference at ", code(path), " on ", h("strong", { text: route }),
          " counts as noise, not as a mismatch — in the comparisons already made too, since noise is applied when numbers are read. It also covers everything below the path, and is saved before it takes effect."),
        h("p", null, "Reason: ", h("q", { text: v.reason })),
      ],
      confirmLabel: "Confirm: mark as noise",
      submit: async (v) => {
        await app.api.post("/api/v1/routes/" + enc(route) + "/noise", v);
        app.toast(path + " on " + route + " is marked as noise");
        done();
      },
    });
  }

  // The ramp's gates (GET /api/v1/routes: ramp.gates), shown beside the
  // Promote button: each with its value, the bound of its one-sided 95%
  // Wilson interval (the latency ratio has none), its limit and samples.
  const GATE_LABELS = { diff_rate: "Diff rate", error_rate: "Error rate", latency_ratio: "Latency ratio" };
  const GATE_STATES = { pass: "ok", hold: "warn", fail: "bad" };
  function fmtGate(name, v) {
    if (v === undefined || v === null) return "—";
    if (name === "latency_ratio") return v.toFixed(2) + "×";
    return String(Math.round(v * 10000) / 100) + "%";
  }
  function gateList(rp) {
    if (!rp) return null;
    const gates = rp.gates || [];
    if (!gates.length) return h("div", { class: "gates small muted", "data-field": "gates", text: "gates: not evaluated yet" });
    return h("div", { class: "gates", "data-field": "gates" }, gates.map((g) =>
      h("div", { class: "gate", "data-gate": g.name, "data-state": g.state, title: g.reason || "" },
        badge(g.state, GATE_STATES[g.state] || "", g.reason || ""), " ",
        h("strong", { text: GATE_LABELS[g.name] || g.name }), " ",
        h("span", { "data-part": "value", text: fmtGate(g.name, g.value) }),
        h("span", { class: "muted", text: " · bound " }), h("span", { "data-part": "bound", text: fmtGate(g.name, g.bound) }),
        h("span", { class: "muted", text: " · limit " }), h("span", { "data-part": "limit", text: fmtGate(g.name, g.limit) }),
        h("span", { class: "muted", text: " · n " }), h("span", { "data-part": "samples", text: fmtInt(g.samples) + "/" + fmtInt(g.min_samples) }))));
  }

  function actionButtons(app, r) {
    if (!r.new) return h("span", { class: "muted", text: "pass-through" });
    const red = failing(r);
    return h("div", { class: "actions" },
      h("button", { type: "button", class: red.length ? "risky" : null, "data-action": "promote", "data-red": red.length ? "1" : "0",
        title: red.length ? "Failing: " + red.map((f) => f.text).join("; ") : "change serve_new, with a reason and a confirmation",
        onclick: () => promoteDialog(app, r), text: red.length ? "⚠ Promote…" : "Promote…" }),
      h("button", { type: "button", class: "danger-outline", "data-action": "rollback", disabled: r.serve_new === 0 && !r.ramp ? true : null,
        onclick: () => rollbackDialog(app, r), text: "Roll back…" }),
      gateList(r.ramp));
  }

  // -------------------------------------------------------------- views

  // Column heads and what they mean, shown on hover and on focus.
  const HELP = {
    route: "the route's name, its backends (legacy → new) and its sticky key",
    serving: "serve_new: the share of requests new serves, as set now; and the share mirrored to the shadow side",
    requests: "every answer the route's clients got in the window, by who served it (legacy, new, tandem itself)",
    compared: "mirrored exchanges whose two responses were compared in the window: matched + mismatched + noise + compare errors",
    diffRate: "mismatched ÷ compared in the window, noise applied as the noise model stands now; the line is the rate per bucket from stored minutes",
    breakers: "the circuit breaker of each backend: closed (healthy), half-open (probing), open (shadow traffic stopped)",
    ramp: "the automatic ramp: its steps, where it is and what it decided last",
    actions: "promote or roll back by hand; the ramp's gates (value, upper bound of the 95% interval, limit, samples) beside",
    count: "exchanges with a difference at this path in the window",
    rate: "count ÷ compared in the window",
    noise: "whether the noise model, as it stands now, calls a difference here noise (learned or marked): noise does not count as a mismatch",
    example: "the newest stored sample with a difference here",
    p50: "the median latency of the compared exchanges in the window",
    p99: "the latency 99% of the compared exchanges in the window were faster than",
    instance: "a live instance of the fleet (fleet.instance); choose one to narrow the numbers to what it served and compared",
    applied: "the rules version this instance has in force",
    lastSeen: "when this instance last wrote its registry row; one not seen for a while drops off the list",
  };
  function helpTh(label, help) {
    if (!help) return h("th", { text: label });
    return h("th", null, h("abbr", { title: help, tabindex: "0", "data-help": help, text: label }));
  }

  class OverviewView {
    constructor(app) { this.app = app; this.name = "overview"; }

    mount(main) {
      this.notice = h("div");
      this.fleetBox = h("section", { id: "fleet", hidden: true });
      this.body = h("div", null, loading("Loading routes…"));
      this.sub = h("p", { class: "sub" });
      append(main, [
        h("div", { class: "view-head row" }, h("div", null, h("h1", { text: "Routes" }), this.sub), h("span", { class: "spacer" }),
          this.app.instancePicker(), this.app.windowPicker()),
        this.fleetBox, this.notice, this.body,
      ]);
      if (this.app.routes) this.onRoutes(this.app.routes);
      else if (this.app.routesError) this.onRoutesError(this.app.routesError);
    }

    onRoutes(routes) {
      const app = this.app;
      const scope = app.scopeWords();
      this.sub.textContent = "Settings, breakers and ramps live from GET /api/v1/routes every " + POLL_MS / 1000 +
        " s; requests, comparisons, diff rate and trend over the " + windowWords(app.win) + ", from stored minutes" +
        (scope ? " of " + scope : "") + ".";
      this.renderFleet(app.fleet);
      if (!routes.length) {
        this.notice.replaceChildren();
        set(this.body, empty("No routes configured.", "Add routes to the config file (routes:) or PUT /api/v1/rules."));
        app.ready(this);
        return;
      }
      const total = routes.reduce((s, r) => s + (r.requests || 0), 0);
      set(this.notice, total === 0
        ? h("div", { class: "state empty", "data-empty": "no-traffic" }, h("strong", { text: "No traffic yet." }),
          h("p", { text: "Requests sent to the proxy listener show up here within a few seconds." }))
        : null);
      const heads = [["Route", HELP.route], ["Serving new", HELP.serving], ["Requests", HELP.requests], ["Compared", HELP.compared],
        ["Diff rate", HELP.diffRate], ["Breakers", HELP.breakers], ["Ramp", HELP.ramp], ["Actions", HELP.actions]];
      const table = h("table", { class: "grid routes", id: "routes-table" },
        h("thead", null, h("tr", null, heads.map((x) => helpTh(x[0], x[1])))),
        h("tbody", null, routes.map((r) => this.row(r))));
      set(this.body, h("div", { class: "table-wrap routes-wrap" }, table));
      if (app.windowData) app.ready(this);
    }

    row(r) {
      const app = this.app;
      const rep = app.report(r.name);
      const wait = (field) => h("td", { class: "num", "data-field": field, "data-label": field }, h("span", { class: "muted", text: "…" }));
      const cell = (label, attrs, ...kids) => h("td", Object.assign({ "data-label": label }, attrs), kids);
      return h("tr", { "data-route": r.name },
        cell("Route", { class: "name" }, link("#/route/" + enc(r.name), r.name),
          h("div", { class: "backends small" }, code(r.legacy), r.new ? [" → ", code(r.new)] : h("span", { class: "muted", text: " pass-through" })),
          h("div", { class: "muted small", text: r.sticky && r.sticky !== "none" ? "sticky " + r.sticky : "not sticky" })),
        cell("Serving new", { "data-field": "serve_new", "data-value": r.serve_new }, pctBar(r.serve_new, "new"),
          h("div", { class: "muted small", "data-field": "mirror", "data-value": r.mirror, text: "mirror " + fmtPercent(r.mirror) })),
        rep ? cell("Requests", { class: "num", "data-field": "requests", "data-value": rep.requests }, h("div", { text: fmtInt(rep.requests) }),
          h("div", { class: "muted small", text: "legacy " + fmtInt(rep.served_legacy) + " · new " + fmtInt(rep.served_new) +
            (rep.served_tandem ? " · tandem " + fmtInt(rep.served_tandem) : "") +
            (rep.fallback ? " · fallback " + fmtInt(rep.fallback) : "") }),
          servedErrorsLine(rep.served_errors)) : wait("requests"),
        rep ? cell("Compared", { class: "num", "data-field": "compared", "data-value": rep.compared }, h("div", { text: fmtInt(rep.compared) }),
          h("div", { class: "muted small", text: fmtInt(rep.mismatched) + " mismatched · " + fmtInt(rep.noise) + " noise" })) : wait("compared"),
        rep ? cell("Diff rate", { "data-field": "diff_rate", "data-value": rep.diff_rate },
          h("div", { class: "rate " + rateClass(rep.diff_rate, rep.compared), text: fmtRate(rep.diff_rate, rep.compared),
            title: "the report's diff rate over the " + windowWords(app.win) + ", noise applied as the noise model stands now" }),
          app.win.ms ? null : recordTimeRate(r),
          sparkline(app, app.series(r.name))) : wait("diff_rate"),
        cell("Breakers", { "data-field": "breakers" }, breakerBadges(r.breakers)),
        cell("Ramp", { "data-field": "ramp" }, rampCell(r.ramp)),
        cell("Actions", { class: "actions-cell" }, actionButtons(app, r)));
    }

    // renderFleet shows, in a fleet, the database's state (a notice when it
    // is unreachable from here) and the live instances: name, the rules
    // version each has applied, when each was last seen.
    renderFleet(fl) {
      const box = this.fleetBox;
      box.hidden = !fl;
      if (!fl) { box.replaceChildren(); return; }
      const newest = Math.max(0, ...fl.instances.map((i) => i.applied_version || 0));
      const degraded = fl.state === "degraded"
        ? h("div", { class: "state error fleet-degraded", role: "alert", id: "fleet-degraded", "data-fleet": "degraded" },
          h("strong", { text: "fleet: degraded" }),
          h("p", { text: "The fleet's database is unreachable from this instance (" + (fl.instance || "?") + "). It goes on serving with the rules in force; " +
            "rule changes get 503 until the database is back; report data is buffered within a bound (then dropped and counted) and catches up when it returns. " +
            "The instances below are as last read." }))
        : null;
      const rows = fl.instances.map((i) => h("tr", { "data-instance": i.name, class: i.name === this.app.inst ? "chosen" : null },
        h("td", { "data-field": "name" }, h("a", { href: "#", "data-pick": i.name, title: "narrow the numbers to this instance", text: i.name,
          onclick: (ev) => { ev.preventDefault(); this.app.setParam("instance", i.name); } }),
        i.self || i.name === fl.instance ? [" ", badge("this one", "muted-badge", "the instance this page talks to")] : null),
        h("td", { class: "num", "data-field": "applied_version", "data-value": i.applied_version },
          "v" + i.applied_version, i.applied_version < newest ? [" ", badge("behind", "warn", "has not applied rules version " + newest + " yet")] : null),
        h("td", { "data-field": "last_seen", title: fmtTime(i.last_seen), text: fmtAgo(i.last_seen) }),
        h("td", { class: "muted", "data-field": "started_at", title: fmtTime(i.started_at), text: fmtAgo(i.started_at) })));
      set(box, degraded,
        h("div", { class: "fleet-head" }, h("h2", null, "Instances ", h("span", { class: "muted small", "data-field": "fleet-state",
          text: fl.instances.length + " live · database " + fl.state })),
        this.app.inst ? h("button", { type: "button", class: "link", onclick: () => this.app.setParam("instance", ""), text: "show all instances" }) : null),
        h("div", { class: "table-wrap" }, h("table", { class: "grid compact instances", id: "instances" },
          h("thead", null, h("tr", null, helpTh("Instance", HELP.instance), helpTh("Rules applied", HELP.applied), helpTh("Last seen", HELP.lastSeen), h("th", { text: "Started" }))),
          h("tbody", null, rows))));
    }

    onRoutesError(e) {
      if (this.app.routes) return; // the banner says it; keep the last numbers
      set(this.body, errorBox("Could not load the routes.", e));
      this.app.ready(this);
    }
  }

  class RouteView {
    constructor(app, route) {
      this.app = app;
      this.name = "route";
      this.routeName = route;
      this.pathFilter = "";
      this.marked = new Set();
      this.alive = true;
    }

    mount(main) {
      const r = this.routeName;
      this.live = h("div", { class: "cards" });
      this.actions = h("div", { class: "decision", id: "decision" });
      this.trend = h("section", { id: "trend" });
      this.reportBox = h("div", null, loading("Loading the report…"));
      this.samplesBox = h("div", null, loading("Loading samples…"));
      this.updated = h("span", { class: "muted small" });
      append(main, [
        h("div", { class: "crumbs" }, link("#/", "Overview"), " › ", h("span", { text: r })),
        h("div", { class: "view-head row" }, h("h1", { text: r }), h("span", { class: "spacer" }), this.updated,
          h("button", { type: "button", class: "secondary", onclick: () => this.load(), text: "Refresh" })),
        h("div", { class: "toolbar row" }, this.app.windowPicker(), this.app.instancePicker()),
        this.actions,
        this.live,
        this.trend,
        h("section", null, this.reportBox),
        h("section", null, h("h2", null, "Recent mismatch samples ", h("span", { class: "muted small", text: windowWords(this.app.win) })), this.samplesBox),
      ]);
      this.onRoutes(this.app.routes || []);
      this.load();
    }

    destroy() { this.alive = false; }

    onRoutes(routes) {
      const r = routes.find((x) => x.name === this.routeName);
      if (!r) { this.live.replaceChildren(); this.actions.replaceChildren(); return; }
      set(this.actions, actionButtons(this.app, r));
      const card = (label, value, field, cls) => h("div", { class: "card " + (cls || ""), "data-field": field },
        h("div", { class: "label", text: label }), h("div", { class: "value" }, value));
      const rep = this.app.report(r.name);
      const win = this.app.win.ms ? this.app.win.label : "all";
      set(this.live,
        card("Serving new (live)", pctBar(r.serve_new, "new"), "serve_new"),
        card("Mirror", fmtPercent(r.mirror), "mirror"),
        card("Requests (" + win + ")", rep ? fmtInt(rep.requests) : "…", "requests"),
        card("Errors served (" + win + ")", rep ? h("span", { class: servedErrorsTotal(rep.served_errors) ? "bad-text" : "", text: fmtInt(servedErrorsTotal(rep.served_errors)) }) : "…", "served_errors"),
        card("Diff rate (" + win + ")", rep ? h("span", null, h("span", { class: "rate " + rateClass(rep.diff_rate, rep.compared), "data-value": rep.diff_rate, text: fmtRate(rep.diff_rate, rep.compared) }), " ",
          sparkline(this.app, this.app.series(r.name)), this.app.win.ms ? null : recordTimeRate(r)) : "…", "diff_rate"),
        card("Breakers", breakerBadges(r.breakers), "breakers"),
        card("Ramp", rampCell(r.ramp), "ramp", "wide"));
      const pts = this.app.series(r.name);
      const gate = (name) => ((r.ramp && r.ramp.gates) || []).find((g) => g.name === name);
      if (pts) {
        const dg = gate("diff_rate");
        set(this.trend, h("h2", null, "Trend ", h("span", { class: "muted small", text: "per " + STEP_WORDS[this.app.windowData.step] + ", " + windowWords(this.app.win) + ", from stored minutes" })),
          h("div", { class: "charts" },
            trendChart(this.app, pts, { id: "chart-diff-rate", title: "Diff rate", lines: [{ key: "diff_rate", cls: "rate", label: "diff rate" }],
              fmt: (v) => fmtRate(v, 1), limit: dg ? dg.limit : null, only: (p) => p.compared > 0 }),
            trendChart(this.app, pts, { id: "chart-requests", title: "Requests and errors served", lines: [{ key: "requests", cls: "requests", label: "requests" },
              { key: (p) => servedErrorsTotal(p.served_errors), cls: "errors", label: "errors served" }], fmt: (v) => fmtInt(Math.round(v)) }),
            trendChart(this.app, pts, { id: "chart-p99", title: "p99 latency", lines: [{ key: "legacy_p99_ms", cls: "legacy", label: "legacy" },
              { key: "new_p99_ms", cls: "new", label: "new" }], fmt: fmtMS, only: (p) => p.compared > 0 })));
      }
    }

    async load() {
      const name = this.routeName;
      const since = sinceOf(this.app.win);
      const inst = this.app.inst;
      const q = "route=" + enc(name) + (since ? "&since=" + enc(since) : "") + (inst ? "&" + instQuery(inst) : "");
      const pf = this.pathFilter ? "&path=" + enc(this.pathFilter) : "";
      const [rep, smp] = await Promise.allSettled([
        this.app.api.json("/api/v1/report?" + q),
        this.app.api.json("/api/v1/diffs?" + q + "&limit=50" + pf),
      ]);
      if (!this.alive) return;
      if (rep.status === "fulfilled") {
        const rr = (rep.value.routes || []).find((x) => x.route === name);
        set(this.reportBox, rr ? this.renderReport(rr) : empty("No report for this route."));
      } else if (rep.reason.status === 404) {
        set(this.reportBox, errorBox("No route named " + name + ".", rep.reason), link("#/", "Back to the overview"));
      } else {
        set(this.reportBox, errorBox("Could not load the report.", rep.reason));
      }
      if (smp.status === "fulfilled") set(this.samplesBox, this.renderSamples(smp.value.diffs || []));
      else set(this.samplesBox, errorBox("Could not load the samples.", smp.reason));
      this.updated.textContent = "report at " + fmtTime(new Date());
      this.app.ready(this);
    }

    renderReport(rep) {
      const stat = (label, value, field, cls, help) => h("div", { class: "stat " + (cls || ""), "data-field": field },
        h("div", { class: "label" }, help ? h("abbr", { title: help, tabindex: "0", "data-help": help, text: label }) : label), h("div", { class: "value", text: value }));
      const skipped = Object.entries(rep.skipped || {}).filter((e) => e[1] > 0);
      const out = [
        h("h2", null, "Report ", h("span", { class: "muted small", "data-field": "r-since", text: windowWords(this.app.win) + (rep.since && !rep.since.startsWith("0001") ? ", since " + fmtTime(rep.since) : "") +
          (this.app.scopeWords() ? ", " + this.app.scopeWords() : "") })),
        h("div", { class: "stats" },
          stat("Requests", fmtInt(rep.requests), "r-requests"),
          stat("Errors served", fmtInt(servedErrorsTotal(rep.served_errors)), "r-served_errors", servedErrorsTotal(rep.served_errors) ? "bad" : ""),
          stat("Mirrored", fmtInt(rep.mirrored), "r-mirrored"),
          stat("Compared", fmtInt(rep.compared), "r-compared", "", HELP.compared),
          stat("Matched", fmtInt(rep.matched), "r-matched", "ok"),
          stat("Mismatched", fmtInt(rep.mismatched), "r-mismatched", rep.mismatched ? "bad" : ""),
          stat("Noise", fmtInt(rep.noise), "r-noise", "", HELP.noise),
          stat("Diff rate", fmtRate(rep.diff_rate, rep.compared), "r-diff_rate", rateClass(rep.diff_rate, rep.compared), HELP.diffRate),
          stat("Failed in comparisons legacy / new", fmtInt(rep.legacy_errors) + " / " + fmtInt(rep.new_errors), "r-errors", rep.new_errors > rep.legacy_errors ? "warn" : ""),
          stat("Compare errors", fmtInt(rep.compare_errors), "r-compare_errors")),
        h("p", { class: "muted small", "data-field": "r-served" }, "Served by legacy " + fmtInt(rep.served_legacy) + " · new " + fmtInt(rep.served_new) +
          " · tandem " + fmtInt(rep.served_tandem) + "; errors served by legacy " + fmtInt((rep.served_errors || {}).legacy) +
          " · new " + fmtInt((rep.served_errors || {}).new) + " · tandem " + fmtInt((rep.served_errors || {}).tandem) +
          " (tandem's own answers: refused bodies and requests it cannot forward)."),
        h("p", { class: "muted small" }, "Shadows skipped: ",
          skipped.length ? skipped.map((e, i) => [i ? ", " : "", code(e[0]), " " + fmtInt(e[1])]) : "none"),
        this.renderLatency(rep.latency || {}),
        h("h2", { text: "Differences" }),
        this.renderDiffs(rep),
      ];
      return h("div", null, out);
    }

    renderLatency(l) {
      const max = Math.max(l.legacy_p99_ms || 0, l.new_p99_ms || 0, 0.001);
      const bar = (v, cls) => {
        const f = h("span", { class: "fill " + cls });
        f.style.width = ((100 * (v || 0)) / max).toFixed(1) + "%";
        return h("span", { class: "bar" }, f);
      };
      const row = (side, p50, p99) => h("tr", { "data-side": side }, h("th", { text: side }),
        h("td", { class: "num", "data-field": "p50", text: fmtMS(p50) }), h("td", null, bar(p50, side)),
        h("td", { class: "num", "data-field": "p99", text: fmtMS(p99) }), h("td", null, bar(p99, side)));
      const ratio = l.legacy_p99_ms && l.new_p99_ms ? l.new_p99_ms / l.legacy_p99_ms : 0;
      return h("div", { class: "latency" }, h("h2", { text: "Latency" }),
        !l.legacy_p99_ms && !l.new_p99_ms ? empty("No latency observed yet.") :
          h("table", { class: "grid compact", id: "latency" },
            h("thead", null, h("tr", null, h("th"), helpTh("p50", HELP.p50), h("th"), helpTh("p99", HELP.p99), h("th"))),
            h("tbody", null, row("legacy", l.legacy_p50_ms, l.legacy_p99_ms), row("new", l.new_p50_ms, l.new_p99_ms))),
        ratio ? h("p", { class: "muted small", text: "new p99 is " + ratio.toFixed(2) + "× legacy p99" }) : null);
    }

    renderDiffs(rep) {
      const diffs = rep.diffs || [];
      if (!diffs.length) {
        return rep.compared
          ? empty("No differences.", "Every compared pair in this window matched.")
          : empty("No comparisons yet.", "Mirrored requests are compared as they arrive; differences are grouped here by kind and path.");
      }
      const kinds = [...new Set(diffs.map((d) => d.kind))].sort((a, b) => KIND_ORDER.indexOf(a) - KIND_ORDER.indexOf(b));
      return kinds.map((kind) => {
        const rows = diffs.filter((d) => d.kind === kind);
        const total = rows.reduce((s, d) => s + d.count, 0);
        return h("div", { class: "kind-group", "data-kind": kind },
          h("h3", null, badge(kind, "kind " + kind), " ", h("span", { class: "muted small", text: rows.length + (rows.length === 1 ? " path, " : " paths, ") + fmtInt(total) + " differences" })),
          h("table", { class: "grid diffs" },
            h("thead", null, h("tr", null, [["Path"], ["Count", HELP.count], ["Rate", HELP.rate], ["Noise", HELP.noise], ["Example", HELP.example], [""]].map((x) => helpTh(x[0], x[1])))),
            h("tbody", null, rows.map((d) => this.diffRow(d)))));
      });
    }

    diffRow(d) {
      const marked = d.noise || this.marked.has(d.path);
      const rate = h("span", { class: "fill bad" });
      rate.style.width = Math.min(100, d.rate * 100).toFixed(1) + "%";
      const pathLink = h("a", { href: "#", class: "path", title: "show the samples with a difference here", text: d.path });
      pathLink.addEventListener("click", (ev) => { ev.preventDefault(); this.filterSamples(d.path); });
      let action;
      if (marked) action = h("span", { class: "muted small", text: d.noise ? "noise" : "marked" });
      else if (!d.path.startsWith("$")) action = null;
      else action = h("button", { type: "button", class: "small-btn", "data-action": "noise",
        onclick: () => noiseDialog(this.app, this.routeName, d.path, () => { this.marked.add(d.path); this.load(); }), text: "Mark as noise" });
      return h("tr", { "data-path": d.path, class: d.noise ? "is-noise" : null },
        h("td", null, pathLink),
        h("td", { class: "num", "data-field": "count", text: fmtInt(d.count) }),
        h("td", { class: "rate-cell" }, h("span", { text: fmtRate(d.rate, 1) }), h("span", { class: "bar thin" }, rate)),
        h("td", null, d.noise ? badge("noise", "muted-badge", "noise by the noise model as it is now (learned or marked)") : h("span", { class: "muted", text: "—" })),
        h("td", null, d.example_id ? link("#/sample/" + enc(d.example_id), "sample →") : h("span", { class: "muted", text: "none kept" })),
        h("td", null, action));
    }

    filterSamples(path) {
      this.pathFilter = path;
      set(this.samplesBox, loading("Loading samples…"));
      this.load();
      this.samplesBox.scrollIntoView({ behavior: "smooth", block: "start" });
    }

    renderSamples(list) {
      const filter = this.pathFilter ? h("p", { class: "filter" }, "Only samples with a difference at ", code(this.pathFilter), " ",
        h("button", { type: "button", class: "link", onclick: () => this.filterSamples(""), text: "show all" })) : null;
      if (!list.length) return [filter, empty("No samples stored.", "Mismatching exchanges are kept as samples (capped per path, expiring after the retention period).")];
      return [filter, h("div", { class: "table-wrap" }, h("table", { class: "grid samples", id: "samples" },
        h("thead", null, h("tr", null, [["Time"], ["Request"], ["Served by", "the side whose answer the client got"], ["Outcome", "the sample's differences as the noise model reads them now: mismatch if any counts, noise if all are noise"], ["Status legacy → new"], ["Differences"]].map((x) => helpTh(x[0], x[1])))),
        h("tbody", null, list.map((s) => {
          const paths = s.diff_paths || [];
          return h("tr", { "data-sample": s.id },
            h("td", { class: "nowrap", title: s.at }, link("#/sample/" + enc(s.id), fmtTime(s.at))),
            h("td", null, code(s.method + " " + s.path), h("div", { class: "small" }, requestLink(s.request_id))),
            h("td", { text: s.served_by }),
            h("td", { "data-field": "outcome" }, badge(s.outcome, "outcome " + s.outcome)),
            h("td", { class: s.legacy_status !== s.new_status ? "differs" : null, text: s.legacy_status + " → " + s.new_status }),
            h("td", { class: "paths" }, paths.slice(0, 4).map((p) => code(p)), paths.length > 4 ? h("span", { class: "muted", text: " +" + (paths.length - 4) }) : null));
        }))))];
    }
  }

  // ------------------------------------------------------------- sample

  function decodeBase64(b64) {
    if (!b64) return new Uint8Array(0);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function sniffImage(bytes) {
    const b = bytes;
    const starts = (...sig) => sig.every((v, i) => b[i] === v);
    if (b.length >= 3 && starts(0xff, 0xd8, 0xff)) return "jpeg";
    if (starts(0x89, 0x50, 0x4e, 0x47)) return "png";
    if (starts(0x47, 0x49, 0x46, 0x38)) return "gif";
    if (b.length >= 12 && starts(0x52, 0x49, 0x46, 0x46) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return "webp";
    if (starts(0x42, 0x4d) && b.length >= 18) return "bmp";
    return "";
  }

  function headerValue(side, name) {
    const f = (side.header || []).find((x) => x.Name.toLowerCase() === name.toLowerCase());
    return f ? f.Value : "";
  }

  // parsePath splits a difference path into display segments:
  // $.items[3]["odd key"].w → ["items", "[3]", "odd key", "w"].
  function parsePath(p) {
    const segs = [];
    let i = p.startsWith("$") ? 1 : 0;
    while (i < p.length) {
      if (p[i] === ".") {
        let j = i + 1;
        while (j < p.length && p[j] !== "." && p[j] !== "[") j++;
        segs.push(p.slice(i + 1, j));
        i = j;
      } else if (p[i] === "[") {
        const q = p[i + 1];
        if (q === '"' || q === "'") {
          let j = i + 2;
          while (j < p.length && p[j] !== q) j += p[j] === "\\" ? 2 : 1;
          const raw = p.slice(i + 1, j + 1);
          let key = raw.slice(1, -1);
          if (q === '"') { try { key = JSON.parse(raw); } catch (e) { /* keep raw */ } }
          segs.push(key);
          i = p.indexOf("]", j) + 1 || p.length;
        } else {
          const j = p.indexOf("]", i);
          segs.push(p.slice(i, j < 0 ? p.length : j + 1));
          i = j < 0 ? p.length : j + 1;
        }
      } else {
        segs.push(p.slice(i));
        break;
      }
    }
    return segs;
  }

  // Limits, not values: for these paths Legacy holds the route's limit and
  // New the measurement (compare/image.go).
  const MEASURED = { "$.image.psnr": true, "$.image.ssim": true, "$.image.mean_shift": true };

  function diffValues(d) {
    const missing = (v) => v === "<missing>" || v === "";
    const val = (v, cls) => h("span", { class: "val " + cls + (missing(v) ? " missing" : ""), text: missing(v) ? "(absent)" : v });
    if (MEASURED[d.path]) {
      // The measurement failed its limit: the failing colour, not new's.
      return [h("span", { class: "muted small", text: "limit " }), val(d.legacy, "limit"), h("span", { class: "muted small", text: " measured " }), val(d.new, d.noise ? "limit" : "failing")];
    }
    return [val(d.legacy, "old"), h("span", { class: "arrow", text: " → " }), val(d.new, "new")];
  }

  function diffTree(diffs) {
    const root = { children: new Map(), diffs: [] };
    for (const d of diffs) {
      let node = root;
      const segs = parsePath(d.path);
      if (!segs.length) segs.push("$");
      for (const s of segs) {
        if (!node.children.has(s)) node.children.set(s, { children: new Map(), diffs: [] });
        node = node.children.get(s);
      }
      node.diffs.push(d);
    }
    const render = (node) => h("ul", { class: "tree" }, [...node.children.entries()].map(([label, child]) =>
      h("li", { class: child.diffs.length ? "leaf" : "branch" },
        h("span", { class: "key", text: label }),
        child.diffs.map((d) => h("span", { class: "change" + (d.noise ? " is-noise" : ""), "data-path": d.path },
          " ", badge(d.kind, "kind " + d.kind), " ", diffValues(d), d.noise ? [" ", badge("noise", "muted-badge")] : null)),
        child.children.size ? render(child) : null)));
    return h("div", { class: "tree-root" }, h("span", { class: "key root", text: "$" }), render(root));
  }

  class SampleView {
    constructor(app, id) {
      this.app = app;
      this.name = "sample";
      this.id = id;
      this.urls = [];
      this.alive = true;
    }

    destroy() {
      this.alive = false;
      for (const u of this.urls) URL.revokeObjectURL(u);
    }

    mount(main) {
      this.main = main;
      main.appendChild(loading("Loading sample " + this.id + "…"));
      this.load();
    }

    async load() {
      let d;
      try {
        d = await this.app.api.json("/api/v1/diffs/" + enc(this.id));
      } catch (e) {
        if (!this.alive) return;
        set(this.main, h("div", { class: "crumbs" }, link("#/", "Overview")),
          errorBox(e.status === 404 ? "No sample " + this.id + " (expired or never stored)." : "Could not load the sample.", e));
        this.app.ready(this);
        return;
      }
      if (!this.alive) return;
      this.render(d);
    }

    render(d) {
      const lb = decodeBase64(d.legacy.body), nb = decodeBase64(d.new.body);
      const diffs = d.diffs || [];
      const images = diffs.some((x) => x.kind === "image") || sniffImage(lb) || sniffImage(nb);
      const imgPending = [];
      set(this.main, 
        h("div", { class: "crumbs" }, link("#/", "Overview"), " › ", link("#/route/" + enc(d.route), d.route), " › ", h("span", { text: "sample " + d.id })),
        h("div", { class: "view-head" }, h("h1", null, code(d.method + " " + d.path)),
          h("p", { class: "sub" }, badge(d.outcome, "outcome " + d.outcome), " request ", requestLink(d.request_id), " · served by ",
            h("strong", { text: d.served_by }), " · ", fmtTime(d.at), " (" + fmtAgo(d.at) + ")")),
        h("section", null, h("h2", { text: "Responses" }), this.renderSides(d)),
        images ? h("section", { id: "images" }, h("h2", { text: "Images" }), this.renderImages(d, imgPending)) : null,
        h("section", null, h("h2", null, "Differences ", h("span", { class: "muted small", text: diffs.length + " found" })), this.renderDiffs(diffs)),
        images ? null : h("section", null, h("h2", { text: "Bodies" }), this.renderBodies(d, lb, nb)));
      Promise.allSettled(imgPending).then(() => this.app.ready(this));
    }

    renderSides(d) {
      const l = d.legacy, n = d.new;
      // A header difference counts unless the noise model calls it noise
      // now (the API's noise flags are read-time, like the badges).
      const headerOf = (x) => x.path.replace(/^\$\.header\.?/, "").replace(/^\["?|"?\]$/g, "").toLowerCase();
      const hdrDiffs = (d.diffs || []).filter((x) => x.kind === "header");
      const realHeaders = new Set(hdrDiffs.filter((x) => !x.noise).map(headerOf));
      const noiseHeaders = new Set(hdrDiffs.filter((x) => x.noise).map(headerOf));
      const meta = (side, s, o) => {
        const row = (label, value, differs, field) => h("tr", { class: differs ? "differs" : null, "data-field": field },
          h("th", { text: label }), h("td", null, value));
        return h("div", { class: "side " + side, "data-side": side },
          h("h3", null, side, " ", d.served_by === side ? badge("served", "ok") : badge("shadow", "muted-badge")),
          h("table", { class: "kv" }, h("tbody", null,
            row("Status", h("strong", { text: s.status || "—" }), s.status !== o.status, "status"),
            s.error ? row("Error", h("span", { class: "bad-text", text: s.error }), true, "error") : null,
            row("Size", fmtBytes(s.size) + (s.body_truncated ? " (stored in part)" : ""), s.size !== o.size, "size"),
            row("SHA-256", h("code", { class: "hash", title: s.sha256, text: s.sha256 ? s.sha256.slice(0, 16) + "…" : "—" }), s.sha256 !== o.sha256, "sha256"),
            row("Latency", fmtMS(s.latency_ms), false, "latency"))));
      };
      const names = new Map();
      for (const f of (l.header || []).concat(n.header || [])) if (!names.has(f.Name.toLowerCase())) names.set(f.Name.toLowerCase(), f.Name);
      const values = (side, key) => (side.header || []).filter((f) => f.Name.toLowerCase() === key).map((f) => f.Value).join(", ");
      const rows = [...names.keys()].sort().map((key) => {
        const lv = values(l, key), nv = values(n, key);
        const differs = lv !== nv;
        const real = realHeaders.has(key);
        const noise = !real && noiseHeaders.has(key);
        const cls = real ? "diff-real" : noise ? "diff-noise" : differs ? "diff-ignored" : null;
        const state = real ? "counts" : noise ? "noise" : differs ? "ignored" : "equal";
        const cell = (v) => h("td", { class: v === "" ? "muted" : null, text: v === "" ? "(absent)" : v });
        return h("tr", { class: cls, "data-header": names.get(key), "data-state": state,
          title: real ? "differs and counts (a mismatch)" : noise ? "differs, noise: the noise model does not count it" : differs ? "differs, not compared (hop-by-hop or ignored header)" : null },
          h("th", null, names.get(key), noise ? [" ", badge("noise", "muted-badge")] : null), cell(lv), cell(nv));
      });
      return [
        h("div", { class: "sides" }, meta("legacy", l, n), meta("new", n, l)),
        h("h3", { text: "Headers" }),
        rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "grid headers", id: "headers" },
          h("thead", null, h("tr", null, h("th", { text: "Header" }), h("th", { text: "legacy" }), h("th", { text: "new" }))),
          h("tbody", null, rows))) : empty("No headers stored."),
        h("p", { class: "legend small" }, h("span", { class: "swatch diff-real" }), " differs and counts  ",
          h("span", { class: "swatch diff-noise" }), " differs, noise (does not count)  ",
          h("span", { class: "swatch diff-ignored" }), " differs, not compared (hop-by-hop or ignored header)"),
      ];
    }

    renderImages(d, pending) {
      const byPath = {};
      for (const x of d.diffs || []) if (x.kind === "image") byPath[x.path] = x;
      const base = "/api/v1/diffs/" + enc(d.id);
      // Dimensions as decoded by the browser, filled in when each image loads.
      const dims = { legacy: [], new: [] };
      const dimsOf = (key) => { const el = h("span", { class: "dims", text: "…" }); dims[key].push(el); return el; };
      const figure = (key, label, path, caption) => {
        const box = h("div", { class: "img-box" }, loading("Loading…"));
        const fig = h("figure", { "data-figure": key }, box, h("figcaption", null, h("strong", { text: label }), caption));
        pending.push(this.loadImage(box, base + path, label + " image", key, dims[key] || []));
        return fig;
      };
      const measure = (label, field, node) => h("div", { class: "measure", "data-measure": field }, h("div", { class: "label", text: label }), h("div", { class: "value" }, node));
      const psnr = byPath["$.image.psnr"], ssim = byPath["$.image.ssim"], shift = byPath["$.image.mean_shift"], dim = byPath["$.image.dimensions"];
      // "ΔE00 3.12 (R+4.40 G+1.70 B+3.30)": the colour difference judged,
      // then the per-channel shift as chips.
      const shiftChips = (s) => {
        const out = [];
        const de = /^(ΔE00 \d+(?:\.\d+)?) \(/.exec(s);
        if (de) out.push(h("strong", { class: "bad-text failing", text: de[1] }), " (");
        const re = /([RGB])([+-]?\d+(?:\.\d+)?)/g;
        let m;
        while ((m = re.exec(s))) out.push(h("span", { class: "chan chan-" + m[1] + (Math.abs(Number(m[2])) > 0.005 ? "" : " zero"), text: m[1] + " " + m[2] }));
        if (de) out.push(")");
        return out.length ? out : s;
      };
      const others = ["$.image.format", "$.image.decode", "$.image.alpha", "$.image.orientation", "$.image.frames"]
        .filter((p) => byPath[p]).map((p) => measure(p.replace("$.image.", ""), p.replace("$.image.", ""),
          [h("span", { class: "val old", text: byPath[p].legacy }), " → ", h("span", { class: "val new", text: byPath[p].new })]));
      const note = h("p", { class: "muted small" });
      return [
        h("div", { class: "measures" },
          measure("PSNR", "psnr", psnr ? [h("strong", { class: "bad-text failing", text: psnr.new }), h("span", { class: "muted small", text: " below the minimum " + psnr.legacy.replace(/ min$/, "") })]
            : h("span", { class: "ok-text", text: "at or above the route's minimum" })),
          measure("SSIM (structure)", "ssim", ssim ? [h("strong", { class: "bad-text failing", text: ssim.new }), h("span", { class: "muted small", text: " below the minimum " + ssim.legacy.replace(/ min$/, "") })]
            : h("span", { class: "ok-text", text: "at or above the route's minimum" })),
          measure("Colour difference (new − legacy)", "mean_shift", shift ? [shiftChips(shift.new), h("span", { class: "muted small", text: " limit " + shift.legacy.replace(/ max$/, "") })]
            : h("span", { class: "ok-text", text: "within the route's limit" })),
          measure("Dimensions", "dimensions", dim ? [h("span", { class: "val old", text: dim.legacy.replace("x", "×") }), " → ", h("span", { class: "val new", text: dim.new.replace("x", "×") })]
            : [h("span", { class: "ok-text", text: "equal" }), " ", dimsOf("legacy")]),
          others),
        h("div", { class: "figures" },
          figure("legacy", "legacy", "/body/legacy", [" ", dimsOf("legacy"), " · " + (headerValue(d.legacy, "Content-Type") || "no Content-Type") + " · " + fmtBytes(d.legacy.size)]),
          figure("new", "new", "/body/new", [" ", dimsOf("new"), " · " + (headerValue(d.new, "Content-Type") || "no Content-Type") + " · " + fmtBytes(d.new.size)]),
          figure("heatmap", "difference heat map", "/heatmap.png", [h("span", { class: "ramp-legend" }, h("span", { text: "none" }), h("span", { class: "gradient" }), h("span", { text: "SSIM 0.5 · ΔE00 10" }))])),
        note,
      ];
    }

    async loadImage(box, path, alt, key, dimsEls) {
      try {
        const resp = await this.app.api.fetch(path);
        const blob = await resp.blob();
        if (!this.alive) return;
        const url = URL.createObjectURL(blob);
        this.urls.push(url);
        const img = h("img", { alt: alt, "data-img": key });
        img.src = url;
        await img.decode();
        // Small images are enlarged to the figure's width: keep their pixels sharp.
        if (img.naturalWidth < 300) img.classList.add("upscaled");
        set(box, img);
        for (const el of dimsEls) el.textContent = img.naturalWidth + "×" + img.naturalHeight;
      } catch (e) {
        if (!this.alive) return;
        set(box, h("div", { class: "state empty small", "data-img-error": key },
          h("strong", { text: key === "heatmap" ? "No heat map" : "Cannot show this image" }),
          h("p", { text: e && e.message ? e.message : "the browser cannot decode it" })));
        for (const el of dimsEls) el.textContent = "";
      }
    }

    renderDiffs(diffs) {
      if (!diffs.length) return empty("No differences stored for this sample.");
      const kinds = [...new Set(diffs.map((x) => x.kind))].sort((a, b) => KIND_ORDER.indexOf(a) - KIND_ORDER.indexOf(b));
      const table = h("table", { class: "grid diff-table", id: "diff-table" },
        h("thead", null, h("tr", null, [["Kind"], ["Path"], ["legacy", "legacy's value, or for PSNR, SSIM and ΔE00 the route's limit"], ["new", "new's value, or the measurement that failed the limit"], ["Noise", HELP.noise]].map((x) => helpTh(x[0], x[1])))),
        h("tbody", null, diffs.map((x) => h("tr", { "data-path": x.path, class: x.noise ? "is-noise" : null },
          h("td", null, badge(x.kind, "kind " + x.kind)), h("td", null, code(x.path)),
          h("td", { class: "val " + (MEASURED[x.path] ? "limit" : "old"), text: (MEASURED[x.path] ? "limit " : "") + x.legacy }),
          h("td", { class: "val " + (MEASURED[x.path] ? (x.noise ? "limit" : "failing") : "new"), "data-measured": MEASURED[x.path] ? "1" : null, text: x.new }),
          h("td", null, x.noise ? badge("noise", "muted-badge") : null)))));
      return h("div", { class: "diff-views" },
        h("div", { class: "tree-wrap", id: "diff-tree" }, kinds.length ? diffTree(diffs) : null),
        h("details", { open: true }, h("summary", { text: "As a table" }), h("div", { class: "table-wrap" }, table)));
    }

    renderBodies(d, lb, nb) {
      const show = (side, bytes, s) => {
        let content;
        if (!bytes.length) {
          content = empty(s.size ? "Body not stored." : "Empty body.");
        } else if (bytes.slice(0, 8192).includes(0)) {
          content = empty("Binary body", fmtBytes(s.size) + (s.body_truncated ? ", stored in part" : ""));
        } else {
          let text = new TextDecoder("utf-8").decode(bytes.slice(0, BODY_PREVIEW_MAX));
          try { if (!s.body_truncated) text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
          content = h("pre", { class: "body", text: text + (bytes.length > BODY_PREVIEW_MAX || s.body_truncated ? "\n… (cut)" : "") });
        }
        return h("div", { class: "side", "data-body": side }, h("h3", { text: side + " · " + (headerValue(s, "Content-Type") || "no Content-Type") }), content);
      };
      return h("div", { class: "sides" }, show("legacy", lb, d.legacy), show("new", nb, d.new));
    }
  }

  // ------------------------------------------------------------ request

  const MAX_REQUEST_ID = 256; // admin.MaxRequestID

  // RequestView is every comparison made for one request id
  // (GET /api/v1/comparisons), with a field to look up another.
  class RequestView {
    constructor(app, id) {
      this.app = app;
      this.name = "request";
      this.id = id;
      this.alive = true;
    }

    destroy() { this.alive = false; }

    mount(main) {
      const input = h("input", { type: "search", id: "request-lookup", name: "request_id", maxlength: MAX_REQUEST_ID,
        placeholder: "X-Request-Id", "aria-label": "request id", autocomplete: "off", spellcheck: "false", value: this.id || null });
      const form = h("form", { class: "lookup", id: "request-form" }, input, h("button", { type: "submit", text: "Look up" }));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const v = input.value.trim();
        if (!v) { input.focus(); return; }
        if (v === this.id) { this.load(); return; }
        location.hash = "#/request/" + enc(v);
      });
      this.body = h("div");
      append(main, [
        h("div", { class: "view-head" }, h("h1", null, "Request", this.id ? [" ", code(this.id)] : null),
          h("p", { class: "sub", text: "Every comparison made for one request (legacy → new, legacy → secondary), with the outcome as the noise model reads it now. Kept for retention.comparisons." })),
        form, this.body,
      ]);
      if (!this.id) {
        set(this.body, empty("Look up a request.", "Enter the X-Request-Id of a request, or follow a request id from a sample."));
        this.app.ready(this);
        input.focus();
        return;
      }
      this.load();
    }

    async load() {
      set(this.body, loading("Loading the comparisons of " + this.id + "…"));
      let data;
      try {
        data = await this.app.api.json("/api/v1/comparisons?request_id=" + enc(this.id));
      } catch (e) {
        if (!this.alive) return;
        set(this.body, errorBox(e.status === 400 ? "Cannot look up this request id." : "Could not load the comparisons.", e));
        this.app.ready(this);
        return;
      }
      if (!this.alive) return;
      const list = data.comparisons || [];
      if (!list.length) {
        set(this.body, h("div", { "data-empty": "no-comparisons" }, empty("No comparisons recorded for request " + this.id + ".",
          "It was not mirrored, it is not compared yet, or its records are older than retention.comparisons.")));
      } else {
        set(this.body, h("p", { class: "muted small", "data-field": "count", text: list.length + (list.length === 1 ? " comparison" : " comparisons") + ", oldest first" }),
          h("div", { class: "table-wrap" }, h("table", { class: "grid comparisons", id: "comparisons" },
            h("thead", null, h("tr", null, ["Time", "Route", "Instance", "Against", "Outcome", "Differences", "Sample"].map((t) => h("th", { text: t })))),
            h("tbody", null, list.map((c) => this.row(c))))));
      }
      this.app.ready(this);
    }

    row(c) {
      const diffs = c.diffs || [];
      return h("tr", { "data-comparison": c.against, "data-outcome": c.outcome, "data-route": c.route },
        h("td", { class: "nowrap", title: c.at, text: fmtTime(c.at) }),
        h("td", null, link("#/route/" + enc(c.route), c.route, "route-link")),
        h("td", { class: c.instance ? null : "muted", text: c.instance || "—" }),
        h("td", { class: "nowrap", "data-field": "against", text: "legacy → " + c.against }),
        h("td", { "data-field": "outcome" }, badge(c.outcome, "outcome " + c.outcome)),
        h("td", { class: "paths", "data-field": "diffs" }, diffs.length ? h("ul", { class: "pairs" }, diffs.map((d) =>
          h("li", { class: d.noise ? "is-noise" : null, "data-path": d.path, "data-noise": d.noise ? "1" : "0" },
            badge(d.kind, "kind " + d.kind), " ", code(d.path), d.noise ? [" ", badge("noise", "muted-badge")] : null)))
          : h("span", { class: "muted", text: "none" })),
        h("td", { "data-field": "sample" }, c.sample_id ? link("#/sample/" + enc(c.sample_id), "sample →") : h("span", { class: "muted", text: "none kept" })));
    }
  }

  // ------------------------------------------------------------- events

  const EVENT_NAMES = {
    seed: "Rules seeded", replace: "Rules replaced", reload: "Config reloaded", reload_error: "Config reload failed",
    promote: "Promoted", rollback: "Rolled back", ramp_step: "Ramp step", ramp_rollback: "Ramp rollback",
    ramp_done: "Ramp finished", noise: "Marked as noise", recovered: "Rules recovered",
  };
  const EVENT_CLASS = {
    promote: "ok", ramp_step: "ok", ramp_done: "ok", rollback: "bad", ramp_rollback: "bad",
    reload_error: "warn", recovered: "warn",
  };

  // eventDetail prints one key of an event's details as words and a
  // rounded value: held_seconds 22.000066 → ["held", "22 s"],
  // diff_rate_upper 0.0213 → ["diff rate upper bound", "2.13%"].
  const DETAIL_WORDS = { held_seconds: "held", diff_rate_upper: "diff rate upper bound", diff_rate_lower: "diff rate lower bound",
    error_rate_upper: "error rate upper bound", error_rate_lower: "error rate lower bound", legacy_p99_seconds: "legacy p99",
    new_p99_seconds: "new p99", new_requests: "requests to new", new_errors: "errors of new", legacy_requests: "requests to legacy" };
  function eventDetail(k, v) {
    const label = DETAIL_WORDS[k] || k.replace(/_/g, " ");
    if (typeof v !== "number") return [label, typeof v === "string" ? v : JSON.stringify(v)];
    if (!isFinite(v)) return [label, String(v)];
    if (/_p99_seconds$/.test(k)) return [label, fmtMS(v * 1000)];
    if (/_seconds$/.test(k)) return [label, v < 60 ? Math.round(v) + " s" : fmtDuration(v)];
    if (/rate(_upper|_lower)?$/.test(k) || k === "confidence") return [label, v === 0 ? "0%" : sig3(v * 100) + "%"];
    if (/ratio$/.test(k)) return [label, v === 0 ? "—" : sig3(v) + "×"];
    if (Number.isInteger(v)) return [label, fmtInt(v)];
    return [label, sig3(Math.abs(v)) === "0" ? "0" : (v < 0 ? "−" : "") + sig3(Math.abs(v))];
  }

  class EventsView {
    constructor(app) {
      this.app = app;
      this.name = "events";
      this.route = "";
      this.kind = "";
      this.events = null;
      this.alive = true;
    }

    destroy() { this.alive = false; clearTimeout(this.timer); }

    mount(main) {
      this.filters = h("div", { class: "filters" });
      this.body = h("div", null, loading("Loading events…"));
      append(main, [
        h("div", { class: "view-head row" }, h("div", null, h("h1", { text: "Events" }),
          h("p", { class: "sub", text: "The audit log: rule changes, ramp decisions, rollbacks, reloads and noise marks, newest first, " + windowWords(this.app.win) + "." })),
          h("span", { class: "spacer" }), this.app.windowPicker()),
        this.filters, this.body,
      ]);
      this.load();
    }

    async load() {
      clearTimeout(this.timer);
      try {
        const since = sinceOf(this.app.win);
        const data = await this.app.api.json("/api/v1/events?limit=500" + (since ? "&since=" + enc(since) : ""));
        if (!this.alive) return;
        const evs = (data.events || []).slice().reverse();
        // Re-render only when the log changed, so open details stay open.
        const sig = evs.length + "|" + (evs.length ? evs[0].time + evs[0].kind : "");
        if (sig !== this.sig) {
          this.sig = sig;
          this.events = evs;
          this.render();
        }
      } catch (e) {
        if (!this.alive) return;
        if (!this.events) set(this.body, errorBox("Could not load the events.", e));
      }
      this.app.ready(this);
      if (this.alive) this.timer = setTimeout(() => this.load(), EVENTS_REFRESH_MS);
    }

    render() {
      const evs = this.events;
      const select = (label, value, options, onchange) => {
        const el = h("select", { "aria-label": label }, h("option", { value: "", text: "all " + label }),
          options.map((o) => h("option", { value: o, text: o, selected: o === value ? true : null })));
        el.addEventListener("change", () => onchange(el.value));
        return h("label", { class: "filter-field" }, el);
      };
      const routes = [...new Set(evs.map((e) => e.route).filter(Boolean))].sort();
      const kinds = [...new Set(evs.map((e) => e.kind))].sort();
      set(this.filters, 
        select("routes", this.route, routes, (v) => { this.route = v; this.render(); }),
        select("kinds", this.kind, kinds, (v) => { this.kind = v; this.render(); }),
        h("span", { class: "muted small", text: evs.length + " events" }));
      const shown = evs.filter((e) => (!this.route || e.route === this.route) && (!this.kind || e.kind === this.kind));
      if (!evs.length) {
        set(this.body, empty("No events yet.", "Rule changes, ramp decisions, rollbacks and reloads appear here."));
        return;
      }
      if (!shown.length) {
        set(this.body, empty("No events match the filters."));
        return;
      }
      set(this.body, h("ol", { class: "timeline", id: "events" }, shown.map((e) => this.item(e))));
    }

    item(e) {
      const details = Object.entries(e.details || {});
      return h("li", { class: "event " + (EVENT_CLASS[e.kind] || ""), "data-kind": e.kind, "data-route": e.route || null },
        h("div", { class: "when", title: e.time }, h("div", { text: fmtTime(e.time) }), h("div", { class: "muted small", text: fmtAgo(e.time) })),
        h("div", { class: "what" },
          h("div", { class: "title" }, h("strong", { text: EVENT_NAMES[e.kind] || e.kind }),
            e.route ? [" ", link("#/route/" + enc(e.route), e.route, "route-link")] : null,
            " by ", badge(e.actor || "?", "actor actor-" + (e.actor || "unknown"), "who made the change")),
          e.old || e.new ? h("div", { class: "change" }, h("span", { class: "val old", text: e.old || "—" }), " → ", h("span", { class: "val new", text: e.new || "—" }),
            e.new_version ? h("span", { class: "muted small", text: "  rules " + (e.old_version ? "v" + e.old_version : "—") + " → v" + e.new_version }) : null) : null,
          e.reason ? h("div", { class: "why" }, h("q", { text: e.reason })) : h("div", { class: "why muted small", text: "no reason given" }),
          details.length ? h("details", null, h("summary", { text: "details" }),
            h("table", { class: "kv small" }, h("tbody", null, details.map(([k, v]) => {
              const [label, text] = eventDetail(k, v);
              return h("tr", { "data-detail": k }, h("th", { title: k, text: label }), h("td", { text: text }));
            })))) : null));
    }
  }

  class NotFoundView {
    constructor(app, raw) { this.app = app; this.name = "notfound"; this.raw = raw; }
    mount(main) {
      append(main, [empty("No such page: #/" + this.raw), link("#/", "Back to the overview")]);
      this.app.ready(this);
    }
  }

  window.tandemStart = function (boot) { new App(boot).start(); };
  // The printing rules, for the browser test to check against the CLI's.
  window.tandemFormat = Object.freeze({ fmtMS: fmtMS, eventDetail: eventDetail });
})();
