// Secrets stay secret: passwords, htpasswd hashes, machine tokens, wharf's own tokens and the
// upstream's credentials and tokens never show in logs (at debug level), metrics, /status.json or
// any answer except the token answer itself. Everything wharf wrote and answered is collected
// while clients log in right and wrong, pull, and send forged tokens, then grepped.
import { hash } from '@node-rs/bcrypt';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreamRegistry, type UpstreamRegistry } from '../support/upstream-registry.ts';
import { makeImage } from '../support/test-images.ts';
import { pushImage } from '../support/push-image.ts';
import { startWharf, type TestWharf } from '../support/wharf.ts';
import { makeTempDir, type TempDir } from '../support/temp-dir.ts';
import { LogLines } from '../support/log-lines.ts';

const image = makeImage({ name: 'secrets', files: { 's.txt': 'nothing secret here\n' } });
const PASSWORD = 'correct-horse-battery-staple';
const MACHINE_TOKEN = 'machine-token-0123456789abcdef';
const UPSTREAM_PASSWORD = 'upstream-password-zyx987';

describe('secrets in logs, metrics, status and answers', () => {
  let upstream: UpstreamRegistry;
  let dir: TempDir;
  let wharf: TestWharf;
  let htpasswdHash: string;
  const logs = new LogLines();
  const seen: string[] = [];
  const issued: string[] = [];

  /** A request whose whole answer (status line, headers, body) is kept for the grep. */
  async function ask(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const res = await fetch(`${wharf.url}${path}`, { headers });
    const body = await res.text();
    const shown = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
    if (path.startsWith('/token') && res.status === 200) issued.push((JSON.parse(body) as { token: string }).token);
    else seen.push(`${res.status}\n${shown}\n${body}`);
    return new Response(body, { status: res.status, headers: res.headers });
  }

  beforeAll(async () => {
    upstream = await startUpstreamRegistry({ auth: 'token' });
    await pushImage(upstream.url, 'library/secrets', 'v1', image);
    dir = await makeTempDir('wharf-secrets-');
    htpasswdHash = await hash(PASSWORD, 5);
    await writeFile(join(dir.path, 'htpasswd'), `alice:${htpasswdHash}\n`);
    const machineSha = createHash('sha256').update(MACHINE_TOKEN).digest('hex');
    wharf = await startWharf({
      logLevel: 'debug',
      logDestination: logs,
      upstreams: [{ name: 'docker.io', url: upstream.url, default: true, username: 'wharf-bot', password: UPSTREAM_PASSWORD }],
      auth: {
        htpasswd: { path: join(dir.path, 'htpasswd') },
        machines: { ci: { sha256: machineSha } },
        rules: [{ repositories: ['docker.io/**'], users: ['alice'], machines: ['ci'] }],
        admins: { users: ['alice'] },
        signingKeyFile: join(dir.path, 'key.pem'),
      },
    });
  });

  afterAll(async () => {
    await wharf?.stop();
    await upstream?.stop();
    await dir?.cleanup();
  });

  it('shows none of them anywhere', async () => {
    const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });
    await ask('/v2/');
    await ask('/token?service=wharf&scope=repository:secrets:pull', basic('alice', 'wrong-password-123'));
    await ask('/token?service=wharf&scope=repository:secrets:pull', basic('mallory', PASSWORD));
    await ask('/token?service=wharf&scope=repository:secrets:pull', basic('alice', PASSWORD));
    expect(issued).toHaveLength(1);
    const bearer = { authorization: `Bearer ${issued[0]}` };
    expect((await ask('/v2/secrets/manifests/v1', { ...bearer, accept: image.manifest.mediaType })).status).toBe(200);
    expect((await ask(`/v2/secrets/blobs/${image.layers[0]!.digest}`, bearer)).status).toBe(200);
    expect((await ask('/v2/secrets/manifests/v1', { authorization: `Bearer ${MACHINE_TOKEN}` })).status).toBe(200);
    expect((await ask('/v2/secrets/manifests/v1', basic('alice', PASSWORD))).status).toBe(200);
    // Forged and broken tokens, a token with one character changed.
    // In the middle of the signature: its last base64url character also carries padding bits,
    // so changing that one can leave the signature's bytes as they were (and the token valid).
    const token0 = issued[0]!;
    const at = token0.lastIndexOf('.') + 10;
    const flipped = token0.slice(0, at) + (token0[at] === 'A' ? 'B' : 'A') + token0.slice(at + 1);
    for (const token of [flipped, `${MACHINE_TOKEN}x`, 'a.b.c']) expect((await ask('/v2/secrets/manifests/v1', { authorization: `Bearer ${token}` })).status).toBe(401);
    expect((await ask('/admin/stats', basic('alice', PASSWORD))).status).toBe(200);
    for (const path of ['/metrics', '/status.json', '/']) expect((await ask(path, basic('alice', PASSWORD))).status).toBe(200);
    await wharf.deps.blobs.settled();

    const secrets = {
      'the password': PASSWORD,
      'the wrong password': 'wrong-password-123',
      'the htpasswd hash': htpasswdHash,
      'the machine token': MACHINE_TOKEN,
      "wharf's token": issued[0]!,
      'the forged token': flipped,
      'the upstream password': UPSTREAM_PASSWORD,
      "the upstream's Basic credentials": Buffer.from(`wharf-bot:${UPSTREAM_PASSWORD}`).toString('base64'),
      ...Object.fromEntries(upstream.tokenServer!.issuedTokens().map((t, i) => [`upstream token ${i}`, t])),
    };
    expect(upstream.tokenServer!.issuedTokens().length).toBeGreaterThan(0);
    const everything = { logs: logs.raw.join('\n'), answers: seen.join('\n---\n') };
    expect(logs.raw.length).toBeGreaterThan(10);
    // Logins are in the access log, failed ones too.
    const logins = logs.lines.filter((l) => l.msg === 'request' && typeof l.url === 'string' && l.url.startsWith('/token'));
    expect(logins.map((l) => l.status).sort()).toEqual([200, 401, 401]);
    expect(logins.find((l) => l.status === 200)).toMatchObject({ identity: 'user:alice' });
    for (const [where, text] of Object.entries(everything)) {
      for (const [what, secret] of Object.entries(secrets)) expect(text.includes(secret), `${what} in ${where}`).toBe(false);
    }
  });
});
