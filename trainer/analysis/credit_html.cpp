#include "trainer/analysis/credit_html.h"

namespace anchor {
namespace {

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// The page's script reads the report from an inline JSON block; "</" is escaped so that no
// text inside the report can close the <script> element.
std::string embed_json(const nlohmann::json& j) {
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '<' && i + 1 < text.size() && text[i + 1] == '/') out += "<\\";
    else out += text[i];
  }
  return out;
}

const char* kStyle = R"CSS(
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #1a202c; max-width: 1100px; }
h1 { font-size: 20px; margin: 0 0 4px 0; } .sub { color: #4a5568; font-size: 13px; margin-bottom: 14px; }
pre.prompt { background: #f7fafc; border: 1px solid #e2e8f0; padding: 8px; white-space: pre-wrap; font-size: 13px; margin: 0; }
.controls { margin: 12px 0; font-size: 14px; } select { font-size: 14px; }
.text { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 15px; line-height: 2.4; }
.sent { display: block; padding: 2px 10px; margin: 4px 0; border-left: 8px solid #e2e8f0; }
.sent .badge { font-family: -apple-system, Helvetica, Arial, sans-serif; font-size: 11px; color: #22543d;
  background: #c6f6d5; border-radius: 8px; padding: 1px 7px; margin-left: 10px; }
.sent .score { font-family: -apple-system, Helvetica, Arial, sans-serif; font-size: 11px; color: #4a5568; margin-left: 8px; }
.tok { padding: 3px 1px; margin: 0 1px; border-radius: 2px; white-space: pre-wrap; }
.tok.preplan { border-bottom: 3px solid #2b6cb0; }
.tok.anchor { box-shadow: inset 0 3px 0 #c53030; }
.tok.dominated { box-shadow: inset 0 3px 0 #fc8181; }
.tok.sink { outline: 1px dashed #718096; }
.tok.intro::after { content: "\25B2"; color: #805ad5; font-size: 9px; vertical-align: sub; }
.legend { display: flex; gap: 18px; flex-wrap: wrap; font-size: 13px; margin: 10px 0; align-items: center; }
.bar { width: 160px; height: 12px; border: 1px solid #a0aec0; display: inline-block; vertical-align: middle; }
.key { padding: 1px 4px; font-family: monospace; }
table { border-collapse: collapse; font-size: 13px; margin-top: 16px; width: 100%; }
td, th { border: 1px solid #e2e8f0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f7fafc; } td.num { text-align: right; font-family: monospace; white-space: nowrap; }
)CSS";

const char* kScript = R"JS(
const R = JSON.parse(document.getElementById('report').textContent);
const strategies = Object.keys(R.tokens.length ? R.tokens[0].gamma : {});
const metrics = ['waad', 'fai', 'delta', 'entropy'];
const sel = document.getElementById('colour');
for (const s of strategies) sel.add(new Option('γ — ' + s, 'gamma:' + s, false, s === 'coupled'));
for (const m of metrics) sel.add(new Option(m.toUpperCase() === 'DELTA' ? 'Δ (preplan signal)' : m.toUpperCase(), 'metric:' + m));
function fmt(x) { return x === null || x === undefined ? '—' : (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3)); }
function heat(t, hue) { t = Math.max(0, Math.min(1, t)); return `hsl(${hue}, 85%, ${97 - 45 * t}%)`; }
function render() {
  const [kind, name] = sel.value.split(':');
  const vals = R.tokens.map(t => kind === 'gamma' ? t.gamma[name] : t[name]);
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (kind === 'gamma') { lo = 1; hi = Math.max(hi, 1.0001); }
  const hue = kind === 'gamma' ? 28 : 210;
  const scores = R.sentences.map(s => s.receiver_score).filter(x => x !== null);
  const smax = scores.length ? Math.max(...scores) : 1;
  const shade = document.getElementById('sentences').checked;
  const box = document.getElementById('text'); box.innerHTML = '';
  const sentSpans = R.sentences.map(s => {
    const e = document.createElement('div'); e.className = 'sent';
    if (shade && s.receiver_score !== null) {
      const t = s.receiver_score / (smax || 1);
      e.style.borderLeftColor = `hsl(145, 60%, ${85 - 45 * t}%)`;
      e.style.background = `hsla(145, 60%, 50%, ${0.04 + 0.16 * t})`;
    }
    e.title = `sentence ${s.index}: receiver score ${fmt(s.receiver_score)}`; box.appendChild(e);
    const body = document.createElement('span'); e.appendChild(body);
    const sc = document.createElement('span'); sc.className = 'score'; sc.textContent = 'receiver ' + fmt(s.receiver_score);
    e.appendChild(sc);
    if (s.thought_anchor) { const b = document.createElement('span'); b.className = 'badge'; b.textContent = 'thought anchor'; e.appendChild(b); }
    return body;
  });
  R.tokens.forEach((t, i) => {
    const e = document.createElement('span');
    e.className = 'tok' + ['preplan', 'anchor', 'dominated', 'intro'].filter(k => t[k]).map(k => ' ' + k).join('') +
      (t.sink_heads ? ' sink' : '');
    e.textContent = t.text.replace(/\n/g, '↵');
    e.style.background = heat((vals[i] - lo) / ((hi - lo) || 1), hue);
    e.title = `#${t.index} ${JSON.stringify(t.text)}\nγ: ${Object.entries(t.gamma).map(([k, v]) => k + ' ' + v.toFixed(2)).join(', ')}\n` +
      `WAAD ${fmt(t.waad)}  FAI ${fmt(t.fai)}  Δ ${fmt(t.delta)}  entropy ${fmt(t.entropy)}  logprob ${fmt(t.logprob)}\n` +
      ['preplan', 'anchor', 'dominated', 'intro'].filter(k => t[k]).join(' ') +
      (t.sink_heads ? `\nattention sink of ${t.sink_heads} observed heads` : '');
    (t.sentence >= 0 && sentSpans[t.sentence] ? sentSpans[t.sentence] : box).appendChild(e);
  });
  document.getElementById('bar').style.background = `linear-gradient(to right, ${heat(0, hue)}, ${heat(1, hue)})`;
  document.getElementById('lo').textContent = fmt(lo); document.getElementById('hi').textContent = fmt(hi);
}
sel.onchange = render; document.getElementById('sentences').onchange = render;
const tb = document.getElementById('sentbody');
for (const s of R.sentences) {
  const tr = document.createElement('tr');
  const sup = s.suppression ? fmt(s.suppression.score) : '—';
  const res = s.resampling ? `${fmt(s.resampling.importance)} (${fmt(s.resampling.accuracy_with)} vs ${fmt(s.resampling.accuracy_without)})` : '—';
  for (const [v, cls] of [[s.index, 'num'], [s.text, ''], [fmt(s.receiver_score), 'num'], [s.thought_anchor ? 'yes' : '', ''], [sup, 'num'], [res, 'num']]) {
    const td = document.createElement('td'); td.textContent = v; if (cls) td.className = cls; tr.appendChild(td);
  }
  tb.appendChild(tr);
}
const heads = R.heads || [];
document.getElementById('heads').textContent = `observed layers ${JSON.stringify(R.observed_layers)}, ` +
  `${heads.filter(h => h.group === 'local').length} local / ${heads.filter(h => h.group === 'global').length} global heads of ${heads.length}; ` +
  `receiver heads: ${heads.filter(h => h.receiver).map(h => 'L' + h.layer + 'H' + h.head).join(' ') || 'none'}`;
// Why each head was or was not used: its look-back distance, its share of attention on sink
// keys, and the group it joined (sink-dominated heads leave the groups under sinks: exclude).
const hb = document.getElementById('headbody');
for (const h of heads) {
  const tr = document.createElement('tr');
  const group = h.sink_dominated && R.sinks === 'exclude' ? 'left out (sink-dominated)' : h.group;
  for (const [v, cls] of [['L' + h.layer + 'H' + h.head, ''], [fmt(h.lookback_distance), 'num'],
                          [h.sink_share === undefined ? '—' : (100 * h.sink_share).toFixed(1) + '%', 'num'], [group, ''],
                          [h.receiver ? 'yes' : '', '']]) {
    const td = document.createElement('td'); td.textContent = v; if (cls) td.className = cls; tr.appendChild(td);
  }
  hb.appendChild(tr);
}
const sinks = R.prompt_sinks || [];
document.getElementById('sinks').textContent = `sinks: ${R.sinks || 'keep'}; layers: ${R.layer_choice || ''}; ` +
  `prompt sink keys (token index "text" x observed heads): ` +
  (sinks.map(s => `#${s.index} ${JSON.stringify(s.text)} x${s.heads}`).join(', ') || 'none') +
  `; response sink tokens: ${R.tokens.filter(t => t.sink_heads).length} (dashed outline)`;
render();
)JS";

}  // namespace

std::string credit_html(const nlohmann::json& report, const std::string& title) {
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape_html(title) +
          "</title>\n<style>" + kStyle + "</style></head><body>\n";
  html += "<h1>anchor-rl credit map</h1><div class=\"sub\">" + escape_html(title) + " — <span id=\"heads\"></span></div>\n";
  html += "<pre class=\"prompt\">" + escape_html(report.value("prompt", "")) + "</pre>\n";
  html += "<div class=\"sub\" id=\"sinks\"></div>\n";
  html += R"(<div class="controls">Colour tokens by <select id="colour"></select>
  <label><input type="checkbox" id="sentences" checked> shade sentences by receiver score</label></div>
<div class="legend"><span><span id="lo"></span> <span class="bar" id="bar"></span> <span id="hi"></span></span>
  <span><span class="key tok preplan">preplan</span> top Δ of WAAD</span>
  <span><span class="key tok anchor">anchor</span> top FAI</span>
  <span><span class="key tok dominated">dominated</span> locally dominated anchor</span>
  <span><span class="key tok intro">intro</span> introduces a dominated anchor</span>
  <span><span class="key tok sink">sink</span> attention-sink key</span>
  <span>sentence bar: receiver score (green = high)</span></div>
<div class="text" id="text"></div>
<table><thead><tr><th>#</th><th>sentence</th><th>receiver score</th><th>thought anchor</th>
<th>suppression (mean log KL on later sentences)</th><th>resampling importance (with vs without)</th></tr></thead>
<tbody id="sentbody"></tbody></table>
<table><thead><tr><th>observed head</th><th>look-back distance</th><th>attention on sink keys</th><th>group</th>
<th>receiver</th></tr></thead><tbody id="headbody"></tbody></table>
)";
  html += "<script type=\"application/json\" id=\"report\">" + embed_json(report) + "</script>\n";
  html += std::string("<script>") + kScript + "</script>\n</body></html>\n";
  return html;
}

}  // namespace anchor
