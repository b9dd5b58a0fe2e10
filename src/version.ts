/** Plinth's version (a test checks it against package.json) and what it runs on. */
export const VERSION = '0.1.0';

export interface VersionInfo {
  plinth: string;
  node: string;
  v8: string;
  openssl: string;
  sqlite: string | null;
  platform: string;
  /** 'node' when run by a Node installation, 'single-file' for the executable (dist/plinth-linux-*). */
  runtime: 'node' | 'single-file';
  executable: string;
}

/** Whether this is the single-file executable (a Node SEA) rather than Node running the scripts. */
export function isSingleExecutable(): boolean {
  return (process.getBuiltinModule('node:sea') as { isSea(): boolean } | undefined)?.isSea() === true;
}

export function versionInfo(): VersionInfo {
  return {
    plinth: VERSION,
    node: process.version,
    v8: process.versions.v8,
    openssl: process.versions.openssl,
    sqlite: process.versions.sqlite ?? null,
    platform: `${process.platform}/${process.arch}`,
    runtime: isSingleExecutable() ? 'single-file' : 'node',
    executable: process.execPath,
  };
}

export function formatVersionInfo(v: VersionInfo): string {
  return [
    `plinth   ${v.plinth}`,
    `node     ${v.node} (${v.runtime === 'single-file' ? 'built into this single-file executable' : v.executable})`,
    `v8       ${v.v8}`,
    `openssl  ${v.openssl}`,
    `sqlite   ${v.sqlite ?? '(none)'}`,
    `platform ${v.platform}`,
  ].join('\n');
}
