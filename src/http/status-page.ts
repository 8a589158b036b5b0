// The status page at / for a person: upstream health, hit ratio, cache size, the replicas sharing
// the cache and the most pulled repositories, filled in from /status.json and refreshed every 5 s. Repository names come
// from clients, so they are set as text, never as HTML.
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wharf status</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1d2430; }
  h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
  .sub { color: #5b6576; margin-top: 0; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: 0.8rem; margin: 1.2rem 0; }
  .tile { border: 1px solid #d8dde6; border-radius: 8px; padding: 0.7rem 0.9rem; }
  .tile .label { color: #5b6576; font-size: 0.85rem; }
  .tile .value { font-size: 1.5rem; font-weight: 600; }
  table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
  th, td { text-align: left; padding: 0.35rem 0.5rem; border-bottom: 1px solid #e6e9ef; }
  th { color: #5b6576; font-weight: 500; font-size: 0.85rem; }
  .reachable { color: #177245; } .unreachable { color: #b42318; } .unknown, .offline { color: #5b6576; }
  #error { color: #b42318; }
</style>
</head>
<body>
<h1>wharf</h1>
<p class="sub">pull-through registry cache · <span id="version">…</span> · up <span id="uptime">…</span><span id="mode"></span></p>
<p id="error"></p>
<div class="tiles">
  <div class="tile"><div class="label">hit ratio</div><div class="value" id="hit-ratio">…</div></div>
  <div class="tile"><div class="label">cache size</div><div class="value" id="cache-size">…</div></div>
  <div class="tile"><div class="label">cached blobs</div><div class="value" id="cache-blobs">…</div></div>
  <div class="tile"><div class="label">served from cache</div><div class="value" id="bytes-saved">…</div></div>
  <div class="tile"><div class="label">fetched upstream</div><div class="value" id="bytes-upstream">…</div></div>
</div>
<h2>Upstreams</h2>
<table><thead><tr><th>registry</th><th>state</th><th>breaker</th><th>last answer</th><th>last failure</th></tr></thead><tbody id="upstreams"></tbody></table>
<h2>Stores</h2>
<table><tbody id="stores"></tbody></table>
<div id="replicas-section" hidden>
<h2>Replicas</h2>
<table><thead><tr><th>replica</th><th>state</th><th>address</th><th>served</th><th>from cache</th><th>fetched upstream</th><th>fills</th><th>last heartbeat</th></tr></thead><tbody id="replicas"></tbody></table>
</div>
<h2>Most pulled repositories</h2>
<table><thead><tr><th>repository</th><th>pulls</th></tr></thead><tbody id="top-repositories"></tbody></table>
<script>
const units = ['B', 'KB', 'MB', 'GB', 'TB'];
function bytes(n) { let i = 0; while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; } return (i ? n.toFixed(1) : n) + ' ' + units[i]; }
function duration(s) { if (s < 120) return s + ' s'; if (s < 7200) return Math.round(s / 60) + ' min'; if (s < 172800) return Math.round(s / 3600) + ' h'; return Math.round(s / 86400) + ' d'; }
function set(id, text) { document.getElementById(id).textContent = text; }
function rows(id, list, cells) {
  const body = document.getElementById(id);
  body.replaceChildren(...list.map((item) => {
    const tr = document.createElement('tr');
    for (const [text, cls] of cells(item)) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.append(td); }
    return tr;
  }));
}
async function refresh() {
  try {
    const s = await (await fetch('status.json', { cache: 'no-store' })).json();
    set('error', '');
    set('version', 'v' + s.version);
    set('uptime', duration(s.uptimeSeconds));
    set('mode', s.offline ? ' · offline mode' : '');
    set('hit-ratio', s.requests.hitRatio === null ? '–' : (s.requests.hitRatio * 100).toFixed(1) + ' %');
    set('cache-size', bytes(s.cache.bytes));
    set('cache-blobs', String(s.cache.blobs));
    set('bytes-saved', bytes(s.traffic.servedFromCacheBytes));
    set('bytes-upstream', bytes(s.traffic.upstreamBytes));
    rows('upstreams', s.upstreams, (u) => [[u.name], [u.reachability, u.reachability], [u.breaker], [u.lastSuccessAt || '–'], [u.lastFailure ? u.lastFailure.reason + ' (' + u.lastFailure.at + ')' : '–']]);
    const stores = [['blob store', s.stores.blobStore], ['manifest store (' + s.stores.manifestStore.backend + ')', s.stores.manifestStore]];
    if (s.stores.sharedBlobStore) stores.push(['shared blob store (s3)', s.stores.sharedBlobStore]);
    rows('stores', stores,
      ([name, c]) => [[name], [c.ok ? 'ok' : 'failing: ' + c.error, c.ok ? 'reachable' : 'unreachable']]);
    document.getElementById('replicas-section').hidden = !s.replicas;
    const replicas = s.replicas || [];
    const total = (key) => replicas.reduce((sum, r) => sum + r.figures[key], 0);
    const all = replicas.length > 1 ? [{ name: 'all replicas', alive: true, url: '', seenAt: '', total: true, figures: { servedBytes: total('servedBytes'), servedFromCacheBytes: total('servedFromCacheBytes'), upstreamBytes: total('upstreamBytes'), fillsInFlight: total('fillsInFlight') } }] : [];
    rows('replicas', [...replicas, ...all], (r) => [[r.name + (r.self ? ' (this one)' : '')], r.total ? [''] : [r.alive ? 'up' : 'silent', r.alive ? 'reachable' : 'unreachable'], [r.url], [bytes(r.figures.servedBytes)], [bytes(r.figures.servedFromCacheBytes)], [bytes(r.figures.upstreamBytes)], [String(r.figures.fillsInFlight)], [r.seenAt]]);
    rows('top-repositories', s.topRepositories, (r) => [[r.repository], [String(r.pulls)]]);
  } catch (err) {
    set('error', 'cannot load status: ' + err.message);
  }
}
refresh();
setInterval(refresh, 5000);
</script>
</body>
</html>
`;
