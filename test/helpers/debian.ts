import type { FileSpec } from '../../src/source/memory.js';

/** One package's stanza of a dpkg status file (installed), with its source package when it differs. */
export const dpkgEntry = (name: string, version: string, source?: string): string => `Package: ${name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${version}\n${source ? `Source: ${source}\n` : ''}`;

/** Debian 12's /etc/os-release, as a layer file. */
export const debian12OsRelease: FileSpec = { path: 'etc/os-release', content: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' };
