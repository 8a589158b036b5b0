// Structured JSON logs (pino). Credentials are redacted by path wherever they could appear.
import { pino, type Logger, type DestinationStream } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wharf' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['password', '*.password', 'authorization', '*.authorization', 'headers.authorization', 'config.upstreams[*].password', 'token', '*.token'],
        censor: '***',
      },
    },
    destination,
  );
}

/** The stream a logger writes to (pino's own symbol for it): for lines put together elsewhere. */
export function logStream(logger: Logger): DestinationStream {
  return (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!;
}

/** A logger's bindings as pino splices them into each line: `,"service":"wharf","thread":1`. */
export function logBindings(logger: Logger): string {
  return (logger as unknown as Record<symbol, string | undefined>)[pino.symbols.chindingsSym] ?? '';
}
