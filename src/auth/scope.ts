// Docker token scopes, as clients send them to the token endpoint (`?scope=`, repeatable) and as
// a token's access claim lists them (distribution `spec/auth/scope.md`, `spec/auth/jwt.md`).
//
//   repository:library/alpine:pull
//   repository:ghcr.io/acme/app:pull,push
//   repository:localhost:5000/team/app:pull     (a registry host:port prefix)
//   registry:catalog:*
//
// Parsing rule: the type runs to the first ':', the actions follow the last ':', the name is
// what lies between. A name may itself hold a ':' only as the port of a registry host in its
// first segment (`host:port/...`); anywhere else the scope is malformed. The rest of the name
// must be a valid repository path (the distribution grammar). IPv6 literal hosts (`[::1]:5000`)
// are not accepted.
//
// A bad scope is dropped, not an error: the spec grants the intersection of what was asked and
// what is allowed, and a partial grant is still a grant. Dropped too: types other than
// `repository` and `registry`, resource classes (`repository(plugin):...`), empty or malformed
// actions, and scopes beyond MAX_SCOPES in one request (bounds the token's size).
import { isValidRepositoryName } from '../oci/grammar.ts';

export type ResourceType = 'repository' | 'registry';

export interface ResourceAccess {
  readonly type: ResourceType;
  readonly name: string;
  readonly actions: readonly string[];
}

export const MAX_SCOPES = 64;
const MAX_SCOPE_LENGTH = 1024;
const ACTION = /^(?:[a-z]+|\*)$/;
const REGISTRY_NAME = /^[a-z0-9]+$/;
// A lowercase DNS name (letters, digits, '-', '.') and a port, as registry names are written.
const HOST_PORT = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*:[0-9]{1,5}$/;

/** One scope, or undefined when it is not one wharf understands. */
export function parseScope(scope: string): ResourceAccess | undefined {
  if (scope.length === 0 || scope.length > MAX_SCOPE_LENGTH) return undefined;
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = parseActions(scope.slice(last + 1));
  if (actions === undefined) return undefined;
  if (type === 'repository') return isScopeRepositoryName(name) ? { type, name, actions } : undefined;
  if (type === 'registry') return REGISTRY_NAME.test(name) ? { type, name, actions } : undefined;
  return undefined;
}

/**
 * Every scope of a token request: each parameter may hold several, separated by spaces (the
 * OAuth2 form). Scopes of the same resource are merged; the order is that of first appearance.
 */
export function parseScopes(params: readonly string[]): ResourceAccess[] {
  const merged = new Map<string, { type: ResourceType; name: string; actions: string[] }>();
  for (const param of params) {
    for (const text of param.split(/\s+/)) {
      if (text.length === 0) continue;
      const scope = parseScope(text);
      if (scope === undefined) continue;
      const key = `${scope.type}:${scope.name}`;
      const seen = merged.get(key);
      if (seen !== undefined) {
        for (const action of scope.actions) if (!seen.actions.includes(action)) seen.actions.push(action);
      } else if (merged.size < MAX_SCOPES) {
        merged.set(key, { type: scope.type, name: scope.name, actions: [...scope.actions] });
      }
    }
  }
  return [...merged.values()];
}

/** Does a granted access list allow `action` on the resource? '*' grants every action. */
export function accessAllows(
  access: readonly ResourceAccess[] | undefined,
  type: ResourceType,
  name: string,
  action: string,
): boolean {
  if (access === undefined) return false;
  for (const entry of access) {
    if (entry.type !== type || entry.name !== name) continue;
    for (const granted of entry.actions) if (granted === action || granted === '*') return true;
  }
  return false;
}

export function formatScope(access: ResourceAccess): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}

function parseActions(text: string): string[] | undefined {
  if (text.length === 0) return undefined;
  const actions: string[] = [];
  for (const action of text.split(',')) {
    if (!ACTION.test(action)) return undefined;
    if (!actions.includes(action)) actions.push(action);
  }
  return actions;
}

function isScopeRepositoryName(name: string): boolean {
  const colon = name.indexOf(':');
  if (colon === -1) return isValidRepositoryName(name);
  const slash = name.indexOf('/');
  // The ':' must sit in the first segment, and that segment must be host:port.
  if (slash === -1 || slash < colon) return false;
  return HOST_PORT.test(name.slice(0, slash)) && isValidRepositoryName(name.slice(slash + 1));
}
