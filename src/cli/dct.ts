import type { Command } from 'commander';
import { PlinthError } from '../util/errors.js';
import type { CliHelpers } from './provenance.js';

/** `plinth dct targets REPO`: the signed tags of a repository and their signers (Docker Content Trust). */
export function registerDct(program: Command, h: CliHelpers): void {
  if (!h.want('dct')) return;
  const dct = program.command('dct').description('Docker Content Trust (Notary v1 / TUF): read a repository\'s trust data from its notary server, verified from the trusted root down');
  dct
    .command('targets')
    .description('list the signed tags of a repository, their digests and sizes and the roles that sign them, and the signer and administrative keys (like docker trust inspect). The metadata is verified (signatures, thresholds, expiry, hashes, versions) before anything is listed')
    .argument('<repository>', 'a registry repository: REGISTRY/REPO (no tag)')
    .option('--trust-server <url>', 'the notary server (default: $DOCKER_CONTENT_TRUST_SERVER; https://notary.docker.io for Docker Hub; else https://REGISTRY)')
    .option('--trust-dir <dir>', 'where trusted metadata is kept between runs (default: $DOCKER_CONFIG/trust or ~/.docker/trust)')
    .option('--root-key-pin <id...>', 'root key ID(s) the root must be signed by')
    .option('--insecure', 'accept a trust server TLS certificate that does not verify')
    .option('--format <format>', 'text or json', 'text')
    .action(async (repo: string, o: { trustServer?: string; trustDir?: string; rootKeyPin?: string[]; insecure?: boolean; format: string }) => {
      if (o.format !== 'text' && o.format !== 'json') throw new PlinthError('USAGE', `--format must be text or json, got "${o.format}"`);
      const { dctTargets } = await import('../notary/index.js');
      const r = await dctTargets(repo, { ...(o.trustServer ? { server: o.trustServer } : {}), ...(o.trustDir ? { trustDir: o.trustDir } : {}), ...(o.rootKeyPin ? { rootKeyPins: o.rootKeyPin } : {}), ...(o.insecure ? { http: { insecureTls: true } } : {}) });
      if (o.format === 'json') return h.out(JSON.stringify(r, null, 2));
      const lines = [`Signatures for ${r.gun}`, '', 'SIGNED TAG'.padEnd(24) + 'DIGEST'.padEnd(73) + 'SIZE'.padEnd(10) + 'SIGNERS'];
      for (const t of r.signedTags) lines.push(t.tag.padEnd(24) + t.digest.padEnd(73) + String(t.size).padEnd(10) + t.signers.join(', '));
      if (!r.signedTags.length) lines.push('(no signed tags)');
      if (r.signers.length) {
        lines.push('', 'List of signers and their keys for ' + r.gun + ':', '', 'SIGNER'.padEnd(24) + 'KEYS');
        for (const s of r.signers) lines.push(s.name.padEnd(24) + s.keys.map((k) => k.slice(0, 12)).join(', '));
      }
      lines.push('', `Administrative keys for ${r.gun}:`, '');
      for (const a of r.administrativeKeys) lines.push(`  ${a.name} Key:\t${a.keys.join(', ')}`);
      h.out(lines.join('\n'));
    });
}
