import { createHash } from 'node:crypto';
import { globMatch } from '../policy/glob.js';
import { post, validateTarget } from '../notify/notify.js';
import type { Owners } from '../golden/consumers.js';
import type { MetaStore } from '../store/store.js';
import { VERSION } from '../version.js';
import { markDelivered, undelivered, type StoredEvent } from './state.js';

/**
 * Tell owners what is new: the outbox's events not yet delivered, routed to owners and their
 * targets, batched into ONE message per (target, owner) per run — a digest, not one message per
 * workload or finding — and marked delivered only when the target accepted it. A target that fails
 * (503, a hang) is retried with backoff within the run and gets the same facts on the next run,
 * never twice once accepted.
 *
 * Routing: the event's owner is the image's authors/maintainer label, else the owners file entry
 * whose repository globs match; its targets are that entry's `notify` (an entry whose contact
 * equals a label owner counts too), else the default targets.
 */

export interface NotifyOptions {
  /** Where events of owners without their own targets go. */
  targets: string[];
  format?: 'cloudevents' | 'slack';
  owners?: Owners;
  attempts?: number;
  backoffMs?: number;
  timeoutMs?: number;
  onAttempt?: (target: string, owner: string, attempt: number, error: string | null) => void;
}

export interface NotifyReport {
  /** Messages accepted (one per target and owner). */
  messages: number;
  /** Facts they carried. */
  events: number;
  failed: Array<{ target: string; owner: string; events: number; error: string }>;
}

interface Route {
  owner: string;
  targets: Array<{ url: string; format: 'cloudevents' | 'slack' }>;
}

export function route(e: Pick<StoredEvent, 'owner' | 'repository'>, o: NotifyOptions): Route {
  const fallback = o.targets.map((url) => ({ url, format: o.format ?? 'cloudevents' }));
  const entries = o.owners?.owners ?? [];
  let owner = e.owner;
  let entry = owner ? entries.find((x) => x.contact === owner) : undefined;
  if (!owner && e.repository) {
    entry = entries.find((x) => (Array.isArray(x.repositories) ? x.repositories : [x.repositories]).some((p) => globMatch(p, e.repository!)));
    owner = entry?.contact ?? null;
  }
  const targets = entry?.notify?.length ? entry.notify.map((url) => ({ url, format: entry!.format ?? o.format ?? 'cloudevents' })) : fallback;
  return { owner: owner ?? 'unowned', targets };
}

/** The one message a target gets for one owner: a CloudEvent whose data lists the facts, or a Slack text. */
export function renderBatch(owner: string, events: StoredEvent[], format: 'cloudevents' | 'slack'): { body: string; contentType: string } {
  const types = [...new Set(events.map((e) => e.type))];
  if (format === 'slack') {
    // Slack's control characters: text from images (labels, names) must not mention @channel or link.
    const esc = (t: string) => t.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
    const lines = events.slice(0, 50).map((e) => `• ${esc(e.text)}`);
    if (events.length > 50) lines.push(`…and ${events.length - 50} more`);
    return { body: JSON.stringify({ text: `Plinth: ${events.length} new fact(s) for ${esc(owner)}\n${lines.join('\n')}` }), contentType: 'application/json' };
  }
  const id = createHash('sha256').update(events.map((e) => e.key).sort().join('\n')).digest('hex').slice(0, 32);
  return {
    body: JSON.stringify({
      specversion: '1.0',
      id,
      source: 'https://github.com/plinth-dev/plinth',
      // One kind of fact: its type; several: a digest whose data lists each with its own type.
      type: types.length === 1 ? types[0] : 'dev.plinth.digest',
      subject: owner,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      plinthversion: VERSION,
      data: { owner, count: events.length, types, events: events.map((e) => ({ type: e.type, subject: e.subject, time: e.created, data: e.data, text: e.text })) },
    }),
    contentType: 'application/cloudevents+json; charset=utf-8',
  };
}

export async function notifyOwners(store: MetaStore, o: NotifyOptions): Promise<NotifyReport> {
  for (const t of o.targets) validateTarget(t);
  for (const e of o.owners?.owners ?? []) for (const t of e.notify ?? []) validateTarget(t);
  const report: NotifyReport = { messages: 0, events: 0, failed: [] };
  const allTargets = new Map<string, 'cloudevents' | 'slack'>();
  for (const t of o.targets) allTargets.set(t, o.format ?? 'cloudevents');
  for (const e of o.owners?.owners ?? []) for (const t of e.notify ?? []) if (!allTargets.has(t)) allTargets.set(t, e.format ?? o.format ?? 'cloudevents');
  for (const [target] of allTargets) {
    const batches = new Map<string, { format: 'cloudevents' | 'slack'; events: StoredEvent[] }>();
    // Page through what this target has not settled; what is routed elsewhere is settled as such.
    let after: { created: string; key: string } | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = await undelivered(store, target, 5_000, after);
      const elsewhere: string[] = [];
      for (const e of page) {
        const r = route(e, o);
        const t = r.targets.find((x) => x.url === target);
        if (!t) {
          elsewhere.push(e.key);
          continue;
        }
        const b = batches.get(r.owner) ?? { format: t.format, events: [] };
        b.events.push(e);
        batches.set(r.owner, b);
      }
      await markDelivered(store, elsewhere, target, undefined, { notRouted: true });
      if (page.length < 5_000) break;
      after = { created: page[page.length - 1]!.created, key: page[page.length - 1]!.key };
    }
    for (const [owner, b] of batches) {
      // A digest stays readable: at most 500 facts per message.
      for (let i = 0; i < b.events.length; i += 500) {
        const part = b.events.slice(i, i + 500);
        const { body, contentType } = renderBatch(owner, part, b.format);
        const r = await post(target, body, contentType, { ...(o.attempts !== undefined ? { attempts: o.attempts } : {}), ...(o.backoffMs !== undefined ? { backoffMs: o.backoffMs } : {}), ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), onAttempt: (n, err) => o.onAttempt?.(target, owner, n, err) });
        if (r.ok) {
          await markDelivered(store, part.map((e) => e.key), target);
          report.messages++;
          report.events += part.length;
        } else report.failed.push({ target, owner, events: part.length, error: r.error ?? 'failed' });
      }
    }
  }
  return report;
}
