/* The map of households and parcels (Leaflet, served from /vendor/leaflet/).
 *
 * Reads its configuration from data attributes of #map, fetches GeoJSON for
 * the current view from the API (session cookie, GET only) on every move,
 * and draws households as circle markers (coloured by geocode provider, or
 * by quality) and parcels as polygons (linked / unlinked). With no tile URL
 * there is no base map, and everything else still works.
 *
 * Text from the data (addresses, APNs) only ever reaches the page through
 * textContent; nothing is built with innerHTML. When the data is drawn the
 * map sets data-state="ready" and data-points / data-clusters / data-polygons,
 * which tests (and curious people) can read.
 */
(function () {
  "use strict";

  var PALETTE = ["#1f6feb", "#2b8a3e", "#9c36b5", "#e8590c", "#0b7285", "#c2255c", "#5c940d", "#364fc7"];
  var LINKED = "#2b8a3e";
  var UNLINKED = "#c92a2a";

  function withBBox(url, bbox) {
    return url + (url.indexOf("?") < 0 ? "?" : (/[?&]$/.test(url) ? "" : "&")) + "bbox=" + bbox;
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { var e = new Error("HTTP " + r.status); e.status = r.status; throw e; }
      return r.json();
    });
  }

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  function textNode(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  function init() {
    var box = document.getElementById("map");
    if (!box) { return; }
    var note = document.getElementById("map-note");
    if (!window.L) {
      box.dataset.state = "no-library";
      if (note) { note.textContent = "The map library is not installed on the server (run `make install`)."; }
      return;
    }
    var L = window.L;
    var map = L.map(box, { zoomSnap: 0.25, attributionControl: !!box.dataset.tileUrl });
    if (box.dataset.tileUrl) {
      L.tileLayer(box.dataset.tileUrl, { maxZoom: 19, attribution: escapeText(box.dataset.attribution || "") }).addTo(map);
    }
    map.createPane("parcels").style.zIndex = 410;
    map.createPane("points").style.zIndex = 420;
    var parcelLayer = L.layerGroup().addTo(map);
    var pointLayer = L.layerGroup().addTo(map);
    var colours = {};
    var state = { seq: 0, focus: box.dataset.focus || "" };

    function colourFor(key) {
      key = key || "unknown";
      if (!colours[key]) { colours[key] = PALETTE[Object.keys(colours).length % PALETTE.length]; renderLegend(); }
      return colours[key];
    }

    function renderLegend() {
      var legend = document.getElementById("map-legend");
      if (!legend) { return; }
      var items = Object.keys(colours).sort().map(function (key) {
        var li = document.createElement("li");
        var dot = document.createElement("span");
        dot.className = "swatch";
        dot.style.backgroundColor = colours[key];
        li.appendChild(dot);
        li.appendChild(textNode("geocoded by " + key));
        return li;
      });
      [["parcel linked to a household", LINKED], ["parcel without a household", UNLINKED]].forEach(function (pair) {
        var li = document.createElement("li");
        var dot = document.createElement("span");
        dot.className = "swatch square";
        dot.style.borderColor = pair[1];
        li.appendChild(dot);
        li.appendChild(textNode(pair[0]));
        items.push(li);
      });
      legend.replaceChildren.apply(legend, items);
    }

    function drawPoints(data) {
      pointLayer.clearLayers();
      var points = 0, clusters = 0;
      (data.features || []).forEach(function (f) {
        var c = f.geometry.coordinates, p = f.properties || {};
        var at = [c[1], c[0]];
        if (p.cluster) {
          clusters += 1;
          var r = Math.min(28, 8 + Math.log(p.count + 1) * 3);
          var cluster = L.circleMarker(at, { pane: "points", radius: r, color: "#552f15", weight: 1, fillColor: "#d9a066",
                                             fillOpacity: 0.75, className: "hh-cluster" });
          cluster.bindTooltip(textNode(p.count.toLocaleString() + " households"));
          cluster.on("click", function () { map.setView(at, Math.min(map.getZoom() + 2, 19)); });
          cluster.addTo(pointLayer);
          return;
        }
        points += 1;
        var focus = String(p.id) === state.focus;
        var marker = L.circleMarker(at, { pane: "points", radius: focus ? 9 : 6, color: focus ? "#000" : "#fff",
                                          weight: focus ? 3 : 1, fillColor: colourFor(p.provider), fillOpacity: 0.9,
                                          className: "hh-point" + (focus ? " hh-focus" : "") });
        marker.bindTooltip(textNode(p.label + (p.quality ? " · " + p.quality : "") + (p.provider ? " · " + p.provider : "")));
        marker.on("click", function () { window.location.assign("/households/" + encodeURIComponent(p.id)); });
        marker.addTo(pointLayer);
        marker.getElement().setAttribute("data-id", String(p.id));
      });
      box.dataset.points = String(points);
      box.dataset.clusters = String(clusters);
      return data;
    }

    function drawParcels(data) {
      parcelLayer.clearLayers();
      var features = data.features || [];
      L.geoJSON(features, {
        pane: "parcels",
        style: function (f) {
          var linked = f.properties && f.properties.linked;
          return { color: linked ? LINKED : UNLINKED, weight: 1.5, fillOpacity: 0.12,
                   className: "parcel " + (linked ? "parcel-linked" : "parcel-unlinked") };
        },
        onEachFeature: function (f, layer) {
          var p = f.properties || {};
          layer.bindTooltip(textNode("Parcel " + (p.apn || "") + (p.situs ? " · " + p.situs : "")), { sticky: true });
        }
      }).addTo(parcelLayer);
      box.dataset.polygons = String(features.length);
      return data;
    }

    function refresh() {
      var b = map.getBounds();
      var bbox = [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
                  clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)].map(function (v) { return v.toFixed(6); }).join(",");
      var seq = ++state.seq;
      box.dataset.state = "loading";
      Promise.all([getJSON(withBBox(box.dataset.householdsUrl, bbox)), getJSON(withBBox(box.dataset.parcelsUrl, bbox))])
        .then(function (answers) {
          if (seq !== state.seq) { return; }
          drawParcels(answers[1]);
          drawPoints(answers[0]);
          var parts = [];
          if (answers[0].clustered) { parts.push(answers[0].total.toLocaleString() + " households, grouped: zoom in to see each one."); }
          if (answers[1].truncated) { parts.push(answers[1].total.toLocaleString() + " parcels in view: zoom in to see them."); }
          if (note) { note.textContent = parts.join(" "); }
          box.dataset.state = "ready";
        })
        .catch(function (error) {
          if (seq !== state.seq) { return; }
          box.dataset.state = "error";
          if (note) { note.textContent = error.status === 401 ? "Your session ended; log in again." : "The map data could not be loaded (" + error.message + ")."; }
        });
    }

    var parts = (box.dataset.bounds || "").split(",").map(Number);
    if (parts.length === 4 && parts.every(isFinite)) {
      map.fitBounds([[parts[1], parts[0]], [parts[3], parts[2]]], { padding: [24, 24], maxZoom: 18 });
    } else {
      map.setView([39.5, -98.35], 4);
    }
    map.on("moveend", refresh);
    refresh();
  }

  /** Leaflet puts attribution text in with innerHTML: escape the operator's text. */
  function escapeText(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
