/*
 * Cocoa Canvas jobs pages: live updates and uploads, in plain JavaScript.
 *
 * Why it is written this way:
 * - Every value that came from a file or a user is put into the page with
 *   textContent / attributes, never innerHTML, so a voter named
 *   "<script>…" stays text. The Content-Security-Policy forbids inline
 *   script as a second line of defence.
 * - The server renders the first paint; this script only keeps it fresh, so
 *   the pages still work (minus liveness) when it fails to load.
 * - Formatting mirrors cocoa/web/view.py so updates look like the first paint.
 */
(function () {
  "use strict";

  var TERMINAL = ["completed", "failed", "cancelled"];
  var STATUSES = ["pending", "processing", "paused", "completed", "failed", "cancelled"];
  var ACTION_LABELS = { cancel: "Cancel", pause: "Pause", resume: "Resume", retry: "Retry" };
  var JOBS_POLL_MS = 2000;
  var JOB_POLL_MS = 1500;

  // ------------------------------------------------------------------ DOM helpers

  /** Build an element; children may be strings (become text nodes) or nodes. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) { return; }
      if (name === "text") { node.textContent = String(value); } else { node.setAttribute(name, String(value)); }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function setText(id, value) {
    var node = document.getElementById(id);
    if (node && node.textContent !== value) { node.textContent = value; }
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function isTerminal(status) { return TERMINAL.indexOf(status) !== -1; }

  // ------------------------------------------------------------------ formatting (see view.py)

  function fmtNumber(value) {
    if (value === null || value === undefined) { return "—"; }
    if (typeof value === "boolean") { return String(value); }
    if (typeof value === "number") {
      return Number.isInteger(value)
        ? value.toLocaleString("en-US")
        : value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    return String(value);
  }

  function fmtValue(value) {
    if (value !== null && typeof value === "object") { return JSON.stringify(sortKeys(value)); }
    return fmtNumber(value);
  }

  function sortKeys(value) {
    if (Array.isArray(value)) { return value.map(sortKeys); }
    if (value === null || typeof value !== "object") { return value; }
    var out = {};
    Object.keys(value).sort().forEach(function (k) { out[k] = sortKeys(value[k]); });
    return out;
  }

  function fmtTime(iso) {
    if (!iso) { return "—"; }
    var date = new Date(iso);
    if (isNaN(date.getTime())) { return String(iso); }
    return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function pad2(n) { return n < 10 ? "0" + n : String(n); }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) { return "—"; }
    var total = Math.round(seconds);
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var secs = total % 60;
    if (hours) { return hours + "h " + pad2(minutes) + "m " + pad2(secs) + "s"; }
    if (minutes) { return minutes + "m " + pad2(secs) + "s"; }
    return secs + "s";
  }

  function fmtRate(rate) {
    if (!rate) { return "—"; }
    return rate.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + "/s";
  }

  function fmtCount(processed, total) {
    var done = fmtNumber(processed || 0);
    return done + " / " + (total === null || total === undefined ? "?" : fmtNumber(total));
  }

  function rateEta(job) {
    var p = job.progress || {};
    if (job.status !== "processing" || !p.rate_per_second) { return "—"; }
    var text = fmtRate(p.rate_per_second);
    if (p.eta_seconds !== null && p.eta_seconds !== undefined) { text += " · ETA " + fmtDuration(p.eta_seconds); }
    return text;
  }

  function allowedActions(job) {
    var s = job.status;
    var requested = job.requested_action || null;
    var actions = [];
    if (s === "pending" || (s === "processing" && requested === null)) { actions.push("pause"); }
    if (s === "paused" || (s === "processing" && requested === "pause")) { actions.push("resume"); }
    if ((s === "pending" || s === "processing" || s === "paused") && requested !== "cancel") { actions.push("cancel"); }
    if (s === "failed" || s === "cancelled") { actions.push("retry"); }
    return actions;
  }

  // ------------------------------------------------------------------ shared widgets

  function statusBadge(status, requested, id) {
    var text = status + (requested ? " (" + requested + " requested)" : "");
    return el("span", { "class": "badge status-" + safeClass(status), id: id || null, text: text });
  }

  function updateBadge(node, status, requested) {
    if (!node) { return; }
    node.className = "badge status-" + safeClass(status);
    var text = status + (requested ? " (" + requested + " requested)" : "");
    if (node.textContent !== text) { node.textContent = text; }
  }

  /** Status names come from the server, but a class name is still no place for arbitrary text. */
  function safeClass(value) { return String(value).replace(/[^a-z_-]/gi, ""); }

  function progressWidget(job, label) {
    var wrap = el("div", { "class": "progress-wrap", "data-role": "progress" }, [
      el("progress", { max: "100", value: "0", "aria-label": label }),
      " ",
      el("span", { "class": "pct", "data-role": "percent" }),
      " ",
      el("span", { "class": "processed", "data-role": "processed" })
    ]);
    updateProgress(wrap, job);
    return wrap;
  }

  function updateProgress(wrap, job) {
    if (!wrap) { return; }
    var p = job.progress || {};
    var percent = typeof p.percent === "number" ? p.percent : 0;
    var bar = wrap.querySelector("progress");
    bar.value = percent;
    bar.setAttribute("value", String(percent));
    bar.textContent = percent.toFixed(1) + "%";
    wrap.querySelector('[data-role="percent"]').textContent = percent.toFixed(1) + "%";
    wrap.querySelector('[data-role="processed"]').textContent = fmtCount(p.processed, p.total);
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          var error = new Error("HTTP " + response.status);
          error.status = response.status;
          throw error;
        }
        return response.json();
      });
  }

  function note(text) { setText("live-note", text); }

  function sessionEnded() {
    var node = document.getElementById("live-note");
    if (!node) { return; }
    node.textContent = "";
    node.appendChild(document.createTextNode("Your session ended. "));
    node.appendChild(el("a", { href: "/login?next=" + encodeURIComponent(location.pathname + location.search), text: "Log in again" }));
  }

  /** Run ``tick`` every ``ms`` while the tab is visible; ``tick`` returns false to stop. */
  function every(ms, tick) {
    var stopped = false;
    function loop() {
      if (stopped) { return; }
      var work = document.visibilityState === "hidden" ? Promise.resolve(true) : tick();
      Promise.resolve(work).then(function (goOn) {
        if (goOn === false) { stopped = true; return; }
        window.setTimeout(loop, ms);
      });
    }
    window.setTimeout(loop, ms);
  }

  // ------------------------------------------------------------------ jobs list page

  function initJobsPage(main) {
    // The page's whole filter (statuses, type, creator, dates, search), as the API takes it.
    var query = new URLSearchParams(main.dataset.query || "");
    query.set("limit", main.dataset.limit || "25");
    query.set("offset", main.dataset.offset || "0");
    var failures = 0;
    every(JOBS_POLL_MS, function () {
      return Promise.all([getJSON("/api/v1/jobs?" + query.toString()), getJSON("/web/counts.json")])
        .then(function (answers) {
          failures = 0;
          renderJobRows(answers[0].jobs || []);
          setText("jobs-total", fmtNumber(answers[0].total));
          renderCounts(answers[1].counts || {});
          note("Live");  // no clock here: the note is an aria-live region
          return true;
        })
        .catch(function (error) {
          if (error.status === 401) { sessionEnded(); return false; }
          failures += 1;
          note("Live updates unavailable (" + error.message + "); retrying…");
          return failures < 30;
        });
    });
  }

  function renderCounts(counts) {
    STATUSES.forEach(function (status) {
      var node = document.querySelector('[data-count="' + status + '"]');
      if (node) { node.textContent = fmtNumber(counts[status] || 0); }
    });
  }

  function jobCells(job) {
    var started = job.started_at
      ? el("time", { datetime: job.started_at, text: fmtTime(job.started_at) }) : "—";
    return [
      el("td", { "data-label": "Job" }, [el("a", { href: "/jobs/" + encodeURIComponent(job.id), "class": "mono", text: job.id.slice(0, 8) })]
        .concat(job.kind === "group" ? [groupChildren(job)] : [])),
      el("td", { "data-label": "Type", text: job.type }),
      el("td", { "data-label": "Status" }, [statusBadge(job.status, job.requested_action)]),
      el("td", { "data-label": "Progress" }, [progressWidget(job, "Progress of job " + job.id.slice(0, 8))]),
      el("td", { "data-label": "Rate · ETA", text: rateEta(job) }),
      el("td", { "data-label": "Created" }, [el("time", { datetime: job.created_at, text: fmtTime(job.created_at) })]),
      el("td", { "data-label": "Started" }, [started]),
      el("td", { "data-label": "Duration", text: fmtDuration(job.elapsed_seconds) }),
      el("td", { "data-label": "Created by", text: job.created_by || "—" }),
      el("td", { "data-label": "File", "class": "job-input" }, inputParts(job.input)),
      el("td", { "data-label": "Errors", "class": "job-errors" }, errorParts(job))
    ].concat(selectCell(job));
  }

  /** A job group's row opens to its jobs (jobs.html's group_children). */
  function groupChildren(job) {
    var children = job.children || [];
    return el("details", { "class": "group-children" }, [
      el("summary", { text: "group of " + children.length + " jobs" }),
      el("ol", { "class": "group-child-list" }, childItems(children, job.type))
    ]);
  }

  /** What a child's item range counts (view.RANGE_NOUNS). */
  var RANGE_NOUNS = { import_voters: "rows", parcel_import: "features", geocode_households: "households" };

  function childItems(children, type) {
    var noun = RANGE_NOUNS[type] || "items";
    return children.map(function (child) {
      var range = child.item_range || [];
      return el("li", { "data-child-id": child.id }, [
        el("a", { href: "/jobs/" + encodeURIComponent(child.id), "class": "mono", text: child.id.slice(0, 8) }), " ",
        el("span", { "class": "muted", text: noun + " " + fmtNumber(range[0]) + "–" + fmtNumber(range[1]) }), " ",
        el("span", { "class": "badge status-" + child.status, text: child.status })
      ]);
    });
  }

  /** Admins' checkbox for "Cancel selected" (bulk-cancel-form, web/job_finder.py). */
  function selectCell(job) {
    if (!document.getElementById("bulk-cancel-form")) { return []; }
    return [el("td", { "data-label": "Select", "class": "job-select" }, [el("input", {
      type: "checkbox", name: "job_id", value: job.id, form: "bulk-cancel-form",
      "aria-label": "Select job " + job.id.slice(0, 8)
    })])];
  }

  /** The File cell: name, then "12,345 bytes · zip · layout" (view.fmt_input). */
  function inputParts(input) {
    if (!input) { return ["—"]; }
    var facts = [fmtNumber(input.bytes) + " bytes"];
    if (input.compressed) { facts.push(String(input.compressed)); }
    if (input.layout) { facts.push(String(input.layout)); }
    return [el("span", { "class": "input-name", text: input.filename || "(no name)" }), " ",
            el("span", { "class": "muted input-facts", text: facts.join(" · ") })];
  }

  /** The Errors cell: item-error count, then the failure message cut short (view.short_error). */
  function errorParts(job) {
    var parts = [el("span", { "class": "error-count", text: fmtNumber(job.error_count || 0) })];
    if (job.error) {
      var line = String(job.error).split(/\s+/).join(" ").trim();
      var short = line.length <= 80 ? line : line.slice(0, 79).replace(/\s+$/, "") + "…";
      parts.push(" ", el("span", { "class": "job-failure", title: job.error, text: short }));
    }
    return parts;
  }

  /** Update rows in place when the set of jobs is unchanged, so keyboard
   *  focus on a job link survives the refresh; otherwise rebuild. */
  function renderJobRows(jobs) {
    var body = document.getElementById("jobs-body");
    if (!body) { return; }
    var rows = Array.prototype.slice.call(body.querySelectorAll("tr[data-job-id]"));
    var same = rows.length === jobs.length && rows.every(function (row, i) { return row.dataset.jobId === jobs[i].id; });
    if (same) {
      jobs.forEach(function (job, i) { updateJobRow(rows[i], job); });
      return;
    }
    var focusedId = focusedJobId(body);
    var checked = Array.prototype.map.call(body.querySelectorAll('input[name="job_id"]:checked'),
                                           function (box) { return box.value; });
    var fresh = jobs.map(function (job) { return el("tr", { "data-job-id": job.id }, jobCells(job)); });
    fresh.forEach(function (row) {
      var box = row.querySelector('input[name="job_id"]');
      if (box && checked.indexOf(box.value) !== -1) { box.checked = true; }
    });
    if (!fresh.length) {
      fresh = [el("tr", { "class": "empty" }, [el("td", { colspan: "11", text: "No jobs match." })])];
    }
    body.replaceChildren.apply(body, fresh);
    if (focusedId) {
      var link = body.querySelector('tr[data-job-id="' + CSS.escape(focusedId) + '"] a');
      if (link) { link.focus(); }
    }
  }

  function focusedJobId(body) {
    var active = document.activeElement;
    var row = active && body.contains(active) ? active.closest("tr[data-job-id]") : null;
    return row ? row.dataset.jobId : null;
  }

  function updateJobRow(row, job) {
    var cells = row.children;
    updateBadge(cells[2].querySelector(".badge"), job.status, job.requested_action);
    updateProgress(cells[3].querySelector('[data-role="progress"]'), job);
    cells[4].textContent = rateEta(job);
    var started = job.started_at ? el("time", { datetime: job.started_at, text: fmtTime(job.started_at) }) : null;
    if (started && !cells[6].querySelector("time")) { cells[6].replaceChildren(started); }
    cells[7].textContent = fmtDuration(job.elapsed_seconds);
    var list = cells[0].querySelector(".group-child-list");  // kept open or closed as the user left it
    if (list && job.children) { list.replaceChildren.apply(list, childItems(job.children, job.type)); }
    if (cells[9]) { cells[9].replaceChildren.apply(cells[9], inputParts(job.input)); }
    if (cells[10]) { cells[10].replaceChildren.apply(cells[10], errorParts(job)); }
  }

  // ------------------------------------------------------------------ one job page

  function initJobPage(main) {
    var state = {
      id: main.dataset.jobId,
      admin: main.dataset.admin === "1",
      errorCount: parseInt(main.dataset.errorCount || "0", 10),
      errorsPage: parseInt(main.dataset.errorsPage || "1", 10),
      perPage: parseInt(main.dataset.errorsPerPage || "25", 10),
      actions: currentActions(),
      resultJSON: null,
      errorsBusy: false,
      errorsAgain: false,
      done: isTerminal(main.dataset.status)
    };
    if (state.done) { return; }
    var base = "/api/v1/jobs/" + encodeURIComponent(state.id);
    var apply = function (job) { applyJob(state, job, base); };
    if (window.EventSource) {
      watchEvents(state, base, apply);
    } else {
      pollJob(state, base, apply);
    }
  }

  function currentActions() {
    return Array.prototype.map.call(document.querySelectorAll("#job-actions [data-action]"), function (b) {
      return b.dataset.action;
    }).join(",");
  }

  /** Server-Sent Events first (one snapshot per change); on any error fall
   *  back to polling, which also covers proxies that buffer event streams. */
  function watchEvents(state, base, apply) {
    var source = new EventSource(base + "/events");
    var handle = function (event) {
      var job;
      try { job = JSON.parse(event.data); } catch (e) { return; }
      note("Live");
      apply(job);
      if (state.done) { source.close(); }
    };
    source.addEventListener("job", handle);
    source.onmessage = handle;
    source.onerror = function () {
      source.close();
      if (!state.done) { pollJob(state, base, apply); }
    };
  }

  function pollJob(state, base, apply) {
    var failures = 0;
    note("Live (polling)");
    every(JOB_POLL_MS, function () {
      return getJSON(base).then(function (job) {
        failures = 0;
        apply(job);
        return !state.done;
      }).catch(function (error) {
        if (error.status === 401) { sessionEnded(); return false; }
        if (error.status === 404) { note("This job no longer exists."); return false; }
        failures += 1;
        note("Live updates unavailable (" + error.message + "); retrying…");
        return failures < 60;
      });
    });
  }

  function applyJob(state, job, base) {
    var p = job.progress || {};
    var running = job.status === "processing";
    document.getElementById("main").dataset.status = job.status;
    updateBadge(document.getElementById("job-status"), job.status, job.requested_action);
    updateProgress(document.querySelector('.card [data-role="progress"]'), job);
    setText("p-succeeded", fmtNumber(p.succeeded));
    setText("p-failed", fmtNumber(p.failed));
    setText("p-rate", fmtRate(running ? p.rate_per_second : null));
    setText("p-eta", fmtDuration(running ? p.eta_seconds : null));
    setText("p-phase", p.phase || "—");
    setText("t-started", fmtTime(job.started_at));
    setText("t-completed", fmtTime(job.completed_at));
    setText("t-duration", fmtDuration(job.elapsed_seconds));
    setText("t-processing", fmtDuration(job.processing_seconds));
    setText("t-attempt", String(job.attempt));
    renderJobError(job.error);
    renderResult(state, job.result || {});
    if (state.admin) { renderActions(state, job); }
    state.done = isTerminal(job.status);
    if (job.error_count !== state.errorCount || state.done) {
      state.errorCount = job.error_count;
      refreshErrors(state, base);
    }
    if (state.done) { note("Finished: " + job.status); }
  }

  function renderJobError(message) {
    var node = document.getElementById("job-error");
    if (!node) { return; }
    node.hidden = !message;
    if (node.textContent !== (message || "")) { node.textContent = message || ""; }
  }

  function renderResult(state, result) {
    var text = JSON.stringify(sortKeys(result));
    if (text === state.resultJSON) { return; }
    state.resultJSON = text;
    var body = document.querySelector("#result-table tbody");
    if (!body) { return; }
    var keys = Object.keys(result).sort();
    var rows = keys.map(function (key) {
      return el("tr", {}, [el("th", { scope: "row", text: key }), el("td", { text: fmtValue(result[key]) })]);
    });
    if (!rows.length) { rows = [el("tr", { "class": "empty" }, [el("td", { colspan: "2", text: "No results yet." })])]; }
    body.replaceChildren.apply(body, rows);
  }

  /** Rebuild the control forms only when the allowed set changes, keeping
   *  focus on the same action if it is still offered. */
  function renderActions(state, job) {
    var actions = allowedActions(job);
    var key = actions.join(",");
    if (key === state.actions) { return; }
    state.actions = key;
    var box = document.getElementById("job-actions");
    var focused = document.activeElement && box.contains(document.activeElement)
      ? document.activeElement.dataset.action : null;
    var forms = actions.map(function (action) {
      return el("form", { method: "post", action: "/jobs/" + encodeURIComponent(job.id) + "/" + action }, [
        el("input", { type: "hidden", name: "csrf_token", value: csrfToken() }),
        el("button", { type: "submit", "class": "button" + (action === "cancel" ? " danger" : ""), "data-action": action, text: ACTION_LABELS[action] })
      ]);
    });
    box.replaceChildren.apply(box, forms);
    var again = focused ? box.querySelector('[data-action="' + focused + '"]') : null;
    if (again) { again.focus(); } else if (focused) { document.getElementById("job-status").focus(); }
  }

  /** One request at a time; changes arriving meanwhile trigger one more. */
  function refreshErrors(state, base) {
    if (state.errorsBusy) { state.errorsAgain = true; return; }
    state.errorsBusy = true;
    var offset = (state.errorsPage - 1) * state.perPage;
    getJSON(base + "/errors?limit=" + state.perPage + "&offset=" + offset)
      .then(function (data) { renderErrors(state, data.errors || [], data.total || 0); })
      .catch(function () { /* the table keeps its last content; the next change retries */ })
      .then(function () {
        state.errorsBusy = false;
        if (state.errorsAgain) { state.errorsAgain = false; refreshErrors(state, base); }
      });
  }

  function renderErrors(state, errors, total) {
    setText("error-total", fmtNumber(total));
    var body = document.getElementById("errors-body");
    if (!body) { return; }
    var rows = errors.map(function (e) {
      return el("tr", { "class": "severity-" + safeClass(e.severity || "error") }, [
        el("td", { "data-label": "Item", text: e.item }),
        el("td", { "data-label": "Code", "class": "mono", text: e.code }),
        el("td", { "data-label": "Message", text: e.message })
      ]);
    });
    if (!rows.length) { rows = [el("tr", { "class": "empty" }, [el("td", { colspan: "3", text: "No item errors." })])]; }
    body.replaceChildren.apply(body, rows);
    renderErrorPages(state, total);
  }

  function renderErrorPages(state, total) {
    var box = document.getElementById("errors-pagination");
    if (!box) { return; }
    var pages = Math.max(1, Math.ceil(total / state.perPage));
    if (pages <= 1) { box.replaceChildren(); return; }
    var url = function (n) { return "/jobs/" + encodeURIComponent(state.id) + "?errors_page=" + n + "#errors-heading"; };
    var parts = [];
    if (state.errorsPage > 1) { parts.push(el("a", { href: url(state.errorsPage - 1), rel: "prev", text: "← Previous" })); }
    parts.push(el("span", { text: "Page " + state.errorsPage + " of " + pages }));
    if (state.errorsPage < pages) { parts.push(el("a", { href: url(state.errorsPage + 1), rel: "next", text: "Next →" })); }
    box.replaceChildren(el("nav", { "class": "pagination", "aria-label": "Item error pages" }, parts));
  }

  // ------------------------------------------------------------------ start pages (uploads)

  function initStartPage() {
    var form = document.getElementById("start-form");
    if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = form.querySelector('input[type="file"]');
      if (file && file.required && !file.files.length) {
        showStartError({ message: "Choose a file to upload." });
        file.focus();
        return;
      }
      // The voter page previews the file and starts only on confirmation (voter_preview.js).
      if (form.dataset.preview && window.CocoaPreview) {
        window.CocoaPreview.show(form, function () { send(form); }, showStartError);
        return;
      }
      send(form);
    });
  }

  function send(form) {
    var submit = document.getElementById("start-submit");
    var box = document.getElementById("upload-progress");
    var bar = document.getElementById("upload-bar");
    var text = document.getElementById("upload-text");
    var xhr = new XMLHttpRequest();
    showStartError(null);
    submit.disabled = true;
    box.hidden = false;
    bar.value = 0;
    text.textContent = "Starting…";
    xhr.open("POST", form.getAttribute("action"));
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (event) {
      if (!event.lengthComputable) { text.textContent = fmtBytes(event.loaded) + " sent"; return; }
      var percent = Math.min(100, (100 * event.loaded) / event.total);
      bar.value = percent;
      text.textContent = percent.toFixed(0) + "% · " + fmtBytes(event.loaded) + " of " + fmtBytes(event.total);
    };
    xhr.upload.onload = function () { bar.value = 100; text.textContent = "Uploaded; checking the file…"; };
    xhr.onload = function () { finished(xhr, submit, bar, text); };
    xhr.onerror = function () {
      submit.disabled = false;
      showStartError({ message: "The upload failed: the server could not be reached. Check the connection and try again." });
    };
    xhr.send(new FormData(form));
  }

  function finished(xhr, submit, bar, text) {
    var data = null;
    try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
    if (xhr.status >= 200 && xhr.status < 300 && data && data.url) {
      bar.value = 100;
      text.textContent = "Job created; opening it…";
      window.location.assign(data.url);
      return;
    }
    submit.disabled = false;
    var error = data && data.error ? data.error : { message: "Unexpected answer from the server (HTTP " + xhr.status + ")." };
    error.status = xhr.status;
    showStartError(error);
  }

  function showStartError(error) {
    var box = document.getElementById("start-error");
    if (!box) { return; }
    if (!error) { box.hidden = true; box.replaceChildren(); return; }
    var parts = [el("p", { "class": "error-message", text: error.message || "The job could not be started." })];
    var meta = [error.status ? "HTTP " + error.status : null, error.code || null].filter(Boolean).join(" · ");
    if (meta) { parts.push(el("p", { "class": "error-code mono", text: meta })); }
    if (error.details !== null && error.details !== undefined) {
      parts.push(el("p", { "class": "error-details mono", text: fmtValue(error.details) }));
    }
    box.replaceChildren.apply(box, parts);
    box.hidden = false;
  }

  function fmtBytes(n) {
    if (n < 1024) { return n + " B"; }
    if (n < 1024 * 1024) { return (n / 1024).toFixed(1) + " KB"; }
    return (n / (1024 * 1024)).toFixed(1) + " MB";
  }

  // ------------------------------------------------------------------ start

  function init() {
    var main = document.getElementById("main");
    if (!main) { return; }
    var page = main.dataset.page;
    if (page === "jobs") { initJobsPage(main); }
    if (page === "job") { initJobPage(main); }
    if (page === "start") { initStartPage(); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
