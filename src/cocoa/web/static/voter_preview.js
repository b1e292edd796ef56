/* The voter start page's preview (issue 17): before an import starts, show
   what it would do - the layout and why, the column each field comes from,
   the row count, the first rows as they would be stored and the problems in
   the first rows - and start only when the user confirms. Everything from the
   file is put in the page as text (textContent), never as HTML. */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function table(caption, heads, rows) {
    return el("table", { "class": "table preview-table" }, [
      el("caption", { text: caption }),
      el("thead", {}, [el("tr", {}, heads.map(function (h) { return el("th", { scope: "col", text: h }); }))]),
      el("tbody", {}, rows.map(function (cells) {
        return el("tr", {}, cells.map(function (c) { return el("td", { text: c === null || c === undefined ? "—" : String(c) }); }));
      }))
    ]);
  }

  function render(box, shown, onConfirm, onCancel) {
    var mapping = Object.keys(shown.mapping).map(function (field) { return [field, shown.mapping[field]]; });
    var sample = shown.sample.map(function (row) {
      if (!row.stored) { return [row.row, "not imported", row.message, "", ""]; }
      return [row.row, row.voter_id, row.name, [row.address, row.city, row.state, row.zip].filter(Boolean).join(", "),
              row.household_key];
    });
    var parts = [
      el("h2", { id: "voter-preview-title", text: "Check before importing" }),
      el("p", { id: "preview-summary" }, [
        el("strong", { text: shown.layout }), " · " + shown.rows.toLocaleString() + " rows (" + shown.rows_note + ")"
      ]),
      el("p", { "class": "muted", id: "preview-reason", text: shown.reason }),
      el("p", { id: "preview-identity", text: "Voters identified by: " + shown.identity }),
      table("Columns used", ["Field", "Your column"], mapping)
    ];
    if (shown.problems.length) {
      parts.push(el("h3", { text: "Problems in the first " + shown.checked_rows + " rows" }));
      parts.push(el("ul", { id: "preview-problems" }, shown.problems.map(function (p) {
        return el("li", { "class": p.severity === "error" ? "problem-error" : "problem-warning", text: p.message });
      })));
    } else {
      parts.push(el("p", { id: "preview-problems", text: "No problems in the first " + shown.checked_rows + " rows." }));
    }
    parts.push(table("The first " + sample.length + " rows as they would be stored",
                     ["Row", "Voter id", "Name", "Address", "Household"], sample));
    var confirm = el("button", { type: "button", "class": "button primary", id: "preview-confirm", text: "Confirm and start import" });
    var cancel = el("button", { type: "button", "class": "button", id: "preview-cancel", text: "Change file or mapping" });
    confirm.addEventListener("click", function () { confirm.disabled = true; onConfirm(); });
    cancel.addEventListener("click", onCancel);
    parts.push(el("div", { "class": "button-row" }, [confirm, cancel]));
    box.replaceChildren.apply(box, parts);
    box.hidden = false;
    confirm.focus();
  }

  function show(form, start, showError) {
    var box = document.getElementById("voter-preview");
    var submit = document.getElementById("start-submit");
    var xhr = new XMLHttpRequest();
    function hide() { box.hidden = true; box.replaceChildren(); submit.disabled = false; }
    showError(null);
    hide();
    submit.disabled = true;
    xhr.open("POST", form.dataset.preview);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      submit.disabled = false;
      if (xhr.status === 200 && data && data.layout) {
        render(box, data, function () { submit.disabled = true; start(); }, function () { hide(); form.querySelector("#file").focus(); });
        return;
      }
      var error = data && data.error ? data.error : { message: "Unexpected answer from the server (HTTP " + xhr.status + ")." };
      error.status = xhr.status;
      showError(error);
    };
    xhr.onerror = function () {
      submit.disabled = false;
      showError({ message: "The preview failed: the server could not be reached. Check the connection and try again." });
    };
    xhr.send(new FormData(form));
    // A changed file or mapping needs a new preview.
    ["file", "format", "mapping"].forEach(function (id) {
      var input = form.querySelector("#" + id);
      if (input) { input.addEventListener("change", hide, { once: true }); }
    });
  }

  window.CocoaPreview = { show: show };
}());
