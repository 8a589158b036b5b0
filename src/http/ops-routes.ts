// The operator's endpoints: / (status page), /status.json, /metrics, /healthz and /readyz.
//
// /readyz fails (503) only when the blob store cannot be read: without it wharf cannot serve
// its cache. A failing manifest store (Redis down) or unreachable upstreams are reported but
// keep it ready: wharf serves around both, and taking every instance out of a load balancer
// because Docker Hub is down would turn an upstream outage into a total one.
import type { Hono } from 'hono';
import type { Metrics } from '../metrics/metrics.ts';
import { STATUS_PAGE } from './status-page.ts';
import { checkStores, statusReport, upstreamStatus, type StatusSources } from './status-report.ts';
import type { WharfEnv } from './wharf-env.ts';

const NO_STORE = { 'Cache-Control': 'no-store' };

export function addOpsRoutes(app: Hono<WharfEnv>, deps: { metrics: Metrics; status: StatusSources }): void {
  app.get('/', (c) => c.html(STATUS_PAGE, 200, NO_STORE));
  app.get('/status.json', async (c) => c.json(await statusReport(deps.status), 200, NO_STORE));
  app.get('/metrics', async () => {
    const { registry } = deps.metrics;
    return new Response(await deps.metrics.text(), { headers: { 'Content-Type': registry.contentType, ...NO_STORE } });
  });
  app.get('/healthz', (c) => c.json({ status: 'ok' }, 200, NO_STORE));
  app.get('/readyz', async (c) => {
    const stores = await checkStores(deps.status);
    const ready = stores.blobStore.ok;
    const status = !ready ? 'not ready' : stores.manifestStore.ok ? 'ready' : 'degraded';
    return c.json({ status, stores, upstreams: upstreamStatus(deps.status) }, ready ? 200 : 503, NO_STORE);
  });
}
