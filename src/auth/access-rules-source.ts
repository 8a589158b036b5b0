// The access rules in force: inline in the config (fixed), or from auth.rulesFile, re-read when
// the file changes so a rule change needs no restart. A bad new file (YAML, shape or glob) is
// reported and the rules in force stay.
import { parse as parseYaml } from 'yaml';
import { accessRulesSchema } from '../config/auth-schema.ts';
import { AccessRules } from './access-rules.ts';
import type { AuthOutcomeListener } from './auth-outcome.ts';
import { readAuthFile } from './read-auth-file.ts';
import { WatchedFile } from './watched-file.ts';

export class AccessRulesFileError extends Error {
  constructor(path: string, why: string, options?: { cause?: unknown }) {
    super(`${path}: ${why}`, options);
    this.name = 'AccessRulesFileError';
  }
}

export interface AccessRulesSourceOptions {
  readonly inline?: ConstructorParameters<typeof AccessRules>[0];
  readonly file?: string;
  readonly onOutcome?: AuthOutcomeListener;
  /** A reload refused or a watch failure. */
  readonly onReloadError?: (err: Error) => void;
  readonly onReload?: (rules: number) => void;
}

export class AccessRulesSource {
  #rules: AccessRules;
  readonly #file: WatchedFile | undefined;

  private constructor(rules: AccessRules, file: (source: AccessRulesSource) => WatchedFile | undefined) {
    this.#rules = rules;
    this.#file = file(this);
  }

  /** A bad file or bad inline rules are an error here: wharf does not start with rules it cannot read. */
  static async open(options: AccessRulesSourceOptions): Promise<AccessRulesSource> {
    const build = (list: ConstructorParameters<typeof AccessRules>[0]) => new AccessRules(list, { onOutcome: options.onOutcome });
    const path = options.file;
    if (path === undefined) return new AccessRulesSource(build(options.inline ?? []), () => undefined);
    const fail = (why: string, cause?: unknown) => new AccessRulesFileError(path, why, cause === undefined ? undefined : { cause });
    const text = await readAuthFile(path, fail);
    return new AccessRulesSource(build(parseRulesFile(text, fail)), (source) =>
      new WatchedFile(
        {
          path,
          apply: (t) => {
            const list = parseRulesFile(t, fail);
            source.#rules = build(list);
            options.onReload?.(list.length);
          },
          onError: (err) => options.onReloadError?.(err),
          fail,
        },
        text,
      ),
    );
  }

  get rules(): AccessRules {
    return this.#rules;
  }

  close(): void {
    this.#file?.close();
  }
}

/** The file holds the rules list, or `{ rules: [...] }`. */
function parseRulesFile(text: string, fail: (why: string, cause?: unknown) => Error): ConstructorParameters<typeof AccessRules>[0] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw fail(`not YAML: ${(err as Error).message.split('\n')[0]}`, err);
  }
  const list = doc !== null && typeof doc === 'object' && !Array.isArray(doc) && 'rules' in doc ? (doc as { rules: unknown }).rules : doc;
  const parsed = accessRulesSchema.safeParse(list);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw fail(`rule ${issue.path.join('.') || '(list)'}: ${issue.message}`);
  }
  return parsed.data;
}
