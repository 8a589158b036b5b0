// What the main thread and hit threads say to each other over the worker port.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config/load-config.ts';
import type { TlsMaterial } from '../http/tls-files.ts';

export interface HitThreadData {
  readonly config: Config;
  /** The public addresses, shared with the main thread through SO_REUSEPORT. */
  readonly plain?: { readonly host: string; readonly port: number };
  /** The HTTPS listener: the certificate the main thread read and checked, and the shared ticket keys. */
  readonly tls?: { readonly host: string; readonly port: number; readonly material: TlsMaterial; readonly ticketKeys: Uint8Array };
  /** The main thread's loopback listener for requests a hit thread hands over. */
  readonly internal: { readonly host: string; readonly port: number };
  /** Proves to the internal listener that the client headers of a handed-over request are a hit thread's. */
  readonly forwardSecret: string;
}

export type HitThreadMessage =
  | { readonly type: 'ready' }
  /** Blobs served or about to be pulled (LRU order) and repositories pulled (status page). */
  | { readonly type: 'used'; readonly blobs: readonly string[]; readonly pulled: readonly string[] }
  | { readonly type: 'metrics'; readonly id: number; readonly metrics: Array<MetricObjectWithValues<MetricValue<string>>> }
  /** Log lines, whole and UTF-8 encoded, for the main thread to write to stdout with its own. */
  | { readonly type: 'log'; readonly bytes: Uint8Array }
  | { readonly type: 'closed' };

export type MainThreadMessage =
  | { readonly type: 'metrics'; readonly id: number }
  /** The TLS files changed: new connections get this certificate. */
  | { readonly type: 'tls'; readonly material: TlsMaterial }
  | { readonly type: 'close'; readonly graceMs: number }
  /** A buffer of the thread's log lines, written: moved back for the thread to fill again. */
  | { readonly type: 'log-buffer'; readonly buffer: ArrayBuffer };
