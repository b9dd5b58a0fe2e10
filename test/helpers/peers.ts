/**
 * The real peer tools (cosign, crane, notation, kubesec, regctl, helm) that scripts/peers.sh
 * builds from the Go module proxy into $PLINTH_PEERS_DIR (default ~/.cache/plinth/peers), and the
 * Debian ones (notary, notary-server). Tests use them as oracles; Plinth never calls them. A
 * missing peer is a test failure with a message saying how to install it, never a silent skip.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './common.js';

export const PEERS_DIR = process.env.PLINTH_PEERS_DIR ?? join(homedir(), '.cache', 'plinth', 'peers');

export interface PeerPin {
  name: string;
  version: string;
  module: string;
}

/** The pinned versions, as scripts/peers.sh lists them. */
export function peerPins(): PeerPin[] {
  const out = execFileSync('bash', [join(repoRoot(), 'scripts', 'peers.sh'), '--list'], { encoding: 'utf8' });
  return out
    .trim()
    .split('\n')
    .map((l) => {
      const [name, version, module] = l.trim().split(/\s+/);
      return { name: name!, version: version!, module: module! };
    });
}

/** The path of a Go-built peer; throws, naming the fix, when it is not installed. */
export function peer(name: string): string {
  const p = join(PEERS_DIR, 'bin', name);
  if (!existsSync(p)) throw new Error(`peer tool ${name} is not installed in ${join(PEERS_DIR, 'bin')}: run scripts/peers.sh (npm test runs it first; it needs Go)`);
  return p;
}

/** The path of a tool from Debian's packages; throws, naming the package, when it is missing. */
export function debianTool(name: string, pkg: string): string {
  for (const d of (process.env.PATH ?? '/usr/bin').split(':')) if (d && existsSync(join(d, name))) return join(d, name);
  throw new Error(`${name} is not installed: apt-get install ${pkg} (./scripts/setup.sh does)`);
}
