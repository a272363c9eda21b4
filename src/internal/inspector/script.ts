/**
 * The inspector page's script: browser JavaScript in a string, served as
 * `/inspector.js` (see `page.ts`). Written without template literals, so
 * that it can live in one.
 *
 * It runs in the user's browser, not in the library's runtime: its timers
 * (`setTimeout`, `setInterval`) are the page's own polling and its back-off
 * before reconnecting an event stream, which no Effect `Clock` can drive.
 * The time it shows is the Store's: every event's `at` and the `at` of
 * `/api/resources`, read from the Store's `Clock` (a `TestClock` in tests).
 *
 * @internal
 */
export const script = `"use strict";
(function () {
  var colors = ["#2255cc", "#d9480f", "#087f5b", "#9c36b5", "#e67700", "#495057"];
  var state = {
    token: null, resources: [], selected: null, offset: 0, limit: 50, more: false,
    record: null, recordStream: null, liveStream: null, paused: false,
    samples: [], sampleMillis: 1000, lastSample: 0, received: 0
  };
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) node.setAttribute(k, attrs[k]);
    (children || []).forEach(function (c) { node.append(c instanceof Node ? c : document.createTextNode(String(c))); });
    return node;
  }
  function show(value) { return typeof value === "string" ? value : JSON.stringify(value); }
  function clock(at) { var d = new Date(at); return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0"); }
  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // the token: from the address (#token=...), kept for the tab only
  (function () {
    var match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem("inspector-token", decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    state.token = sessionStorage.getItem("inspector-token");
  })();
  function headers() { return state.token ? { authorization: "Bearer " + state.token } : {}; }

  function ApiError(status, message) { this.status = status; this.message = message; }
  function api(path) {
    return fetch(path, { headers: headers(), cache: "no-store" }).then(function (response) {
      return response.json().catch(function () { return { error: response.statusText }; }).then(function (body) {
        if (response.status === 401) askToken(body.error);
        if (!response.ok) throw new ApiError(response.status, body.error || response.statusText);
        return body;
      });
    });
  }
  function askToken(message) {
    $("login").hidden = false;
    $("login-error").textContent = state.token ? "that token was refused" : "";
    $("status").textContent = message || "token needed";
  }
  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    state.token = $("token").value;
    sessionStorage.setItem("inspector-token", state.token);
    $("login").hidden = true;
    start();
  });

  // ---- resources -------------------------------------------------------------------------------
  function loadResources() {
    return api("/api/resources").then(function (body) {
      state.resources = body.resources;
      state.sampleMillis = body.sampleMillis;
      state.received = body.events.received;
      $("sample-every").textContent = (body.sampleMillis / 1000) + " s";
      var rows = body.resources.map(function (r) {
        var row = el("tr", { "data-resource": r.name, "class": state.selected === r.name ? "selected" : null }, [
          el("td", null, [el("b", null, [r.name]), r.durable ? el("span", { "class": "badge" }, [" durable"]) : ""]),
          el("td", { "data-testid": "count-records" }, [r.records === null ? "?" : r.records]),
          el("td", null, [r.awake]), el("td", null, [r.hibernating])
        ]);
        if (r.error) row.title = r.error;
        row.addEventListener("click", function () { select(r.name); });
        return row;
      });
      $("resources").replaceChildren.apply($("resources"), rows);
      $("status").textContent = "connected · " + body.events.received + " events received · " + clock(body.at);
      if (state.selected === null && body.resources.length > 0) select(decodeURIComponent(location.hash.slice(2)) || body.resources[0].name, true);
      else describe();
    });
  }
  function describe() {
    var r = state.resources.find(function (r) { return r.name === state.selected; });
    if (!r) return;
    var items = [
      ["key", r.primaryKey.join(", ")],
      ["fields", r.fields.map(function (f) { return f.name + (f.optional ? "?" : "") + ": " + f.type; }).join("; ")],
      ["actions", r.actions.map(function (a) { return a.name + " (" + a.kind + ")"; }).join(", ")],
      ["restart", r.restart],
      ["inactivity", r.inactivityTimeout || "never"], ["lifetime", r.maximumLifetime || "never"],
      ["hibernate after", r.hibernateAfter || "never"]
    ];
    var nodes = [];
    items.forEach(function (item) { nodes.push(el("dt", null, [item[0]]), el("dd", null, [item[1]])); });
    $("resource-details").replaceChildren.apply($("resource-details"), nodes);
  }
  function select(name, initial) {
    if (!state.resources.some(function (r) { return r.name === name; })) name = state.resources[0].name;
    if (state.selected !== name) { state.offset = 0; if (!initial) { $("filter").value = ""; $("sort").value = ""; } }
    state.selected = name;
    history.replaceState(null, "", "#/" + encodeURIComponent(name));
    Array.prototype.forEach.call($("resources").children, function (row) {
      row.className = row.getAttribute("data-resource") === name ? "selected" : "";
    });
    describe();
    return loadRecords();
  }

  // ---- records ---------------------------------------------------------------------------------
  function loadRecords() {
    var name = state.selected;
    var params = new URLSearchParams({ offset: String(state.offset), limit: String(state.limit) });
    if ($("filter").value.trim()) params.set("filter", $("filter").value);
    if ($("sort").value.trim()) params.set("sort", $("sort").value);
    $("records-title").textContent = name;
    return api("/api/resources/" + encodeURIComponent(name) + "/records?" + params).then(function (body) {
      if (name !== state.selected) return;
      $("error").hidden = true;
      var r = state.resources.find(function (r) { return r.name === name; });
      var fields = r.fields.map(function (f) { return f.name; });
      $("records-head").replaceChildren(el("tr", null, fields.map(function (f) {
        return el("th", { title: r.primaryKey.indexOf(f) >= 0 ? "primary key" : null }, [f, r.primaryKey.indexOf(f) >= 0 ? el("span", { "class": "badge" }, ["key"]) : ""]);
      })));
      var rows = body.records.map(function (entry) {
        var key = JSON.stringify(entry.key);
        var row = el("tr", { "data-key": key, "class": state.record && state.record.key === key ? "selected" : null },
          fields.map(function (f) { return el("td", { title: show(entry.record[f]) }, [entry.record[f] === undefined ? "" : show(entry.record[f])]); }));
        row.addEventListener("click", function () { openRecord(name, key); });
        return row;
      });
      $("records").replaceChildren.apply($("records"), rows);
      state.more = body.more;
      $("page").textContent = body.records.length === 0 ? "no records" :
        "records " + (body.offset + 1) + "–" + (body.offset + body.records.length) + (body.more ? ", more after" : "");
      $("prev").disabled = state.offset === 0;
      $("next").disabled = !body.more;
      document.body.setAttribute("data-loaded", "true");
    }).catch(function (e) {
      if (name !== state.selected) return;
      $("error").textContent = (e.status ? e.status + ": " : "") + e.message;
      $("error").hidden = false;
      $("records").replaceChildren();
      $("page").textContent = "";
      $("prev").disabled = true;
      $("next").disabled = true;
      document.body.setAttribute("data-loaded", "true");
    });
  }
  $("query").addEventListener("submit", function (e) { e.preventDefault(); state.offset = 0; loadRecords(); });
  $("prev").addEventListener("click", function () { state.offset = Math.max(0, state.offset - state.limit); loadRecords(); });
  $("next").addEventListener("click", function () { if (state.more) { state.offset += state.limit; loadRecords(); } });

  // ---- one record ------------------------------------------------------------------------------
  function keyText(key) {
    var values = key && typeof key === "object" ? Object.keys(key).map(function (k) { return show(key[k]); }) : [show(key)];
    return values.join(", ");
  }
  function eventItem(event) {
    return el("li", { "data-tag": event._tag, "data-resource": event.resource, title: JSON.stringify(event.record) }, [
      el("time", null, [clock(event.at)]), el("span", { "class": "tag tag-" + event._tag }, [event._tag]),
      el("b", null, [event.resource]), " ", el("code", null, [keyText(event.key)]),
      event.reason ? " (" + event.reason + ")" : "", " ", el("span", { "class": "note" }, [JSON.stringify(event.record)])
    ]);
  }
  // the open record's row follows its live state between two reads of the page
  function refreshRow(resource, key, record) {
    if (resource !== state.selected) return;
    var r = state.resources.find(function (r) { return r.name === resource; });
    Array.prototype.forEach.call($("records").children, function (row) {
      if (row.getAttribute("data-key") !== key) return;
      r.fields.forEach(function (field, i) {
        var cell = row.children[i], value = record[field.name];
        if (cell) { cell.textContent = value === undefined ? "" : show(value); cell.title = show(value); }
      });
    });
  }
  // a record's pending schedules, earliest first; null: they could not be read
  function showSchedules(schedules) {
    var items = schedules === null
      ? [el("li", { "class": "note" }, ["could not be read now"])]
      : schedules.length === 0
      ? [el("li", { "class": "note" }, ["none pending"])]
      : schedules.map(function (s) {
        return el("li", { "data-schedule": s.name }, [
          el("time", null, [s.at]), " ", el("b", null, [s.name]), " → " + s.action + " ",
          el("span", { "class": "note" }, [JSON.stringify(s.arguments) + (s.cron ? " (cron " + s.cron + ")" : "") +
            (s.running ? " running" : "")])
        ]);
      });
    $("record-schedules").replaceChildren.apply($("record-schedules"), items);
  }

  function openRecord(resource, key) {
    if (state.recordStream) state.recordStream.abort();
    state.record = { resource: resource, key: key };
    Array.prototype.forEach.call($("records").children, function (row) {
      row.className = row.getAttribute("data-key") === key ? "selected" : "";
    });
    $("record-panel").hidden = false;
    $("record-key").textContent = resource + " " + keyText(JSON.parse(key));
    $("record-status").textContent = "";
    var params = new URLSearchParams({ key: key });
    api("/api/resources/" + encodeURIComponent(resource) + "/record?" + params).then(function (body) {
      if (!state.record || state.record.key !== key) return;
      $("record-state").textContent = JSON.stringify(body.record, null, 2);
      $("record-events").replaceChildren.apply($("record-events"), body.events.map(eventItem));
      showSchedules(body.schedules);
    }).catch(function (e) {
      $("record-state").textContent = "";
      $("record-status").textContent = e.message;
    });
    state.recordStream = stream(new URLSearchParams({ resource: resource, key: key }), function (events) {
      events.forEach(function (event) {
        if (event._tag === "Destroyed" || event._tag === "Failed") $("record-status").textContent = event._tag.toLowerCase() + (event.reason ? " (" + event.reason + ")" : "");
        else if (event._tag === "ScheduleFailed") $("record-status").textContent = "schedule " + event.schedule + " gave up";
        else {
          $("record-state").textContent = JSON.stringify(event.record, null, 2);
          $("record-status").textContent = event._tag.toLowerCase();
          refreshRow(resource, key, event.record);
        }
        $("record-events").prepend(eventItem(event));
      });
    });
  }

  // ---- live events -----------------------------------------------------------------------------
  function stream(params, onEvents, onStatus) {
    var controller = new AbortController();
    (async function () {
      while (!controller.signal.aborted) {
        try {
          var response = await fetch("/api/events/stream?" + params, { headers: headers(), signal: controller.signal });
          if (response.status === 401) { askToken("token needed"); return; }
          if (!response.ok) throw new Error(response.status + "");
          var reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          var buffer = "";
          for (;;) {
            var read = await reader.read();
            if (read.done) break;
            buffer += read.value;
            var end;
            while ((end = buffer.indexOf("\\n\\n")) >= 0) {
              var block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
              var name = "message", data = "";
              block.split("\\n").forEach(function (line) {
                if (line.indexOf("event: ") === 0) name = line.slice(7);
                else if (line.indexOf("data: ") === 0) data += line.slice(6);
              });
              if (!data) continue;
              var body = JSON.parse(data);
              if (name === "ready" && onStatus) onStatus("live", 0);
              if (name === "events") { onEvents(body.events); if (onStatus) onStatus("live", body.dropped); }
            }
          }
        } catch (e) {
          if (controller.signal.aborted) return;
        }
        if (onStatus) onStatus("reconnecting", 0);
        await sleep(1000);
      }
    })();
    return controller;
  }
  var dropped = 0;
  function startLive() {
    if (state.liveStream) state.liveStream.abort();
    state.liveStream = stream(new URLSearchParams(), function (events) {
      if (state.paused) return;
      var list = $("events"), shown = 200, fresh = document.createDocumentFragment();
      events.slice(-shown).reverse().forEach(function (event) { fresh.append(eventItem(event)); });
      list.prepend(fresh);
      while (list.children.length > shown) list.lastChild.remove();
    }, function (status, n) {
      dropped += n;
      $("events-status").textContent = status + (dropped > 0 ? " · " + dropped + " not shown (too many to follow)" : "");
      $("events-status").setAttribute("data-status", status);
    });
  }
  $("pause").addEventListener("click", function () {
    state.paused = !state.paused;
    $("pause").textContent = state.paused ? "resume" : "pause";
  });

  // ---- metrics ---------------------------------------------------------------------------------
  var plots = [
    { title: "records (awake + hibernating)", value: function (s) { return s.records; } },
    { title: "hibernating", value: function (s) { return s.hibernating; } },
    { title: "events / s (every process)", rate: function (s) { return s.events; } },
    { title: "updates / s", rate: function (s) { return s.updates; } },
    { title: "mean call (ms)", value: function (s, p) { return p && s.calls > p.calls ? (s.callMillis - p.callMillis) / (s.calls - p.calls) : 0; } },
    { title: "restarts + failures / s", rate: function (s) { return s.restarts + s.failures; } }
  ];
  function loadMetrics() {
    return api("/api/metrics?since=" + state.lastSample).then(function (body) {
      body.samples.forEach(function (s) { state.samples.push(s); state.lastSample = s.at; });
      if (state.samples.length > body.capacity) state.samples.splice(0, state.samples.length - body.capacity);
      drawPlots();
    });
  }
  function series(plot, name) {
    var out = [];
    for (var i = 1; i < state.samples.length; i++) {
      var s = state.samples[i].resources[name], p = state.samples[i - 1].resources[name];
      if (!s || !p) continue;
      var dt = (state.samples[i].at - state.samples[i - 1].at) / 1000;
      out.push(plot.rate ? (dt > 0 ? Math.max(0, (plot.rate(s) - plot.rate(p)) / dt) : 0) : plot.value(s, p));
    }
    return out;
  }
  function drawPlots() {
    var names = state.resources.map(function (r) { return r.name; });
    $("legend").replaceChildren.apply($("legend"), names.map(function (n, i) {
      return el("span", null, [el("span", { "class": "swatch swatch-" + (i % colors.length) }), n]);
    }));
    var ns = "http://www.w3.org/2000/svg";
    var nodes = plots.map(function (plot) {
      var all = names.map(function (n) { return series(plot, n); });
      var max = 0;
      all.forEach(function (xs) { xs.forEach(function (x) { if (x > max) max = x; }); });
      var svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 300 56");
      svg.setAttribute("preserveAspectRatio", "none");
      all.forEach(function (xs, i) {
        if (xs.length < 2) return;
        var line = document.createElementNS(ns, "polyline");
        line.setAttribute("fill", "none");
        line.setAttribute("stroke", colors[i % colors.length]);
        line.setAttribute("stroke-width", "1.5");
        line.setAttribute("vector-effect", "non-scaling-stroke");
        line.setAttribute("points", xs.map(function (x, j) {
          return (j * 300 / (xs.length - 1)).toFixed(1) + "," + (54 - (max > 0 ? x / max : 0) * 50).toFixed(1);
        }).join(" "));
        svg.append(line);
      });
      var latest = all.map(function (xs) { return xs.length ? xs[xs.length - 1] : 0; });
      var shown = latest.map(function (x) { return x >= 100 ? Math.round(x) : Math.round(x * 100) / 100; }).join(" / ");
      return el("div", { "class": "plot", "data-plot": plot.title }, [
        el("div", { "class": "plot-title" }, [el("span", null, [plot.title]), el("span", null, [shown + " (max " + (Math.round(max * 100) / 100) + ")"])]),
        svg
      ]);
    });
    $("plots").replaceChildren.apply($("plots"), nodes);
  }

  // ---- start -----------------------------------------------------------------------------------
  var timers = [];
  function start() {
    timers.forEach(clearInterval);
    loadResources().then(function () {
      startLive();
      loadMetrics();
      timers = [
        setInterval(function () { loadResources().catch(function () {}); }, 2000),
        setInterval(function () { loadMetrics().catch(function () {}); }, Math.max(1000, state.sampleMillis)),
        setInterval(function () { if (!document.hidden && state.selected) loadRecords(); }, 5000)
      ];
    }).catch(function (e) {
      if (e.status !== 401) $("status").textContent = "cannot reach the inspector: " + e.message;
    });
  }
  start();
})();
`
