/**
 * A private Sigstore for tests, built here with real crypto (openssl for the X.509 parts):
 * a Fulcio-like CA, short-lived leaf certificates naming an identity (SAN URI) and an OIDC issuer
 * (extension 1.3.6.1.4.1.57264.1.8), a Rekor-like log key that signs entry timestamps (SETs), a CT
 * log key, and the trusted_root.json that lists them. keylessBundle() signs a DSSE in-toto
 * statement with a fresh leaf and returns a v0.1 bundle with a `dsse` 0.0.1 log entry and its
 * inclusion promise (signed entry timestamp), the shape cosign keyless signing produced before
 * inclusion proofs.
 *
 * Each leaf carries an embedded SCT from the CT log key, made as a CT log makes it (RFC 6962
 * §3.2): the certificate is issued with a placeholder SCT list of the final size, the SCT is signed
 * over the TBS without that extension (the precertificate the verifier reconstructs), the
 * placeholder is replaced by the SCT and the TBS is signed again by the CA.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ASN1Obj, EXTENSION_OID_SCT, json, X509Certificate as SigstoreCert } from '@sigstore/core';

const ISSUER_OID = '1.3.6.1.4.1.57264.1.8';

export interface PrivateSigstore {
  /** trusted_root.json for this Sigstore. */
  trustedRootFile: string;
  trustedRoot: Record<string, unknown>;
  /** A v0.1 bundle: DSSE over `statement`, signed by a leaf for identity/issuer, logged with a SET. */
  keylessBundle(statement: Buffer, identity: string, issuer: string): Record<string, unknown>;
  /**
   * The annotations of a legacy keyless `.sig` layer over `payload` (cosign 1.x/2.x): signature,
   * certificate, chain and the Rekor bundle (hashedrekord 0.0.1 body and its SET).
   */
  keylessLegacy(payload: Buffer, identity: string, issuer: string): Record<string, string>;
}

/** A DER TLV with this tag and content (definite length). */
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : n < 0x10000 ? Buffer.from([0x82, n >> 8, n & 0xff]) : Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** An ECDSA P-256 signature whose DER encoding is exactly `len` bytes (retried: lengths vary). */
function signOfLength(data: Buffer, key: KeyObject, len: number): Buffer {
  for (;;) {
    const sig = sign('sha256', data, key);
    if (sig.length === len) return sig;
  }
}

const SCT_SIG_LEN = 71;

function der(pem: string): Buffer {
  return new X509Certificate(pem).raw;
}

function spki(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }) as Buffer;
}

export function privateSigstore(dir: string): PrivateSigstore {
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // The CA.
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('ca.key')]);
  writeFileSync(f('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  openssl(['req', '-new', '-x509', '-key', f('ca.key'), '-subj', '/O=plinth-test/CN=plinth-test-fulcio', '-days', '2', '-out', f('ca.crt'), '-extensions', 'v3_ca', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const caPem = readFileSync(f('ca.crt'), 'utf8');
  // The log and the CT log.
  const rekor = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ct = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const logId = createHash('sha256').update(spki(rekor.publicKey)).digest();
  const ctId = createHash('sha256').update(spki(ct.publicKey)).digest();
  const start = new Date(Date.now() - 86_400_000).toISOString();
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{ baseUrl: 'https://rekor.plinth.test', hashAlgorithm: 'SHA2_256', publicKey: { rawBytes: spki(rekor.publicKey).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } }, logId: { keyId: logId.toString('base64') } }],
    certificateAuthorities: [{ subject: { organization: 'plinth-test', commonName: 'plinth-test-fulcio' }, uri: 'https://fulcio.plinth.test', certChain: { certificates: [{ rawBytes: der(caPem).toString('base64') }] }, validFor: { start } }],
    ctlogs: [{ baseUrl: 'https://ct.plinth.test', hashAlgorithm: 'SHA2_256', publicKey: { rawBytes: spki(ct.publicKey).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } }, logId: { keyId: ctId.toString('base64') } }],
    timestampAuthorities: [],
  };
  writeFileSync(f('trusted_root.json'), JSON.stringify(trustedRoot, null, 2));
  let serial = 0;

  /** A short-lived leaf for this identity and issuer, with an embedded SCT. */
  const issueLeaf = (identity: string, issuer: string): { leafPem: string; leafKey: KeyObject } => {
    serial++;
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`leaf${serial}.key`)]);
    openssl(['req', '-new', '-key', f(`leaf${serial}.key`), '-subj', '/O=plinth-test', '-out', f(`leaf${serial}.csr`)]);
    writeFileSync(
      f(`leaf${serial}.ext`),
      `keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=critical,URI:${identity}\n${ISSUER_OID}=ASN1:UTF8String:${issuer}\n1.3.6.1.4.1.57264.1.1=ASN1:UTF8String:${issuer}\nauthorityKeyIdentifier=keyid\n`,
    );
    // The SCT list with a placeholder signature of the final length.
    const ts = Buffer.alloc(8);
    ts.writeBigUInt64BE(BigInt(Date.now()));
    const sctHead = Buffer.concat([Buffer.from([0]), ctId, ts, u16(0), Buffer.from([4, 3]), u16(SCT_SIG_LEN)]);
    const placeholder = Buffer.alloc(SCT_SIG_LEN, 0xee);
    const sctList = (sig: Buffer) => {
      const sct = Buffer.concat([sctHead, sig]);
      return Buffer.concat([u16(sct.length + 2), u16(sct.length), sct]);
    };
    const extValue = tlv(0x04, sctList(placeholder));
    writeFileSync(f(`leaf${serial}.ext`), `${readFileSync(f(`leaf${serial}.ext`), 'utf8')}${EXTENSION_OID_SCT}=DER:${extValue.toString('hex').match(/../g)!.join(':')}\n`);
    openssl(['x509', '-req', '-in', f(`leaf${serial}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-set_serial', String(1000 + serial), '-days', '1', '-extfile', f(`leaf${serial}.ext`), '-out', f(`leaf${serial}.crt`)]);
    const issued = der(readFileSync(f(`leaf${serial}.crt`), 'utf8'));
    // The precertificate TBS: the TBS without the SCT extension, as the verifier rebuilds it.
    const pre = SigstoreCert.parse(issued as Buffer<ArrayBuffer>).clone();
    const i = pre.extensions.findIndex((e) => e.subs[0]!.toOID() === EXTENSION_OID_SCT);
    pre.extensions.splice(i, 1);
    const tbsPre = pre.tbsCertificate.toDER();
    const caSpki = new X509Certificate(caPem).publicKey.export({ format: 'der', type: 'spki' }) as Buffer;
    const len3 = Buffer.from([tbsPre.length >> 16, (tbsPre.length >> 8) & 0xff, tbsPre.length & 0xff]);
    const signed = Buffer.concat([Buffer.from([0, 0]), ts, u16(1), createHash('sha256').update(caSpki).digest(), len3, tbsPre, u16(0)]);
    const sctSig = signOfLength(signed, ct.privateKey, SCT_SIG_LEN);
    // The final certificate: the placeholder replaced (same length), the TBS signed again by the CA.
    const parts = ASN1Obj.parseBuffer(issued as Buffer<ArrayBuffer>);
    const tbs = parts.subs[0]!.toDER();
    const at = tbs.indexOf(placeholder);
    const tbsFinal = Buffer.concat([tbs.subarray(0, at), sctSig, tbs.subarray(at + SCT_SIG_LEN)]);
    const caSig = sign('sha256', tbsFinal, createPrivateKey(readFileSync(f('ca.key'))));
    const finalDer = tlv(0x30, Buffer.concat([tbsFinal, parts.subs[1]!.toDER(), tlv(0x03, Buffer.concat([Buffer.from([0]), caSig]))]));
    const leafPem = `-----BEGIN CERTIFICATE-----\n${finalDer.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    writeFileSync(f(`leaf${serial}.crt`), leafPem);
    return { leafPem, leafKey: createPrivateKey(readFileSync(f(`leaf${serial}.key`))) };
  };

  return {
    trustedRootFile: f('trusted_root.json'),
    trustedRoot,
    keylessBundle(statement, identity, issuer) {
      const { leafPem, leafKey } = issueLeaf(identity, issuer);
      const payloadType = 'application/vnd.in-toto+json';
      const pae = Buffer.concat([Buffer.from(`DSSEv1 ${payloadType.length} ${payloadType} ${statement.length} `), statement]);
      const sig = sign('sha256', pae, leafKey);
      // The log entry (dsse 0.0.1) and its signed entry timestamp.
      const body = Buffer.from(
        json.canonicalize({
          apiVersion: '0.0.1',
          kind: 'dsse',
          spec: {
            payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(statement).digest('hex') },
            signatures: [{ signature: sig.toString('base64'), verifier: Buffer.from(leafPem).toString('base64') }],
          },
        }),
      );
      const integratedTime = Math.floor(Date.now() / 1000) + 1;
      const set = sign('sha256', Buffer.from(json.canonicalize({ body: body.toString('base64'), integratedTime, logID: logId.toString('hex'), logIndex: serial })), rekor.privateKey);
      return {
        mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
        verificationMaterial: {
          x509CertificateChain: { certificates: [{ rawBytes: der(leafPem).toString('base64') }] },
          tlogEntries: [
            {
              logIndex: String(serial),
              logId: { keyId: logId.toString('base64') },
              kindVersion: { kind: 'dsse', version: '0.0.1' },
              integratedTime: String(integratedTime),
              inclusionPromise: { signedEntryTimestamp: set.toString('base64') },
              canonicalizedBody: body.toString('base64'),
            },
          ],
          timestampVerificationData: { rfc3161Timestamps: [] },
        },
        dsseEnvelope: { payload: statement.toString('base64'), payloadType, signatures: [{ sig: sig.toString('base64'), keyid: '' }] },
      };
    },
    keylessLegacy(payload, identity, issuer) {
      const { leafPem, leafKey } = issueLeaf(identity, issuer);
      const sig = sign('sha256', payload, leafKey);
      const body = Buffer.from(
        json.canonicalize({
          apiVersion: '0.0.1',
          kind: 'hashedrekord',
          spec: { data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } }, signature: { content: sig.toString('base64'), publicKey: { content: Buffer.from(leafPem).toString('base64') } } },
        }),
      );
      const integratedTime = Math.floor(Date.now() / 1000) + 1;
      const entry = { body: body.toString('base64'), integratedTime, logID: logId.toString('hex'), logIndex: serial };
      const set = sign('sha256', Buffer.from(json.canonicalize(entry)), rekor.privateKey);
      return {
        'dev.cosignproject.cosign/signature': sig.toString('base64'),
        'dev.sigstore.cosign/certificate': leafPem,
        'dev.sigstore.cosign/chain': caPem,
        'dev.sigstore.cosign/bundle': JSON.stringify({ SignedEntryTimestamp: set.toString('base64'), Payload: entry }),
      };
    },
  };
}
