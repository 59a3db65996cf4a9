// The concept explorer: hand-written, dependency-free; reads the data embedded in the page (explorer.json).
"use strict";
const started = performance.now();

// The embedded data: explorer.json, gzipped and base64-encoded (explorer_page.py), unpacked by the browser itself.
async function explorerData() {
  const holder = document.getElementById("explorer-data");
  const text = holder.textContent.trim();
  if (holder.dataset.encoding !== "gzip+base64") throw new Error("unknown data encoding " + holder.dataset.encoding);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}

explorerData().then(explorer, (error) => {
  document.getElementById("concept-detail").textContent = "Could not read the page's data: " + error +
    " (it needs a browser with DecompressionStream; explorer.json beside the page holds the same data).";
});

function explorer(D) {
  const parsed = performance.now();
  const $ = (id) => document.getElementById(id);
  const LANGS = D.languages;
  const VIEW_LANGS = { source: [LANGS[0]], target: [LANGS[1]], joint: LANGS };
  const PAGE = 60;
  const CURVE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"];
  const LANG_COLOURS = ["#1f6fd1", "#d6402b"];
  const state = { li: D.layers.length - 1, view: "source", concept: null, word: null, colour: "language",
                  filter: "all", shown: PAGE };

  // --- small helpers ---------------------------------------------------------------------------------------
  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);
  const num = (v, d) => (v === null || v === undefined ? "\u2014" : Number.isInteger(v) ? String(v) : v.toFixed(d || 3));
  const pct = (v) => (v === null || v === undefined ? "\u2014" : (100 * v).toFixed(1) + "%");
  const layer = () => D.layers[state.li];
  const view = (name) => layer().views[name || state.view];
  const rowCache = new Map();
  function rowOf(li, name, id) {
    const key = li + "/" + name;
    if (!rowCache.has(key)) rowCache.set(key, new Map(D.layers[li].views[name].id.map((c, i) => [c, i])));
    const row = rowCache.get(key).get(id);
    return row === undefined ? -1 : row;
  }
  const vocabIndex = {};
  function indexOf(lang, word) {
    if (!vocabIndex[lang]) vocabIndex[lang] = new Map(D.vocab[lang].map((w, i) => [w, i]));
    const i = vocabIndex[lang].get(word);
    return i === undefined ? -1 : i;
  }
  const hue = (id) => (id * 137.508) % 360;
  const conceptColour = (id) => (id < 0 ? "#cfcfcf" : "hsl(" + hue(id).toFixed(0) + ",65%,48%)");
  const langTag = (lang) => '<span class="lang">' + esc(lang) + "</span>";
  const viewLabel = (name) => name + (name === "joint" ? " (" + LANGS.join("+") + ")" : " (" + VIEW_LANGS[name][0] + ")");
  const gotoLink = (li, name, id, text) =>
    '<a class="goto" data-layer="' + li + '" data-view="' + name + '" data-concept="' + id + '">' + (text || "#" + id) + "</a>";

  // Top words of concept row ``r`` of view ``v`` in language slot ``k``: [[word, count], ...].
  function topWords(v, r, k, limit) {
    const lang = VIEW_LANGS[v.name][k];
    const ws = v.words[r][k], ns = v.counts[r][k];
    const out = [];
    for (let j = 0; j < ws.length && (!limit || j < limit); j++) out.push([D.vocab[lang][ws[j]], ns[j], ws[j]]);
    return out;
  }
  function wordsInline(v, r, limit) {
    return VIEW_LANGS[v.name].map((lang, k) => topWords(v, r, k, limit).map((p) => esc(p[0])).join(", ") +
      (v.types[r][k] > limit ? ", \u2026" : "") + " " + langTag(lang)).filter((s) => s.length).join("<br>");
  }
  function goldText(v, r) {
    if (!D.gold || !v.gold || !v.gold[r]) return "\u2014";
    return esc(D.gold.concepts[v.gold[r][0]]) + ' <span class="n">' + pct(v.gold[r][1]) + "</span>";
  }
  function isAligned(v, r) {
    if (v.name === "joint") return v.overlap[r] === 1;
    return v.matches[r].some((m) => m[3] === 1);
  }

  // --- header: layer and view selectors, metrics, curve -----------------------------------------------------
  function setupControls() {
    const select = $("layer");
    select.innerHTML = D.layers.map((l, i) => '<option value="' + i + '">layer ' + l.layer + "</option>").join("");
    select.addEventListener("change", () => selectLayer(Number(select.value)));
    $("prev").addEventListener("click", () => selectLayer(Math.max(0, state.li - 1)));
    $("next").addEventListener("click", () => selectLayer(Math.min(D.layers.length - 1, state.li + 1)));
    $("views").innerHTML = ["source", "target", "joint"].map((name) =>
      '<label><input type="radio" name="view" value="' + name + '"' + (name === state.view ? " checked" : "") +
      "> " + viewLabel(name) + "</label>").join("");
    for (const input of document.querySelectorAll("input[name=view]")) {
      input.addEventListener("change", () => selectView(input.value));
    }
    $("filter").addEventListener("change", () => { state.filter = $("filter").value; state.shown = PAGE; renderList(); });
    $("more").addEventListener("click", () => { state.shown += PAGE; renderList(); });
    $("colour").addEventListener("change", () => { state.colour = $("colour").value; renderMap(); });
    document.body.addEventListener("click", (event) => {
      const a = event.target.closest("a.goto, tr.pick, .chip");
      if (!a) return;
      if (a.dataset.word !== undefined) return selectWord(a.dataset.lang, Number(a.dataset.word));
      if (a.dataset.layer !== undefined && Number(a.dataset.layer) !== state.li) selectLayer(Number(a.dataset.layer), true);
      if (a.dataset.view && a.dataset.view !== state.view) selectView(a.dataset.view, true);
      if (a.dataset.concept !== undefined) selectConcept(Number(a.dataset.concept));
    });
  }

  function renderMetrics() {
    const m = layer().metrics || {};
    const shown = D.curve.map((c, k) =>
      '<span class="metric" data-metric="' + esc(c.name) + '"><span class="swatch" style="background:' +
      CURVE_COLOURS[k % CURVE_COLOURS.length] + '"></span>' + esc(c.label) + " <b>" +
      (c.name.startsWith("noise") ? pct(m[c.name]) : num(m[c.name])) + "</b></span>");
    const minor = LANGS.map((lang) => "noise " + esc(lang) + " " + pct(m["noise_fraction." + lang]) +
      ", " + num(m["clusters." + lang]) + " concepts").join(" \u00b7 ") +
      " \u00b7 joint " + num(m["clusters.joint"]) + " concepts";
    $("metrics").innerHTML = shown.join("") + '<span class="metric minor">' + minor + "</span>";
    $("layer").value = String(state.li);
  }

  function renderCurve() {
    const W = 460, H = 120, L = 34, R = 10, T = 8, B = 22;
    const n = D.layers.length;
    const px = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const py = (v) => T + (1 - v) * (H - T - B);
    let svg = '<svg width="' + W + '" height="' + H + '" role="img" aria-label="metrics over layers">';
    for (const v of [0, 0.5, 1]) {
      svg += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + py(v) + '" y2="' + py(v) + '" stroke="#e3e3e3"/>' +
        '<text x="' + (L - 4) + '" y="' + (py(v) + 3) + '" text-anchor="end">' + v + "</text>";
    }
    svg += '<line id="curve-mark" x1="' + px(state.li) + '" x2="' + px(state.li) + '" y1="' + T + '" y2="' +
      (H - B) + '" stroke="#333" stroke-dasharray="3,2"/>';
    D.curve.forEach((c, k) => {
      const colour = CURVE_COLOURS[k % CURVE_COLOURS.length];
      let d = "", pen = "M";
      D.layers.forEach((l, i) => {
        const v = (l.metrics || {})[c.name];
        if (v === null || v === undefined) { pen = "M"; return; }
        d += pen + px(i).toFixed(1) + "," + py(v).toFixed(1) + " ";
        pen = "L";
      });
      if (d) svg += '<path d="' + d + '" fill="none" stroke="' + colour + '" stroke-width="1.6"/>';
      D.layers.forEach((l, i) => {
        const v = (l.metrics || {})[c.name];
        if (v === null || v === undefined) return;
        const on = i === state.li;
        svg += '<circle class="' + (on ? "selected-layer" : "") + '" cx="' + px(i).toFixed(1) + '" cy="' +
          py(v).toFixed(1) + '" r="' + (on ? 4.5 : 2.5) + '" fill="' + colour + '" stroke="' + (on ? "#000" : "none") +
          '" data-layer-index="' + i + '"><title>' + esc(c.label) + ", layer " + l.layer + ": " + num(v) + "</title></circle>";
      });
    });
    D.layers.forEach((l, i) => {
      if (n <= 16 || i % Math.ceil(n / 16) === 0 || i === n - 1) {
        svg += '<text x="' + px(i) + '" y="' + (H - 8) + '" text-anchor="middle">' + l.layer + "</text>";
      }
    });
    svg += "</svg>";
    $("curve").innerHTML = svg;
    for (const dot of $("curve").querySelectorAll("circle")) {
      dot.style.cursor = "pointer";
      dot.addEventListener("click", () => selectLayer(Number(dot.dataset.layerIndex)));
    }
  }

  // --- the concept list of the selected (layer, view) ----------------------------------------------------
  function renderList() {
    const v = view();
    const joint = state.view === "joint";
    const options = joint ? [["all", "all"], ["aligned", "overlapping (COLAP)"], ["unaligned", "not overlapping"]]
      : [["all", "all"], ["aligned", "aligned (CALIGN)"], ["unaligned", "not aligned"]];
    $("filter").innerHTML = options.map(([value, text]) => '<option value="' + value + '"' +
      (value === state.filter ? " selected" : "") + ">" + text + "</option>").join("");
    let rows = v.id.map((_, r) => r);
    if (state.filter !== "all") rows = rows.filter((r) => isAligned(v, r) === (state.filter === "aligned"));
    rows.sort((a, b) => v.size[b] - v.size[a] || v.id[a] - v.id[b]);
    $("list-title").textContent = v.id.length + " concepts, layer " + layer().layer + ", " + viewLabel(state.view) +
      (state.filter === "all" ? "" : " (" + rows.length + " shown by the filter)");
    let html = "<tr><th>concept</th><th class=num>occ.</th><th class=num>types</th><th>top words</th><th>" +
      (joint ? "COLAP" : "CALIGN") + "</th>" + (D.gold ? "<th>gold</th>" : "") + "</tr>";
    for (const r of rows.slice(0, state.shown)) {
      const status = joint ? (v.overlap[r] ? '<span class="ok">overlap</span>' : '<span class="no">\u2717</span>')
        : v.matches[r].filter((m) => m[3]).map((m) => '<span class="ok">\u2192 #' + m[0] + "</span>").join(" ") ||
          '<span class="no">\u2717</span>';
      html += '<tr class="pick' + (v.id[r] === state.concept ? " selected" : "") + '" data-concept="' + v.id[r] +
        '"><td>#' + v.id[r] + '</td><td class="num">' + v.size[r] + '</td><td class="num">' +
        v.types[r].join("+") + "</td><td>" + wordsInline(v, r, 6) + "</td><td>" + status + "</td>" +
        (D.gold ? "<td>" + goldText(v, r) + "</td>" : "") + "</tr>";
    }
    $("concept-list").innerHTML = html;
    $("more").style.display = rows.length > state.shown ? "" : "none";
  }

  // --- one concept: members, gold, CALIGN matches or COLAP shares ------------------------------------------
  function membersHtml(v, r, marked) {
    return VIEW_LANGS[v.name].map((lang, k) => {
      const words = topWords(v, r, k);
      const rest = v.types[r][k] - words.length;
      return "<h3>" + esc(lang) + ": " + v.occurrences[r][k] + " occurrences, " + v.types[r][k] + " word types</h3>" +
        '<ul class="words" data-lang="' + esc(lang) + '">' + words.map(([w, n, wi]) =>
          "<li>" + (marked && marked.has(lang + "/" + wi) ? "<mark>" + esc(w) + "</mark>" : esc(w)) +
          '<span class="n">' + n + "</span></li>").join("") + "</ul>" +
        (rest > 0 ? '<p class="note">\u2026 and ' + rest + " more word types</p>" : "");
    }).join("");
  }

  function renderDetail() {
    const box = $("concept-detail");
    const r = state.concept === null ? -1 : rowOf(state.li, state.view, state.concept);
    if (r < 0) {
      box.innerHTML = '<p class="hint">' + (state.concept === null ? "Click a concept, a map point or a search result."
        : "Concept #" + state.concept + " is not in this view.") + "</p>";
      return;
    }
    const v = view();
    let html = "<h2>Concept #" + v.id[r] + " \u00b7 layer " + layer().layer + " \u00b7 " + viewLabel(state.view) +
      "</h2><p>" + v.size[r] + " occurrences" + (D.gold && v.gold && v.gold[r] ? " \u00b7 gold: <b>" +
      esc(D.gold.concepts[v.gold[r][0]]) + "</b>, purity " + pct(v.gold[r][1]) : "") + "</p>";
    if (state.view === "joint") {
      html += membersHtml(v, r) + sharesHtml(v, r);
    } else {
      const src = VIEW_LANGS[state.view][0];
      const marked = new Set();
      for (const m of v.matches[r]) for (let j = 0; j < m[4].length; j += 2) marked.add(src + "/" + m[4][j]);
      html += membersHtml(v, r, marked) + matchesHtml(v, r);
    }
    box.innerHTML = html;
  }

  function matchesHtml(v, r) {
    const other = state.view === "source" ? "target" : "source";
    const [src, tgt] = [VIEW_LANGS[state.view][0], VIEW_LANGS[other][0]];
    const c = D.settings.calign;
    const sizeS = v.types[r][0];
    const t = view(other);
    let html = "<h3>Target concepts its words translate into (CALIGN " + esc(src) + "\u2192" + esc(tgt) +
      ": aligned iff m/|S| &gt; \u03b8=" + c.theta + ", |S| &gt; \u03c4=" + c.tau + ", |S|/|T| &gt; \u03c1=" + c.rho +
      "; D<sub>" + c.top_n + "</sub>)</h3>";
    if (!v.matches[r].length) return html + '<p class="note">None of its words has a dictionary translation in a ' +
      esc(tgt) + " concept.</p>";
    html += '<table class="matches"><tr><th>target concept</th><th class=num>m</th><th class=num>|S|</th>' +
      "<th class=num>|T|</th><th class=num>m/|S|</th><th>aligned</th><th>translation pairs</th></tr>";
    for (const [target, m, sizeT, aligned, pairs] of v.matches[r]) {
      const tr = rowOf(state.li, other, target);
      const hits = new Set();
      let shown = "";
      for (let j = 0; j < pairs.length; j += 2) {
        hits.add(pairs[j + 1]);
        shown += '<span class="pair"><mark>' + esc(D.vocab[src][pairs[j]]) + "</mark> \u2192 <mark>" +
          esc(D.vocab[tgt][pairs[j + 1]]) + "</mark></span> ";
      }
      const words = tr < 0 ? "" : topWords(t, tr, 0, 8).map(([w, , wi]) =>
        hits.has(wi) ? "<mark>" + esc(w) + "</mark>" : esc(w)).join(", ");
      html += '<tr class="' + (aligned ? "aligned" : "") + '" data-target="' + target + '"><td>' +
        gotoLink(state.li, other, target) + " " + words + '</td><td class="num">' + m + '</td><td class="num">' + sizeS +
        '</td><td class="num">' + sizeT + '</td><td class="num">' + (m / sizeS).toFixed(2) + "</td><td>" +
        (aligned ? '<span class="ok">\u2713</span>' : '<span class="no">\u2717</span>') + '</td><td class="pairs">' +
        shown + "</td></tr>";
    }
    return html + "</table>";
  }

  function sharesHtml(v, r) {
    const tau = D.settings.colap.tau;
    let html = "<h3>Language shares (COLAP: each language must hold more than \u03c4=" + tau + "% of it)</h3><table>";
    LANGS.forEach((lang, k) => {
      const share = v.size[r] ? (100 * v.occurrences[r][k]) / v.size[r] : 0;
      html += '<tr><td>' + esc(lang) + '</td><td><span class="bar"><span style="width:' + share.toFixed(1) +
        '%"></span><i style="left:' + tau + '%"></i></span></td><td class="num share">' + share.toFixed(1) + "%</td>" +
        '<td class="num">' + v.occurrences[r][k] + "</td><td>" +
        (100 * v.occurrences[r][k] > tau * v.size[r] ? '<span class="ok">&gt; \u03c4</span>' : '<span class="no">\u2264 \u03c4</span>') +
        "</td></tr>";
    });
    return html + "</table><p>" + (v.overlap[r] ? '<span class="ok">overlapping</span>' : '<span class="no">not overlapping</span>') + "</p>";
  }

  // --- search: a word's concept here and at every layer -------------------------------------------------
  function setupSearch() {
    const input = $("search");
    input.addEventListener("input", () => suggest(input.value.trim()));
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      const q = input.value.trim();
      const hits = LANGS.map((lang) => [lang, indexOf(lang, q)]).filter(([, i]) => i >= 0);
      if (hits.length) selectWord(hits[0][0], hits[0][1]);
      else {
        const first = $("suggest").querySelector(".chip");
        if (first) first.click();
        else $("word-result").innerHTML = '<p class="no">No word \u201c' + esc(q) + "\u201d in " + LANGS.join(" or ") + ".</p>";
      }
    });
  }

  function suggest(q) {
    if (!q) { $("suggest").innerHTML = ""; return; }
    const low = q.toLowerCase();
    let html = "";
    for (const lang of LANGS) {
      let found = 0;
      const words = D.vocab[lang];
      for (let i = 0; i < words.length && found < 12; i++) {
        if (words[i].toLowerCase().startsWith(low)) {
          html += '<span class="chip" data-lang="' + esc(lang) + '" data-word="' + i + '">' + esc(words[i]) + langTag(lang) + "</span>";
          found++;
        }
      }
    }
    $("suggest").innerHTML = html || '<span class="note">no word starts with \u201c' + esc(q) + "\u201d</span>";
  }

  function wordView(lang) {
    return state.view === "joint" ? "joint" : lang === LANGS[0] ? "source" : "target";
  }

  function renderWord() {
    if (!state.word) return;
    const { lang, w } = state.word;
    const name = wordView(lang);
    const k = VIEW_LANGS[name].indexOf(lang);
    const v = view(name);
    const home = v.home[lang][w];
    const gold = D.gold && D.gold.word[lang][w] >= 0 ? " \u00b7 gold " + esc(D.gold.concepts[D.gold.word[lang][w]]) : "";
    let html = "<h3><mark>" + esc(D.vocab[lang][w]) + "</mark> " + langTag(lang) + gold + "</h3>";
    if (home < 0) html += "<p>At layer " + layer().layer + " (" + viewLabel(name) + ") its occurrences are all noise.</p>";
    else {
      const r = rowOf(state.li, name, home);
      const own = topWords(v, r, k).find((p) => p[2] === w);
      html += "<p>Layer " + layer().layer + ", " + viewLabel(name) + ": concept " + gotoLink(state.li, name, home) +
        " (" + v.size[r] + " occurrences" + (own ? ", " + own[1] + " of this word" : "") + ")</p>" +
        '<div id="word-members">' + VIEW_LANGS[name].map((l, kk) => "<div><b>" + esc(l) + "</b>: " +
          topWords(v, r, kk).map(([x, n, wi]) => (l === lang && wi === w ? "<mark>" + esc(x) + "</mark>" : esc(x)) +
            '<span class="n">' + n + "</span>").join(", ") + "</div>").join("") + "</div>";
    }
    html += "<h3>Its concept at every layer (" + viewLabel(name) + ")</h3><table id=\"word-path\">" +
      "<tr><th>layer</th><th>concept</th><th>top words</th></tr>";
    D.layers.forEach((l, li) => {
      const c = l.views[name].home[lang][w];
      const r = c < 0 ? -1 : rowOf(li, name, c);
      html += '<tr class="pick' + (li === state.li ? " selected" : "") + '" data-layer="' + li + '" data-view="' + name +
        '" data-concept="' + c + '"><td>' + l.layer + "</td><td>" + (c < 0 ? "noise" : "#" + c) + "</td><td>" +
        (r < 0 ? "" : wordsInline(l.views[name], r, 4)) + "</td></tr>";
    });
    $("word-result").innerHTML = html + "</table>";
  }

  // --- the 2-D map ----------------------------------------------------------------------------------------
  const mapState = { points: [] };
  function renderMap() {
    const canvas = $("map");
    const ctx = canvas.getContext("2d");
    const m = layer().map;
    const W = canvas.width, H = canvas.height, P = 10;
    ctx.clearRect(0, 0, W, H);
    const concepts = m.concept[state.view] || [];
    const inView = (i) => state.view === "joint" || m.language[i] === (state.view === "source" ? 0 : 1);
    const points = [];
    const selected = [];
    for (let i = 0; i < m.x.length; i++) {
      const x = P + (m.x[i] / 1000) * (W - 2 * P), y = H - P - (m.y[i] / 1000) * (H - 2 * P);
      points.push([x, y, i]);
      if (state.concept !== null && inView(i) && concepts[i] === state.concept) selected.push([x, y, i]);
    }
    ctx.globalAlpha = 0.75;
    for (const [x, y, i] of points) {
      ctx.fillStyle = state.colour === "language" ? LANG_COLOURS[m.language[i]]
        : inView(i) ? conceptColour(concepts[i]) : "#e2e2e2";
      ctx.beginPath();
      ctx.arc(x, y, 2.2, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    ctx.strokeStyle = "#000";
    for (const [x, y, i] of selected) {
      ctx.fillStyle = state.colour === "language" ? LANG_COLOURS[m.language[i]] : conceptColour(concepts[i]);
      ctx.beginPath();
      ctx.arc(x, y, 4.5, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
    mapState.points = points;
    canvas.dataset.points = String(points.length);
    canvas.dataset.selected = String(selected.length);
    const legend = state.colour === "language"
      ? LANGS.map((l, k) => '<span><span class="swatch" style="background:' + LANG_COLOURS[k] + '"></span>' + esc(l) + "</span>").join("")
      : "colour: concept of " + viewLabel(state.view) + " (grey: noise" + (state.view === "joint" ? "" : " or the other language") + ")";
    $("map-note").innerHTML = '<span class="legend">' + legend + "</span><br>" + (m.method || "PCA") + " to 2-D of " +
      m.shown.toLocaleString("en") + " of the layer's " + m.total.toLocaleString("en") + " occurrences (a seeded sample of at most " +
      D.settings.explorer.map_points.toLocaleString("en") + " a layer" + (m.explained_variance != null ? "; the two components explain " +
      pct(m.explained_variance) + " of the variance" : "") + "). Hover for the word, click for its concept.";
  }

  function nearestPoint(event) {
    const canvas = $("map");
    const box = canvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) * canvas.width) / box.width, y = ((event.clientY - box.top) * canvas.height) / box.height;
    let best = null, dist = 64;
    for (const p of mapState.points) {
      const d = (p[0] - x) ** 2 + (p[1] - y) ** 2;
      if (d < dist) { dist = d; best = p; }
    }
    return best;
  }

  function setupMap() {
    const canvas = $("map"), tip = $("map-tip");
    canvas.addEventListener("mousemove", (event) => {
      const p = nearestPoint(event);
      if (!p) { tip.style.display = "none"; return; }
      const m = layer().map, i = p[2];
      const lang = LANGS[m.language[i]];
      const c = (m.concept[state.view] || [])[i];
      tip.innerHTML = esc(D.vocab[lang][m.word[i]] ?? "?") + " " + langTag(lang) + " \u00b7 " +
        (c === undefined || c < 0 ? (state.view === "joint" || wordView(lang) === state.view ? "noise" : "not in this view") : "concept #" + c);
      tip.style.left = p[0] + 12 + "px";
      tip.style.top = p[1] - 8 + "px";
      tip.style.display = "block";
    });
    canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    canvas.addEventListener("click", (event) => {
      const p = nearestPoint(event);
      if (!p) return;
      const c = (layer().map.concept[state.view] || [])[p[2]];
      if (c !== undefined && c >= 0) selectConcept(c);
    });
  }

  // --- selection ------------------------------------------------------------------------------------------
  // A concept id names a concept of one (layer, view) only: after a change, follow the searched word, if any.
  function followWord() {
    const w = state.word;
    const home = w && VIEW_LANGS[state.view].includes(w.lang) ? view().home[w.lang][w.w] : -1;
    state.concept = home >= 0 ? home : null;
  }
  function selectLayer(li, quiet) {
    state.li = li;
    state.shown = PAGE;
    if (quiet) return;
    followWord();
    renderAll();
  }
  function selectView(name, quiet) {
    state.view = name;
    state.shown = PAGE;
    state.filter = "all";
    for (const input of document.querySelectorAll("input[name=view]")) input.checked = input.value === name;
    if (quiet) return;
    followWord();
    renderAll();
  }
  function selectConcept(id) {
    state.concept = id >= 0 ? id : null;
    renderAll();
  }
  function selectWord(lang, w) {
    state.word = { lang, w };
    if (state.view !== "joint") selectView(lang === LANGS[0] ? "source" : "target", true);
    followWord();
    $("search").value = D.vocab[lang][w];
    $("suggest").innerHTML = "";
    renderAll();
  }
  function renderAll() {
    renderMetrics();
    renderCurve();
    renderList();
    renderDetail();
    renderWord();
    renderMap();
  }

  function renderAbout() {
    const s = D.settings;
    const gold = D.gold ? "Gold concepts from " + esc(D.gold.file) + ": " + D.gold.matched.toLocaleString("en") + " of " +
      D.gold.occurrences.toLocaleString("en") + " occurrences matched (by language, line, word index and word); purity is " +
      "the share of a concept's gold-labelled occurrences that have its majority gold concept." : "No gold labels (explorer.gold_words is not set).";
    $("about").innerHTML = "Concepts are clusters of word occurrences per layer: each language on its own (source, target; " +
      "CALIGN aligns them through the dictionary) and both together (joint; COLAP). Words listed: the " + s.explorer.top_words +
      " most frequent per concept and language. " + gold + " This page is self-contained: its data is embedded (and beside it as explorer.json); it loads nothing.";
  }

  setupControls();
  setupSearch();
  setupMap();
  renderAbout();
  renderAll();
  window.explorerReady = performance.now();  // since navigation start; bench_explorer.py reads these
  window.explorerTimings = { data_ms: parsed - started, render_ms: window.explorerReady - parsed };
  document.body.dataset.ready = "1";
}
