import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { PlinthError } from '../util/errors.js';
import type { CliHelpers } from './provenance.js';

const KEY_REF_HELP = 'a cosign key file (KMS references awskms://, gcpkms://, azurekms://, hashivault://, k8s:// are not supported yet)';

/** `plinth key …`, `plinth sign`, `plinth verify`: cosign-compatible keys and image signatures. */
export function registerSign(program: Command, h: CliHelpers): void {
  if (h.want('key')) {
    const key = program.command('key').description('cosign-compatible signing keys: ECDSA P-256, private key encrypted with scrypt + NaCl secretbox');
    key
      .command('generate')
      .description('write a new key pair: <prefix>.key (PEM ENCRYPTED SIGSTORE PRIVATE KEY, as cosign generate-key-pair) and <prefix>.pub (SPKI PEM); the password comes from PLINTH_PASSWORD or COSIGN_PASSWORD, else it is asked on the terminal')
      .option('--output-key-prefix <prefix>', 'file name prefix', 'cosign')
      .option('-f, --force', 'overwrite existing files')
      .action(async (o: { outputKeyPrefix: string; force?: boolean }) => {
        const { generateKeyPair, keyPassword } = await import('../sign/keys.js');
        const keyFile = `${o.outputKeyPrefix}.key`;
        const pubFile = `${o.outputKeyPrefix}.pub`;
        const password = await keyPassword(`for the new private key ${keyFile}`, true);
        const pair = await generateKeyPair(password);
        const flag = o.force ? 'w' : 'wx';
        try {
          await writeFile(keyFile, pair.privateKeyPem, { mode: 0o600, flag });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new PlinthError('USAGE', `${keyFile} exists; use --force to overwrite it`);
          throw new PlinthError('IO', `cannot write ${keyFile}: ${(e as Error).message}`);
        }
        try {
          await writeFile(pubFile, pair.publicKeyPem, { mode: 0o644, flag });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new PlinthError('USAGE', `${pubFile} exists; use --force to overwrite it`);
          throw new PlinthError('IO', `cannot write ${pubFile}: ${(e as Error).message}`);
        }
        process.stderr.write(`Private key written to ${keyFile}\nPublic key written to ${pubFile}\n`);
      });
    key
      .command('public')
      .description('print the public key of a private key (like cosign public-key)')
      .requiredOption('--key <ref>', KEY_REF_HELP)
      .action(async (o: { key: string }) => {
        const { openSigner } = await import('../sign/keys.js');
        h.out((await openSigner(o.key)).publicKeyPem());
      });
  }
}
