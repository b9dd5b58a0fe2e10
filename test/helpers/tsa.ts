/**
 * An RFC 3161 time-stamping authority on 127.0.0.1: OpenSSL (`openssl ts -reply`) answers each
 * `application/timestamp-query` POSTed to it, signing with a TSA certificate (EKU timeStamping)
 * issued by its own root. For notation's `--timestamp-url`.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { listenOnLoopback } from './common.js';

const execFileP = promisify(execFile);

export interface Tsa {
  url: string;
  /** PEM file of the TSA's root certificate. */
  rootCert: string;
  /** How many time stamps it issued. */
  issued: number;
  stop(): Promise<void>;
}

export async function startTsa(): Promise<Tsa> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-tsa-'));
  const ossl = (args: string[]) => execFileP('openssl', args, { cwd: dir, timeout: 60_000 });
  await ossl(['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'root.key']);
  await ossl(['req', '-new', '-x509', '-key', 'root.key', '-out', 'root.crt', '-days', '30', '-subj', '/C=US/ST=WA/O=TSA/CN=TSA Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await ossl(['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'tsa.key']);
  await ossl(['req', '-new', '-key', 'tsa.key', '-out', 'tsa.csr', '-subj', '/C=US/ST=WA/O=TSA/CN=TSA Signer']);
  await writeFile(path.join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n');
  await ossl(['x509', '-req', '-in', 'tsa.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'tsa.crt', '-days', '20', '-extfile', 'ext.cnf']);
  await writeFile(
    path.join(dir, 'ts.cnf'),
    ['[ tsa ]', 'default_tsa = tsa_config', '[ tsa_config ]', 'serial = ./tsaserial', 'signer_cert = ./tsa.crt', 'certs = ./root.crt', 'signer_key = ./tsa.key', 'signer_digest = sha256', 'default_policy = 1.2.3.4.1', 'other_policies = 1.2.3.4.2', 'digests = sha256, sha384, sha512', 'accuracy = secs:1', 'ordering = yes', 'tsa_name = no', 'ess_cert_id_chain = no', 'ess_cert_id_alg = sha256', ''].join('\n'),
  );
  await writeFile(path.join(dir, 'tsaserial'), '01\n');
  let n = 0;
  // One reply at a time: openssl keeps the serial number in a file.
  let queue: Promise<unknown> = Promise.resolve();
  const tsa: Tsa = {
    url: '',
    rootCert: path.join(dir, 'root.crt'),
    issued: 0,
    stop: async () => {},
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      queue = queue.then(async () => {
        const id = ++n;
        const q = path.join(dir, `q${id}.tsq`);
        const r = path.join(dir, `r${id}.tsr`);
        try {
          await writeFile(q, Buffer.concat(chunks));
          await ossl(['ts', '-reply', '-config', 'ts.cnf', '-queryfile', q, '-out', r]);
          const body = await readFile(r);
          tsa.issued++;
          res.writeHead(200, { 'content-type': 'application/timestamp-reply', 'content-length': body.length });
          res.end(body);
        } catch (e) {
          res.writeHead(500);
          res.end(String(e));
        }
      });
    });
  });
  const { port, stop } = await listenOnLoopback(server);
  tsa.url = `http://127.0.0.1:${port}/`;
  tsa.stop = async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  };
  return tsa;
}
