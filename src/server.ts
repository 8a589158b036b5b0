// Starts wharf's servers from a loaded config; used by `wharf serve` and by the tests: plain
// HTTP on `listen` unless it is off, HTTPS on `tls.listen` when tls is set, both with the same
// request listener. With threads > 1 the main thread shares each public port (SO_REUSEPORT) with
// hit threads, which hand it what they cannot answer from the cache through a loopback listener.
import { splitHostPort } from './config/host-port.ts';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Config } from './config/load-config.ts';
import { PLAIN_LISTENER_OFF } from './config/schema.ts';
import { createApp } from './app.ts';
import { createDeps, type Deps } from './deps.ts';
import { closeGracefully, listen } from './http/listen.ts';
import { FastConnections } from './http/fast-connections.ts';
import { registryRequestListener } from './http/request-listener.ts';
import { newForwardSecret, trustForwardedClients } from './http/forwarded-client.ts';
import { readTlsFiles } from './http/tls-files.ts';
import { TlsReloader } from './http/tls-reloader.ts';
import { TICKET_KEYS_BYTES, TlsServer } from './http/tls-server.ts';
import { HitThreads } from './threads/hit-threads.ts';
import { countHandoverBytes } from './threads/handover-bytes.ts';
import { logStream } from './logger.ts';
import { writeEncodedLines } from './logging/batched-log-writer.ts';
import { MemoryTrimmer } from './memory-trimmer.ts';

export interface RunningServer {
  /** The plain listener's URL; the HTTPS listener's when plain HTTP is off. */
  readonly url: string;
  readonly port: number;
  /** The HTTPS listener, when tls is configured. */
  readonly tls?: { readonly url: string; readonly port: number };
  readonly deps: Deps;
  close(graceMs?: number): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  // First: unusable TLS files stop wharf here, before anything is opened.
  const tlsMaterial = config.tls ? await readTlsFiles(config.tls) : undefined;
  const deps = await createDeps(config, logger);
  const trimmer = MemoryTrimmer.start(logger);
  const listener = registryRequestListener(createApp(deps), deps.manifestFastPath);
  const threaded = config.threads > 1;
  const publicServers: ServerType[] = [];
  /** Connections read before Node's server, per server that has them (plain HTTP). */
  const fastConnections = new Map<ServerType, FastConnections>();
  let internal: ServerType | undefined;
  let hitThreads: HitThreads | undefined;
  let reloader: TlsReloader | undefined;
  const stop = async (graceMs: number) => {
    reloader?.close();
    trimmer?.stop();
    // Hit threads first: what they handed over is still answered by the internal listener.
    await Promise.all([...publicServers.map((s) => closeGracefully(s, graceMs, fastConnections.get(s))), hitThreads?.stop(graceMs)]);
    if (internal) await closeGracefully(internal, graceMs);
    await Promise.race([deps.blobs.settled(), new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
    await deps.close();
  };
  try {
    let plain: AddressInfo | undefined;
    if (config.listen !== PLAIN_LISTENER_OFF) {
      const server = createServer(listener);
      fastConnections.set(server, new FastConnections(server, deps.manifestFastPath));
      publicServers.push(server);
      plain = await listen(server, { ...splitListen(config.listen), reusePort: threaded });
    }
    let tls: AddressInfo | undefined;
    let tlsServer: TlsServer | undefined;
    const ticketKeys = randomBytes(TICKET_KEYS_BYTES);
    if (config.tls && tlsMaterial) {
      tlsServer = new TlsServer(config.tls, tlsMaterial, ticketKeys, listener, logger);
      publicServers.push(tlsServer.server);
      tls = await listen(tlsServer.server, { ...splitListen(config.tls.listen), reusePort: threaded });
    }
    if (threaded) {
      const forwardSecret = newForwardSecret();
      // Hit threads' log lines go out through the main thread's one writer.
      const stdout = logStream(logger);
      internal = createServer(countHandoverBytes(trustForwardedClients(forwardSecret, listener), deps.metrics.handoverBytes, deps.files));
      const internalAddress = await listen(internal, { host: '127.0.0.1', port: 0 });
      hitThreads = await HitThreads.start(
        config.threads - 1,
        {
          config,
          ...(plain ? { plain: { host: plain.address, port: plain.port } } : {}),
          ...(tls && tlsMaterial ? { tls: { host: tls.address, port: tls.port, material: tlsMaterial, ticketKeys } } : {}),
          internal: { host: '127.0.0.1', port: internalAddress.port },
          forwardSecret,
        },
        {
          blobsUsed: (digests) => digests.forEach((d) => deps.accounting.used(d)),
          pulled: (repositories) => repositories.forEach((r) => deps.topRepositories.record(r)),
          log: (bytes, giveBack) => writeEncodedLines(stdout, bytes, giveBack),
          failed: (err) => logger.error({ err: String(err) }, 'a hit thread failed; the other threads carry on'),
        },
      );
      for (const source of hitThreads.metricsSources) deps.metrics.addRemote(source);
    }
    if (config.tls && tlsMaterial && tlsServer) {
      const server = tlsServer;
      reloader = new TlsReloader(config.tls, tlsMaterial, (material) => {
        server.use(material);
        hitThreads?.useTls(material);
      }, logger);
      if (tlsMaterial.summary.expired) logger.warn({ tls: tlsMaterial.summary }, 'the TLS certificate has expired');
    }
    const plainUrl = plain && `http://${shownHost(plain)}:${plain.port}`;
    const tlsUrl = tls && `https://${shownHost(tls)}:${tls.port}`;
    const url = (plainUrl ?? tlsUrl)!;
    logger.info(
      {
        url,
        ...(tlsUrl ? { tlsUrl, tls: tlsMaterial?.summary, clientCertificates: clientCertificates(config.tls!) } : {}),
        threads: config.threads,
        upstreams: config.upstreams.map((u) => u.name),
        store: deps.manifestStore.backend,
        // sendfile needs a plain socket: over TLS the bytes pass through OpenSSL.
        blobSend: deps.files.method,
        ...(tlsUrl ? { blobSendTls: 'stream' } : {}),
      },
      'wharf listening',
    );
    return {
      url,
      port: (plain ?? tls)!.port,
      ...(tls && tlsUrl ? { tls: { url: tlsUrl, port: tls.port } } : {}),
      deps,
      /** Stops accepting, lets running responses and fills finish for up to graceMs, then closes. */
      close: (graceMs = 10_000) => stop(graceMs),
    };
  } catch (err) {
    await stop(0).catch(() => undefined);
    throw err;
  }
}

/** A listen address; no host (":5000") means every IPv4 interface. */
export function splitListen(listen: string): { host: string; port: number } {
  const { host, port } = splitHostPort(listen);
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function shownHost(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}

function clientCertificates(tls: NonNullable<Config['tls']>): 'off' | 'optional' | 'required' {
  if (tls.clientCaFile === undefined) return 'off';
  return tls.requireClientCert ? 'required' : 'optional';
}
