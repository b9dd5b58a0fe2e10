/**
 * TLS for the admission webhook: a private CA and a serving certificate for the webhook's
 * Service, as `plinth certs` writes them. The API server calls the webhook at
 * `https://<service>.<namespace>.svc:<port>/<path>` and trusts only the `caBundle` of the webhook
 * configuration, so the serving certificate must carry that DNS name as a subjectAltName (Go
 * ignores the CN) and chain to that CA.
 *
 * Keys are ECDSA P-256 made with Node's crypto; certificates are made with the `openssl` CLI
 * (Node has no API to issue X.509 certificates), given a temporary config file, never a shell.
 * Files (the names of a kubernetes.io/tls Secret plus the CA):
 *   ca.crt   CA certificate (0644)      ca.key   CA private key, PKCS#8 (0600)
 *   tls.crt  serving certificate (0644) tls.key  serving private key, PKCS#8 (0600)
 * They are written to a temporary directory inside `dir` and renamed into place, so a failure
 * leaves no half-written set.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { PlinthError } from '../util/errors.js';

export interface CertificateOptions {
  /** Name of the webhook's Service (a DNS-1035 label, e.g. `plinth`). */
  service: string;
  /** Namespace of the Service (a DNS-1123 label, e.g. `plinth-system`). */
  namespace: string;
  /** Extra DNS names for the serving certificate (DNS-1123 subdomains; `*.` wildcards allowed). */
  dnsNames?: string[];
  /** Extra IP addresses for the serving certificate (for a webhook reached by `url`). */
  ipAddresses?: string[];
  /** Validity of both certificates in days (default 365, at most 3650). */
  days?: number;
  /** Directory to write ca.crt, ca.key, tls.crt and tls.key into (created if missing). */
  dir: string;
  /** The openssl executable (default `openssl` on PATH). */
  openssl?: string;
}

export interface Certificates {
  /** CA certificate, PEM. */
  caCert: string;
  /** CA private key, PEM (PKCS#8). */
  caKey: string;
  /** Serving certificate, PEM. */
  cert: string;
  /** Serving private key, PEM (PKCS#8). */
  key: string;
  /** base64 of the CA certificate PEM: the webhook configurations' `clientConfig.caBundle`. */
  caBundle: string;
  /** The serving certificate's DNS names, in order (`<service>.<namespace>.svc` first). */
  dnsNames: string[];
  ipAddresses: string[];
  /** Expiry of the serving certificate (ISO 8601). */
  notAfter: string;
  files: { caCert: string; caKey: string; cert: string; key: string };
}

/** DNS-1123 label: what a namespace name must be. */
const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/** DNS-1035 label: what a Service name must be (starts with a letter). */
const DNS1035_LABEL = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && s.split('.').every((label) => DNS1123_LABEL.test(label));
}

function usage(message: string): PlinthError {
  return new PlinthError('USAGE', message);
}

function checkOptions(o: CertificateOptions): { dnsNames: string[]; ipAddresses: string[]; days: number } {
  if (typeof o.service !== 'string' || !DNS1035_LABEL.test(o.service)) {
    throw usage(`invalid service name ${JSON.stringify(o.service)}: a Service name is a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, at most 63 characters)`);
  }
  if (typeof o.namespace !== 'string' || !DNS1123_LABEL.test(o.namespace)) {
    throw usage(`invalid namespace ${JSON.stringify(o.namespace)}: a namespace is a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)`);
  }
  const days = o.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw usage(`invalid days ${days}: expected a whole number from 1 to 3650`);
  if (typeof o.dir !== 'string' || o.dir === '') throw usage('createCertificates needs a directory (dir)');
  const svc = `${o.service}.${o.namespace}.svc`;
  const names = [svc, o.service, `${o.service}.${o.namespace}`, `${svc}.cluster.local`];
  for (const n of o.dnsNames ?? []) {
    const plain = typeof n === 'string' && n.startsWith('*.') ? n.slice(2) : n;
    if (typeof n !== 'string' || !isDns1123Subdomain(plain)) {
      throw usage(`invalid DNS name ${JSON.stringify(n)}: expected a DNS-1123 subdomain (lowercase labels of letters, digits and '-', separated by dots), optionally starting with "*."`);
    }
    names.push(n);
  }
  const ips: string[] = [];
  for (const ip of o.ipAddresses ?? []) {
    if (typeof ip !== 'string' || isIP(ip) === 0) throw usage(`invalid IP address ${JSON.stringify(ip)}`);
    ips.push(ip);
  }
  return { dnsNames: [...new Set(names)], ipAddresses: [...new Set(ips)], days };
}

function run(openssl: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(openssl, args, { timeout: 30_000, maxBuffer: 1024 * 1024, env: { ...process.env, OPENSSL_CONF: '/dev/null' } }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        return reject(new PlinthError('UNSUPPORTED', `${openssl} not found: Plinth needs the openssl command to issue certificates (Debian: apt-get install openssl)`));
      }
      const detail = String(stderr || err.message).trim().split('\n').slice(0, 3).join('; ');
      reject(new PlinthError('IO', `openssl ${args[0]} failed: ${detail}`));
    });
  });
}

function ecKey(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** A positive 127-bit serial number in hex (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return `0x${b.toString('hex')}`;
}

async function writePrivate(file: string, text: string): Promise<void> {
  await writeFile(file, text, { mode: 0o600 });
  await chmod(file, 0o600);
}

/**
 * Create a CA (CA:TRUE, pathlen 0, keyCertSign) and a serving certificate for
 * `<service>.<namespace>.svc` (also `<service>`, `<service>.<namespace>`,
 * `<service>.<namespace>.svc.cluster.local` and `dnsNames`; serverAuth; signed by the CA) in
 * `dir`, and return the PEMs and the caBundle. Throws USAGE for invalid names, UNSUPPORTED when
 * openssl is missing, IO when openssl or the file system fails.
 */
export async function createCertificates(opts: CertificateOptions): Promise<Certificates> {
  const { dnsNames, ipAddresses, days } = checkOptions(opts);
  const openssl = opts.openssl ?? 'openssl';
  const dir = path.resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(path.join(dir, '.plinth-certs-'));
  try {
    await chmod(work, 0o700);
    const caKey = ecKey();
    const key = ecKey();
    const f = (name: string) => path.join(work, name);
    await writePrivate(f('ca.key'), caKey);
    await writePrivate(f('tls.key'), key);
    const cn = dnsNames[0]!;
    const alt = [...dnsNames.map((n, i) => `DNS.${i + 1} = ${n}`), ...ipAddresses.map((ip, i) => `IP.${i + 1} = ${ip}`)].join('\n');
    await writePrivate(
      f('openssl.cnf'),
      [
        '[req]',
        'distinguished_name = ca_dn',
        'prompt = no',
        'utf8 = yes',
        '[ca_dn]',
        `CN = plinth-webhook-ca (${opts.namespace})`,
        '[leaf_dn]',
        `CN = ${cn}`,
        '[v3_ca]',
        'basicConstraints = critical, CA:TRUE, pathlen:0',
        'keyUsage = critical, keyCertSign, cRLSign',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid:always',
        '[v3_leaf]',
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature',
        'extendedKeyUsage = serverAuth',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid, issuer',
        'subjectAltName = @alt_names',
        '[alt_names]',
        alt,
        '',
      ].join('\n'),
    );
    await writePrivate(
      f('leaf-req.cnf'),
      ['[req]', 'distinguished_name = leaf_dn', 'prompt = no', 'utf8 = yes', '[leaf_dn]', `CN = ${cn}`, ''].join('\n'),
    );
    await run(openssl, [
      'req', '-x509', '-new', '-config', f('openssl.cnf'), '-extensions', 'v3_ca', '-key', f('ca.key'),
      '-sha256', '-days', String(days), '-set_serial', serial(), '-out', f('ca.crt'),
    ]);
    await run(openssl, ['req', '-new', '-config', f('leaf-req.cnf'), '-key', f('tls.key'), '-sha256', '-out', f('tls.csr')]);
    await run(openssl, [
      'x509', '-req', '-in', f('tls.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-set_serial', serial(),
      '-days', String(days), '-sha256', '-extfile', f('openssl.cnf'), '-extensions', 'v3_leaf', '-out', f('tls.crt'),
    ]);
    const caCert = await readFile(f('ca.crt'), 'utf8');
    const cert = await readFile(f('tls.crt'), 'utf8');

    // Check what openssl made before handing it out.
    const ca = new X509Certificate(caCert);
    const leaf = new X509Certificate(cert);
    if (!ca.ca || !leaf.verify(ca.publicKey) || leaf.checkIssued(ca) !== true || leaf.checkHost(cn) === undefined) {
      throw new PlinthError('IO', 'openssl produced certificates that do not verify (CA flag, signature or host name)');
    }

    await chmod(f('ca.crt'), 0o644);
    await chmod(f('tls.crt'), 0o644);
    const files = { caCert: path.join(dir, 'ca.crt'), caKey: path.join(dir, 'ca.key'), cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
    await rename(f('ca.key'), files.caKey);
    await rename(f('tls.key'), files.key);
    await rename(f('ca.crt'), files.caCert);
    await rename(f('tls.crt'), files.cert);
    return {
      caCert,
      caKey,
      cert,
      key,
      caBundle: Buffer.from(caCert, 'utf8').toString('base64'),
      dnsNames,
      ipAddresses,
      notAfter: new Date(leaf.validTo).toISOString(),
      files,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
