// One blob request on its own connection, read to its end, its cut or a deadline: for tests of
// what wharf sends when an upstream lies (a cut body must read as incomplete, never whole).
import { Agent, request } from 'undici';

export interface Fetched {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  /** The body ended normally (the server did not cut it, our deadline did not stop it). */
  readonly complete: boolean;
  /** Our own deadline stopped the read: the server was still sending. */
  readonly timedOut: boolean;
  readonly headersMs: number;
  readonly doneMs: number;
}

/** One request on its own connection, read to the end, the cut or the deadline. */
export async function fetchBlob(url: string, opts: { headers?: Record<string, string>; method?: 'GET' | 'HEAD'; deadlineMs?: number } = {}): Promise<Fetched> {
  const agent = new Agent({ pipelining: 0 });
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(), opts.deadlineMs ?? 10_000);
  const started = performance.now();
  try {
    const res = await request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, dispatcher: agent, signal: controller.signal });
    const headersMs = performance.now() - started;
    const chunks: Buffer[] = [];
    let complete = true;
    try {
      for await (const chunk of res.body) chunks.push(chunk as Buffer);
    } catch {
      complete = false;
    }
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), complete, timedOut: controller.signal.aborted, headersMs, doneMs: performance.now() - started };
  } finally {
    clearTimeout(deadline);
    await agent.destroy();
  }
}
