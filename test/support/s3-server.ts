// Starts s3rver (npm) on 127.0.0.1 in its own process, with a fresh temp dir and one bucket, for
// the S3 blob store's tests. s3rver is lenient, so tests must not lean on what it lets through:
// it checks no SigV4 signature (any credentials pass), ignores If-None-Match on PUT and
// CompleteMultipartUpload (a second publish overwrites), answers AbortMultipartUpload with 405
// and returns one byte too many for a suffix range (`bytes=-5`).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { makeTempDir } from './temp-dir.ts';
import { stopProcess } from './stop-process.ts';

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 15_000;

export interface S3Server {
  /** http://127.0.0.1:<port>, for an S3 client with path-style addressing. */
  readonly endpoint: string;
  readonly bucket: string;
  /** s3rver's fixed credentials (it does not check them). */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Where s3rver keeps the objects (for tests that look behind the API). */
  readonly directory: string;
  stop(): Promise<void>;
}

export async function startS3Server(bucket = 'wharf'): Promise<S3Server> {
  const dir = await makeTempDir('wharf-s3rver-');
  const bin = join(dirname(createRequire(import.meta.url).resolve('s3rver/package.json')), 'bin', 's3rver.js');
  // Port 0: s3rver binds a free port itself and prints it, so no port can be taken in between.
  const child = spawn(process.execPath, [bin, '-d', dir.path, '-a', HOST, '-p', '0', '-s', '--configure-bucket', bucket], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const stop = async () => {
    await stopProcess(child);
    await dir.cleanup();
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`s3rver did not start within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
      const onData = (d: Buffer) => {
        output += d.toString();
        const m = /listening on [^:\s]+:(\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`s3rver exited (${code}) before listening:\n${output}`));
      });
    });
    return { endpoint: `http://${HOST}:${port}`, bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', directory: dir.path, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
