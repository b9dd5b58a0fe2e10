/**
 * Self-test of the test helpers: real distribution registries (none / basic / token auth),
 * the token server (checked with plain fetch and with skopeo as an independent client),
 * the fault proxy, and cleanup. Everything on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { makeTestImage, pushBlob, pushImage, sha256, writeOciLayout, type TestImage } from './helpers/image.js';
import { freePort, sleep, startFaultProxy, startRegistry, tempDir, type TestRegistry } from './helpers/registry.js';

const execFileP = promisify(execFile);

/** Run a real client; async so that the in-process token server can answer it. */
async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
  }
}

function basicHeader(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

function decodeJwt(token: string): { header: Record<string, any>; claims: Record<string, any> } {
  const [h, c] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString('utf8')),
    claims: JSON.parse(Buffer.from(c!, 'base64url').toString('utf8')),
  };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** True if `pid` exists and is not a zombie (a killed child nobody has reaped yet). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Wait (without a deadline of its own: the test runner's timeout applies) until `pid` is gone. */
async function waitGone(pid: number): Promise<void> {
  while (processAlive(pid)) await sleep(50);
}

const registryModule = new URL('./helpers/registry.js', import.meta.url).href;

/** Run a node script (ESM) that starts a registry and prints `{pid, dir}` as its first line. */
function startChildScript(body: string): { child: ChildProcess; info: Promise<{ pid: number; dir: string }> } {
  const script = `import { startRegistry } from ${JSON.stringify(registryModule)};\n${body}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = new Promise<{ pid: number; dir: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before reporting; output: ${out}`)));
  });
  return { child, info };
}

let image: TestImage;
before(async () => {
  image = await makeTestImage('helpers self-test');
});

describe('utilities', () => {
  it('freePort hands out distinct bindable ports', async () => {
    const a = await freePort();
    const b = await freePort();
    assert.notEqual(a, b);
    assert.ok(await portIsFree(a));
  });

  it('tempDir creates and removes a directory', async () => {
    const d = await tempDir('self test');
    assert.ok(existsSync(d.path));
    assert.match(d.path, /plinth-self-test-/);
    await d.remove();
    assert.ok(!existsSync(d.path));
    await d.remove(); // idempotent
  });
});

describe('registry without auth', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg.stop());

  it('answers 200 on /v2/', async () => {
    assert.match(reg.host, /^127\.0\.0\.1:\d+$/);
    assert.equal(reg.url, `http://${reg.host}`);
    const res = await fetch(`${reg.url}/v2/`);
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it('stores a pushed image and serves it back', async () => {
    await pushImage(reg, 'test/plain', 'v1', image);
    const res = await fetch(`${reg.url}/v2/test/plain/manifests/v1`, { headers: { accept: image.manifest.mediaType } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), image.manifest.digest);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data);
  });

  it('has deletes enabled', async () => {
    const res = await fetch(`${reg.url}/v2/test/plain/manifests/${image.manifest.digest}`, { method: 'DELETE' });
    await res.arrayBuffer();
    assert.equal(res.status, 202);
  });
});

describe('registry with basic auth', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth: 'basic', username: 'alice', password: 'wonderland' });
  });
  after(() => reg.stop());

  it('answers 401 without credentials and 200 with them', async () => {
    const anon = await fetch(`${reg.url}/v2/`);
    await anon.arrayBuffer();
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get('www-authenticate'), 'Basic realm="plinth-test"');

    const wrong = await fetch(`${reg.url}/v2/`, { headers: { authorization: basicHeader('alice', 'nope') } });
    await wrong.arrayBuffer();
    assert.equal(wrong.status, 401);

    const ok = await fetch(`${reg.url}/v2/`, { headers: { authorization: basicHeader('alice', 'wonderland') } });
    await ok.arrayBuffer();
    assert.equal(ok.status, 200);
    assert.equal(reg.username, 'alice');
    assert.equal(reg.password, 'wonderland');
  });

  it('lets skopeo authenticate (inspect, list-tags)', async () => {
    await pushImage(reg, 'test/basic', 'v1', image);
    const out = JSON.parse(await run('skopeo', ['inspect', '--tls-verify=false', '--creds', 'alice:wonderland', `docker://${reg.host}/test/basic:v1`]));
    assert.equal(out.Digest, image.manifest.digest);
    const tags = JSON.parse(await run('skopeo', ['list-tags', '--tls-verify=false', '--creds', 'alice:wonderland', `docker://${reg.host}/test/basic`]));
    assert.deepEqual(tags.Tags, ['v1']);
    await assert.rejects(
      run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', 'alice:bad', `docker://${reg.host}/test/basic:v1`]),
      /unauthorized|authentication required|401/i,
    );
  });
});

describe('registry with token auth', () => {
  let reg: TestRegistry;
  let layout: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    reg = await startRegistry({ auth: 'token' });
    layout = await tempDir('layout');
    await writeOciLayout(layout.path, image, 'v1');
  });
  after(async () => {
    await reg.stop();
    await layout.remove();
  });

  it('challenges with a Bearer realm and the service', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    await res.arrayBuffer();
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="plinth-test"/);
    assert.ok(challenge.includes(`realm="${reg.tokenServer!.realm}"`));
  });

  it('issues a pull,push token that allows a monolithic blob upload', async () => {
    reg.tokenRequests.length = 0;
    const q = new URLSearchParams({ service: 'plinth-test', scope: 'repository:test/a:pull,push' });
    const tr = await fetch(`${reg.tokenServer!.realm}?${q}`, { headers: { authorization: basicHeader(reg.username!, reg.password!) } });
    assert.equal(tr.status, 200);
    const body = (await tr.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    assert.equal(body.token, body.access_token);
    assert.equal(body.expires_in, 300);
    assert.ok(!Number.isNaN(Date.parse(body.issued_at)));
    const { header, claims } = decodeJwt(body.token);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.x5c.length, 1);
    assert.equal(claims.iss, 'plinth-test-issuer');
    assert.equal(claims.aud, 'plinth-test');
    assert.equal(claims.sub, reg.username);
    assert.deepEqual(claims.access, [{ type: 'repository', name: 'test/a', actions: ['pull', 'push'] }]);
    assert.deepEqual(reg.tokenRequests, [
      { method: 'GET', scopes: ['repository:test/a:pull,push'], service: 'plinth-test', offline: false, status: 200, user: reg.username },
    ]);

    const auth = { authorization: `Bearer ${body.token}` };
    const blob = { data: Buffer.from('a blob pushed with a bearer token'), digest: '' };
    blob.digest = sha256(blob.data);
    await pushBlob(reg, 'test/a', blob, auth);
    const head = await fetch(`${reg.url}/v2/test/a/blobs/${blob.digest}`, { method: 'HEAD', headers: auth });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), blob.digest);
    assert.equal(head.headers.get('content-length'), String(blob.data.length));
  });

  it('gives anonymous clients pull only, and refuses bad credentials', async () => {
    const q = new URLSearchParams({ service: 'plinth-test', scope: 'repository:test/a:pull,push' });
    const anon = await fetch(`${reg.tokenServer!.realm}?${q}`);
    assert.equal(anon.status, 200);
    const { token } = (await anon.json()) as { token: string };
    assert.deepEqual(decodeJwt(token).claims.access, [{ type: 'repository', name: 'test/a', actions: ['pull'] }]);
    const push = await fetch(`${reg.url}/v2/test/a/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    await push.arrayBuffer();
    assert.equal(push.status, 401);
    assert.match(push.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);

    const bad = await fetch(`${reg.tokenServer!.realm}?${q}`, { headers: { authorization: basicHeader(reg.username!, 'wrong') } });
    await bad.arrayBuffer();
    assert.equal(bad.status, 401);
    assert.equal(reg.tokenRequests.at(-1)!.status, 401);
    assert.equal(reg.tokenRequests.at(-1)!.user, undefined);
  });

  it('supports the OAuth2 POST flow with refresh tokens', async () => {
    const realm = reg.tokenServer!.realm;
    const form = (fields: Record<string, string>) =>
      fetch(realm, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

    const first = await form({
      grant_type: 'password',
      username: reg.username!,
      password: reg.password!,
      service: 'plinth-test',
      scope: 'repository:test/oauth:pull,push',
      client_id: 'plinth-tests',
      access_type: 'offline',
    });
    assert.equal(first.status, 200);
    const a = (await first.json()) as { access_token: string; refresh_token?: string; expires_in: number };
    assert.ok(a.refresh_token);
    assert.equal(a.expires_in, 300);

    const second = await form({ grant_type: 'refresh_token', refresh_token: a.refresh_token!, service: 'plinth-test', scope: 'repository:test/oauth:pull' });
    assert.equal(second.status, 200);
    const b = (await second.json()) as { access_token: string };
    assert.deepEqual(decodeJwt(b.access_token).claims.access, [{ type: 'repository', name: 'test/oauth', actions: ['pull'] }]);
    const list = await fetch(`${reg.url}/v2/test/oauth/tags/list`, { headers: { authorization: `Bearer ${b.access_token}` } });
    await list.arrayBuffer();
    assert.equal(list.status, 404); // authorized; the repository just does not exist

    assert.equal((await form({ grant_type: 'refresh_token', refresh_token: 'made-up' })).status, 401);
    assert.equal((await form({ grant_type: 'password', username: reg.username!, password: 'wrong' })).status, 401);
    const posts = reg.tokenRequests.filter((r) => r.method === 'POST');
    assert.deepEqual(
      posts.map((r) => [r.grantType, r.status, r.user]),
      [
        ['password', 200, reg.username],
        ['refresh_token', 200, reg.username],
        ['refresh_token', 401, undefined],
        ['password', 401, undefined],
      ],
    );

    // GET with offline_token=true also hands out a refresh token.
    const q = new URLSearchParams({ service: 'plinth-test', scope: 'repository:test/oauth:pull', offline_token: 'true' });
    const g = await fetch(`${realm}?${q}`, { headers: { authorization: basicHeader(reg.username!, reg.password!) } });
    assert.ok(((await g.json()) as { refresh_token?: string }).refresh_token);
  });

  it('is rejected by the registry once expired', async () => {
    const expired = reg.tokenServer!.mint(reg.username, [{ type: 'repository', name: 'test/a', actions: ['pull'] }], -1);
    const res = await fetch(`${reg.url}/v2/test/a/tags/list`, { headers: { authorization: `Bearer ${expired}` } });
    await res.arrayBuffer();
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  it('lets skopeo push, inspect and list tags (proves the token server is right)', async () => {
    reg.tokenRequests.length = 0;
    const creds = `${reg.username}:${reg.password}`;
    await run('skopeo', ['--insecure-policy', 'copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout.path}:v1`, `docker://${reg.host}/test/skopeo:v1`]);
    const out = JSON.parse(await run('skopeo', ['inspect', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/test/skopeo:v1`]));
    assert.equal(out.Digest, image.manifest.digest);
    assert.deepEqual(out.Layers, [image.layers[0]!.digest]);
    const tags = JSON.parse(await run('skopeo', ['list-tags', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/test/skopeo`]));
    assert.deepEqual(tags.Tags, ['v1']);

    assert.ok(reg.tokenRequests.length > 0);
    assert.ok(reg.tokenRequests.every((r) => r.user === reg.username && r.status === 200));
    assert.ok(reg.tokenRequests.some((r) => r.scopes.includes('repository:test/skopeo:pull,push')));
    assert.ok(reg.tokenRequests.some((r) => r.scopes.includes('repository:test/skopeo:pull')));
  });
});

describe('token lifetime', () => {
  it('a short-lived token stops working after tokenExpiresIn', async () => {
    const reg = await startRegistry({ auth: 'token', tokenExpiresIn: 2 });
    try {
      const authorization = (await reg.authHeaders(['repository:test/a:pull'])).Authorization!;
      assert.deepEqual(reg.tokenRequests, []); // the helper's own token fetches are not recorded
      const { claims } = decodeJwt(authorization.slice('Bearer '.length));
      // distribution adds 60 s of leeway to exp; the helper moves exp back to compensate.
      assert.equal(claims.exp - claims.iat, 2 - 60);
      await sleep(3500);
      const res = await fetch(`${reg.url}/v2/test/a/tags/list`, { headers: { authorization } });
      await res.arrayBuffer();
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    } finally {
      await reg.stop();
    }
  });

  it('anonymousPull: false gives anonymous clients no access', async () => {
    const reg = await startRegistry({ auth: 'token', anonymousPull: false, tokenAlg: 'RS256' });
    try {
      const q = new URLSearchParams({ service: 'plinth-test', scope: 'repository:test/a:pull' });
      const res = await fetch(`${reg.tokenServer!.realm}?${q}`);
      const { token } = (await res.json()) as { token: string };
      const { header, claims } = decodeJwt(token);
      assert.equal(header.alg, 'RS256');
      assert.deepEqual(claims.access, []);
      const list = await fetch(`${reg.url}/v2/test/a/tags/list`, { headers: { authorization: `Bearer ${token}` } });
      await list.arrayBuffer();
      assert.equal(list.status, 401);
      // An RS256 token with access is accepted.
      const h = await reg.authHeaders(['repository:test/a:pull']);
      const ok = await fetch(`${reg.url}/v2/test/a/tags/list`, { headers: h });
      await ok.arrayBuffer();
      assert.equal(ok.status, 404);
    } finally {
      await reg.stop();
    }
  });
});

describe('fault proxy', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
    await pushImage(reg, 'test/faults', 'v1', image);
  });
  after(() => reg.stop());

  it('forwards transparently and rewrites Location to the proxy', async () => {
    const proxy = await startFaultProxy(reg.url, []);
    try {
      const res = await fetch(`${proxy.url}/v2/test/faults/manifests/v1`, { headers: { accept: image.manifest.mediaType } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), image.manifest.digest);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data);

      const blob = { data: Buffer.from('uploaded through the proxy'), digest: '' };
      blob.digest = sha256(blob.data);
      const start = await fetch(`${proxy.url}/v2/test/faults/blobs/uploads/`, { method: 'POST' });
      await start.arrayBuffer();
      assert.equal(start.status, 202);
      assert.ok(start.headers.get('location')!.startsWith(`${proxy.url}/v2/test/faults/blobs/uploads/`));
      await pushBlob({ url: proxy.url, authHeaders: async () => ({}) }, 'test/faults', blob);
      const head = await fetch(`${reg.url}/v2/test/faults/blobs/${blob.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.deepEqual(
        proxy.requests.map((r) => r.method),
        ['GET', 'POST', 'POST', 'PUT'],
      );
      assert.ok(proxy.requests.every((r) => r.fault === undefined));
    } finally {
      await proxy.stop();
    }
  });

  it('injects a 503 with Retry-After exactly `times` times', async () => {
    const proxy = await startFaultProxy(reg.url, [{ match: /^\/v2\/$/, method: 'GET', times: 2, action: { status: 503, retryAfter: '7' } }]);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${proxy.url}/v2/`);
        await res.arrayBuffer();
        statuses.push(res.status);
        if (res.status === 503) assert.equal(res.headers.get('retry-after'), '7');
        else assert.equal(res.headers.get('retry-after'), null);
      }
      assert.deepEqual(statuses, [503, 503, 200, 200]);
      assert.equal(proxy.fired(0), 2);
      assert.deepEqual(
        proxy.requests.map((r) => [r.path, r.fault, r.status]),
        [
          ['/v2/', 0, 503],
          ['/v2/', 0, 503],
          ['/v2/', undefined, 200],
          ['/v2/', undefined, 200],
        ],
      );
    } finally {
      await proxy.stop();
    }
  });

  it('corrupts one byte of a body but keeps the headers', async () => {
    const layer = image.layers[0]!;
    const proxy = await startFaultProxy(reg.url, [{ match: /\/blobs\/sha256:/, times: 1, action: { corrupt: 'body' } }]);
    try {
      // HEAD does not use up a body fault.
      const head = await fetch(`${proxy.url}/v2/test/faults/blobs/${layer.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(proxy.fired(0), 0);

      const bad = await fetch(`${proxy.url}/v2/test/faults/blobs/${layer.digest}`);
      assert.equal(bad.status, 200);
      assert.equal(bad.headers.get('content-length'), String(layer.size));
      assert.equal(bad.headers.get('docker-content-digest'), layer.digest);
      const badBytes = Buffer.from(await bad.arrayBuffer());
      assert.equal(badBytes.length, layer.size);
      assert.notDeepEqual(badBytes, layer.data);
      assert.notEqual(sha256(badBytes), layer.digest);
      let diffs = 0;
      for (let i = 0; i < badBytes.length; i++) if (badBytes[i] !== layer.data[i]) diffs++;
      assert.equal(diffs, 1);

      const good = await fetch(`${proxy.url}/v2/test/faults/blobs/${layer.digest}`);
      assert.deepEqual(Buffer.from(await good.arrayBuffer()), layer.data);
      assert.equal(proxy.fired(0), 1);
    } finally {
      await proxy.stop();
    }
  });

  it('truncates a body and drops the connection', async () => {
    const layer = image.layers[0]!;
    const proxy = await startFaultProxy(reg.url, [{ match: /\/blobs\//, method: 'GET', times: 1, action: { truncate: 10 } }]);
    try {
      const res = await fetch(`${proxy.url}/v2/test/faults/blobs/${layer.digest}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), String(layer.size));
      await assert.rejects(res.arrayBuffer());
      const again = await fetch(`${proxy.url}/v2/test/faults/blobs/${layer.digest}`);
      assert.deepEqual(Buffer.from(await again.arrayBuffer()), layer.data);
    } finally {
      await proxy.stop();
    }
  });

  it('delays and then forwards', async () => {
    const proxy = await startFaultProxy(reg.url, [{ match: /^\/v2\/$/, times: 1, action: { delayMs: 50 } }]);
    try {
      const res = await fetch(`${proxy.url}/v2/`);
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      assert.equal(proxy.requests[0]!.fault, 0);
    } finally {
      await proxy.stop();
    }
  });

  it('rewrites a WWW-Authenticate realm that points at the target, and only that', async () => {
    // A stand-in upstream whose token realm is on its own host (like a registry serving /token itself).
    const upstream = createHttpServer((req, res) => {
      const self = `http://${req.headers.host}`;
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="${self}/token",service="self"`,
        location: `${self}/elsewhere`,
        'x-other': `${self}/kept`,
      });
      res.end();
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const proxy = await startFaultProxy(upstreamUrl, []);
    try {
      const res = await fetch(`${proxy.url}/v2/`, { redirect: 'manual' });
      await res.arrayBuffer();
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${proxy.url}/token",service="self"`);
      assert.equal(res.headers.get('location'), `${proxy.url}/elsewhere`);
      assert.equal(res.headers.get('x-other'), `${upstreamUrl}/kept`);

      // A token registry's realm is the token server, a different host: left alone.
      const treg = await startRegistry({ auth: 'token' });
      const rproxy = await startFaultProxy(treg.url, []);
      try {
        const r2 = await fetch(`${rproxy.url}/v2/`);
        await r2.arrayBuffer();
        assert.ok((r2.headers.get('www-authenticate') ?? '').includes(`realm="${treg.tokenServer!.realm}"`));
      } finally {
        await rproxy.stop();
        await treg.stop();
      }
    } finally {
      await proxy.stop();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    }
  });
});

describe('lifecycle', () => {
  it('stop() kills the registry, frees the port and removes the dir', async () => {
    const reg = await startRegistry({ auth: 'basic' });
    const port = Number(reg.host.split(':')[1]);
    assert.ok(processAlive(reg.pid));
    assert.equal(await portIsFree(port), false);
    await reg.stop();
    assert.equal(processAlive(reg.pid), false);
    assert.equal(await portIsFree(port), true);
    assert.equal(existsSync(reg.dir), false);
    await assert.rejects(fetch(`${reg.url}/v2/`));
    await reg.stop(); // idempotent
  });

  it('a forgotten stop() neither hangs the test process nor leaks the registry', async () => {
    // The script never calls stop(): the process must still exit on its own, and its exit hook
    // must kill the registry and remove the temp dir.
    const { child, info } = startChildScript(
      `const r = await startRegistry({ auth: 'token' }); console.log(JSON.stringify({ pid: r.pid, dir: r.dir }));`,
    );
    const { pid, dir } = await info;
    const code = await new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once('exit', (c) => resolve(c));
    });
    assert.equal(code, 0);
    await waitGone(pid);
    assert.equal(existsSync(dir), false);
  });

  it('SIGTERM to the test process kills the registry', async () => {
    const { child, info } = startChildScript(
      `const r = await startRegistry(); console.log(JSON.stringify({ pid: r.pid, dir: r.dir })); setInterval(() => {}, 1000);`,
    );
    const { pid, dir } = await info;
    assert.ok(processAlive(pid));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, sig) => resolve(sig)));
    child.kill('SIGTERM');
    assert.equal(await exited, 'SIGTERM');
    await waitGone(pid);
    assert.equal(existsSync(dir), false);
  });

  it('reports a missing binary clearly', async () => {
    await assert.rejects(startRegistry({ binary: '/nonexistent/docker-registry' }), /registry binary `\/nonexistent\/docker-registry` not found/);
  });

  it('reports an early exit with the registry output', async () => {
    const d = await tempDir('fake-registry');
    try {
      const fake = join(d.path, 'fake-registry');
      await writeFile(fake, '#!/bin/sh\necho "fake registry refuses: $*" >&2\nexit 3\n');
      await chmod(fake, 0o755);
      await assert.rejects(startRegistry({ binary: fake }), /exited \(code 3[\s\S]*fake registry refuses: serve /);
    } finally {
      await d.remove();
    }
  });

  it('reports a registry that never comes up, with its output', async () => {
    const d = await tempDir('fake-registry');
    try {
      const fake = join(d.path, 'slow-registry');
      await writeFile(fake, '#!/bin/sh\necho "slow registry warming up" >&2\nexec sleep 60\n');
      await chmod(fake, 0o755);
      await assert.rejects(startRegistry({ binary: fake, startTimeoutMs: 2000 }), /did not come up within 2000 ms[\s\S]*slow registry warming up/);
    } finally {
      await d.remove();
    }
  });
});
