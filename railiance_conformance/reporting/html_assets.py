"""report.html's inline assets: each status's title and colour, the stylesheet and the filter script.

The script keeps the filter (layer, task, status, target) in the address's fragment
(``report.html#status=drift&layer=S1``), so a filtered view can be bookmarked; nothing is fetched.
"""
from __future__ import annotations

from railiance_conformance.finding import Status

TITLES = {Status.DRIFT: "Drift", Status.ERROR: "Could not verify", Status.PENDING: "Pending",
          Status.WAIVED: "Waived", Status.PASS: "Passing"}
COLOURS = {Status.PASS: "#2da44e", Status.DRIFT: "#cf222e", Status.ERROR: "#8250df", Status.PENDING: "#d4a72c",
           Status.WAIVED: "#54aeff"}
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;max-width:1600px}
h1{font-size:1.5em;margin:.2em 0}h2{margin-top:1.6em}h3{font-size:1em;color:#57606a}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
table.diff td{overflow-wrap:anywhere}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,pre{font:12px ui-monospace,monospace;white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
.counts span{display:inline-block;margin:0 .6em .3em 0;padding:2px 8px;border-radius:4px}
tr.drift td:first-child,.counts .drift{background:#ffebe9;color:#a40e26;font-weight:bold}
tr.error td:first-child,.counts .error{background:#fbefff;color:#8250df;font-weight:bold}
tr.pending td:first-child,.counts .pending{background:#fff8c5}
tr.waived td:first-child,.counts .waived{background:#ddf4ff}
tr.pass td:first-child,.counts .pass{background:#dafbe1}
.filters{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:end;padding:.6em;background:#f6f8fa;
 border:1px solid #d0d7de;border-radius:6px;position:sticky;top:0;z-index:2}
.filters label{display:flex;flex-direction:column;font-size:12px;color:#57606a}
.filters select{font-size:14px;min-width:8em;max-width:16em}
.scroll{overflow:auto;max-width:100%;max-height:80vh;-webkit-overflow-scrolling:touch;border:1px solid #eaeef2}
.matrix thead th{position:sticky;top:0;z-index:1;background:#fff}
.matrix thead th.target{z-index:3;left:0}
h1.verdict-drift{color:#a40e26}h1.verdict-could-not-verify{color:#8250df}h1.verdict-conformant{color:#1a7f37}
.news li{margin:.2em 0}.runs td,.runs th{font:12px ui-monospace,monospace;white-space:nowrap}
.delta-up{color:#a40e26}.delta-down{color:#1a7f37}
table.matrix{width:auto;border-collapse:separate;border-spacing:2px}
.matrix th,.matrix td{border:0;padding:0}
.matrix thead th{vertical-align:bottom}
.matrix thead th a{writing-mode:vertical-rl;transform:rotate(180deg);display:inline-block;max-height:24em;
 overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font:11px ui-monospace,monospace;color:#1b1f24;
 text-decoration:none;padding:2px 0}
.matrix th.target{position:sticky;left:0;background:#fff;padding-right:.6em;white-space:nowrap;font-weight:normal;
 text-align:right;font:12px ui-monospace,monospace}
.matrix td a{display:block;width:18px;height:18px;border-radius:3px}
.matrix td.empty{background:repeating-linear-gradient(45deg,#f6f8fa,#f6f8fa 3px,#fff 3px,#fff 6px);width:18px;height:18px}
.matrix td.dim a{opacity:.12}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:12px;height:12px;
 border-radius:2px;margin-right:4px;vertical-align:-1px}
.trend{overflow-x:auto}.trend svg{width:100%;max-width:960px;min-width:560px;height:auto}
.strip svg{display:block}
.change{font:12px ui-monospace,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
.change .arrow{color:#57606a;font-weight:bold}
.folded{color:#57606a;font-size:12px}
dl.features dt{margin-top:.8em}dl.features dd{margin-left:1.2em}
q{font-style:italic}
@media (max-width:700px){
 body{margin:.6em}
 table.findings,table.findings tbody,table.findings tr,table.findings td{display:block;width:auto}
 table.findings tr:first-child{display:none}
 table.findings tr{border:1px solid #d0d7de;border-radius:6px;margin:.5em 0;overflow:hidden}
 table.findings td{border:0;border-top:1px solid #eaeef2}
 table.findings td[data-label]::before{content:attr(data-label);display:block;font-size:11px;color:#57606a}
 .filters select{min-width:6em;max-width:10em}
 .scroll{max-width:calc(100vw - 1.2em)}
 .filters{position:static}
 .trend svg{min-width:0}
}
""" + "".join(f".s-{s.value}{{background:{c}}}" for s, c in COLOURS.items())

SCRIPT = """
(function(){
var selects=[].slice.call(document.querySelectorAll('select[data-filter]'));
function wanted(){var w={};selects.forEach(function(s){if(s.value)w[s.dataset.filter]=s.value;});return w;}
function fits(el,w){return Object.keys(w).every(function(k){var list=el.dataset[k+'s'];
 return list!==undefined?list.split('\\n').indexOf(w[k])>=0:el.dataset[k]===w[k];});}
function apply(){
 var w=wanted(),shown=0,cells=0;
 document.querySelectorAll('tr.finding').forEach(function(tr){var ok=fits(tr,w);tr.hidden=!ok;if(ok)shown+=+(tr.dataset.n||1);});
 document.querySelectorAll('tr.streak').forEach(function(tr){tr.hidden=!fits(tr,w);});
 document.querySelectorAll('tr.tstrip').forEach(function(tr){tr.hidden=!!(w.target&&tr.dataset.target!==w.target);});
 var where={target:w.target,layer:w.layer,task:w.task};
 document.querySelectorAll('.matrix [data-col]').forEach(function(el){
  el.hidden=!!((w.layer&&el.dataset.layer!==w.layer)||(w.task&&el.dataset.task!==w.task));});
 document.querySelectorAll('.matrix tr[data-target]').forEach(function(tr){tr.hidden=!!(w.target&&tr.dataset.target!==w.target);});
 document.querySelectorAll('.matrix td[data-status]').forEach(function(td){
  var dim=!!(w.status&&td.dataset.status!==w.status);td.classList.toggle('dim',dim);if(!dim&&!td.hidden)cells++;});
 document.querySelectorAll('[data-group]').forEach(function(g){g.hidden=!g.querySelector('tr.finding:not([hidden])');});
 document.getElementById('shown').textContent=shown;
 document.body.dataset.filtered=Object.keys(w).length?'yes':'no';
 var hash=Object.keys(w).map(function(k){return k+'='+encodeURIComponent(w[k]);}).join('&');
 if(('#'+hash)!==location.hash&&(hash||location.hash))history.replaceState(null,'',hash?'#'+hash:location.pathname);
}
function load(){
 var h=location.hash.replace(/^#/,''),w={};
 if(h.indexOf('=')<0){apply();return;}
 h.split('&').forEach(function(p){var kv=p.split('=');try{w[kv[0]]=decodeURIComponent(kv[1]||'');}catch(e){}});
 selects.forEach(function(s){var v=w[s.dataset.filter];s.value=[].some.call(s.options,function(o){return o.value===v;})?v:'';});
 apply();
}
selects.forEach(function(s){s.addEventListener('change',apply);});
document.getElementById('reset').addEventListener('click',function(e){e.preventDefault();
 selects.forEach(function(s){s.value='';});apply();});
window.addEventListener('hashchange',load);
load();
})();
"""
