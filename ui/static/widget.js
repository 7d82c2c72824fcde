/*
 * Concierge chat widget: one dependency-free script, no build step.
 *
 *   <script src="https://concierge.example.com/widget.js"
 *           data-api-base="https://concierge.example.com"   (default: where this script came from)
 *           data-api-key="..."                              (sent as X-API-Key, if the API wants one)
 *           data-user-id="..."                              (optional: your shop's customer id)
 *           data-title="Ask our concierge"
 *           data-item-url="/products/{item_id}"             (optional: makes cards links)
 *           defer></script>
 *
 * Or call window.ConciergeWidget.init({apiBase, apiKey, userId, title, itemUrl}) yourself.
 * It talks to POST /v1/sessions and POST /v1/sessions/{id}/messages (Server-Sent Events),
 * renders inside a shadow root so the shop's CSS and ours never meet, and keeps the session
 * and transcript in sessionStorage so a reload continues the conversation.
 */
(function () {
  "use strict";

  if (window.ConciergeWidget && window.ConciergeWidget.version) return; // included twice

  var script = document.currentScript;
  var MAX_CHARS = 2000;
  var MAX_SAVED_ENTRIES = 60;

  var CSS = [
    ":host{all:initial;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330}",
    "*{box-sizing:border-box}",
    ".bubble{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;border:0;",
    "background:#2f5bea;color:#fff;cursor:pointer;box-shadow:0 6px 20px rgba(20,30,60,.3);z-index:2147483000;",
    "display:flex;align-items:center;justify-content:center}",
    ".bubble svg{width:28px;height:28px}",
    ".bubble:focus-visible,button:focus-visible,input:focus-visible,.card:focus-visible{outline:3px solid #ffb400;outline-offset:2px}",
    ".panel{position:fixed;right:20px;bottom:92px;width:380px;max-width:calc(100vw - 24px);height:560px;",
    "max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(20,30,60,.3);",
    "display:flex;flex-direction:column;overflow:hidden;z-index:2147483000}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:#2f5bea;color:#fff}",
    "header h2{flex:1;margin:0;font-size:16px;font-weight:600}",
    "header button{background:transparent;border:0;color:#fff;font-size:13px;cursor:pointer;padding:4px 6px;border-radius:6px}",
    "header button:hover{background:rgba(255,255,255,.18)}",
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px;background:#f5f7fb}",
    ".msg{max-width:88%;padding:9px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}",
    ".user{align-self:flex-end;background:#2f5bea;color:#fff;border-bottom-right-radius:4px}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #e1e5ef;border-bottom-left-radius:4px}",
    ".bot.pending .text:empty::after{content:'\u2026';animation:blink 1s infinite}",
    "@keyframes blink{50%{opacity:.3}}",
    ".error{align-self:stretch;background:#fdecec;color:#8a1c1c;border:1px solid #f3b4b4;white-space:normal}",
    ".error button{margin-left:8px;font:inherit;font-size:13px;border:1px solid #8a1c1c;background:#fff;color:#8a1c1c;border-radius:6px;cursor:pointer}",
    ".cards{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-direction:column;gap:8px}",
    ".card{display:block;padding:9px 11px;border:1px solid #d6dcea;border-radius:10px;background:#fafbff;color:inherit;text-decoration:none}",
    ".card:hover{border-color:#2f5bea}",
    ".card .title{font-weight:600;display:block}",
    ".reasons{list-style:none;margin:5px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px}",
    ".reasons li{font-size:12px;background:#e8edfd;color:#253e96;border-radius:999px;padding:2px 8px}",
    ".quick{align-self:flex-start;display:flex;flex-wrap:wrap;gap:6px;align-items:center}",
    ".quick .asked{width:100%;font-size:12px;color:#56607a}",
    ".quick button{font:inherit;font-size:14px;padding:5px 12px;border-radius:999px;border:1px solid #2f5bea;",
    "background:#fff;color:#2f5bea;cursor:pointer}",
    ".quick button:hover{background:#2f5bea;color:#fff}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e1e5ef;background:#fff}",
    "input{flex:1;font:inherit;padding:8px 10px;border:1px solid #c9d0e0;border-radius:8px;min-width:0}",
    "form button{font:inherit;padding:8px 14px;border:0;border-radius:8px;background:#2f5bea;color:#fff;cursor:pointer}",
    "form button[disabled]{opacity:.55;cursor:default}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){.panel{right:12px;left:12px;width:auto;bottom:84px}}",
    "@media (prefers-reduced-motion:reduce){.bot.pending .text:empty::after{animation:none}}"
  ].join("\n");

  var ICON = '<svg viewBox="0 0 24 24" aria-hidden="true" fill="currentColor"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "class") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  /**
   * A card's link: the template with {item_id} filled by the id escaped in full (encodeURIComponent leaves
   * ! ' ( ) * as they are, and a quote can end an attribute or a string), and only an http(s) result is
   * used. Anything else (javascript:, data:, a template that does not parse) gives no link.
   */
  function itemHref(template, itemId) {
    var escaped = encodeURIComponent(String(itemId)).replace(/[!'()*]/g, function (c) {
      return "%" + c.charCodeAt(0).toString(16).toUpperCase();
    });
    var url;
    try {
      url = new URL(String(template).split("{item_id}").join(escaped), window.location.href);
    } catch (e) {
      return null;
    }
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  }

  function defaultApiBase() {
    if (script && script.src) return script.src.replace(/\/widget\.js(\?.*)?$/, "");
    return window.location.origin;
  }

  function configFromScript() {
    var data = (script && script.dataset) || {};
    return {
      apiBase: data.apiBase, apiKey: data.apiKey, userId: data.userId,
      title: data.title, itemUrl: data.itemUrl, autoload: data.autoload !== "false"
    };
  }

  /** sessionStorage, or a plain object where storage is blocked (sandboxed iframes, some privacy modes). */
  function storage(key) {
    var memory = null;
    return {
      load: function () {
        try { return JSON.parse(window.sessionStorage.getItem(key) || "null"); }
        catch (e) { return memory; } // storage unavailable: this page view keeps it in memory
      },
      save: function (value) {
        memory = value;
        try { window.sessionStorage.setItem(key, JSON.stringify(value)); }
        catch (e) { /* storage unavailable or full: the in-memory copy above still serves this page view */ }
      }
    };
  }

  /** Read a Server-Sent Events body, calling onEvent(name, data) per event. */
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function dispatch(block) {
      var name = "message", data = [];
      block.split("\n").forEach(function (line) {
        if (!line || line.charAt(0) === ":") return;
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      });
      if (data.length) onEvent(name, data.join("\n"));
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          buffer += decoder.decode();
          if (buffer.trim()) dispatch(buffer.replace(/\r\n?/g, "\n"));
          return;
        }
        buffer = (buffer + decoder.decode(chunk.value, { stream: true })).replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  function HttpError(status, detail) {
    this.status = status;
    this.detail = detail;
  }

  function StreamError(detail) {
    this.detail = detail;
  }

  function errorText(err) {
    if (err instanceof HttpError) {
      if (err.status === 429) return "Too many messages at once. Please wait a moment and try again.";
      if (err.status === 413) return "That message is too long. Please shorten it.";
      if (err.status === 409) return "Still answering your previous message. Please wait a moment.";
      if (err.status === 504) return "The assistant took too long to answer. Please try again.";
      if (err.status === 401 || err.status === 403) return "The chat is not available on this site (access refused).";
      if (err.status === 422) return "That message could not be read: " + detailText(err.detail);
      if (err.status >= 500) return "The assistant had a problem (" + err.status + "). Please try again.";
      return "Something went wrong (" + err.status + "): " + detailText(err.detail);
    }
    if (err && err.name === "AbortError") return "The assistant took too long to answer. Please try again.";
    if (err instanceof StreamError) return "The assistant had a problem: " + err.detail;
    return "Could not reach the assistant. Check your connection and try again.";
  }

  function detailText(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail) && detail.length && detail[0].msg) return detail[0].msg;
    return "please try again.";
  }

  function leadText(result) {
    var text = result.text || "";
    var items = (result.action && result.action.items) || [];
    return items.length ? text.split("\n")[0] : text;
  }

  function Widget(options) {
    this.cfg = {
      apiBase: (options.apiBase || defaultApiBase()).replace(/\/+$/, ""),
      apiKey: options.apiKey || null,
      userId: options.userId || null,
      title: options.title || "Concierge",
      itemUrl: options.itemUrl || null,
      timeoutMs: options.timeoutMs || 120000
    };
    this.store = storage("concierge-widget:" + this.cfg.apiBase);
    this.saved = this.store.load() || { sessionId: null, entries: [], open: false };
    this.busy = false;
    this.build();
    var self = this;
    this.saved.entries.forEach(function (entry, n) {
      self.renderEntry(entry, n === self.saved.entries.length - 1);
    });
    if (this.saved.open) this.open(false);
  }

  Widget.prototype.build = function () {
    var self = this;
    this.host = el("div", { id: "concierge-widget" });
    var root = this.host.attachShadow({ mode: "open" });
    root.appendChild(el("style", { text: CSS }));
    this.bubble = el("button", {
      class: "bubble", type: "button", "aria-label": "Open chat with " + this.cfg.title,
      "aria-expanded": "false", "aria-controls": "concierge-panel"
    });
    this.bubble.innerHTML = ICON; // a constant, never server data
    this.bubble.addEventListener("click", function () { self.panel.hidden ? self.open(true) : self.close(); });
    this.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: "-1" });
    this.status = el("div", { class: "sr", role: "status" });
    this.input = el("input", {
      type: "text", "aria-label": "Your message", placeholder: "e.g. a funny animated movie",
      maxlength: String(MAX_CHARS), autocomplete: "off"
    });
    this.sendButton = el("button", { type: "submit", text: "Send" });
    var form = el("form", {}, [this.input, this.sendButton]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.send(self.input.value);
    });
    var restart = el("button", { type: "button", text: "New chat", "aria-label": "Start a new conversation" });
    restart.addEventListener("click", function () { self.reset(); });
    var closeButton = el("button", { type: "button", text: "\u2715", "aria-label": "Close chat" });
    closeButton.addEventListener("click", function () { self.close(); });
    this.panel = el("section", {
      class: "panel", id: "concierge-panel", role: "dialog", "aria-label": this.cfg.title + " chat", hidden: ""
    }, [el("header", {}, [el("h2", { text: this.cfg.title }), restart, closeButton]), this.log, this.status, form]);
    this.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); self.close(); }
    });
    root.appendChild(this.panel);
    root.appendChild(this.bubble);
    document.body.appendChild(this.host);
  };

  Widget.prototype.open = function (focus) {
    this.panel.hidden = false;
    this.bubble.setAttribute("aria-expanded", "true");
    this.bubble.setAttribute("aria-label", "Close chat with " + this.cfg.title);
    if (!this.saved.entries.length) {
      this.push({ role: "bot", text: "Hi! Tell me what you are looking for and I will find something that fits." });
    }
    this.saved.open = true;
    this.persist();
    this.scroll();
    if (focus) this.input.focus();
  };

  Widget.prototype.close = function () {
    this.panel.hidden = true;
    this.bubble.setAttribute("aria-expanded", "false");
    this.bubble.setAttribute("aria-label", "Open chat with " + this.cfg.title);
    this.saved.open = false;
    this.persist();
    this.bubble.focus();
  };

  Widget.prototype.reset = function () {
    if (this.busy) return;
    this.saved = { sessionId: null, entries: [], open: true };
    this.log.textContent = "";
    this.open(true);
  };

  Widget.prototype.persist = function () {
    this.saved.entries = this.saved.entries.slice(-MAX_SAVED_ENTRIES);
    this.store.save(this.saved);
  };

  Widget.prototype.push = function (entry) {
    this.saved.entries.push(entry);
    this.persist();
    return this.renderEntry(entry, true);
  };

  Widget.prototype.scroll = function () { this.log.scrollTop = this.log.scrollHeight; };

  Widget.prototype.removeQuickReplies = function () {
    Array.prototype.forEach.call(this.log.querySelectorAll(".quick"), function (node) { node.remove(); });
  };

  /** Draw one transcript entry; quick replies only for the latest question. */
  Widget.prototype.renderEntry = function (entry, latest) {
    var node;
    if (entry.role === "user") {
      node = el("div", { class: "msg user", text: entry.text });
      this.log.appendChild(node);
    } else if (entry.role === "error") {
      node = this.renderError(entry.text, null);
    } else {
      node = el("div", { class: "msg bot" }, [el("span", { class: "text", text: entry.text || "" })]);
      this.log.appendChild(node);
      this.renderResult(node, entry, latest);
    }
    this.scroll();
    return node;
  };

  Widget.prototype.renderError = function (text, retry) {
    var node = el("div", { class: "msg error", role: "alert" }, [el("span", { text: text })]);
    if (retry) {
      var again = el("button", { type: "button", text: "Try again" });
      again.addEventListener("click", function () { node.remove(); retry(); });
      node.appendChild(again);
    }
    this.log.appendChild(node);
    return node;
  };

  Widget.prototype.renderResult = function (node, entry, latest) {
    var self = this;
    if (entry.items && entry.items.length) {
      var list = el("ul", { class: "cards", "aria-label": "Recommendations" });
      entry.items.forEach(function (item) {
        var reasons = String(item.reason || "").split(/;\s*/).filter(Boolean);
        var label = item.title + (reasons.length ? ": " + reasons.join(", ") : "");
        var href = self.cfg.itemUrl ? itemHref(self.cfg.itemUrl, item.item_id) : null;
        var card = href
          ? el("a", { class: "card", href: href })
          : el("div", { class: "card", tabindex: "0", role: "article" });
        card.setAttribute("aria-label", label);
        card.setAttribute("data-item-id", item.item_id);
        card.appendChild(el("span", { class: "title", text: item.title }));
        if (reasons.length) {
          card.appendChild(el("ul", { class: "reasons", "aria-label": "Why" }, reasons.map(function (reason) {
            return el("li", { text: reason });
          })));
        }
        list.appendChild(el("li", {}, [card]));
      });
      node.appendChild(list);
    }
    if (latest && entry.ask && entry.ask.options && entry.ask.options.length) {
      var attr = entry.ask.attribute;
      var caption = attr ? attr.type + ": " + attr.value : "Quick replies";
      var group = el("div", { class: "quick", role: "group", "aria-label": "Quick replies about " + caption }, [
        el("span", { class: "asked", text: caption })
      ]);
      entry.ask.options.forEach(function (option) {
        var button = el("button", { type: "button", text: option });
        button.addEventListener("click", function () {
          self.input.focus(); // this group is about to disappear: keep keyboard focus in the panel
          self.send(option);
        });
        group.appendChild(button);
      });
      this.log.appendChild(group);
    }
  };

  Widget.prototype.request = function (path, body, headers) {
    var all = { "Content-Type": "application/json" };
    Object.keys(headers || {}).forEach(function (key) { all[key] = headers[key]; });
    if (this.cfg.apiKey) all["X-API-Key"] = this.cfg.apiKey;
    var abort = new AbortController();
    var timer = setTimeout(function () { abort.abort(); }, this.cfg.timeoutMs);
    return fetch(this.cfg.apiBase + path, {
      method: "POST", headers: all, body: JSON.stringify(body), signal: abort.signal, credentials: "omit"
    }).then(function (response) {
      if (response.ok) { response.done = function () { clearTimeout(timer); }; return response; }
      clearTimeout(timer);
      return response.json().then(
        function (json) { throw new HttpError(response.status, json && json.detail); },
        function () { throw new HttpError(response.status, response.statusText); }
      );
    }, function (err) { clearTimeout(timer); throw err; });
  };

  Widget.prototype.session = function () {
    var self = this;
    if (this.saved.sessionId) return Promise.resolve(this.saved.sessionId);
    return this.request("/v1/sessions", { user_id: this.cfg.userId }).then(function (response) {
      response.done();
      return response.json();
    }).then(function (json) {
      self.saved.sessionId = json.session_id;
      self.persist();
      return json.session_id;
    });
  };

  /** Post one message and stream the reply into `bubble`; resolves with the TurnResult. */
  Widget.prototype.turn = function (text, bubble, retried) {
    var self = this;
    var textNode = bubble.querySelector(".text");
    return this.session().then(function (sessionId) {
      return self.request("/v1/sessions/" + encodeURIComponent(sessionId) + "/messages", { text: text },
        { Accept: "text/event-stream" });
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("text/event-stream") < 0 || !response.body) {
        return response.json().then(function (json) { response.done(); return json; });
      }
      var result = null, failure = null;
      return readEvents(response, function (name, data) {
        var payload = JSON.parse(data);
        if (name === "token") {
          textNode.textContent += payload.text;
          self.scroll();
        } else if (name === "result") {
          result = payload;
        } else if (name === "error") {
          failure = payload.detail || "unknown error";
        }
      }).then(function () {
        response.done();
        if (failure !== null) throw new StreamError(failure);
        if (result === null) throw new StreamError("the reply was cut off");
        return result;
      });
    }).catch(function (err) {
      // The server forgot the session (restart, expiry): start a new one once, transparently.
      if (err instanceof HttpError && err.status === 404 && !retried && self.saved.sessionId) {
        self.saved.sessionId = null;
        textNode.textContent = "";
        return self.turn(text, bubble, true);
      }
      throw err;
    });
  };

  Widget.prototype.send = function (raw) {
    var self = this;
    var text = String(raw || "").trim().slice(0, MAX_CHARS);
    if (!text || this.busy) return;
    this.busy = true;
    this.sendButton.disabled = true;
    this.log.setAttribute("aria-busy", "true");
    this.input.value = "";
    this.removeQuickReplies();
    this.push({ role: "user", text: text });
    var bubble = el("div", { class: "msg bot pending" }, [el("span", { class: "text" })]);
    this.log.appendChild(bubble);
    this.scroll();
    this.status.textContent = "Assistant is typing";
    return this.turn(text, bubble).then(function (result) {
      bubble.remove();
      var action = result.action || {};
      self.push({
        role: "bot", text: leadText(result), items: action.kind === "recommend" ? action.items : [],
        ask: action.kind === "ask" ? { attribute: action.attribute, options: action.options } : null
      });
      self.status.textContent = action.kind === "recommend"
        ? (action.items || []).length + " recommendations" : "Assistant replied";
    }, function (err) {
      bubble.remove();
      self.status.textContent = "";
      self.renderError(errorText(err), function () { self.retry(text); });
      self.scroll();
    }).then(function () {
      self.busy = false;
      self.sendButton.disabled = false;
      self.log.removeAttribute("aria-busy");
    });
  };

  /** Resend after an error: drop the failed user line so the transcript shows it once. */
  Widget.prototype.retry = function (text) {
    var entries = this.saved.entries;
    if (entries.length && entries[entries.length - 1].role === "user" && entries[entries.length - 1].text === text) {
      entries.pop();
      var users = this.log.querySelectorAll(".msg.user");
      if (users.length) users[users.length - 1].remove();
    }
    this.send(text);
  };

  var instance = null;
  window.ConciergeWidget = {
    version: "1",
    itemHref: itemHref,
    init: function (options) {
      if (!instance) instance = new Widget(options || {});
      return instance;
    }
  };

  var auto = configFromScript();
  if (auto.autoload) {
    var start = function () { window.ConciergeWidget.init(auto); };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }
})();
