// Parses WWW-Authenticate (RFC 7235 auth-params) as registries send it, e.g.
//   Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"
// Quoted values may contain commas and escaped quotes; unknown schemes are ignored.

export interface AuthChallenge {
  readonly scheme: 'bearer' | 'basic';
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;

/** The first Bearer or Basic challenge in the header value(s), Bearer preferred. */
export function parseAuthChallenge(header: string | string[] | undefined): AuthChallenge | undefined {
  if (header === undefined) return undefined;
  const challenges = (Array.isArray(header) ? header : [header]).flatMap(parseChallenges);
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

function parseChallenges(value: string): AuthChallenge[] {
  const found: AuthChallenge[] = [];
  let pos = 0;
  let current: { scheme: string; params: Record<string, string> } | undefined;
  while (pos < value.length) {
    pos = skip(value, pos, /[\s,]/);
    const name = readToken(value, pos);
    if (!name) break;
    pos += name.length;
    const afterSpace = skip(value, pos, /[ \t]/);
    if (value[afterSpace] === '=') {
      // name=value: a parameter of the current challenge.
      const { text, end } = readValue(value, skip(value, afterSpace + 1, /[ \t]/));
      if (current) current.params[name.toLowerCase()] = text;
      pos = end;
    } else {
      // A bare token starts a new challenge: the scheme.
      current = { scheme: name.toLowerCase(), params: {} };
      if (current.scheme === 'bearer' || current.scheme === 'basic') found.push(current as AuthChallenge);
      pos = afterSpace;
    }
  }
  return found;
}

function skip(value: string, pos: number, chars: RegExp): number {
  while (pos < value.length && chars.test(value[pos]!)) pos++;
  return pos;
}

function readToken(value: string, pos: number): string | undefined {
  TOKEN.lastIndex = pos;
  return TOKEN.exec(value)?.[0];
}

function readValue(value: string, pos: number): { text: string; end: number } {
  if (value[pos] !== '"') {
    const token = readToken(value, pos) ?? '';
    return { text: token, end: pos + token.length };
  }
  let text = '';
  let i = pos + 1;
  while (i < value.length && value[i] !== '"') {
    if (value[i] === '\\' && i + 1 < value.length) i++;
    text += value[i];
    i++;
  }
  return { text, end: i + 1 };
}
