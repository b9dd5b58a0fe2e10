import { Command, CommanderError, Option } from 'commander';
import { PlinthError, describeError } from '../util/errors.js';
import { parsePlatform } from '../oci/types.js';
import type { OpenOptions } from '../source/open.js';
import type { InspectResult } from '../inspect/inspect.js';
import type { PlatformChoice } from '../source/image.js';
import { fmt, progressReporter } from './progress.js';
import { VERSION, formatVersionInfo, versionInfo } from '../version.js';
import { registerProvenance } from './provenance.js';
import { registerSbom } from './sbom.js';
import { registerDct } from './dct.js';
import { registerScan } from './scan.js';
import { registerCheck } from './check.js';
import { registerServe } from './serve.js';
import { registerSign } from './sign.js';
import { registerStore } from './store.js';
import { registerGolden } from './golden.js';
import { registerRebase } from './rebase.js';
import { registerWatch } from './watch.js';
import { registerLint } from './lint.js';
import { registerUi } from './ui.js';

/**
 * The CLI is thin: it parses flags, calls library modules, prints, and maps errors to exit codes.
 * Start-up: this module and the register* modules define the commands only; what a command runs is
 * imported when it runs (the bundle keeps those modules uninitialised until then), so
 * `plinth --version` or `plinth inspect oci:…` do not load the policy engine, the advisory store
 * or the webhook server.
 */

/** The library modules behind the image commands (inspect, manifest, config, digest, copy, tags). */
async function imageLib() {
  const [open, copy, insp, image] = await Promise.all([
    import('../source/open.js'),
    import('../source/copy.js'),
    import('../inspect/inspect.js'),
    import('../source/image.js'),
  ]);
  return { ...open, ...copy, ...insp, ...image };
}

interface GlobalFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  authfile?: string;
  insecure?: boolean;
  debug?: boolean;
}

function addRegistryFlags(cmd: Command): Command {
  return cmd
    .option('-u, --username <user>', 'registry user name')
    .option('-p, --password <password>', 'registry password (prefer --password-stdin)')
    .option('--password-stdin', 'read the registry password from standard input')
    .option('--authfile <file>', 'credentials file (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
    .option('--insecure', 'allow plain HTTP and unverified TLS for non-loopback registries');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/**
 * Registry options from the flags. Explicit --username/--password belong to the registry of
 * `image` only; every other registry the command reaches (bases, referrers) uses the config file.
 */
async function openOptions(f: GlobalFlags, image?: string): Promise<OpenOptions> {
  const o: OpenOptions = {};
  if (image !== undefined && (f.username !== undefined || f.password !== undefined || f.passwordStdin)) {
    const { parseLocation } = await import('../source/open.js');
    try {
      const loc = parseLocation(image);
      o.credentialsFor = loc.transport === 'registry' ? loc.ref.registry : '(none)';
    } catch {
      o.credentialsFor = '(none)';
    }
  }
  if (f.insecure) o.insecure = true;
  if (f.authfile) o.authFile = f.authfile;
  if (f.username !== undefined) o.username = f.username;
  if (f.passwordStdin) {
    if (f.password !== undefined) throw new PlinthError('USAGE', '--password and --password-stdin are mutually exclusive');
    o.password = await readStdin();
  } else if (f.password !== undefined) o.password = f.password;
  return o;
}

function platformChoice(p: string | undefined): PlatformChoice {
  if (p === undefined) return undefined;
  if (p === 'all') return 'all';
  return parsePlatform(p);
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

function printInspectTable(r: InspectResult): void {
  const lines: string[] = [];
  const kv = (k: string, v: string | number | null | undefined) => {
    if (v !== null && v !== undefined && v !== '') lines.push(`${k.padEnd(14)}${v}`);
  };
  kv('Reference', r.reference);
  kv('Digest', r.digest);
  kv('MediaType', r.mediaType);
  if (r.platforms.length) kv('Platforms', r.platforms.join(', '));
  for (const [k, v] of Object.entries(r.annotations)) kv(`  ${k}`, v);
  for (const img of r.images) {
    lines.push('');
    if (r.images.length > 1 || img.digest !== r.digest) kv('Image', img.digest);
    kv('Platform', img.platform);
    kv('Created', img.created);
    kv('Author', img.author);
    kv('Size', `${fmt(img.size)} (${img.size} bytes)`);
    kv('Config', img.config.digest);
    if (img.user) kv('User', img.user);
    if (img.entrypoint) kv('Entrypoint', JSON.stringify(img.entrypoint));
    if (img.cmd) kv('Cmd', JSON.stringify(img.cmd));
    if (img.workingDir) kv('WorkingDir', img.workingDir);
    if (img.exposedPorts.length) kv('Ports', img.exposedPorts.join(', '));
    if (img.env.length) {
      lines.push('Env');
      for (const e of img.env) lines.push(`  ${e}`);
    }
    if (Object.keys(img.labels).length) {
      lines.push('Labels');
      for (const [k, v] of Object.entries(img.labels)) lines.push(`  ${k}=${v}`);
    }
    if (Object.keys(img.annotations).length) {
      lines.push('Annotations');
      for (const [k, v] of Object.entries(img.annotations)) lines.push(`  ${k}=${v}`);
    }
    lines.push(`Layers (${img.layers.length})`);
    lines.push(`  ${'DIGEST'.padEnd(73)} ${'SIZE'.padStart(10)}  ${'DIFF_ID'.padEnd(73)} MEDIA TYPE`);
    for (const l of img.layers) lines.push(`  ${l.digest.padEnd(73)} ${fmt(l.size).padStart(10)}  ${(l.diffId ?? '-').padEnd(73)} ${l.mediaType}`);
    if (img.history.length) {
      lines.push(`History (${img.history.length})`);
      for (const h of img.history) lines.push(`  ${h.created ?? ''}  ${(h.createdBy ?? h.comment ?? '').replace(/\s+/g, ' ').slice(0, 120)}${h.emptyLayer ? '  (empty layer)' : ''}`);
    }
  }
  out(lines.join('\n'));
}

const SOURCES_HELP = `
Image names:
  REGISTRY/REPO[:TAG|@DIGEST]        an image in a registry (docker://… also accepted);
                                     familiar names such as alpine:3.19 mean docker.io/library/alpine:3.19
  oci:DIR[:REF]                      an OCI image layout directory (REF: ref name, digest or @N)
  oci-archive:FILE[:REF]             a tar of an OCI image layout
  docker-archive:FILE[:NAME:TAG|@N]  a \`docker save\` archive (plain or gzip-compressed)

Registries: HTTPS, except plain HTTP for localhost/127.0.0.1/::1 or with --insecure.
Credentials: --username/--password(-stdin), else Docker's config.json (auths, credHelpers, credsStore).`;

/**
 * Top-level commands and aliases (alias -> its command); a run that names one defines only that
 * one (start-up). test/cli-commands.test.ts checks it against what defining everything gives.
 */
export const COMMANDS: Readonly<Record<string, string>> = {
  inspect: 'inspect', manifest: 'manifest', config: 'config', digest: 'digest', copy: 'copy', cp: 'copy', tags: 'tags', ls: 'tags',
  provenance: 'provenance', catalog: 'catalog', sbom: 'sbom', scan: 'scan', db: 'db', check: 'check', policy: 'policy',
  serve: 'serve', certs: 'certs', version: 'version', demo: 'demo', key: 'key', sign: 'sign', verify: 'verify', attest: 'attest', 'verify-attestation': 'verify-attestation', triangulate: 'triangulate', 'sign-blob': 'sign-blob', 'verify-blob': 'verify-blob', dct: 'dct',
  golden: 'golden', rebase: 'rebase', images: 'images', history: 'history', consumers: 'consumers', findings: 'findings', inventory: 'inventory', api: 'api', store: 'store', watch: 'watch', lint: 'lint', ui: 'ui',
};

/**
 * The command line parser. With `argv`, only the command it starts is defined (when its first
 * word names one); `--help`, `help` and unknown words get every command.
 */
export function buildProgram(argv?: readonly string[]): Command {
  const first = argv?.find((a) => !a.startsWith('-'));
  const only = first !== undefined && argv![0] !== '--help' && !argv!.includes('-h') && !argv!.includes('--help') ? COMMANDS[first] : undefined;
  const want = (name: string) => only === undefined || only === name;
  const program = new Command();
  program
    .name('plinth')
    .exitOverride()
    .description('Plinth secures the base of every container image: what it is, where it came from (its base, with evidence), its packages and known vulnerabilities, and a policy enforced in CI and at Kubernetes admission.')
    .version(VERSION, '-v, --version', 'print the version (with --verbose: the Node, OpenSSL and SQLite it runs on)')
    .option('--debug', 'print stack traces for errors (anywhere on the line)')
    // Global options only before the command: `plinth golden import … --version 12` is the
    // command's own --version, and `plinth nosuch --version` is an unknown command.
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', SOURCES_HELP)
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  if (want('inspect'))
    addRegistryFlags(
      program
        .command('inspect')
        .description('show an image: digest, platforms, size, created, labels, annotations, layers and history')
        .argument('<image>', 'image to inspect')
        .addOption(new Option('--platform <os/arch[/variant]|all>', 'platform to select from a multi-platform image (default: this host\'s)'))
        .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table')),
    ).action(async (image: string, o: GlobalFlags & { platform?: string; format: string }) => {
      const { openSource, inspect } = await imageLib();
      const src = await openSource(image, await openOptions(o, image));
      try {
        const r = await inspect(src, platformChoice(o.platform));
        if (o.format === 'json') out(JSON.stringify(r, null, 2));
        else printInspectTable(r);
      } finally {
        await src.close();
      }
    });

  if (want('manifest'))
    addRegistryFlags(
      program
        .command('manifest')
        .description('print the raw manifest or index an image reference names (like crane manifest)')
        .argument('<image>')
        .option('--platform <os/arch[/variant]>', 'print the manifest of this platform instead of the index'),
    ).action(async (image: string, o: GlobalFlags & { platform?: string }) => {
      const { openSource, resolveRoot, selectImages } = await imageLib();
      const src = await openSource(image, await openOptions(o, image));
      try {
        const root = await resolveRoot(src);
        if (o.platform && root.kind === 'index') {
          const [img] = await selectImages(src, root, platformChoice(o.platform));
          process.stdout.write(img!.bytes);
        } else process.stdout.write(root.bytes);
      } finally {
        await src.close();
      }
    });

  if (want('config'))
    addRegistryFlags(
      program
        .command('config')
        .description('print the raw image config (like crane config)')
        .argument('<image>')
        .option('--platform <os/arch[/variant]>', 'platform to select from a multi-platform image (default: this host\'s)'),
    ).action(async (image: string, o: GlobalFlags & { platform?: string }) => {
      const { openSource, resolveRoot, selectImages, readConfig } = await imageLib();
      const src = await openSource(image, await openOptions(o, image));
      try {
        const root = await resolveRoot(src);
        const [img] = await selectImages(src, root, platformChoice(o.platform));
        const { bytes } = await readConfig(src, img!);
        process.stdout.write(bytes);
      } finally {
        await src.close();
      }
    });

  if (want('digest'))
    addRegistryFlags(
      program
        .command('digest')
        .description('print the digest of the manifest or index an image reference names')
        .argument('<image>'),
    ).action(async (image: string, o: GlobalFlags) => {
      const { openSource } = await imageLib();
      const src = await openSource(image, await openOptions(o, image));
      try {
        out((await src.resolve()).descriptor.digest);
      } finally {
        await src.close();
      }
    });

  if (want('copy'))
    addRegistryFlags(
      program
        .command('copy')
        .alias('cp')
        .description('copy an image between registries, OCI layouts and archives, keeping digests')
        .argument('<src>', 'source image')
        .argument('<dst>', 'destination')
        .option('--platform <os/arch[/variant]|all>', 'copy one platform of a multi-platform image (default: all of them; a docker-archive takes this host\'s)')
        .option('--src-username <user>', 'user for the source registry (default: --username)')
        .option('--src-password <password>', 'password for the source registry')
        .option('--dest-username <user>', 'user for the destination registry (default: --username)')
        .option('--dest-password <password>', 'password for the destination registry')
        .option('-j, --jobs <n>', 'blobs copied at once', '4')
        .option('-q, --quiet', 'no progress output')
        .option('--format <format>', 'summary format: text or json', 'text'),
    ).action(async (srcName: string, dstName: string, o: GlobalFlags & { platform?: string; srcUsername?: string; srcPassword?: string; destUsername?: string; destPassword?: string; jobs: string; quiet?: boolean; format: string }) => {
      const { openSource, openDestination, parseLocation, copyImage } = await imageLib();
      const srcBase = await openOptions(o, srcName);
      const dstBase = { ...srcBase, ...(await openOptions({ ...o, passwordStdin: false, ...(srcBase.password !== undefined ? { password: srcBase.password } : {}) }, dstName)) };
      const scope = (name: string) => {
        try {
          const l = parseLocation(name);
          return l.transport === 'registry' ? l.ref.registry : '(none)';
        } catch {
          return '(none)';
        }
      };
      // One GET /v2/ when source and destination are in one registry.
      const pings = new Map();
      const srcOpts = { ...srcBase, pings, ...(o.srcUsername !== undefined ? { username: o.srcUsername, password: o.srcPassword, credentialsFor: scope(srcName) } : {}) };
      const dstOpts = { ...dstBase, pings, ...(o.destUsername !== undefined ? { username: o.destUsername, password: o.destPassword, credentialsFor: scope(dstName) } : {}) };
      const jobs = Number(o.jobs);
      if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw new PlinthError('USAGE', `--jobs must be an integer from 1 to 64, got "${o.jobs}"`);
      parseLocation(dstName);
      const src = await openSource(srcName, srcOpts);
      let dst;
      try {
        dst = await openDestination(dstName, dstOpts);
      } catch (e) {
        await src.close();
        throw e;
      }
      const progress = progressReporter(process.stderr, o.quiet === true || o.format === 'json');
      try {
        const r = await copyImage(src, dst, { platform: platformChoice(o.platform), concurrency: jobs, onEvent: progress.onEvent });
        progress.finish();
        if (o.format === 'json') out(JSON.stringify(r, null, 2));
        else if (!o.quiet) process.stderr.write(`Copied ${src.description} to ${dst.description}\n`), out(r.digest);
        else out(r.digest);
      } finally {
        await dst.close();
        await src.close();
      }
    });

  if (want('tags'))
    addRegistryFlags(
      program
        .command('tags')
        .alias('ls')
        .description('list the tags of a repository (like crane ls)')
        .argument('<repository>', 'e.g. registry.example.com/team/app')
        .option('--format <format>', 'text or json', 'text'),
    ).action(async (repo: string, o: GlobalFlags & { format: string }) => {
      const [{ parseLocation }, { RegistryClient }] = await Promise.all([imageLib(), import('../registry/client.js')]);
      const loc = parseLocation(repo);
      if (loc.transport !== 'registry') throw new PlinthError('USAGE', 'tags lists a registry repository');
      const client = new RegistryClient(loc.ref.registry, await openOptions(o, repo));
      try {
        const tags = await client.listTags(loc.ref.repository);
        if (o.format === 'json') out(JSON.stringify({ repository: loc.ref.name, tags }, null, 2));
        else if (tags.length) out(tags.join('\n'));
      } finally {
        client.close();
      }
    });

  const helpers = { addRegistryFlags, openOptions: (f: Record<string, unknown>, image?: string) => openOptions(f as GlobalFlags, image), platformChoice, out, want };
  registerProvenance(program, helpers);
  registerSbom(program, helpers);
  registerScan(program, helpers);
  registerCheck(program, helpers);
  registerServe(program, helpers);
  registerSign(program, helpers);
  registerDct(program, helpers);
  registerStore(program, helpers);
  registerGolden(program, helpers);
  registerRebase(program, helpers);
  registerWatch(program, helpers);
  registerLint(program, helpers);
  registerUi(program, helpers);

  if (want('version'))
    program
      .command('version')
      .description('print Plinth\'s version and the Node, V8, OpenSSL and SQLite it runs on')
      .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
      .action((o: { format: string }) => {
        const v = versionInfo();
        out(o.format === 'json' ? JSON.stringify(v, null, 2) : formatVersionInfo(v));
      });

  if (want('demo'))
    program
      .command('demo')
      .description('the whole lifecycle on embedded defaults (a registry on loopback, an embedded store): golden import, gate, publish, an app on the base, provenance, scan, policy check and admission, a new base version, deprecation, consumers notified, rebase, signature verified, a day-2 advisory; with --ui, then the dashboard on the demo\'s store')
      .option('--keep', 'keep the demo directory')
      .option('--ui', 'after the last step, serve the dashboard (plinth ui) on the demo\'s store on 127.0.0.1 until Ctrl-C (SIGINT) or SIGTERM; the demo\'s registry is stopped first (docs/ui.md)')
      .option('--port <n>', 'the dashboard\'s port with --ui (0: any free port; default 8081)')
      .action(async (o: { keep?: boolean; ui?: boolean; port?: string }) => {
        if (o.port !== undefined && !o.ui) throw new PlinthError('USAGE', '--port is the dashboard\'s port: give --ui too');
        const port = Number(o.port ?? '8081');
        if (o.port !== undefined && (!/^\d{1,5}$/.test(o.port) || port > 65535)) throw new PlinthError('USAGE', `--port must be 0-65535, got "${o.port}"`);
        const { runDemo } = await import('./demo.js');
        const until = () => new Promise<void>((resolve) => {
          process.once('SIGTERM', () => resolve());
          process.once('SIGINT', () => resolve());
        });
        await runDemo({ keep: o.keep === true, log: (s) => out(s), ...(o.ui ? { ui: { port, until } } : {}) });
      });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  // A closed pipe (plinth … | head) ends the program quietly, as for any Unix tool.
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    });
  }
  // `plinth --version` needs no parser (commander would print the same line after defining every
  // command: ~10 ms in the single-file executable, which has no launcher to answer it).
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    out(VERSION);
    return 0;
  }
  if (argv.includes('--verbose') && (argv.includes('--version') || argv.includes('-v')) && argv.every((a) => a.startsWith('-'))) {
    out(formatVersionInfo(versionInfo()));
    return 0;
  }
  const debug = argv.includes('--debug');
  // --debug is global wherever it is written; the parser sees the line without it.
  if (debug) argv = argv.filter((a) => a !== '--debug');
  // A match worker `plinth watch` starts (src/watch/rematch.ts matchParallel): JSON in, JSON out.
  if (argv[0] === '__match-units' && argv.length === 1) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    try {
      const { matchUnitsWorker } = await import('../watch/rematch.js');
      process.stdout.write(await matchUnitsWorker(Buffer.concat(chunks).toString('utf8')));
      return 0;
    } catch (e) {
      process.stderr.write(`plinth: ${describeError(e)}\n`);
      return 1;
    }
  }
  // An unknown command fails whatever follows it (commander would still honour a later --version).
  const first = argv.find((a) => !a.startsWith('-'));
  if (first !== undefined && first !== 'help' && !Object.hasOwn(COMMANDS, first)) {
    const near = Object.keys(COMMANDS).filter((c) => c.startsWith(first.slice(0, 3)));
    process.stderr.write(`plinth: unknown command '${first}'${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}; run plinth --help\n`);
    return 2;
  }
  const program = buildProgram(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    // Commands may set a non-zero status without failing (scan --exit-code, partial imports).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    if (debug && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    const code = e instanceof PlinthError ? e.code : 'ERROR';
    process.stderr.write(`plinth: ${describeError(e)}${code === 'USAGE' ? '' : ''}\n`);
    return e instanceof PlinthError && (e.code === 'USAGE' || e.code === 'TRANSPORT_INVALID' || e.code === 'REFERENCE_INVALID') ? 2 : 1;
  }
}

/**
 * Initialise the modules the image and signature commands use, without running anything: the
 * single-file executable calls this while V8 builds its start-up snapshot, so a run starts with
 * them loaded. Every module here makes the snapshot bigger, and every run pays for deserialising
 * it (measured: also warming provenance, policy, SBOM formats made --version 37 -> 43 ms, verify
 * 74 -> 79 ms, inspect 64 -> 67 ms, and saved check 69 -> 58 ms). Not the registry stack: Node
 * does not support node:http/https in a user snapshot (it aborts). The command bundles
 * (scripts/bundle.mjs) replace main's own imports of sign/index.js and sign/keys.js, which only
 * this function makes, by stand-ins: a command in main that needs them must not import them here.
 */
export async function warm(): Promise<void> {
  await Promise.all([imageLib(), import('../source/layout.js'), import('../source/store.js'), import('../sign/index.js'), import('../sign/keys.js')]);
  buildProgram();
}
