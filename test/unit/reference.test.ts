import { describe, expect, it } from 'vitest';
import { parseImageReference, ReferenceError } from '../../src/oci/reference.ts';

const digest = `sha256:${'a'.repeat(64)}`;

describe('parseImageReference', () => {
  it.each([
    ['alpine', { registry: 'docker.io', repository: 'alpine', tag: 'latest', digest: undefined }],
    ['library/alpine:3.20', { registry: 'docker.io', repository: 'library/alpine', tag: '3.20', digest: undefined }],
    ['ghcr.io/owner/img:v1', { registry: 'ghcr.io', repository: 'owner/img', tag: 'v1', digest: undefined }],
    ['localhost:5001/team/app', { registry: 'localhost:5001', repository: 'team/app', tag: 'latest', digest: undefined }],
    ['localhost/app:1', { registry: 'localhost', repository: 'app', tag: '1', digest: undefined }],
    [`quay.io/o/i@${digest}`, { registry: 'quay.io', repository: 'o/i', tag: undefined, digest }],
    [`registry.k8s.io/pause:3.9@${digest}`, { registry: 'registry.k8s.io', repository: 'pause', tag: '3.9', digest }],
  ])('%s', (text, expected) => expect(parseImageReference(text)).toEqual(expected));

  it.each(['Alpine', 'ghcr.io/Owner/img', 'alpine:bad tag', 'alpine@sha256:xyz', '', 'ghcr.io/'])('refuses %j', (text) => {
    expect(() => parseImageReference(text)).toThrow(ReferenceError);
  });
});
