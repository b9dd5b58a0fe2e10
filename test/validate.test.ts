import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlinthError } from '../src/util/errors.js';
import {
  formatPath,
  parseDocument,
  parseJson,
  validateConfig,
  validateDescriptor,
  validateIndex,
  validateLayout,
  validateManifest,
} from '../src/oci/validate.js';
import {
  DOCKER_CONFIG,
  DOCKER_FOREIGN_LAYER,
  DOCKER_LAYER_TAR_GZIP,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1_SIGNED_MANIFEST,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER_NONDIST_TAR_ZSTD,
  OCI_LAYER_TAR,
  OCI_LAYER_TAR_GZIP,
  OCI_LAYER_TAR_ZSTD,
  OCI_MANIFEST,
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  layerCompression,
} from '../src/oci/mediatypes.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, platformMatches } from '../src/oci/types.js';
import { mulberry32, repoRoot } from './helpers/common.js';

// ---------------------------------------------------------------------------------------------
// Shared vectors: <repo>/../shared/vectors/image-spec. From dist/test/ walk up to package.json.
// ---------------------------------------------------------------------------------------------


const VECTORS = resolve(repoRoot(), '..', 'shared', 'vectors', 'image-spec');

function readJsonl<T>(name: string): T[] {
  const text = readFileSync(join(VECTORS, name), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

interface SchemaVector {
  source: string;
  schema: string;
  field: 'manifest' | 'imageIndex' | 'config' | 'descriptor' | 'imageLayout';
  expect_valid: boolean;
  json_parses: boolean;
  comment: string;
  document: string;
}

interface MdExample {
  source: string;
  title: string;
  mediatype: string;
  json_parses: boolean;
  expect_valid: boolean;
  document: string;
}

const enc = new TextEncoder();

function assertInvalid(fn: () => unknown, pattern?: RegExp): PlinthError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, 'expected the document to be rejected');
  assert.ok(caught instanceof PlinthError, `expected a PlinthError, got ${String(caught)}`);
  assert.equal(caught.code, 'MANIFEST_INVALID');
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

/** Validate a vector's text as the given field, from bytes, the way Plinth would receive it. */
function validateAs(field: SchemaVector['field'], text: string): unknown {
  const bytes = enc.encode(text);
  switch (field) {
    case 'manifest': {
      const direct = validateManifest(parseJson(bytes, 'manifest'));
      const parsed = parseDocument(bytes, OCI_MANIFEST);
      assert.equal(parsed.kind, 'manifest');
      return direct;
    }
    case 'imageIndex': {
      const direct = validateIndex(parseJson(bytes, 'index'));
      const parsed = parseDocument(bytes, OCI_INDEX);
      assert.equal(parsed.kind, 'index');
      return direct;
    }
    case 'config':
      return validateConfig(parseJson(bytes, 'config'));
    case 'descriptor':
      return validateDescriptor(parseJson(bytes, 'descriptor'));
    case 'imageLayout':
      return validateLayout(parseJson(bytes, 'oci-layout'));
  }
}

describe('image-spec schema vectors', () => {
  const rows = readJsonl<SchemaVector>('image-spec-schema-vectors.jsonl');
  test('all 65 rows are present', () => assert.equal(rows.length, 65));
  rows.forEach((row, i) => {
    const name = `#${String(i).padStart(2, '0')} ${row.field} ${row.expect_valid ? 'valid' : 'invalid'}: ${row.comment}`;
    test(name, () => {
      // The vector's own claim about JSON well-formedness must hold.
      let parses = true;
      try {
        JSON.parse(row.document);
      } catch {
        parses = false;
      }
      assert.equal(parses, row.json_parses, 'json_parses flag disagrees with JSON.parse');
      if (!row.json_parses) {
        assert.equal(row.expect_valid, false);
        assertInvalid(() => validateAs(row.field, row.document), /is not valid JSON: /);
        return;
      }
      if (row.expect_valid) {
        const doc = validateAs(row.field, row.document);
        assert.deepEqual(doc, JSON.parse(row.document), 'validated document is returned unchanged');
      } else {
        const err = assertInvalid(() => validateAs(row.field, row.document), / is invalid: /);
        const issues = (err.details?.['issues'] ?? []) as Array<{ path: string; message: string }>;
        assert.ok(issues.length > 0, 'issues are reported in details');
      }
    });
  });
});

describe('image-spec markdown examples', () => {
  const rows = readJsonl<MdExample>('image-spec-md-examples.jsonl');
  test('all 13 rows are present', () => assert.equal(rows.length, 13));
  rows.forEach((row, i) => {
    test(`#${String(i).padStart(2, '0')} ${row.title} (${row.mediatype})`, () => {
      const bytes = enc.encode(row.document);
      const check = (): unknown => {
        switch (row.mediatype) {
          case OCI_MANIFEST:
          case OCI_INDEX: {
            const parsed = parseDocument(bytes, row.mediatype);
            assert.equal(parsed.kind, row.mediatype === OCI_INDEX ? 'index' : 'manifest');
            assert.equal(parsed.mediaType, row.mediatype);
            // kind detection without a hint gives the same answer
            assert.equal(parseDocument(bytes).kind, parsed.kind);
            return parsed.doc;
          }
          case OCI_CONFIG:
            return validateConfig(parseJson(bytes, 'config'));
          case 'application/vnd.oci.descriptor.v1+json':
            return validateDescriptor(parseJson(bytes, 'descriptor'));
          case 'application/vnd.oci.layout.header.v1+json':
            return validateLayout(parseJson(bytes, 'oci-layout'));
          default:
            throw new Error(`test does not know media type ${row.mediatype}`);
        }
      };
      if (!row.json_parses) {
        assertInvalid(check, /is not valid JSON/);
      } else if (row.expect_valid) {
        assert.deepEqual(check(), JSON.parse(row.document));
      } else {
        assertInvalid(check);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Error messages
// ---------------------------------------------------------------------------------------------

const D1 = 'sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b';
const D2 = 'sha256:9d3dd9504c685a304985025df4ed0283e47ac9ffa9bd0326fddf4d59513f0827';

function manifest(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, size: 1470, digest: D1 },
    layers: [{ mediaType: OCI_LAYER_TAR_GZIP, size: 675598, digest: D2 }],
    ...over,
  };
}

function index(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, size: 7143, digest: D1, platform: { architecture: 'amd64', os: 'linux' } }],
    ...over,
  };
}

const bytesOf = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

describe('error messages name the path and the problem', () => {
  test('layer size is a string', () => {
    const m = manifest({ layers: [{ mediaType: OCI_LAYER_TAR_GZIP, size: '675598', digest: D2 }] });
    const err = assertInvalid(() => validateManifest(m));
    assert.equal(err.message, 'manifest is invalid: layers[0].size: expected a non-negative integer, got string');
  });
  test('negative size', () => {
    assertInvalid(() => validateDescriptor({ mediaType: OCI_CONFIG, size: -1, digest: D1 }), /size: expected a non-negative integer, got -1/);
  });
  test('fractional and unsafe sizes', () => {
    assertInvalid(() => validateDescriptor({ mediaType: OCI_CONFIG, size: 1.5, digest: D1 }), /size: expected a non-negative integer, got 1.5/);
    assertInvalid(() => validateDescriptor({ mediaType: OCI_CONFIG, size: 2 ** 60, digest: D1 }), /no larger than 9007199254740991/);
  });
  test('missing required field', () => {
    assertInvalid(() => validateIndex(index({ manifests: [{ mediaType: OCI_MANIFEST, size: 1 }] })), /index is invalid: manifests\[0\]\.digest: missing required field/);
  });
  test('platform needs architecture and os', () => {
    const ix = index({ manifests: [{ mediaType: OCI_MANIFEST, size: 1, digest: D1, platform: { os: 'linux' } }] });
    assertInvalid(() => validateIndex(ix), /manifests\[0\]\.platform\.architecture: missing required field/);
  });
  test('uppercase sha256 hex', () => {
    assertInvalid(() => validateDescriptor({ mediaType: OCI_CONFIG, size: 1, digest: D1.toUpperCase().replace('SHA256', 'sha256') }), /digest: a sha256 digest must be 64 lowercase hex characters/);
  });
  test('sha512 length is checked', () => {
    assertInvalid(() => validateDescriptor({ mediaType: OCI_CONFIG, size: 1, digest: `sha512:${'a'.repeat(64)}` }), /sha512 digest must be 128/);
    validateDescriptor({ mediaType: OCI_CONFIG, size: 1, digest: `sha512:${'a'.repeat(128)}` });
  });
  test('bad media type', () => {
    assertInvalid(() => validateManifest(manifest({ config: { mediaType: 'invalid', size: 1, digest: D1 } })), /config\.mediaType: expected a media type like type\/subtype \(RFC 6838/);
  });
  test('media type with parameters is rejected', () => {
    assertInvalid(() => validateDescriptor({ mediaType: 'text/plain; charset=utf-8', size: 1, digest: D1 }), /mediaType/);
  });
  test('manifest mediaType must be a manifest type', () => {
    assertInvalid(() => validateManifest(manifest({ mediaType: OCI_INDEX })), /manifest is invalid: mediaType: expected "application\/vnd\.oci\.image\.manifest\.v1\+json" or/);
  });
  test('annotations must map strings to strings (odd keys are quoted in the path)', () => {
    assertInvalid(() => validateManifest(manifest({ annotations: { 'org.example.n': 1 } })), /annotations\["org\.example\.n"\]: expected a string, got number/);
  });
  test('urls must be URIs', () => {
    assertInvalid(() => validateDescriptor({ mediaType: OCI_CONFIG, size: 1, digest: D1, urls: ['value'] }), /urls\[0\]: expected an absolute URI/);
    assertInvalid(() => validateDescriptor({ mediaType: OCI_CONFIG, size: 1, digest: D1, urls: ['https://exa mple.com/'] }), /urls\[0\]/);
  });
  test('data must be padded base64 matching size and digest', () => {
    const empty = { mediaType: OCI_EMPTY, size: 2, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' };
    validateDescriptor({ ...empty, data: 'e30=' });
    assertInvalid(() => validateDescriptor({ ...empty, data: 'e30' }), /data: expected standard base64 with padding/);
    assertInvalid(() => validateDescriptor({ ...empty, data: 'e30-' }), /data: expected standard base64/);
    assertInvalid(() => validateDescriptor({ ...empty, data: 'e3t9' }), /data: decoded data is 3 bytes, but size is 2/);
    assertInvalid(() => validateDescriptor({ ...empty, data: 'W10=' }), /data: decoded data has digest sha256:4f53cda1/);
  });
  test('subject must be a descriptor', () => {
    assertInvalid(() => validateManifest(manifest({ subject: '.nope' })), /subject: expected an object, got string/);
  });
  test('zero layers', () => {
    assertInvalid(() => validateManifest(manifest({ layers: [] })), /layers: expected at least 1 entry, got none/);
  });
  test('config: Env entries must be KEY=VALUE, Volumes an object, history an array', () => {
    const base = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D1] } };
    validateConfig({ ...base, config: { Env: ['A=', 'B=x=y', 'C=multi\nline'] } });
    assertInvalid(() => validateConfig({ ...base, config: { Env: ['foo'] } }), /config\.Env\[0\]: expected a KEY=VALUE string, got "foo"/);
    assertInvalid(() => validateConfig({ ...base, config: { Env: ['=x'] } }), /KEY=VALUE/);
    assertInvalid(() => validateConfig({ ...base, config: { Volumes: ['/a'] } }), /config\.Volumes: expected an object or null, got array/);
    assertInvalid(() => validateConfig({ ...base, config: { ExposedPorts: { '80/tcp': true } } }), /config\.ExposedPorts\["80\/tcp"\]: expected an object, got boolean/);
    assertInvalid(() => validateConfig({ ...base, history: 'x' }), /history: expected an array, got string/);
    assertInvalid(() => validateConfig({ ...base, rootfs: { type: 'layerz', diff_ids: [] } }), /rootfs\.type: expected "layers", got "layerz"/);
    assertInvalid(() => validateConfig({ ...base, created: '2015-13-31T22:22:56Z' }), /created: expected an RFC 3339 date-time/);
    assertInvalid(() => validateConfig({ ...base, created: '2015-02-29T00:00:00Z' }), /created/);
    assertInvalid(() => validateConfig({ ...base, rootfs: { type: 'layers', diff_ids: ['nope'] } }), /rootfs\.diff_ids\[0\]/);
  });
  test('config: Docker-style nulls are tolerated', () => {
    validateConfig({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: null, Cmd: null, Entrypoint: null, Volumes: null, Labels: null, OnBuild: null, ExposedPorts: null, Healthcheck: { Test: ['CMD', 'true'], Interval: 30000000000 } },
      rootfs: { type: 'layers', diff_ids: [] },
      container_config: { Hostname: 'x' },
      docker_version: '24.0.0',
    });
  });
  test('several problems are listed, then counted', () => {
    const err = assertInvalid(() => validateConfig({ architecture: 1, os: 2, variant: 3, author: 4, rootfs: 5 }));
    assert.match(err.message, /^config is invalid: author: expected a string, got number; architecture: expected a string, got number; os: expected a string, got number/);
    assert.match(err.message, /\(and 2 more problems\)$/);
  });
  test('layout', () => {
    validateLayout({ imageLayoutVersion: '1.0.0' });
    assertInvalid(() => validateLayout({ imageLayoutVersion: '2.0.0' }), /imageLayoutVersion: expected "1\.0\.0", got "2\.0\.0"/);
    assertInvalid(() => validateLayout({}), /imageLayoutVersion: missing required field/);
  });
  test('formatPath', () => {
    assert.equal(formatPath(['layers', 0, 'size']), 'layers[0].size');
    assert.equal(formatPath(['manifests', 1, 'platform', 'os.version']), 'manifests[1].platform["os.version"]');
    assert.equal(formatPath([]), '');
  });
});

// ---------------------------------------------------------------------------------------------
// parseDocument
// ---------------------------------------------------------------------------------------------

describe('parseDocument', () => {
  test('kind from mediaType', () => {
    assert.equal(parseDocument(bytesOf(manifest())).kind, 'manifest');
    assert.equal(parseDocument(bytesOf(index())).kind, 'index');
  });
  test('kind from structure when mediaType is absent', () => {
    const m = manifest();
    delete m['mediaType'];
    const pm = parseDocument(bytesOf(m));
    assert.deepEqual([pm.kind, pm.mediaType], ['manifest', OCI_MANIFEST]);
    const ix = index();
    delete ix['mediaType'];
    const pi = parseDocument(bytesOf(ix));
    assert.deepEqual([pi.kind, pi.mediaType], ['index', OCI_INDEX]);
  });
  test('kind from the expected media type when the document has none', () => {
    const ix = index();
    delete ix['mediaType'];
    const p = parseDocument(bytesOf(ix), DOCKER_MANIFEST_LIST);
    assert.deepEqual([p.kind, p.mediaType], ['index', DOCKER_MANIFEST_LIST]);
  });
  test('generic content types are ignored', () => {
    assert.equal(parseDocument(bytesOf(index()), 'application/json').kind, 'index');
    assert.equal(parseDocument(bytesOf(manifest()), 'application/octet-stream').kind, 'manifest');
  });
  test('media type mismatch is rejected', () => {
    assertInvalid(() => parseDocument(bytesOf(manifest()), OCI_INDEX), /mediaType: the document says "application\/vnd\.oci\.image\.manifest\.v1\+json", but it was expected to be "application\/vnd\.oci\.image\.index\.v1\+json"/);
    assertInvalid(() => parseDocument(bytesOf(manifest()), DOCKER_MANIFEST), /expected to be/);
  });
  test('non-manifest expected media type is rejected', () => {
    assertInvalid(() => parseDocument(bytesOf(manifest()), OCI_CONFIG), /expected a manifest or index, but the media type is/);
  });
  test('unknown document mediaType is rejected', () => {
    assertInvalid(() => parseDocument(bytesOf(manifest({ mediaType: 'application/vnd.example+json' }))), /mediaType: "application\/vnd\.example\+json" is not a manifest or index media type/);
    assertInvalid(() => parseDocument(bytesOf(manifest({ mediaType: 7 }))), /mediaType: expected a media type string, got number/);
  });
  test('ambiguous documents are rejected', () => {
    assertInvalid(() => parseDocument(bytesOf({ ...manifest(), manifests: [] })), /manifests: a manifest must not have a "manifests" field/);
    assertInvalid(() => parseDocument(bytesOf({ ...index(), layers: [] })), /layers: an index must not have a "layers" field/);
    const both: Record<string, unknown> = { ...manifest(), manifests: [] };
    delete both['mediaType'];
    assertInvalid(() => parseDocument(bytesOf(both)), /ambiguous/);
  });
  test('undetectable kind', () => {
    assertInvalid(() => parseDocument(bytesOf({ schemaVersion: 2 })), /cannot tell whether this is a manifest or an index/);
  });
  test('bad JSON, non-objects, empty input, bad UTF-8', () => {
    assertInvalid(() => parseDocument(enc.encode('{"schemaVersion": 2,')), /^manifest is not valid JSON: /);
    assertInvalid(() => parseDocument(enc.encode('{'), OCI_INDEX), /^index is not valid JSON: /);
    assertInvalid(() => parseDocument(enc.encode('[1,2]')), /manifest is invalid: expected a JSON object, got array/);
    assertInvalid(() => parseDocument(enc.encode('null')), /expected a JSON object, got null/);
    assertInvalid(() => parseDocument(enc.encode('"x"')), /expected a JSON object, got string/);
    assertInvalid(() => parseDocument(new Uint8Array()), /is not valid JSON: it is empty/);
    assertInvalid(() => parseDocument(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
  });
  test('Docker schema 1 is refused', () => {
    const s1 = { schemaVersion: 1, name: 'library/busybox', tag: 'latest', architecture: 'amd64', fsLayers: [], history: [], signatures: [] };
    assertInvalid(() => parseDocument(bytesOf(s1)), /Docker schema 1 manifest, which Plinth does not support/);
    assertInvalid(() => parseDocument(bytesOf(manifest()), DOCKER_SCHEMA1_SIGNED_MANIFEST), /schema 1/);
    assertInvalid(() => parseDocument(bytesOf(manifest({ mediaType: 'application/vnd.docker.distribution.manifest.v1+json' }))), /schema 1/);
    assertInvalid(() => validateManifest(manifest({ schemaVersion: 1 })), /schemaVersion: schemaVersion 1 \(Docker schema 1\) is not supported/);
  });
  test('schemaVersion must be 2', () => {
    assertInvalid(() => parseDocument(bytesOf(manifest({ schemaVersion: 3 }))), /schemaVersion: expected the integer 2, got 3/);
    assertInvalid(() => parseDocument(bytesOf(manifest({ schemaVersion: '2' }))), /schemaVersion: expected the integer 2, got string/);
  });
  test('Docker schema 2 manifest and manifest list', () => {
    const dm = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, size: 7023, digest: D1 },
      layers: [
        { mediaType: DOCKER_LAYER_TAR_GZIP, size: 32654, digest: D2 },
        { mediaType: DOCKER_FOREIGN_LAYER, size: 1, digest: D1, urls: ['https://mcr.microsoft.com/v2/windows/blobs/x'] },
      ],
    };
    const p = parseDocument(bytesOf(dm), DOCKER_MANIFEST);
    assert.deepEqual([p.kind, p.mediaType], ['manifest', DOCKER_MANIFEST]);
    const dl = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST_LIST,
      manifests: [
        { mediaType: DOCKER_MANIFEST, size: 7143, digest: D1, platform: { architecture: 'arm', os: 'linux', variant: 'v7' } },
        { mediaType: DOCKER_MANIFEST, size: 7682, digest: D2, platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0.17763.1', 'os.features': ['win32k'] } },
      ],
    };
    const q = parseDocument(bytesOf(dl));
    assert.deepEqual([q.kind, q.mediaType], ['index', DOCKER_MANIFEST_LIST]);
  });
  test('unknown fields are kept', () => {
    const p = parseDocument(bytesOf(manifest({ 'com.example.extra': { a: 1 } })));
    assert.deepEqual((p.doc as unknown as Record<string, unknown>)['com.example.extra'], { a: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz: garbage in, PlinthError('MANIFEST_INVALID') or a result out; never anything else.
// ---------------------------------------------------------------------------------------------

const rng = mulberry32;

function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 6 : 9));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return [0, -1, 2, 1.5, 1e300, -0, 2 ** 53, 7682][Math.floor(r() * 8)];
    case 3:
      return ['', 'sha256:', D1, 'application/vnd.oci.image.manifest.v1+json', '__proto__', 'e30=', 'linux', '\u0000', 'a'.repeat(300)][Math.floor(r() * 9)];
    case 4:
      return 'x'.repeat(Math.floor(r() * 5));
    case 5:
      return Math.floor(r() * 100);
    case 6:
    case 7: {
      const keys = ['schemaVersion', 'mediaType', 'config', 'layers', 'manifests', 'size', 'digest', 'urls', 'data', 'platform', 'annotations', 'subject', 'architecture', 'os', 'rootfs', 'history', 'Env', 'diff_ids', '__proto__', 'constructor', 'toString'];
      const o: Record<string, unknown> = {};
      const n = Math.floor(r() * 6);
      for (let i = 0; i < n; i++) o[keys[Math.floor(r() * keys.length)]!] = randomValue(r, depth + 1);
      return o;
    }
    default:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  }
}

function mutate(r: () => number, v: unknown, depth = 0): unknown {
  if (r() < 0.15 || depth > 6) return randomValue(r, depth);
  if (Array.isArray(v)) return v.map((x) => mutate(r, x, depth + 1));
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (r() > 0.1) o[k] = mutate(r, x, depth + 1);
    return o;
  }
  return v;
}

function expectOnlyPlinthErrors(fn: () => unknown, label: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PlinthError) || e.code !== 'MANIFEST_INVALID') {
      assert.fail(`${label}: threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    assert.ok(e.message.length > 0 && e.message.length < 2000, `${label}: message length ${e.message.length}`);
  }
}

describe('fuzz', () => {
  test('random bytes', () => {
    const r = rng(1);
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(Math.floor(r() * 64));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(r() * 256);
      if (i % 3 === 0 && b.length > 0) b[0] = 0x7b; // start like an object
      expectOnlyPlinthErrors(() => parseDocument(b), `bytes #${i}`);
      expectOnlyPlinthErrors(() => parseDocument(b, OCI_INDEX), `bytes #${i} (index)`);
    }
  });
  test('truncated valid documents', () => {
    const text = JSON.stringify(manifest({ annotations: { a: 'b' }, subject: { mediaType: OCI_MANIFEST, size: 1, digest: D1 } }));
    for (let i = 0; i <= text.length; i++) expectOnlyPlinthErrors(() => parseDocument(enc.encode(text.slice(0, i))), `truncated at ${i}`);
  });
  test('random and mutated JSON values through every validator', () => {
    const r = rng(42);
    const seeds: unknown[] = [
      manifest(),
      index(),
      { architecture: 'amd64', os: 'linux', config: { Env: ['A=b'], Volumes: { '/v': {} } }, rootfs: { type: 'layers', diff_ids: [D1] }, history: [{ created: '2015-10-31T22:22:56Z' }] },
      { mediaType: OCI_EMPTY, size: 2, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', data: 'e30=' },
      { imageLayoutVersion: '1.0.0' },
    ];
    const validators: Array<[string, (d: unknown) => unknown]> = [
      ['manifest', validateManifest],
      ['index', validateIndex],
      ['config', validateConfig],
      ['descriptor', validateDescriptor],
      ['layout', validateLayout],
      ['parseDocument', (d) => parseDocument(enc.encode(JSON.stringify(d) ?? 'undefined'))],
    ];
    for (let i = 0; i < 3000; i++) {
      const v = i % 2 === 0 ? randomValue(r, 0) : mutate(r, seeds[i % seeds.length]);
      for (const [name, fn] of validators) expectOnlyPlinthErrors(() => fn(v), `${name} #${i} ${JSON.stringify(v)?.slice(0, 200)}`);
    }
    // Values JSON cannot produce must not crash either.
    for (const weird of [undefined, () => 1, Symbol('s'), 10n, new Map(), Object.create(null), new Date(0), new Uint8Array(2)]) {
      for (const [name, fn] of validators.slice(0, 5)) expectOnlyPlinthErrors(() => fn(weird), `${name} ${String(typeof weird)}`);
    }
  });
  test('deeply nested JSON', () => {
    const deep = '['.repeat(100000) + ']'.repeat(100000);
    expectOnlyPlinthErrors(() => parseDocument(enc.encode(deep)), 'deep arrays');
    const deepObj = '{"manifests":'.repeat(5000) + '[]' + '}'.repeat(5000);
    expectOnlyPlinthErrors(() => parseDocument(enc.encode(deepObj)), 'deep objects');
  });
});

// ---------------------------------------------------------------------------------------------
// Media types
// ---------------------------------------------------------------------------------------------

describe('media types', () => {
  test('classification', () => {
    assert.ok(isIndexMediaType(OCI_INDEX) && isIndexMediaType(DOCKER_MANIFEST_LIST));
    assert.ok(!isIndexMediaType(OCI_MANIFEST) && !isIndexMediaType(undefined));
    assert.ok(isManifestMediaType(OCI_MANIFEST) && isManifestMediaType(DOCKER_MANIFEST));
    assert.ok(!isManifestMediaType(DOCKER_SCHEMA1_SIGNED_MANIFEST));
    assert.ok(isLayerMediaType(OCI_LAYER_TAR_ZSTD) && isLayerMediaType(DOCKER_FOREIGN_LAYER) && isLayerMediaType(OCI_LAYER_NONDIST_TAR_ZSTD));
    assert.ok(!isLayerMediaType(OCI_CONFIG) && !isLayerMediaType(OCI_EMPTY));
  });
  test('layerCompression', () => {
    assert.equal(layerCompression(OCI_LAYER_TAR), 'none');
    assert.equal(layerCompression(OCI_LAYER_TAR_GZIP), 'gzip');
    assert.equal(layerCompression(OCI_LAYER_TAR_ZSTD), 'zstd');
    assert.equal(layerCompression(DOCKER_LAYER_TAR_GZIP), 'gzip');
    assert.equal(layerCompression(DOCKER_FOREIGN_LAYER), 'gzip');
    assert.equal(layerCompression(OCI_LAYER_NONDIST_TAR_ZSTD), 'zstd');
    assert.equal(layerCompression('application/vnd.example.data.v1.tar+gzip'), 'gzip');
    assert.equal(layerCompression('application/vnd.example+type'), 'unknown');
    assert.equal(layerCompression(OCI_CONFIG), 'unknown');
  });
});

// ---------------------------------------------------------------------------------------------
// Platforms
// ---------------------------------------------------------------------------------------------

describe('platforms', () => {
  test('parsePlatform / formatPlatform', () => {
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parsePlatform(' Linux/AMD64 '), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parsePlatform('windows(10.0.17763.1)/amd64'), { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' });
    for (const s of ['linux/arm64/v8', 'linux/amd64', 'windows(10.0.17763)/amd64', 'linux/arm/v7']) assert.equal(formatPlatform(parsePlatform(s)), s);
  });
  test('parsePlatform rejects malformed input with USAGE', () => {
    for (const s of ['', 'linux', 'linux/', '/amd64', 'linux/amd64/v8/x', 'linux/amd 64', 'linux()/amd64', 'a/b/']) {
      assert.throws(() => parsePlatform(s), (e: unknown) => e instanceof PlinthError && e.code === 'USAGE', s);
    }
  });
  test('normalizePlatform (containerd rules)', () => {
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'aarch64' }), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'x86_64' }), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'amd64', variant: 'v1' }), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'armhf' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'armel' }), { os: 'linux', architecture: 'arm', variant: 'v6' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'i386' }), { os: 'linux', architecture: '386' });
  });
  test('platformMatches', () => {
    const p = parsePlatform;
    assert.ok(platformMatches(p('linux/arm64'), p('linux/arm64/v8')));
    assert.ok(platformMatches(p('linux/arm64/v8'), p('linux/arm64')));
    assert.ok(platformMatches(p('linux/aarch64'), p('linux/arm64/v8')));
    assert.ok(platformMatches(p('linux/amd64'), p('linux/amd64/v1')));
    assert.ok(platformMatches(p('linux/x86_64'), p('linux/amd64')));
    assert.ok(platformMatches(p('linux/armhf'), p('linux/arm/v7')));
    assert.ok(platformMatches(p('linux/arm'), p('linux/arm/v7')));
    assert.ok(platformMatches(p('linux/armel'), p('linux/arm/v6')));
    assert.ok(!platformMatches(p('linux/amd64'), p('linux/amd64/v3')));
    assert.ok(!platformMatches(p('linux/arm/v7'), p('linux/arm/v6')));
    assert.ok(!platformMatches(p('linux/amd64'), p('linux/arm64')));
    assert.ok(!platformMatches(p('linux/amd64'), p('windows/amd64')));
    assert.ok(platformMatches(p('windows/amd64'), { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' }));
    assert.ok(!platformMatches(p('windows(10.0.20348.1)/amd64'), { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' }));
  });
  test('hostPlatform maps process.arch to GOARCH', () => {
    const h = hostPlatform();
    const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', riscv64: 'riscv64' };
    if (expected[process.arch]) assert.equal(h.architecture, expected[process.arch]);
    if (process.arch === 'arm64') assert.equal(h.variant, 'v8');
    assert.equal(h.os, process.platform === 'win32' ? 'windows' : 'linux');
    assert.ok(platformMatches(h, h));
    assert.match(formatPlatform(h), /^[a-z]+\/[a-z0-9]+(\/v\d+)?$/);
  });
});
