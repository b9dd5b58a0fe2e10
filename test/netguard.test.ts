import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpClient } from '../src/registry/http.js';
import { NetworkGuard, hostOnly, isPrivateAddress } from '../src/registry/netguard.js';
import { baseLookupFilter } from '../src/policy/facts.js';
import { parsePolicy } from '../src/policy/load.js';

test('private, loopback, link-local and reserved addresses are recognised; public ones are not', () => {
  const privateOnes = ['127.0.0.1', '127.8.9.10', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1', '::1', '::', 'fe80::1', 'fd00::1', 'fc12::3', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::10.0.0.1', '::7f00:1', '::ffff:0:7f00:1', '64:ff9b:1::1', '2002:7f00:1::1', '2002:a9fe:a9fe::', 'fec0::1'];
  const publicOnes = ['8.8.8.8', '172.32.0.1', '172.15.255.255', '100.128.0.1', '192.169.0.1', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2001:db8::1', '2002:808:808::1'];
  for (const ip of privateOnes) assert.equal(isPrivateAddress(ip), true, ip);
  for (const ip of publicOnes) assert.equal(isPrivateAddress(ip), false, ip);
});

test('hosts: ports and brackets are ignored when matching; globs stay within a label', () => {
  assert.equal(hostOnly('Registry.Internal:5000'), 'registry.internal');
  assert.equal(hostOnly('[::1]:5000'), '::1');
  assert.equal(hostOnly('::1'), '::1');
  const g = new NetworkGuard({ denyPrivate: true, allowHosts: ['*.registry.internal', '127.0.0.1:5000', 'harbor'] });
  assert.equal(g.allowed('eu.registry.internal:443'), true);
  assert.equal(g.allowed('a.b.registry.internal'), false);
  assert.equal(g.allowed('registry.internal'), false);
  assert.equal(g.allowed('127.0.0.1:6000'), true, 'the allowance is per host, any port');
  assert.equal(g.allowed('harbor'), true);
  assert.throws(() => g.checkLiteral('10.0.0.1'), /refusing to connect to 10\.0\.0\.1/);
  assert.doesNotThrow(() => g.checkLiteral('127.0.0.1'));
  assert.doesNotThrow(() => g.checkLiteral('8.8.8.8'));
  assert.doesNotThrow(() => new NetworkGuard({ denyPrivate: false }).checkLiteral('10.0.0.1'));
});

test('an allowed address is allowed under a name that resolves to it; a trailing dot is the same name', async () => {
  const net = await import('node:net');
  const srv = net.createServer((sock) => sock.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as import('node:net').AddressInfo).port;
  const http = new HttpClient({ network: { denyPrivate: true, allowHosts: ['127.0.0.1'] }, retries: 0, timeoutMs: 2000 });
  try {
    const res = await http.request({ method: 'GET', url: `http://localhost:${port}/` });
    assert.equal(res.status, 200);
    await res.discard();
  } finally {
    http.close();
    srv.close();
  }
  assert.equal(new NetworkGuard({ denyPrivate: true, allowHosts: ['registry.internal'] }).allowed('registry.internal.:5000'), true);
});

test('the HTTP client refuses a name that resolves to loopback, and an IP literal, before connecting', async () => {
  const http = new HttpClient({ network: { denyPrivate: true }, retries: 0, timeoutMs: 2000 });
  try {
    await assert.rejects(http.request({ method: 'GET', url: 'http://localhost:1/v2/' }), (e: Error & { code?: string }) => e.code === 'DENIED' && /localhost \((127\.0\.0\.1|::1)\)/.test(e.message));
    await assert.rejects(http.request({ method: 'GET', url: 'http://169.254.169.254/latest/meta-data/' }), /refusing to connect to 169\.254\.169\.254/);
  } finally {
    http.close();
  }
});

test('base look-ups follow the enforce allowedRegistries rules', () => {
  const policy = (rules: string) => parsePolicy(`apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p}\nspec:\n  rules:\n${rules}`, 'p.yaml').policy;
  assert.equal(baseLookupFilter(policy('    - name: b\n      mode: enforce\n      requireBaseImage: {}\n')), undefined, 'no allowedRegistries rule: no restriction');
  const f = baseLookupFilter(
    policy('    - name: r\n      mode: enforce\n      allowedRegistries: {registries: ["ghcr.io/acme/**", "registry.example.com"]}\n    - name: w\n      mode: warn\n      allowedRegistries: {registries: ["docker.io/**"]}\n'),
  )!;
  assert.equal(f('ghcr.io/acme/base/debian'), true);
  assert.equal(f('registry.example.com/golden/debian'), true);
  assert.equal(f('docker.io/library/debian'), false, 'a warn rule does not widen what is contacted');
  assert.equal(f('169.254.169.254/latest'), false);
  assert.equal(f('not a reference!'), false);
});

test('base names are opened as registry references only', async () => {
  const { registryLocation } = await import('../src/source/open.js');
  const loc = registryLocation('oci:5000/foo:1');
  assert.equal(loc.transport, 'registry');
  if (loc.transport === 'registry') assert.equal(loc.ref.registry, 'oci:5000');
});
