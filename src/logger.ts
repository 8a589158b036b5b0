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
