"""The report's stylesheet, inlined into the page (no external file, font or URL).

Colours are CSS variables with a dark set under ``prefers-color-scheme``; the charts
draw their text in ``currentColor`` so they follow. System fonts only.
"""

from __future__ import annotations

CSS = """
:root {
  --bg: #f6f7f9; --card: #ffffff; --fg: #1f2328; --muted: #5b636d; --line: #d9dde3;
  --accent: #3d6fb0; --ok: #1a7f37; --warn: #9a6700; --fail: #cf222e; --skip: #6e7781;
  --ok-bg: #dafbe1; --warn-bg: #fff8c5; --fail-bg: #ffebe9; --skip-bg: #eef0f3;
  --code-bg: #eff1f4; --bar: #4e79a7; --summary-bg: #eaf2fc; --summary-line: #3d6fb0;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216; --card: #171b21; --fg: #e6e9ee; --muted: #9aa4b0; --line: #2c333c;
    --accent: #7aa7e0; --ok: #4ac26b; --warn: #d4a72c; --fail: #ff7b72; --skip: #8b949e;
    --ok-bg: #12301d; --warn-bg: #3a2e0b; --fail-bg: #3d1518; --skip-bg: #22272e;
    --code-bg: #22272e; --bar: #6d9bd1; --summary-bg: #152232; --summary-line: #7aa7e0;
  }
}
* { box-sizing: border-box; }
html { background: var(--bg); color: var(--fg); }
body {
  margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, "Noto Sans", "DejaVu Sans", sans-serif;
}
main { max-width: 1080px; margin: 0 auto; padding: 28px 20px 48px; }
header h1 { font-size: 26px; margin: 0 0 2px; letter-spacing: -0.01em; }
header .meta { color: var(--muted); font-size: 13.5px; }
h2 { font-size: 19px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
section.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 20px; margin: 18px 0;
}
.summary {
  background: var(--summary-bg); border: 1px solid var(--line);
  border-left: 5px solid var(--summary-line); border-radius: 10px; padding: 16px 20px;
  margin: 18px 0;
}
.summary h2 { margin-bottom: 6px; }
.summary ul { margin: 0; padding-left: 20px; }
.summary li { margin: 3px 0; font-size: 15.5px; }
.summary .notes { color: var(--muted); font-size: 13px; margin: 10px 0 0; }
nav.toc { display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 13.5px; margin: 6px 0 0; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
p.lead { color: var(--muted); margin: -4px 0 12px; font-size: 13.5px; }
.grid2 { display: grid; grid-template-columns: minmax(260px, 1fr) 2fr; gap: 20px; }
@media (max-width: 760px) { .grid2 { grid-template-columns: 1fr; } }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { text-align: left; font-weight: 600; color: var(--muted); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.c, th.c { text-align: center; }
tr:last-child td { border-bottom: none; }
tr.group td { font-weight: 600; padding-top: 12px; border-bottom: 2px solid var(--line); }
.scroll { overflow-x: auto; }
table.kv th { width: 34%; color: var(--muted); font-weight: 500; }
.unit { color: var(--muted); font-size: 12px; }
.muted { color: var(--muted); }
.small { font-size: 12.5px; }
code {
  font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono",
  monospace; background: var(--code-bg); padding: 1px 5px; border-radius: 4px;
  overflow-wrap: anywhere;
}
.pill {
  display: inline-block; min-width: 44px; text-align: center; font-size: 11.5px;
  font-weight: 700; padding: 1px 7px; border-radius: 999px; text-transform: uppercase;
  letter-spacing: 0.03em;
}
.pill.ok, .pill.pass { color: var(--ok); background: var(--ok-bg); }
.pill.warn { color: var(--warn); background: var(--warn-bg); }
.pill.fail, .pill.failed, .pill.oom, .pill.timeout {
  color: var(--fail); background: var(--fail-bg);
}
.pill.skip, .pill.skipped { color: var(--skip); background: var(--skip-bg); }
.finding { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; margin: 0 0 8px; }
.finding .head { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.finding .id { font-weight: 600; }
.finding .detail { color: var(--muted); font-size: 13.5px; margin: 4px 0 0; }
.finding .fix { margin: 6px 0 0; font-size: 13.5px; }
details { margin: 8px 0 0; }
details summary { cursor: pointer; color: var(--muted); font-size: 13.5px; }
details ul { margin: 6px 0 0; padding-left: 18px; font-size: 13.5px; }
.meter {
  display: inline-block; width: 70px; height: 8px; background: var(--skip-bg);
  border-radius: 4px; vertical-align: middle; margin-left: 6px; overflow: hidden;
}
.meter > span { display: block; height: 100%; background: var(--bar); }
.meter > span.over { background: var(--warn); }
.chart { margin: 6px 0 10px; color: var(--fg); }
.chart svg { width: 100%; height: auto; display: block; }
.unavailable {
  border: 1px dashed var(--line); border-radius: 8px; padding: 10px 14px;
  color: var(--muted); background: var(--bg); font-size: 13.5px;
}
.yes { color: var(--ok); font-weight: 600; }
.no { color: var(--fail); font-weight: 600; }
td.fit { text-align: center; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.fit.yes { color: var(--ok); }
td.fit.no { color: var(--fail); background: var(--fail-bg); }
th.c {
  text-align: center; font-weight: 600; color: var(--fg); min-width: 130px; white-space: normal;
}
.nowrap { white-space: nowrap; }
tr.pick td { background: var(--summary-bg); }
p.verdict {
  font-size: 15.5px; margin: 0 0 12px; padding: 10px 14px; border-radius: 8px;
  background: var(--summary-bg); border-left: 4px solid var(--summary-line);
}
.badge {
  display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 4px;
  background: var(--skip-bg); color: var(--muted); margin-left: 4px;
}
footer { color: var(--muted); font-size: 12.5px; margin-top: 26px; }
footer table { font-size: 12.5px; }
@media print {
  html { background: #fff; } section.card, .summary { break-inside: avoid; }
}
"""
