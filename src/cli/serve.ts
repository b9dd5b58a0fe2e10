import type { Command } from 'commander';
import { PlinthError } from '../util/errors.js';
import type { CliHelpers } from './provenance.js';
import { readInput } from './input.js';

/** `plinth serve` (the admission webhook) and `plinth certs` (its CA and serving certificate). */
export function registerServe(program: Command, h: CliHelpers): void {
  if (!h.want('serve') && !h.want('certs')) return;
  h.addRegistryFlags(
    program
      .command('serve')
      .description('run the Kubernetes admission webhook: POST /validate and /mutate (AdmissionReview v1), /imagepolicy (ImageReview), GET /healthz, /readyz, /metrics; with --api the store\'s API under /v1/, with --ui the dashboard')
      .requiredOption('--policy <file>', 'policy file (reloaded when it changes)')
      .option('--catalog <file>', 'catalog of known bases (reloaded when it changes)')
      .option('--db <path>', 'vulnerability database, for vulnerabilities rules')
      .requiredOption('--tls-cert <file>', 'serving certificate (PEM)')
      .requiredOption('--tls-key <file>', 'serving key (PEM)')
      .option('--client-ca <file>', 'require client certificates signed by this CA (the API server\'s)')
      .option('--port <n>', 'HTTPS port', '8443')
      .option('--host <addr>', 'address to listen on', '0.0.0.0')
      .option('--deadline-ms <n>', 'budget for all registry work of one request; keep it below the webhook timeoutSeconds', '8000')
      .option('--allow-private-registry <host...>', 'a registry on a loopback, private or link-local address that may be contacted (name, address or glob like *.registry.internal; repeatable). Hosts named literally in the policy\'s enforce allowedRegistries rules are allowed too')
      .option('--allow-private-networks', 'contact registries on any address (off by default: a pod spec must not make the webhook call cluster services or the metadata endpoint)')
      .option('--log-level <level>', 'info, warn, error, debug', 'info')
      .option('--store <target>', 'record every validating admission and ImageReview (decision, where the image runs) in this metadata store: an SQLite file or postgres://… (default $PLINTH_STORE); written in batches off the request path')
      .option('--cluster <name>', 'the cluster name recorded with admissions', 'default')
      .option('--store-queue <n>', 'admissions held for the store before new ones are dropped (counted in /metrics)', '10000')
      .option('--api', 'also serve the store\'s read-only API under /v1/ (needs --store; give --api-token)')
      .option('--api-token <token>', 'bearer token for the API and the dashboard (default: $PLINTH_API_TOKEN)')
      .option('--api-token-file <file>', 'read that token from a file (a mounted Secret)')
      .option('--ui', 'also serve the dashboard (the pages of plinth ui) on this HTTPS port: every GET other than the webhook\'s, /healthz, /readyz, /metrics and /v1/ (needs --store and --api-token, at least 16 characters: Authorization: Bearer … or the sign-in form\'s Secure cookie; docs/ui.md)'),
  ).action(async (o: Record<string, unknown> & { policy: string; catalog?: string; db?: string; tlsCert: string; tlsKey: string; clientCa?: string; port: string; host: string; deadlineMs: string; logLevel: string; allowPrivateRegistry?: string[]; allowPrivateNetworks?: boolean; store?: string; cluster: string; storeQueue: string; api?: boolean; apiToken?: string; apiTokenFile?: string; ui?: boolean }) => {
    if (o.username !== undefined || o.password !== undefined || o.passwordStdin) {
      throw new PlinthError('USAGE', 'the webhook reaches many registries: give credentials per registry in a Docker config file (--authfile, auths/credHelpers), not --username/--password');
    }
    const port = Number(o.port);
    const deadlineMs = Number(o.deadlineMs);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new PlinthError('USAGE', `--port must be 0-65535, got "${o.port}"`);
    if (!Number.isFinite(deadlineMs) || deadlineMs < 100 || deadlineMs > 29_000) throw new PlinthError('USAGE', `--deadline-ms must be between 100 and 29000 (webhook timeouts are at most 30 s), got "${o.deadlineMs}"`);
    const [cert, key, clientCa] = await Promise.all([readInput(o.tlsCert, 'TLS certificate'), readInput(o.tlsKey, 'TLS key'), o.clientCa ? readInput(o.clientCa, 'client CA') : Promise.resolve(undefined)]);
    const { default: pino } = await import('pino');
    const logger = pino({ level: o.logLevel, base: { component: 'plinth-webhook' }, timestamp: pino.stdTimeFunctions.isoTime });
    // The store URL may come from the environment (a Kubernetes Secret), never needing to be an argument.
    o.store ??= process.env.PLINTH_STORE || undefined;
    const queue = Number(o.storeQueue);
    if (!Number.isInteger(queue) || queue < 1 || queue > 10_000_000) throw new PlinthError('USAGE', `--store-queue must be a positive integer, got "${o.storeQueue}"`);
    if (o.api && !o.store) throw new PlinthError('USAGE', '--api serves the store: give --store too');
    if (o.apiToken && o.apiTokenFile) throw new PlinthError('USAGE', 'give --api-token or --api-token-file, not both');
    const apiToken = o.apiTokenFile ? (await readInput(o.apiTokenFile, 'API token file')).toString('utf8').trim() : o.apiToken ?? process.env.PLINTH_API_TOKEN;
    if (o.apiTokenFile && !apiToken) throw new PlinthError('USAGE', `the API token file ${o.apiTokenFile} is empty`);
    if (o.api && !apiToken) throw new PlinthError('USAGE', '--api on the webhook\'s port needs --api-token, --api-token-file or $PLINTH_API_TOKEN: the store must not be readable by anyone who reaches the webhook');
    if (o.ui && !o.store) throw new PlinthError('USAGE', '--ui serves the dashboard of the store: give --store too (or $PLINTH_STORE)');
    if (o.ui && !apiToken) throw new PlinthError('USAGE', '--ui on the webhook\'s port needs --api-token, --api-token-file or $PLINTH_API_TOKEN: the dashboard must not be readable by anyone who reaches the webhook');
    if (o.ui && apiToken!.length < 16) throw new PlinthError('USAGE', 'with --ui the access token (--api-token, $PLINTH_API_TOKEN) must be at least 16 characters');
    const { PolicyDecider } = await import('../admission/policydecider.js');
    const { startServer } = await import('../admission/server.js');
    let meta: import('../store/connector.js').StoreConnector | undefined;
    let recorder: import('../store/recorder.js').AdmissionRecorder | undefined;
    if (o.store) {
      const [{ StoreConnector }, { AdmissionRecorder }] = await Promise.all([import('../store/connector.js'), import('../store/recorder.js')]);
      meta = new StoreConnector(o.store, Number(process.env.PLINTH_STORE_RETRY_MS ?? 10_000));
      // A store that is not a store (a newer schema, a foreign file) is a configuration error: refuse
      // to start. One that cannot be reached (PostgreSQL down) is not: admission goes on, recording
      // resumes when it is back, and what is lost meanwhile is counted.
      try {
        await meta.get();
      } catch (e) {
        if (!(e instanceof PlinthError && e.code === 'STORE_UNAVAILABLE')) throw e;
        logger.warn({ error: e.message }, 'the store is not reachable; admissions are not recorded until it is');
      }
      const { redactUrl } = await import('../store/sql.js');
      const target = redactUrl(meta.target);
      recorder = new AdmissionRecorder(meta, { cluster: o.cluster, maxQueue: queue, onError: (message, dropped) => logger.warn({ store: target, dropped, error: message }, 'admissions not recorded') });
    }
    let clear: () => void = () => {};
    const decider = await PolicyDecider.create({
      policyFile: o.policy,
      ...(o.catalog ? { catalogFile: o.catalog } : {}),
      ...(o.db ? { dbPath: o.db } : {}),
      registryOptions: await h.openOptions(o),
      logger,
      onReload: () => clear(),
      denyPrivateNetworks: o.allowPrivateNetworks !== true,
      ...(o.allowPrivateRegistry ? { allowPrivateRegistries: o.allowPrivateRegistry } : {}),
    });
    const rec = recorder;
    const apiHandler = o.api && meta ? (await import('../store/api.js')).apiHandler(meta, { token: apiToken! }) : undefined;
    // The dashboard: the same token, the sign-in cookie Secure (HTTPS), the catalog as last reloaded.
    const uiHandler = o.ui && meta ? (await import('../ui/server.js')).uiHandler(meta, { token: apiToken!, secureCookie: true, ...(o.catalog ? { catalog: () => decider.currentCatalog() } : {}) }) : undefined;
    const server = await startServer(decider, { cert, key, ...(clientCa ? { clientCa } : {}), port, host: o.host, deadlineMs, logger, ...(rec ? { onAdmission: (e) => void rec.record(e) } : {}), ...(apiHandler ? { apiHandler } : {}), ...(uiHandler ? { uiHandler } : {}) });
    clear = server.clearCache;
    if (rec) {
      const { Counter, Gauge } = await import('prom-client');
      new Gauge({ name: 'plinth_store_queue_depth', help: 'Admissions waiting to be written to the store', registers: [server.metrics], collect() { this.set(rec.stats.queued); } });
      const last = { written: 0, dropped_queue_full: 0, dropped_store_error: 0 };
      new Counter({
        name: 'plinth_store_admissions_total',
        help: 'Admissions by what happened to their record: written, dropped_queue_full, dropped_store_error',
        labelNames: ['result'],
        registers: [server.metrics],
        collect() {
          const now = { written: rec.stats.written, dropped_queue_full: rec.stats.dropped.queueFull, dropped_store_error: rec.stats.dropped.storeError };
          for (const k of Object.keys(now) as Array<keyof typeof now>) {
            this.inc({ result: k }, now[k] - last[k]);
            last[k] = now[k];
          }
        },
      });
    }
    h.out(`plinth webhook listening on https://${o.host}:${server.port}${o.api ? '; store API on /v1/' : ''}${uiHandler ? '; dashboard on /' : ''}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    logger.info('shutting down');
    await server.close();
    decider.close();
    await recorder?.close();
    await meta?.close();
  });

  program
    .command('certs')
    .description('create a CA and a serving certificate for the webhook Service, and print the caBundle for the webhook configurations')
    .requiredOption('--service <name>', 'the webhook Service name, e.g. plinth')
    .requiredOption('--namespace <ns>', 'its namespace, e.g. plinth-system')
    .requiredOption('--dir <dir>', 'where to write ca.crt, ca.key, tls.crt, tls.key')
    .option('--dns-name <name...>', 'extra DNS names')
    .option('--ip <addr...>', 'extra IP addresses')
    .option('--days <n>', 'validity in days', '365')
    .option('--format <format>', 'text or json', 'text')
    .action(async (o: { service: string; namespace: string; dir: string; dnsName?: string[]; ip?: string[]; days: string; format: string }) => {
      const { createCertificates } = await import('../admission/certs.js');
      const c = await createCertificates({ service: o.service, namespace: o.namespace, dir: o.dir, days: Number(o.days), ...(o.dnsName ? { dnsNames: o.dnsName } : {}), ...(o.ip ? { ipAddresses: o.ip } : {}) });
      if (o.format === 'json') h.out(JSON.stringify({ caBundle: c.caBundle, dnsNames: c.dnsNames, notAfter: c.notAfter, files: c.files }, null, 2));
      else {
        h.out(`wrote ${Object.values(c.files).join(', ')}`);
        h.out(`serving certificate for ${c.dnsNames.join(', ')} until ${c.notAfter}`);
        h.out(`kubectl -n ${o.namespace} create secret tls ${o.service}-tls --cert=${c.files.cert} --key=${c.files.key}`);
        h.out(`caBundle: ${c.caBundle}`);
      }
    });
}
