import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createCertificates, type Certificates } from '../src/admission/certs.js';
import { PlinthError } from '../src/util/errors.js';
import { tempDir, type TempDir } from './helpers/util.js';

function openssl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** GET https://127.0.0.1:port/ with the given TLS options; resolves to the body or rejects with the TLS error. */
function get(port: number, tls: { ca?: string; servername: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', method: 'GET', agent: false, ...tls }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('createCertificates', () => {
  let dir: TempDir;
  let certs: Certificates;
  let server: https.Server;
  let port: number;

  before(async () => {
    dir = await tempDir('certs-');
    certs = await createCertificates({ service: 'svc', namespace: 'ns', dnsNames: ['webhook.example.com', '*.internal.example.com'], days: 30, dir: dir.path });
    server = https.createServer({ key: certs.key, cert: certs.cert }, (_req, res) => {
      res.end('admitted');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await dir.remove();
  });

  test('a client trusting only the CA connects as svc.ns.svc', async () => {
    assert.equal(await get(port, { ca: certs.caCert, servername: 'svc.ns.svc' }), 'admitted');
    for (const name of ['svc', 'svc.ns', 'svc.ns.svc.cluster.local', 'webhook.example.com', 'a.internal.example.com']) {
      assert.equal(await get(port, { ca: certs.caCert, servername: name }), 'admitted', name);
    }
  });

  test('a client without the CA, or asking for another name, is refused', async () => {
    await assert.rejects(get(port, { servername: 'svc.ns.svc' }), (e: NodeJS.ErrnoException) => {
      assert.match(String(e.code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER_CERT/);
      return true;
    });
    await assert.rejects(get(port, { ca: certs.caCert, servername: 'other.ns.svc' }), (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
      return true;
    });
    // A CA made for another service is no use either.
    const other = await tempDir('certs-other-');
    try {
      const o = await createCertificates({ service: 'svc', namespace: 'ns', dir: other.path });
      await assert.rejects(get(port, { ca: o.caCert, servername: 'svc.ns.svc' }));
    } finally {
      await other.remove();
    }
  });

  test('openssl verify passes, for a TLS server', async () => {
    const r = await openssl(['verify', '-CAfile', certs.files.caCert, '-purpose', 'sslserver', certs.files.cert]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: OK/);
    // And the CA does not verify a certificate it did not sign.
    const bad = await openssl(['verify', '-CAfile', certs.files.cert, certs.files.cert]);
    assert.notEqual(bad.code, 0);
  });

  test('the serving certificate has the right SANs, EKU and key usage', async () => {
    const san = await openssl(['x509', '-in', certs.files.cert, '-noout', '-ext', 'subjectAltName']);
    assert.equal(san.code, 0, san.stderr);
    const names = san.stdout
      .split('\n')
      .slice(1)
      .join('')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    assert.deepEqual(names, [
      'DNS:svc.ns.svc',
      'DNS:svc',
      'DNS:svc.ns',
      'DNS:svc.ns.svc.cluster.local',
      'DNS:webhook.example.com',
      'DNS:*.internal.example.com',
    ]);
    const ext = await openssl(['x509', '-in', certs.files.cert, '-noout', '-ext', 'basicConstraints,keyUsage,extendedKeyUsage']);
    assert.match(ext.stdout, /CA:FALSE/);
    assert.match(ext.stdout, /Digital Signature/);
    assert.match(ext.stdout, /TLS Web Server Authentication/);
    const subject = await openssl(['x509', '-in', certs.files.cert, '-noout', '-subject']);
    assert.match(subject.stdout, /CN ?= ?svc\.ns\.svc/);
    assert.deepEqual(certs.dnsNames, names.map((n) => n.slice(4)));
  });

  test('the CA is a CA and signed the serving certificate', async () => {
    const ca = new X509Certificate(certs.caCert);
    const leaf = new X509Certificate(certs.cert);
    assert.equal(ca.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(ca));
    assert.ok(leaf.verify(ca.publicKey));
    const ext = await openssl(['x509', '-in', certs.files.caCert, '-noout', '-ext', 'basicConstraints,keyUsage']);
    assert.match(ext.stdout, /critical/);
    assert.match(ext.stdout, /CA:TRUE/);
    assert.match(ext.stdout, /Certificate Sign/);
    // 30 days, give or take the clock.
    const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000;
    assert.equal(Math.round(days), 30);
    assert.equal(certs.notAfter, new Date(leaf.validTo).toISOString());
  });

  test('ECDSA P-256 keys that match their certificates', () => {
    for (const [key, cert] of [
      [certs.key, certs.cert],
      [certs.caKey, certs.caCert],
    ] as const) {
      const k = createPrivateKey(key);
      assert.equal(k.asymmetricKeyType, 'ec');
      assert.equal(k.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.ok(new X509Certificate(cert).checkPrivateKey(k));
    }
  });

  test('files: keys 0600, certificates 0644, caBundle is base64 of the CA PEM, nothing else left', async () => {
    assert.deepEqual((await readdir(dir.path)).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    assert.equal((await stat(certs.files.key)).mode & 0o777, 0o600);
    assert.equal((await stat(certs.files.caKey)).mode & 0o777, 0o600);
    assert.equal((await stat(certs.files.cert)).mode & 0o777, 0o644);
    assert.equal((await stat(certs.files.caCert)).mode & 0o777, 0o644);
    assert.equal(await readFile(certs.files.key, 'utf8'), certs.key);
    assert.equal(await readFile(path.join(dir.path, 'tls.crt'), 'utf8'), certs.cert);
    assert.equal(Buffer.from(certs.caBundle, 'base64').toString('utf8'), certs.caCert);
    assert.match(certs.caBundle, /^[A-Za-z0-9+/]+=*$/);
  });

  test('running again replaces the files, and keys stay private', async () => {
    const again = await tempDir('certs-again-');
    try {
      await writeFile(path.join(again.path, 'tls.key'), 'old');
      await chmod(path.join(again.path, 'tls.key'), 0o644);
      const a = await createCertificates({ service: 'plinth', namespace: 'plinth-system', dir: path.join(again.path, 'sub', 'dir') });
      const b = await createCertificates({ service: 'plinth', namespace: 'plinth-system', dir: again.path });
      assert.notEqual(a.caCert, b.caCert);
      assert.equal((await stat(path.join(again.path, 'tls.key'))).mode & 0o777, 0o600);
      assert.equal(await readFile(path.join(again.path, 'tls.key'), 'utf8'), b.key);
    } finally {
      await again.remove();
    }
  });

  test('invalid names and options are refused before anything is written', async () => {
    const bad = await tempDir('certs-bad-');
    try {
      const cases: Array<[Parameters<typeof createCertificates>[0], RegExp]> = [
        [{ service: 'Svc', namespace: 'ns', dir: bad.path }, /invalid service name "Svc": a Service name is a DNS-1035 label/],
        [{ service: '1svc', namespace: 'ns', dir: bad.path }, /invalid service name "1svc"/],
        [{ service: 'svc', namespace: 'ns_1', dir: bad.path }, /invalid namespace "ns_1": a namespace is a DNS-1123 label/],
        [{ service: 'svc', namespace: 'n'.repeat(64), dir: bad.path }, /invalid namespace/],
        [{ service: 'svc', namespace: 'ns', dnsNames: ['bad_name.example.com'], dir: bad.path }, /invalid DNS name "bad_name\.example\.com"/],
        [{ service: 'svc', namespace: 'ns', dnsNames: ['x\nDNS.9 = evil.com'], dir: bad.path }, /invalid DNS name/],
        [{ service: 'svc', namespace: 'ns', ipAddresses: ['300.1.1.1'], dir: bad.path }, /invalid IP address "300\.1\.1\.1"/],
        [{ service: 'svc', namespace: 'ns', days: 0, dir: bad.path }, /invalid days 0/],
        [{ service: 'svc', namespace: 'ns', days: 1.5, dir: bad.path }, /invalid days 1\.5/],
        [{ service: 'svc', namespace: 'ns', dir: '' }, /needs a directory/],
      ];
      for (const [opts, message] of cases) {
        await assert.rejects(createCertificates(opts), (e: unknown) => e instanceof PlinthError && e.code === 'USAGE' && message.test(e.message));
      }
      assert.deepEqual(await readdir(bad.path), []);
      await assert.rejects(
        createCertificates({ service: 'svc', namespace: 'ns', dir: bad.path, openssl: path.join(bad.path, 'no-openssl') }),
        (e: unknown) => e instanceof PlinthError && e.code === 'UNSUPPORTED' && /openssl/.test(e.message),
      );
      assert.deepEqual(await readdir(bad.path), [], 'a failure leaves nothing behind');
    } finally {
      await bad.remove();
    }
  });

  test('IP addresses for a webhook reached by URL', async () => {
    const d = await tempDir('certs-ip-');
    try {
      const c = await createCertificates({ service: 'svc', namespace: 'ns', ipAddresses: ['127.0.0.1', '::1'], dir: d.path });
      assert.match(new X509Certificate(c.cert).subjectAltName ?? '', /IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    } finally {
      await d.remove();
    }
  });
});
