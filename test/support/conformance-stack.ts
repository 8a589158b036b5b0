// The systems the OCI distribution-spec conformance suite is run against (docs/conformance.md):
// the real registry 2.8 (no referrers API), wharf in front of it, and the push-split proxy in
// front of both, all on 127.0.0.1. Prints the suite's OCI_ROOT_URL, then serves until SIGINT
// or SIGTERM and stops everything it started.
//
//   npx node test/support/conformance-stack.ts [--no-referrers-fallback] [--tag-ttl SECONDS]
//
// --no-referrers-fallback: the proxy passes manifest pushes through untouched, so the suite sees
// registry 2.8's answers (no OCI-Subject) as they are. --tag-ttl: wharf's cache.tagTtlSeconds
// (default 0: every tag, tag list and referrers read asks the upstream, so a read right after a
// push through the proxy sees the push; with a TTL a read can be answered from what wharf cached
// before it).
import { parseArgs } from 'node:util';
import { startUpstreamRegistry } from './upstream-registry.ts';
import { startWharf } from './wharf.ts';
import { startPushSplitProxy } from './push-split-proxy.ts';

const { values } = parseArgs({
  options: { 'no-referrers-fallback': { type: 'boolean', default: false }, 'tag-ttl': { type: 'string', default: '0' } },
});

const registry = await startUpstreamRegistry();
const wharf = await startWharf({
  upstreams: [{ name: 'docker.io', url: registry.url, default: true }],
  tagTtlSeconds: Number(values['tag-ttl']),
});
const proxy = await startPushSplitProxy({ upstreamUrl: registry.url, wharfUrl: wharf.url, referrersTagFallback: !values['no-referrers-fallback'] });

process.stdout.write(
  [
    `registry 2.8: ${registry.url}`,
    `wharf:        ${wharf.url} (cache.tagTtlSeconds ${values['tag-ttl']})`,
    `proxy:        ${proxy.url} (referrers tag fallback ${values['no-referrers-fallback'] ? 'off' : 'on'})`,
    `OCI_ROOT_URL=${proxy.url}`,
    '',
  ].join('\n'),
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`referrers tags written by the proxy: ${proxy.fallbackTags.join(', ') || 'none'}\n`);
  // What wharf asked registry 2.8 for the referrers specs: the API (404 there), then the tag.
  await registry.settleLog();
  const asked = registry.requestLog().filter((e) => e.method === 'GET' && /\/referrers\/sha256:|\/manifests\/sha256-/.test(e.path));
  process.stdout.write(`registry 2.8 was asked:\n${asked.map((e) => `  ${e.method} ${e.path} ${e.status}`).join('\n') || '  nothing'}\n`);
  await proxy.stop();
  await wharf.stop();
  await registry.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
