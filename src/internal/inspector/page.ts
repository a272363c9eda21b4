/**
 * The inspector's web page: plain HTML, CSS and JavaScript served from these
 * strings, with no build step and no framework. The page holds no data: it
 * reads the JSON API, with the bearer token it was given in the address
 * (`#token=...`, kept in the tab's `sessionStorage` and removed from the
 * address) or typed in, and the live events through `fetch` (an
 * `EventSource` cannot send the token).
 *
 * Elements a test reads carry `data-testid`.
 *
 * The page's HTML and CSS; its script is `script.ts`. Served from strings,
 * so that the page ships without a build step or an asset directory.
 *
 * @internal
 */

/** @internal */
export const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** @internal */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>effect-gen-server inspector</title>
<link rel="stylesheet" href="/inspector.css">
<script src="/inspector.js" defer></script>
</head>
<body>
<header>
  <h1>effect-gen-server <span>inspector</span></h1>
  <span id="status" data-testid="status">connecting…</span>
</header>
<form id="login" data-testid="login" hidden>
  <label>This inspector needs its token: <input id="token" type="password" autocomplete="off"></label>
  <button>Open</button>
  <span id="login-error" class="error-text"></span>
</form>
<main>
  <div class="column">
  <section id="resources-panel">
    <h2>Resources</h2>
    <table data-testid="resources">
      <thead><tr><th>resource</th><th title="what Store.read finds: on the durable and cluster layers, the stored records">records</th><th title="with a fiber, in this process">awake</th><th title="hibernating, in this process">hibernating</th></tr></thead>
      <tbody id="resources"></tbody>
    </table>
    <dl id="resource-details" class="details" data-testid="resource-details"></dl>
  </section>
  <section id="metrics-panel">
    <h2>Metrics <span class="note">(this process, sampled every <span id="sample-every">…</span>)</span></h2>
    <div id="legend" class="legend"></div>
    <div id="plots" class="plots" data-testid="metrics"></div>
  </section>
  </div>
  <div class="column">
  <section id="records-panel">
    <h2 id="records-title">Records</h2>
    <form id="query" data-testid="query">
      <input id="filter" data-testid="filter" spellcheck="false" placeholder="filter: currentYear >= 1955 and name contains &quot;Mar&quot;">
      <input id="sort" data-testid="sort" spellcheck="false" placeholder="sort: currentYear desc, name">
      <button data-testid="apply">Apply</button>
    </form>
    <div id="error" class="error" data-testid="error" role="alert" hidden></div>
    <div class="scroll"><table class="records" data-testid="records"><thead id="records-head"></thead><tbody id="records"></tbody></table></div>
    <div class="pager"><button id="prev" type="button">‹ previous</button><span id="page" data-testid="page"></span><button id="next" type="button">next ›</button></div>
  </section>
  </div>
  <div class="column">
  <section id="record-panel" data-testid="record" hidden>
    <h2>Record <code id="record-key" data-testid="record-key"></code> <span id="record-status" class="badge"></span></h2>
    <pre id="record-state" data-testid="record-state"></pre>
    <h3>Recent events</h3>
    <ol id="record-events" class="events" data-testid="record-events"></ol>
    <h3>Schedules</h3>
    <ol id="record-schedules" class="events" data-testid="schedules"></ol>
  </section>
  <section id="events-panel">
    <h2>Live events <span id="events-status" class="note" data-testid="events-status"></span></h2>
    <button id="pause" type="button">pause</button>
    <ol id="events" class="events" data-testid="events"></ol>
  </section>
  </div>
</main>
</body>
</html>
`

/** @internal */
export const style =
  `:root { --fg: #1d2330; --muted: #667085; --line: #d0d5dd; --bg: #f8f9fb; --accent: #2255cc; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1rem; padding: .6rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.1rem; margin: 0; } h1 span { color: var(--accent); font-weight: 500; }
h2 { font-size: 1rem; margin: 0 0 .5rem; } h3 { font-size: .9rem; margin: .8rem 0 .3rem; }
#status { color: var(--muted); }
main { display: grid; grid-template-columns: minmax(260px, 1fr) minmax(420px, 2.2fr) minmax(300px, 1.3fr); gap: .8rem; padding: .8rem; align-items: start; }
.column { display: flex; flex-direction: column; gap: .8rem; min-width: 0; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .7rem .8rem; min-width: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid #eef0f3; vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .8rem; }
#resources-panel table { font-size: .85rem; } #resources-panel th, #resources-panel td { padding: .25rem .25rem; }
td { font-variant-numeric: tabular-nums; }
tbody tr { cursor: pointer; } tbody tr:hover { background: #f2f5fc; } tr.selected { background: #e6edfb; }
table.records td { max-width: 18rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-family: ui-monospace, monospace; font-size: .8rem; }
.scroll { overflow: auto; max-height: 60vh; }
form#query { display: flex; gap: .4rem; margin-bottom: .5rem; }
form#query input { flex: 1; min-width: 0; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 6px; font: .85rem ui-monospace, monospace; }
button { padding: .3rem .7rem; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
button:hover { border-color: var(--accent); } button:disabled { opacity: .4; cursor: default; }
.error { color: var(--bad); background: #fef3f2; border: 1px solid #fecdca; border-radius: 6px; padding: .4rem .6rem; margin-bottom: .5rem; font-size: .85rem; white-space: pre-wrap; }
.error-text { color: var(--bad); }
.pager { display: flex; gap: .6rem; align-items: center; margin-top: .5rem; color: var(--muted); }
pre { background: #f6f8fa; border-radius: 6px; padding: .5rem; overflow: auto; max-height: 16rem; margin: 0; font-size: .8rem; }
.events { list-style: none; padding: 0; margin: 0; max-height: 22rem; overflow: auto; font-size: .8rem; contain: content; }
.events li { padding: .2rem 0; border-bottom: 1px solid #eef0f3; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.events time { color: var(--muted); margin-right: .4rem; font-variant-numeric: tabular-nums; }
.tag { display: inline-block; min-width: 5.5rem; font-weight: 600; }
.tag-Created { color: #067647; } .tag-Updated { color: var(--accent); } .tag-Destroyed { color: var(--bad); }
.tag-Restarted { color: #b54708; } .tag-Failed { color: var(--bad); }
.note { color: var(--muted); font-weight: 400; font-size: .8rem; }
th .badge { margin-left: .3rem; }
.badge { font-size: .75rem; font-weight: 500; padding: .05rem .4rem; border-radius: 999px; background: #eef0f3; color: var(--muted); }
.details { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .6rem; font-size: .8rem; margin: .6rem 0 0; }
.details dt { color: var(--muted); } .details dd { margin: 0; font-family: ui-monospace, monospace; }
.plots { display: grid; gap: .6rem; }
.plot { border-top: 1px solid #eef0f3; padding-top: .3rem; }
.plot-title { display: flex; justify-content: space-between; font-size: .8rem; color: var(--muted); }
.plot svg { width: 100%; height: 56px; display: block; }
.legend { display: flex; flex-wrap: wrap; gap: .2rem .8rem; font-size: .8rem; margin-bottom: .3rem; }
.swatch { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .25rem; vertical-align: -1px; }
.swatch-0 { background: #2255cc; } .swatch-1 { background: #d9480f; } .swatch-2 { background: #087f5b; }
.swatch-3 { background: #9c36b5; } .swatch-4 { background: #e67700; } .swatch-5 { background: #495057; }
@media (max-width: 1100px) { main { grid-template-columns: 1fr; } }
`
