// What every answer of the negative suite is held to, whatever the case: no 5xx, a status the
// case allows, none of b's bytes (no 32-byte window of b's manifest, config or layers that the
// request did not itself contain, no header naming b's digests, no HEAD announcing b's sizes),
// a 2xx only with a's exact content or what the case's own check accepts, a challenge on every
// 401, and no credential the request carried echoed anywhere in the answer.
import type { RawAnswer } from './raw-http-client.ts';
import { header } from './raw-http-client.ts';
import type { Step } from './auth-attack-model.ts';
import type { TestImage } from './test-images.ts';

const WINDOW = 32;
// realm on a plain host[:port], this service, a scope (if any) naming one valid repository.
const BEARER_CHALLENGE = /^Bearer realm="https?:\/\/(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?\/token",service="wharf"(?:,scope="repository:[a-z0-9._/-]+:pull")?(?:,error="invalid_token")?$|^Bearer realm="wharf-admin"$/;

/** The 32-byte windows of the denied content, less those the allowed content shares with it. */
export class DeniedBytes {
  readonly #prefixes = new Set<number>();
  readonly #windows = new Set<string>();

  constructor(denied: readonly Buffer[], allowed: readonly Buffer[]) {
    const shared = new Set<string>();
    for (const buf of allowed) for (let i = 0; i + WINDOW <= buf.length; i++) shared.add(buf.toString('latin1', i, i + WINDOW));
    for (const buf of denied) {
      for (let i = 0; i + WINDOW <= buf.length; i++) {
        const w = buf.toString('latin1', i, i + WINDOW);
        if (shared.has(w)) continue;
        this.#windows.add(w);
        this.#prefixes.add(buf.readUInt32LE(i));
      }
    }
  }

  get size(): number {
    return this.#windows.size;
  }

  /** The first denied window in haystack that `sent` (the request, latin1) does not contain. */
  find(haystack: Buffer, sent: string): string | undefined {
    for (let i = 0; i + WINDOW <= haystack.length; i++) {
      if (!this.#prefixes.has(haystack.readUInt32LE(i))) continue;
      const w = haystack.toString('latin1', i, i + WINDOW);
      if (this.#windows.has(w) && !sent.includes(w)) return w;
    }
    return undefined;
  }
}

/**
 * The answer with every run of 16+ hex digits that the request itself holds blanked: an error
 * that names the digest asked for (`"digest":"sha256:<hex>"`) echoes the client, it does not
 * leak b's manifest, though b's manifest holds the same hex. Everything else of b still counts.
 */
function withoutEchoedHex(answer: Buffer, sent: string): Buffer {
  const text = answer.toString('latin1');
  const blanked = text.replace(/[0-9a-f]{16,}/g, (run) => (sent.includes(run) ? '\0'.repeat(run.length) : run));
  return blanked === text ? answer : Buffer.from(blanked, 'latin1');
}

export function contentOf(image: TestImage): Buffer[] {
  return [image.manifest.body, image.config.body, ...image.layers.map((l) => l.body)];
}

const digestsOf = (image: TestImage) => [image.manifest.digest, image.config.digest, ...image.layers.map((l) => l.digest)];

/** The credentials a request carries (Authorization and Proxy-Authorization, decoded Basic too). */
export function secretsIn(sent: string): string[] {
  const secrets: string[] = [];
  const head = sent.slice(0, sent.indexOf('\r\n\r\n') === -1 ? undefined : sent.indexOf('\r\n\r\n'));
  for (const line of head.split('\r\n').slice(1)) {
    const m = /^(?:proxy-)?authorization:\s*(.*)$/i.exec(line);
    if (!m) continue;
    const value = m[1]!.trim();
    const space = value.indexOf(' ');
    const credential = space === -1 ? value : value.slice(space + 1).trim();
    if (credential.length >= 12) secrets.push(credential);
    if (/^basic$/i.test(value.slice(0, space)) && /^[A-Za-z0-9+/]+=*$/.test(credential)) {
      const decoded = Buffer.from(credential, 'base64').toString('latin1');
      const password = decoded.slice(decoded.indexOf(':') + 1);
      if (password.length >= 8) secrets.push(password);
    }
  }
  return secrets;
}

export class Judge {
  readonly #denied: DeniedBytes;
  readonly #deniedHex: string[];
  readonly #deniedSizes: Set<string>;
  readonly #a: TestImage;
  readonly #aBodies: Buffer[];

  constructor(a: TestImage, b: TestImage) {
    this.#a = a;
    this.#aBodies = contentOf(a);
    this.#denied = new DeniedBytes(contentOf(b), contentOf(a));
    this.#deniedHex = digestsOf(b).map((d) => d.slice(d.indexOf(':') + 1));
    const aSizes = new Set(contentOf(a).map((c) => String(c.length)));
    this.#deniedSizes = new Set(contentOf(b).map((c) => String(c.length)).filter((s) => !aSizes.has(s)));
  }

  get deniedWindows(): number {
    return this.#denied.size;
  }

  /** What is wrong with this answer to this step (and, pipelined, with those before it); empty when nothing. */
  judge(step: Step, answer: RawAnswer): string[] {
    const problems = (step.earlier ?? []).flatMap((before, i) => {
      const earlier = answer.earlier?.[i];
      if (earlier === undefined) return [`no answer to pipelined request ${i}`];
      return this.#judgeOne(before, earlier).map((p) => `pipelined request ${i}: ${p}`);
    });
    return [...problems, ...this.#judgeOne(step, answer)];
  }

  #judgeOne(step: Step, answer: RawAnswer): string[] {
    const problems: string[] = [];
    const sent = step.request.bytes.toString('latin1');
    const outcome = answer.failure ?? answer.status;
    if (typeof outcome === 'number' && outcome >= 500) problems.push(`answered ${outcome}: ${answer.body.toString('latin1').slice(0, 200)}`);
    else if (outcome === 'timeout' || outcome === 'refused' || !step.allowed.includes(outcome)) {
      problems.push(`answered ${outcome}, allowed ${JSON.stringify(step.allowed)}: ${answer.body.toString('latin1').slice(0, 160)}`);
    }
    const whole = Buffer.concat([Buffer.from(answer.head, 'latin1'), answer.body]);
    const window = this.#denied.find(withoutEchoedHex(whole, sent), sent);
    if (window !== undefined) problems.push(`answer holds b's bytes ${JSON.stringify(window)}`);
    for (const name of ['docker-content-digest', 'etag', 'content-range', 'location', 'link']) {
      const value = header(answer, name) ?? '';
      if (this.#deniedHex.some((hex) => value.includes(hex))) problems.push(`${name} names b's content: ${value}`);
    }
    if (step.request.head) {
      const length = header(answer, 'content-length');
      if (length !== undefined && this.#deniedSizes.has(length)) problems.push(`HEAD announces the size of one of b's blobs: ${length}`);
    }
    const range = /\/(\d+)$/.exec(header(answer, 'content-range') ?? '');
    if (range && this.#deniedSizes.has(range[1]!)) problems.push(`content-range gives the size of one of b's blobs: ${header(answer, 'content-range')}`);
    if (answer.status === 401 && header(answer, 'www-authenticate') === undefined) problems.push('401 without a challenge');
    const challenge = header(answer, 'www-authenticate') ?? '';
    if (/^bearer /i.test(challenge) && !BEARER_CHALLENGE.test(challenge)) problems.push(`a challenge that is not wharf's own: ${challenge.slice(0, 200)}`);
    if (answer.status >= 200 && answer.status < 300) {
      const own = step.check?.(answer);
      if (own !== undefined) problems.push(own);
      else if (step.servesA) {
        const wrong = this.#notA(answer);
        if (wrong !== undefined) problems.push(wrong);
      } else if (step.check === undefined) problems.push(`a ${answer.status} the case does not expect`);
    }
    const text = whole.toString('latin1');
    for (const secret of [...secretsIn(sent), ...(step.secrets ?? [])]) if (text.includes(secret)) problems.push(`answer echoes a credential the request sent (${secret.slice(0, 12)}...)`);
    return problems;
  }

  /** A 2xx to a caller entitled to a: exactly a's manifest, a blob of a, a part of one, or a's tag list. */
  #notA(answer: RawAnswer): string | undefined {
    const digest = header(answer, 'docker-content-digest');
    const aDigests = digestsOf(this.#a);
    if (digest !== undefined && !aDigests.includes(digest)) return `${answer.status} names ${digest}, which is not a's`;
    const body = answer.body;
    if (body.length === 0) return undefined;
    if (this.#aBodies.some((c) => c.equals(body))) return undefined;
    if (answer.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header(answer, 'content-range') ?? '');
      const whole = m && this.#aBodies.find((c) => c.length === Number(m[3]));
      if (m && whole && whole.subarray(Number(m[1]), Number(m[2]) + 1).equals(body)) return undefined;
      return `206 that is not a part of a blob of a (${header(answer, 'content-range')})`;
    }
    try {
      const list = JSON.parse(body.toString('utf8')) as { name?: unknown; tags?: unknown };
      if ((list.name === 'acme/a' || list.name === 'ghcr.io/acme/a') && JSON.stringify(list.tags) === '["v1"]') return undefined;
    } catch {
      // not a tag list either
    }
    return `2xx body is none of a's content: ${body.toString('latin1').slice(0, 120)}`;
  }
}
