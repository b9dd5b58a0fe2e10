/**
 * The advisory store as an OCI artifact, so a mirror of advisories is a `docker pull` away in
 * air-gapped setups (as Trivy distributes its database):
 *
 *   manifest  application/vnd.oci.image.manifest.v1+json
 *             artifactType  application/vnd.plinth.vulndb.v1
 *             config        the empty descriptor (application/vnd.oci.empty.v1+json, `{}`)
 *             layers[0]     application/vnd.plinth.vulndb.v1.sqlite+gzip — the database,
 *                           VACUUMed into a single self-contained file, gzip'd
 *             annotations   org.opencontainers.image.created, dev.plinth.vulndb.* counts
 *
 * pullDb verifies every digest (the registry client does), refuses other artifact types, writes
 * to a temporary file next to the destination, checks that it is a Plinth database of this
 * schema version that passes SQLite's quick_check, and only then renames it over the
 * destination: the database that was there is never lost on a failure.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { digestOf, HashingStream, LimitStream } from '../oci/digest.js';
import { OCI_EMPTY, OCI_EMPTY_DIGEST, OCI_EMPTY_SIZE, OCI_MANIFEST, baseMediaType, isIndexMediaType } from '../oci/mediatypes.js';
import { parseImageReference, type ImageReference } from '../oci/reference.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { describeError, PlinthError } from '../util/errors.js';
import { openSqlite, pragma, type DatabaseSync } from '../util/sqlite.js';
import { checkSchema, SCHEMA_VERSION } from './store.js';

export const VULNDB_ARTIFACT_TYPE = 'application/vnd.plinth.vulndb.v1';
export const VULNDB_LAYER_MEDIA_TYPE = 'application/vnd.plinth.vulndb.v1.sqlite+gzip';
export const ANNOTATION_PREFIX = 'dev.plinth.vulndb.';

export interface PushResult {
  /** `registry/repository@sha256:…` */
  reference: string;
  digest: string;
  /** Bytes of the gzip'd layer. */
  layerSize: number;
  layerDigest: string;
  annotations: Record<string, string>;
}

export interface PullResult {
  path: string;
  digest: string;
  layerSize: number;
  annotations: Record<string, string>;
}

export interface PullOptions {
  /** Refuse a database that unpacks to more than this. Default 8 GiB. */
  maxBytes?: number;
}


function ref(input: string): ImageReference {
  return parseImageReference(input.replace(/^docker:\/\//, ''));
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Counts for the annotations, read from a database file. */
function describeDb(db: DatabaseSync): Record<string, string> {
  const adv = (db.prepare('SELECT COUNT(*) AS n FROM advisories').get() as { n: number }).n;
  const aff = (db.prepare('SELECT COUNT(*) AS n FROM affected').get() as { n: number }).n;
  const per = db.prepare('SELECT ecosystem, COUNT(*) AS n FROM advisories GROUP BY ecosystem ORDER BY ecosystem').all() as Array<{ ecosystem: string; n: number }>;
  return {
    [`${ANNOTATION_PREFIX}schema-version`]: String(SCHEMA_VERSION),
    [`${ANNOTATION_PREFIX}advisories`]: String(adv),
    [`${ANNOTATION_PREFIX}affected`]: String(aff),
    [`${ANNOTATION_PREFIX}ecosystems`]: per.map((e) => `${e.ecosystem}=${e.n}`).join(','),
  };
}

/**
 * Push the database at `storePath` to `reference` (a tag, e.g. `registry.example.com/sec/vulndb:1`).
 * The pushed copy is `VACUUM INTO` a temporary file (compact, no WAL), gzip'd and uploaded.
 */
export async function pushDb(storePath: string, reference: string, registryOptions: RegistryOptions = {}): Promise<PushResult> {
  const r = ref(reference);
  const src = resolve(storePath);
  if (!existsSync(src)) throw new PlinthError('IO', `no vulnerability database at ${src}`);
  const work = await mkdtemp(join(tmpdir(), 'plinth-vulndb-push-'));
  const client = new RegistryClient(r.registry, registryOptions);
  try {
    const copy = join(work, 'vuln.db');
    let annotations: Record<string, string>;
    let db: DatabaseSync;
    try {
      db = openSqlite(src, { readonly: true });
    } catch (e) {
      throw new PlinthError('IO', `cannot open vulnerability database ${src}: ${describeError(e)}`);
    }
    try {
      checkSchema(db, src, false);
      annotations = describeDb(db);
      db.exec(`VACUUM INTO ${sqlString(copy)}`);
    } catch (e) {
      if (e instanceof PlinthError) throw e;
      throw new PlinthError('IO', `cannot copy vulnerability database ${src}: ${describeError(e)}`);
    } finally {
      db.close();
    }
    const c = openSqlite(copy, { mustExist: true });
    try {
      pragma(c, 'journal_mode = DELETE');
    } finally {
      c.close();
    }
    const sqliteSize = statSync(copy).size;

    const gz = join(work, 'vuln.db.gz');
    const h = new HashingStream();
    await pipeline(createReadStream(copy), createGzip({ level: 9 }), h, createWriteStream(gz));
    const layer = { digest: h.digest(), size: h.n };

    const repo = r.repository;
    const pushScope = [`repository:${repo}:pull,push`];
    if ((await client.blobExists(repo, OCI_EMPTY_DIGEST, pushScope)) === undefined) {
      const empty = Buffer.from('{}');
      await client.uploadBlob(repo, { digest: OCI_EMPTY_DIGEST, size: OCI_EMPTY_SIZE }, async () => Readable.from([empty]));
    }
    if ((await client.blobExists(repo, layer.digest, pushScope)) === undefined) {
      await client.uploadBlob(repo, layer, async () => createReadStream(gz));
    }
    const allAnnotations = { 'org.opencontainers.image.created': new Date().toISOString(), ...annotations };
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: VULNDB_ARTIFACT_TYPE,
      config: { mediaType: OCI_EMPTY, digest: OCI_EMPTY_DIGEST, size: OCI_EMPTY_SIZE, data: 'e30=' },
      layers: [
        {
          mediaType: VULNDB_LAYER_MEDIA_TYPE,
          digest: layer.digest,
          size: layer.size,
          annotations: { 'org.opencontainers.image.title': 'vuln.db.gz', [`${ANNOTATION_PREFIX}uncompressed-size`]: String(sqliteSize) },
        },
      ],
      annotations: allAnnotations,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = digestOf(bytes);
    if (r.digest && r.digest !== digest) {
      throw new PlinthError('DIGEST_MISMATCH', `${reference} names digest ${r.digest}, but the database manifest is ${digest}; push to a tag`);
    }
    const target = r.tagDefaulted && r.digest ? digest : (r.tag ?? digest);
    await client.putManifest(repo, target, bytes, OCI_MANIFEST);
    return { reference: `${r.name}@${digest}`, digest, layerSize: layer.size, layerDigest: layer.digest, annotations: allAnnotations };
  } finally {
    client.close();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Pull the database at `reference` into `destPath` (see the module comment for the checks).
 * Throws PlinthError; on any failure the file at destPath is untouched.
 */
export async function pullDb(reference: string, destPath: string, registryOptions: RegistryOptions = {}, opts: PullOptions = {}): Promise<PullResult> {
  const r = ref(reference);
  const dest = resolve(destPath);
  const client = new RegistryClient(r.registry, registryOptions);
  const tmp = join(dirname(dest), `.${basename(dest)}.pull-${randomBytes(6).toString('hex')}.tmp`);
  try {
    const m = await client.getManifest(r.repository, r.digest ?? r.tag ?? 'latest');
    if (isIndexMediaType(m.mediaType)) {
      throw new PlinthError('MANIFEST_INVALID', `${reference} is an image index, not a Plinth vulnerability database (artifactType ${VULNDB_ARTIFACT_TYPE})`);
    }
    let doc: { mediaType?: string; artifactType?: string; config?: { mediaType?: string }; layers?: Array<{ mediaType?: string; digest?: string; size?: number }>; annotations?: Record<string, string> };
    try {
      doc = JSON.parse(m.bytes.toString('utf8')) as typeof doc;
    } catch {
      throw new PlinthError('MANIFEST_INVALID', `${reference}: the manifest is not valid JSON`);
    }
    if (doc.mediaType && baseMediaType(doc.mediaType) !== OCI_MANIFEST) {
      throw new PlinthError('MANIFEST_INVALID', `${reference} is a ${doc.mediaType}, not a Plinth vulnerability database (an OCI manifest with artifactType ${VULNDB_ARTIFACT_TYPE})`);
    }
    const artifactType = doc.artifactType ?? (doc.config?.mediaType !== OCI_EMPTY ? doc.config?.mediaType : undefined);
    if (artifactType !== VULNDB_ARTIFACT_TYPE) {
      throw new PlinthError(
        'MANIFEST_INVALID',
        `${reference} is not a Plinth vulnerability database: its artifactType is ${artifactType ? `"${artifactType}"` : 'not set'} (expected ${VULNDB_ARTIFACT_TYPE})`,
      );
    }
    const layers = (doc.layers ?? []).filter((l) => l.mediaType === VULNDB_LAYER_MEDIA_TYPE);
    if (layers.length !== 1 || typeof layers[0]!.digest !== 'string' || typeof layers[0]!.size !== 'number') {
      throw new PlinthError('MANIFEST_INVALID', `${reference}: expected exactly one ${VULNDB_LAYER_MEDIA_TYPE} layer, found ${layers.length}`);
    }
    const layer = layers[0] as { digest: string; size: number };
    mkdirSync(dirname(dest), { recursive: true });
    const max = opts.maxBytes ?? 8 * 1024 * 1024 * 1024;
    const limit = new LimitStream(max, (m) => `${reference} unpacks to more than the ${m}-byte limit`);
    try {
      const blob = await client.getBlob(r.repository, layer.digest, layer.size);
      await pipeline(blob, createGunzip(), limit, createWriteStream(tmp, { mode: 0o644 }));
    } catch (e) {
      if (e instanceof PlinthError) throw e;
      throw new PlinthError('IO', `cannot unpack the database layer of ${reference}: ${describeError(e)}`, undefined, { cause: e });
    }
    let db: DatabaseSync | undefined;
    try {
      db = openSqlite(tmp, { readonly: true });
      checkSchema(db, `the database in ${reference}`, false);
      const qc = pragma(db, 'quick_check');
      if (qc !== 'ok') throw new PlinthError('IO', `the database in ${reference} fails SQLite's quick_check: ${String(qc)}`);
    } catch (e) {
      if (e instanceof PlinthError) throw e;
      throw new PlinthError('IO', `the database in ${reference} does not open: ${describeError(e)}`, undefined, { cause: e });
    } finally {
      db?.close();
    }
    await replaceDatabase(tmp, dest);
    return { path: dest, digest: m.digest, layerSize: layer.size, annotations: doc.annotations ?? {} };
  } finally {
    client.close();
    await rm(tmp, { force: true });
  }
}

/**
 * Move a complete database file over `dest`. A WAL left next to `dest` would be replayed into
 * the new file, so the old database is checkpointed and closed first, and a WAL that will not go
 * away (someone else has the database open) stops the replacement.
 */
async function replaceDatabase(tmp: string, dest: string): Promise<void> {
  if (existsSync(dest)) {
    try {
      const old = openSqlite(dest, { mustExist: true });
      try {
        pragma(old, 'wal_checkpoint(TRUNCATE)');
      } finally {
        old.close();
      }
    } catch {
      // Not a database (or unreadable): it is replaced as it is.
    }
  }
  const wal = `${dest}-wal`;
  if (existsSync(wal) && statSync(wal).size > 0) {
    throw new PlinthError('IO', `${dest} is in use (its write-ahead log ${wal} is not empty); close whatever has it open and pull again`);
  }
  await rm(wal, { force: true });
  await rm(`${dest}-shm`, { force: true });
  await rename(tmp, dest);
}
