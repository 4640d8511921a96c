// The operator's page: counts and charts per domain, the recent decisions, "wrong hit", and a what-if threshold.
// Every call to /ui/api sends the admin key given in the form (kept in this tab's sessionStorage only).
"use strict";

const state = { domains: {}, decisions: [], sliders: {} };
const $ = (selector, root = document) => root.querySelector(selector);
const fmt = (value, digits = 3) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));

async function api(path, options = {}) {
  const key = sessionStorage.getItem("cachetune-key");
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    $("#key-form").hidden = false;
    $("#key-error").textContent = body.detail || `refused (${response.status})`;
    throw new Error("not allowed");
  }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function svgLine(points, { yMax = 1, marks = [], xFrom = 0, xTo = 1 } = {}) {
  // points: [[x, y], ...] with x in [xFrom, xTo] and y in [0, yMax]; marks: [{x, label, color}]
  const width = 400, height = 110, pad = 18;
  const sx = (x) => pad + ((x - xFrom) / (xTo - xFrom || 1)) * (width - 2 * pad);
  const sy = (y) => height - pad - (y / (yMax || 1)) * (height - 2 * pad);
  const path = points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
  const lines = marks
    .map((m) => `<line x1="${sx(m.x)}" x2="${sx(m.x)}" y1="${pad}" y2="${height - pad}" stroke="${m.color}" stroke-dasharray="3 2"/>` +
      `<text x="${sx(m.x) + 3}" y="${pad + 8}">${m.label}</text>`)
    .join("");
  return `<svg viewBox="0 0 ${width} ${height}" role="img"><path d="${path}" fill="none" stroke="#2f6fde" stroke-width="1.5"/>` +
    `<line x1="${pad}" x2="${width - pad}" y1="${height - pad}" y2="${height - pad}" stroke="#ccd"/>` +
    `<text x="${pad}" y="${height - 4}">${xFrom}</text><text x="${width - pad - 20}" y="${height - 4}">${xTo}</text>${lines}</svg>`;
}

function whatIf(domain, threshold) {
  // Over this domain's recent decisions: how many would be served at `threshold`, and how many of those were marked wrong.
  const rows = state.decisions.filter((d) => d.domain === domain);
  const served = rows.filter((d) => d.candidate_similarity !== null && d.candidate_similarity >= threshold);
  return { decisions: rows.length, served: served.length, wrong: served.filter((d) => d.marked_wrong).length };
}

function renderWhatIf(domain) {
  const card = $(`[data-domain="${domain}"]`);
  const threshold = Number($(`[data-testid="slider-${domain}"]`, card).value);
  state.sliders[domain] = threshold;
  const result = whatIf(domain, threshold);
  $(`[data-testid="whatif-threshold-${domain}"]`, card).textContent = threshold.toFixed(3);
  $(`[data-testid="whatif-served-${domain}"]`, card).textContent = result.served;
  $(`[data-testid="whatif-decisions-${domain}"]`, card).textContent = result.decisions;
  $(`[data-testid="whatif-wrong-${domain}"]`, card).textContent = result.wrong;
  const curve = [];
  for (let t = 0.5; t <= 1.0001; t += 0.01) {
    const r = whatIf(domain, t);
    curve.push([t, r.decisions ? r.served / r.decisions : 0]);
  }
  const today = state.domains[domain].threshold;
  $(".curve", card).innerHTML = svgLine(curve, {
    xFrom: 0.5, xTo: 1.0, yMax: 1,
    marks: [{ x: today, label: `today ${today}`, color: "#c62828" }, { x: threshold, label: "", color: "#2f6fde" }],
  });
}

function card(name, domain) {
  const node = element("article", { class: "domain", "data-domain": name });
  const report = domain.report ? `<a href="#" data-testid="report-${name}">the evaluation report</a>` : "";
  const refusals = Object.entries(domain.refusals).map(([reason, n]) => `${reason} ${n}`).join(", ") || "none";
  node.innerHTML = `<h2>${name}${report}</h2>
    <div class="figures">
      <div>checks<b data-testid="checks-${name}">${domain.checks}</b></div>
      <div>hit ratio<b data-testid="hit-ratio-${name}">${fmt(domain.hit_ratio)}</b></div>
      <div>hits exact / semantic<b>${domain.hits.exact} / ${domain.hits.semantic}</b></div>
      <div>entries<b data-testid="entries-${name}">${domain.entries ?? "–"}</b></div>
      <div>p50 / p99 ms<b>${fmt(domain.latency_ms.p50, 1)} / ${fmt(domain.latency_ms.p99, 1)}</b></div>
      <div>threshold<b>${domain.threshold}</b></div>
      <div style="grid-column: span 2">refusals<b>${refusals}</b></div>
    </div>
    <div class="chart"></div>
    <div class="whatif">What if the threshold were <output data-testid="whatif-threshold-${name}"></output>
      <input type="range" min="0.5" max="1" step="0.005" value="${state.sliders[name] ?? domain.threshold}" data-testid="slider-${name}">
      <div>served <output data-testid="whatif-served-${name}"></output> of <output data-testid="whatif-decisions-${name}"></output>
        recent decisions; marked wrong among them <output data-testid="whatif-wrong-${name}"></output></div>
      <div class="curve"></div>
    </div>`;
  const series = domain.series.map((b, i) => [i, b.checks ? b.hits / b.checks : 0]);
  $(".chart", node).innerHTML = svgLine(series, { xFrom: 0, xTo: Math.max(series.length - 1, 1), yMax: 1 });
  $(`[data-testid="slider-${name}"]`, node).addEventListener("input", () => renderWhatIf(name));
  if (domain.report) $(`[data-testid="report-${name}"]`, node).addEventListener("click", (event) => openReport(event, name));
  return node;
}

async function openReport(event, domain) {
  event.preventDefault();
  const html = await (await api(`/ui/api/report/${encodeURIComponent(domain)}`)).text();
  window.open(URL.createObjectURL(new Blob([html], { type: "text/html" })), "_blank");
}

function decisionRow(d) {
  const when = new Date(d.time * 1000).toLocaleTimeString();
  const label = d.marked_wrong ? "marked wrong" : `${d.outcome}: ${d.reason}`;
  const row = element("tr", { "data-testid": `decision-${d.seq}` });
  row.innerHTML = `<td>${when}</td><td>${d.domain}</td><td>${d.tenant || "(default)"}</td>
    <td class="text"></td><td class="text"></td><td class="num">${fmt(d.similarity, 4)}</td><td class="num">${d.threshold}</td>
    <td class="${d.marked_wrong ? "wrong" : d.outcome}" data-testid="outcome-${d.seq}">${label}</td><td></td>`;
  row.children[3].textContent = d.prompt;
  row.children[4].textContent = d.nearest ?? "";
  if (d.outcome === "hit" && !d.marked_wrong) {
    const button = element("button", { "data-testid": `wrong-${d.seq}` }, "Wrong hit");
    button.addEventListener("click", () => markWrong(d.seq));
    row.children[8].append(button);
  }
  return row;
}

async function markWrong(seq) {
  await api(`/ui/api/decisions/${seq}/wrong`, { method: "POST" });
  await refresh();
}

async function refresh() {
  const [summary, decisions] = await Promise.all([
    api("/ui/api/summary").then((r) => r.json()),
    api("/ui/api/decisions?limit=1000").then((r) => r.json()),
  ]);
  state.domains = summary.domains;
  state.decisions = decisions.decisions;
  $("#key-form").hidden = true;
  $("#domains").replaceChildren(...Object.entries(state.domains).map(([name, domain]) => card(name, domain)));
  Object.keys(state.domains).forEach(renderWhatIf);
  $("#decisions tbody").replaceChildren(...state.decisions.slice(0, 200).map(decisionRow));
  $("#updated").textContent = `last ${summary.window_minutes} minutes; updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = "true";
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("cachetune-key", $("#key").value);
  refresh().catch(() => {});
});
refresh().catch(() => {});
setInterval(() => { if (!document.querySelector("input[type=range]:active")) refresh().catch(() => {}); }, 5000);
