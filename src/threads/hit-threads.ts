// The main thread's side of the hit threads: starts them, takes their reports (blob use, pulls),
// asks them for their metrics, hands them reloaded TLS certificates, and stops them.
import { Worker } from 'node:worker_threads';
import { threadEntry } from '../thread-entry.ts';
import type { TlsMaterial } from '../http/tls-files.ts';
import type { MetricsSource } from '../metrics/metrics.ts';
import type { HitThreadData, HitThreadMessage, MainThreadMessage } from './messages.ts';

const THREAD_ENTRY = threadEntry('hit-thread', import.meta.url);
const METRICS_TIMEOUT_MS = 2000;

export interface HitReports {
  blobsUsed(digests: readonly string[]): void;
  pulled(repositories: readonly string[]): void;
  /** A thread's log lines (whole, UTF-8), to be written with the main thread's; their buffer goes back by giveBack once written. */
  log(bytes: Uint8Array, giveBack: (buffer: ArrayBuffer) => void): void;
  /** A thread died; its socket closed with it, so the other threads take its connections. */
  failed(err: Error): void;
}

class HitThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, (metrics: Awaited<ReturnType<MetricsSource>>) => void>();
  #nextId = 0;
  readonly exited: Promise<void>;

  constructor(data: HitThreadData, reports: HitReports) {
    this.#worker = new Worker(THREAD_ENTRY, { workerData: data });
    this.exited = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.on('error', (err) => reports.failed(err));
    this.#worker.on('message', (message: HitThreadMessage) => {
      if (message.type === 'used') {
        reports.blobsUsed(message.blobs);
        reports.pulled(message.pulled);
      } else if (message.type === 'log') {
        reports.log(message.bytes, this.#giveBackLogBuffer);
      } else if (message.type === 'metrics') {
        this.#pending.get(message.id)?.(message.metrics);
        this.#pending.delete(message.id);
      }
    });
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMessage = (message: HitThreadMessage) => {
        if (message.type !== 'ready') return;
        this.#worker.off('error', reject);
        this.#worker.off('message', onMessage);
        resolve();
      };
      this.#worker.on('message', onMessage);
      this.#worker.once('error', reject);
    });
  }

  readonly metrics: MetricsSource = () =>
    new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error('hit thread did not report its metrics'));
      }, METRICS_TIMEOUT_MS);
      this.#pending.set(id, (metrics) => {
        clearTimeout(timer);
        resolve(metrics);
      });
      this.#send({ type: 'metrics', id });
    });

  readonly #giveBackLogBuffer = (buffer: ArrayBuffer): void => {
    this.#worker.postMessage({ type: 'log-buffer', buffer } satisfies MainThreadMessage, [buffer]);
  };

  useTls(material: TlsMaterial): void {
    this.#send({ type: 'tls', material });
  }

  async stop(graceMs: number): Promise<void> {
    this.#send({ type: 'close', graceMs });
    const timer = setTimeout(() => void this.#worker.terminate(), graceMs + 1000);
    await this.exited;
    clearTimeout(timer);
  }

  #send(message: MainThreadMessage): void {
    this.#worker.postMessage(message);
  }
}

export class HitThreads {
  readonly #threads: HitThread[];

  private constructor(threads: HitThread[]) {
    this.#threads = threads;
  }

  static async start(count: number, data: HitThreadData, reports: HitReports): Promise<HitThreads> {
    const threads = Array.from({ length: count }, () => new HitThread(data, reports));
    const all = new HitThreads(threads);
    try {
      await Promise.all(threads.map((t) => t.ready()));
    } catch (err) {
      await all.stop(0);
      throw err;
    }
    return all;
  }

  get metricsSources(): MetricsSource[] {
    return this.#threads.map((t) => t.metrics);
  }

  /** The main thread read and checked new TLS files; every thread serves them from now on. */
  useTls(material: TlsMaterial): void {
    for (const t of this.#threads) t.useTls(material);
  }

  async stop(graceMs: number): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.stop(graceMs)));
  }
}
