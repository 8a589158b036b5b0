// The negative suite's cases: hostile requests against an auth-enabled wharf, generated from a
// seed (mulberry32, one stream per case, so case i is the same whatever else runs), the seven
// kinds in turn so that each has a seventh of them. auth-attack-model.ts says what a case is;
// auth-attack-names.ts, -paths.ts, -tokens.ts and -credentials.ts build each kind; auth-attack-judge.ts
// holds every answer to what all of them must satisfy.
import { seeded } from './hostile-answers.ts';
import { headersCase, scopesCase, beyondHeadLimit } from './auth-attack-credentials.ts';
import { KINDS, type AttackCase, type Kind, type World } from './auth-attack-model.ts';
import { digestsCase, namesCase } from './auth-attack-names.ts';
import { rangesCase, traversalCase } from './auth-attack-paths.ts';
import { tokensCase } from './auth-attack-tokens.ts';

export type { AttackCase, Kind, World } from './auth-attack-model.ts';

const BUILDERS: Record<Kind, (w: World, rand: () => number) => Promise<Pick<AttackCase, 'variant' | 'next'>> | Pick<AttackCase, 'variant' | 'next'>> = {
  names: namesCase,
  digests: digestsCase,
  scopes: scopesCase,
  tokens: tokensCase,
  headers: headersCase,
  ranges: rangesCase,
  traversal: traversalCase,
};

export async function buildCases(count: number, seed: number, world: World): Promise<AttackCase[]> {
  const cases: AttackCase[] = [];
  for (let id = 0; id < count; id++) {
    const kind = KINDS[id % KINDS.length]!;
    const built = await BUILDERS[kind](world, seeded(seed * 1_000_003 + id));
    cases.push({ id, kind, ...built });
  }
  return cases;
}

/** Fails on a request whose status would depend on where exactly Node's 16 KiB head limit lies. */
export function assertClearOfHeadLimit(bytes: Buffer): void {
  const end = bytes.indexOf('\r\n\r\n');
  beyondHeadLimit(end === -1 ? bytes.length : end + 4);
}
