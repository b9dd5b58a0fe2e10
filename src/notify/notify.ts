import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { PlinthError, describeError } from '../util/errors.js';
import { VERSION } from '../version.js';

/**
 * Telling people: one event per (fact, image), as CloudEvents 1.0 in structured JSON mode
 * (`application/cloudevents+json`) or a Slack-compatible `{"text": …}`, POSTed to each target with
 * retries and backoff, and never sent twice to the same target: what was delivered is remembered
 * in a state file (written atomically after each delivery), so a rerun, a restart or a receiver
 * that failed and recovered gets each event once. Shared by `golden deprecate|consumers --notify`
 * and, later, the day-2 worker.
 */

export interface PlinthEvent {
  /** CloudEvents type, e.g. dev.plinth.base.deprecated. */
  type: string;
  /** What the event is about (the affected image reference). */
  subject: string;
  /** Stable identity of the fact: the same fact gives the same id (and is sent once). */
  key: string;
  time?: string;
  data: Record<string, unknown>;
  /** One line for chat. */
  text: string;
}

export interface DeliveryOptions {
  format?: 'cloudevents' | 'slack';
  /** Where deliveries are remembered (default $XDG_STATE_HOME/plinth/notified.json). */
  statePath?: string;
  attempts?: number;
  /** First backoff in ms (doubles, at most 30 s). */
  backoffMs?: number;
  timeoutMs?: number;
  headers?: Record<string, string>;
  onAttempt?: (target: string, event: PlinthEvent, attempt: number, error: string | null) => void;
}

export interface DeliveryReport {
  sent: number;
  /** Already delivered earlier (to that target). */
  skipped: number;
  failed: Array<{ target: string; subject: string; error: string }>;
}

export function defaultStatePath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(homedir(), '.local', 'state');
  return path.join(xdg, 'plinth', 'notified.json');
}

export function eventId(e: Pick<PlinthEvent, 'type' | 'key'>): string {
  return createHash('sha256').update(`${e.type}\u0000${e.key}`).digest('hex').slice(0, 32);
}

/** The body a target receives. */
export function renderEvent(e: PlinthEvent, format: 'cloudevents' | 'slack'): { body: string; contentType: string } {
  if (format === 'slack') return { body: JSON.stringify({ text: e.text }), contentType: 'application/json' };
  return {
    body: JSON.stringify({
      specversion: '1.0',
      id: eventId(e),
      source: 'https://github.com/plinth-dev/plinth',
      type: e.type,
      subject: e.subject,
      time: e.time ?? new Date().toISOString(),
      datacontenttype: 'application/json',
      plinthversion: VERSION,
      data: e.data,
    }),
    contentType: 'application/cloudevents+json; charset=utf-8',
  };
}

function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

async function loadState(file: string): Promise<Record<string, string>> {
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (s && typeof s === 'object' && !Array.isArray(s)) return s as Record<string, string>;
    throw new Error('not an object');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new PlinthError('IO', `notification state ${file} is unreadable (${describeError(e)}); move it away to start afresh`);
  }
}

async function saveState(file: string, state: Record<string, string>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
  await rename(tmp, file);
}

/** A target for logs: scheme and host only (webhook URLs carry their secret in the path or query). */
export function maskTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return '(invalid URL)';
  }
}

export function validateTarget(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PlinthError('USAGE', `--notify ${url} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new PlinthError('USAGE', `--notify ${url}: only http(s) URLs are supported`);
  return u;
}

/**
 * POST one body to one target, retrying what can be retried (network errors, timeouts, 408, 425,
 * 429, 5xx; Retry-After honoured up to 30 s) with exponential backoff.
 */
export async function post(target: string, body: string, contentType: string, o: Pick<DeliveryOptions, 'attempts' | 'backoffMs' | 'timeoutMs' | 'headers'> & { onAttempt?: (attempt: number, error: string | null) => void } = {}): Promise<{ ok: boolean; error: string | null }> {
  const attempts = o.attempts ?? 5;
  let lastError = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let retryAfterMs: number | undefined;
    try {
      const res = await fetch(target, { method: 'POST', body, headers: { 'content-type': contentType, 'user-agent': `plinth/${VERSION}`, ...(o.headers ?? {}) }, signal: AbortSignal.timeout(o.timeoutMs ?? 10_000), redirect: 'error' });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        o.onAttempt?.(attempt, null);
        return { ok: true, error: null };
      }
      lastError = `HTTP ${res.status}`;
      const ra = res.headers.get('retry-after');
      if (ra !== null && /^\d{1,6}$/.test(ra.trim())) retryAfterMs = Math.min(Number(ra.trim()) * 1000, 30_000);
      if (!retryable(res.status)) {
        o.onAttempt?.(attempt, lastError);
        return { ok: false, error: lastError };
      }
    } catch (err) {
      lastError = (err as Error).name === 'TimeoutError' ? `no answer within ${o.timeoutMs ?? 10_000} ms` : describeError((err as { cause?: unknown }).cause ?? err);
    }
    o.onAttempt?.(attempt, lastError);
    if (attempt < attempts) await new Promise((r) => setTimeout(r, retryAfterMs ?? Math.min((o.backoffMs ?? 500) * 2 ** (attempt - 1), 30_000)));
  }
  return { ok: false, error: lastError };
}

/** POST every event to every target (each once, ever), retrying failures with backoff. */
export async function deliver(targets: string[], events: PlinthEvent[], o: DeliveryOptions = {}): Promise<DeliveryReport> {
  for (const t of targets) validateTarget(t);
  const format = o.format ?? 'cloudevents';
  const statePath = o.statePath ?? defaultStatePath();
  const state = await loadState(statePath);
  const attempts = o.attempts ?? 5;
  const report: DeliveryReport = { sent: 0, skipped: 0, failed: [] };
  for (const target of targets) {
    for (const e of events) {
      // Targets are often secrets (Slack webhook URLs): the state keeps a hash of them.
      const key = `${createHash('sha256').update(target).digest('hex').slice(0, 32)}:${eventId(e)}`;
      if (state[key]) {
        report.skipped++;
        continue;
      }
      const { body, contentType } = renderEvent(e, format);
      const r = await post(target, body, contentType, { ...o, attempts, onAttempt: (n, err) => o.onAttempt?.(target, e, n, err) });
      const ok = r.ok;
      const lastError = r.error ?? '';
      if (ok) {
        state[key] = new Date().toISOString();
        await saveState(statePath, state);
        report.sent++;
      } else report.failed.push({ target, subject: e.subject, error: lastError });
    }
  }
  return report;
}
