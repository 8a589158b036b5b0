// Requests are tallied in plain numbers and reach prom-client when the metrics are read: the
// exposition, the JSON a hit thread reports and the combined figures must show every one.
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.ts';

describe('request tally', () => {
  it('shows every counted request and byte in the text, the JSON and the figures, and counts none twice', async () => {
    const metrics = new Metrics({ processMetrics: false });
    for (let i = 0; i < 5; i++) metrics.countRequest('manifest', 'hit', 'docker.io', 100);
    metrics.countRequest('blob', 'miss', 'ghcr.io', 1000);
    const text = await metrics.text();
    expect(text).toContain('wharf_requests_total{kind="manifest",result="hit",upstream="docker.io"} 5');
    expect(text).toContain('wharf_requests_total{kind="blob",result="miss",upstream="ghcr.io"} 1');
    expect(text).toContain('wharf_served_bytes_total{kind="manifest",result="hit"} 500');
    // Read again with more counted meanwhile: added once, never again.
    metrics.countRequest('manifest', 'hit', 'docker.io', 100);
    const json = await metrics.registry.getMetricsAsJSON();
    const requests = json.find((m) => m.name === 'wharf_requests_total')!.values;
    expect(requests.find((v) => v.labels.kind === 'manifest')?.value).toBe(6);
    const figures = await metrics.figures();
    expect(figures.requestsByResult.hit).toBe(6);
    expect(figures.servedBytesByResult.hit).toBe(600);
    expect(figures.servedBytesByResult.miss).toBe(1000);
  });

  it('adds a hit thread\'s tally into the main thread\'s figures once', async () => {
    const main = new Metrics({ processMetrics: false });
    const hit = new Metrics({ processMetrics: false });
    main.addRemote(() => hit.registry.getMetricsAsJSON());
    main.countRequest('manifest', 'hit', 'docker.io', 10);
    hit.countRequest('manifest', 'hit', 'docker.io', 10);
    hit.countRequest('manifest', 'hit', 'docker.io', 10);
    expect((await main.figures()).requestsByResult.hit).toBe(3);
    expect((await main.figures()).requestsByResult.hit).toBe(3);
    expect(await main.text()).toContain('wharf_served_bytes_total{kind="manifest",result="hit"} 30');
  });
});
