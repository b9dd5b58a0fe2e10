import type { Catalog } from '../provenance/catalog.js';
import type { DecisionRecord, FindingRow, ImageSummary, MetaStore, TagEvent } from '../store/store.js';
import { consumers } from '../store/queries.js';
import { html, raw, qs, refPath, type Html } from './html.js';
import { SEVERITIES, baseLines, baseRef, catalogLines, imageDetails, indexUri, imageTable, lastVerdicts, overview, type ImageDetails, type ImageTableQuery, type Verdict } from './data.js';

/** The dashboard's pages: server-rendered HTML, no script, every value escaped (html.ts). */

/** Rows a list page shows before pointing at the paged images table. */
const LIST_CAP = 500;

export function layout(title: string, body: Html, o: { user?: string; nav?: string } = {}): string {
  const link = (href: string, label: string, key: string) => html`<a href="${href}"${o.nav === key ? raw(' aria-current="page"') : ''}>${label}</a>`;
  return `<!doctype html>${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title} \u00b7 Plinth</title><link rel="stylesheet" href="/static/plinth.css"></head>
<body><a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Main"><a class="brand" href="/">Plinth</a> ${link('/', 'Overview', 'overview')} ${link('/images', 'Images', 'images')} ${link('/bases', 'Bases', 'bases')} ${link('/decisions', 'Decisions', 'decisions')}
<form class="search" action="/vulnerabilities" method="get" role="search"><label for="q-cve">Vulnerability</label> <input id="q-cve" name="id" placeholder="CVE-\u2026" size="16"> <button>Go</button></form></nav>${o.user ? html`<span class="user">${o.user}</span>` : ''}</header>
<main id="main" tabindex="-1"><h1>${title}</h1>${body}</main><footer>Plinth dashboard \u00b7 read-only</footer></body></html>`}`;
}

export function errorPage(status: number, title: string, message: string): string {
  return layout(title, html`<p class="error" role="alert">${message}</p><p><a href="/">Back to the overview</a></p>`, { nav: `e${status}` });
}

function short(d: string | null | undefined): string {
  return d ? d.replace(/^sha256:/, '').slice(0, 12) : '\u2013';
}

/** NAME:TAG@sha256:abcdef012345… shortened to its first 12 hex digits. */
function shortRef(r: string): string {
  return r.includes('@') ? r.replace(/@sha256:([a-f0-9]{12})[a-f0-9]*$/, '@$1') : short(r);
}

function bytes(n: number | null): string {
  if (n === null) return '\u2013';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) v /= 1024, i++;
  return `${i ? v.toFixed(1) : v} ${u[i]}`;
}

export function imageHref(i: { repository: string; digest: string }): string {
  return `/images/${refPath(`${i.repository}@${i.digest}`)}`;
}

export function baseHref(ref: string): string {
  return `/bases/${refPath(ref)}`;
}

export function vulnHref(id: string): string {
  return `/vulnerabilities/${encodeURIComponent(id)}`;
}

function baseCell(i: ImageSummary): Html {
  if (!i.base) return html`<span class="muted">unknown</span>`;
  const ref = baseRef(i.base);
  const label = `${i.base.name ?? '?'}${i.base.tag ? `:${i.base.tag}` : ''}${i.base.digest ? `@${short(i.base.digest)}` : ''}`;
  return html`${ref ? html`<a href="${baseHref(ref)}">${label}</a>` : label} ${status(i.base.status)}${i.base.behind ? html` <span class="badge warn" title="${i.base.behindSince ? `since ${i.base.behindSince}` : 'newer approved versions of its line exist'}">behind${i.base.behindVersions ? ` by ${i.base.behindVersions}` : ''}</span>` : ''}`;
}

function status(s: string | null): Html {
  return html`<span class="badge s-${(s ?? 'unknown').replace(/[^a-z]/g, '')}">${s ?? 'unknown'}</span>`;
}

function sev(s: string): Html {
  return html`<span class="sev sev-${s.toLowerCase().replace(/[^a-z]/g, '')}">${s}</span>`;
}

function vulnCell(i: ImageSummary): Html {
  const v = i.vulnerabilities;
  if (!v) return html`<span class="muted">${i.scannedAt ? '0' : 'not scanned'}</span>`;
  const b = v.bySeverity;
  return html`<span title="base ${v.base} / app ${v.image}, fixable ${v.fixable}">${v.total}</span> <small>C${b.CRITICAL ?? 0} H${b.HIGH ?? 0} M${b.MEDIUM ?? 0} L${b.LOW ?? 0} \u00b7 base ${v.base} / app ${v.image} \u00b7 fixable ${v.fixable}</small>`;
}

function runningCell(i: ImageSummary): Html {
  if (!i.running.length) return html`<span class="muted">\u2013</span>`;
  return html`${i.running.slice(0, 3).map((r, n) => html`${n ? ', ' : ''}<a href="/images${qs({ namespace: r.namespace })}">${r.cluster}/${r.namespace}</a>/${r.workload}`)}${i.running.length > 3 ? ` +${i.running.length - 3}` : ''}`;
}

function stat(label: string, value: number | string, href?: string): Html {
  return html`<div class="stat"><span class="n">${href ? html`<a href="${href}">${value}</a>` : value}</span><span class="l">${label}</span></div>`;
}

/** Open findings per day as an inline SVG (drawn here: no script, no chart library), with the numbers as text too. */
function trendSvg(t: Array<{ day: string; open: number }>): Html {
  if (!t.length) return html``;
  const w = 600;
  const h = 120;
  const max = Math.max(1, ...t.map((x) => x.open));
  const x = (i: number) => (t.length === 1 ? w / 2 : (i * (w - 20)) / (t.length - 1) + 10);
  const y = (n: number) => h - 15 - (n * (h - 30)) / max;
  const points = t.map((p, i) => `${x(i).toFixed(1)},${y(p.open).toFixed(1)}`).join(' ');
  const first = t[0]!;
  const last = t.at(-1)!;
  const label = `Open findings per day from ${first.day} (${first.open}) to ${last.day} (${last.open}), at most ${max}`;
  return html`<figure class="trend"><svg data-testid="trend" role="img" aria-label="${label}" viewBox="0 0 ${w} ${h}"><title>${label}</title><line x1="10" y1="${h - 15}" x2="${w - 10}" y2="${h - 15}" stroke="#c5cbd3"/><polyline fill="none" stroke="#0b5cad" stroke-width="2" points="${points}"/><text x="10" y="12" font-size="11" fill="#4a5360">${max}</text><text x="10" y="${h - 2}" font-size="11" fill="#4a5360">${first.day}</text><text x="${w - 10}" y="${h - 2}" font-size="11" fill="#4a5360" text-anchor="end">${last.day}</text></svg><figcaption>Open findings over the last ${t.length} days</figcaption></figure>`;
}

export async function overviewPage(store: MetaStore, o: { catalog?: Catalog; user?: string }): Promise<string> {
  const v = await overview(store, o);
  const share = v.withBase ? Math.round((100 * v.onNewestBase) / v.withBase) : 0;
  const body = html`<section aria-labelledby="h-images"><h2 id="h-images">Images</h2><div class="stats" data-testid="image-stats">
${stat('images known', v.images, '/images')}${stat('running', v.running)}${stat('scanned', v.scanned)}${stat('with a known base', v.withBase, '/bases')}${stat('on the newest approved base', `${v.onNewestBase} (${share}%)`)}${stat('behind', v.behind)}</div></section>
<section aria-labelledby="h-dec"><h2 id="h-dec">Policy decisions</h2><div class="stats" data-testid="decision-stats">${stat('decisions', v.decisions.total, '/decisions')}${stat('allowed', v.decisions.allowed)}${stat('denied', v.decisions.denied, '/decisions?allowed=false')}${stat('allowed with warnings', v.decisions.warned)}</div></section>
<section aria-labelledby="h-vuln"><h2 id="h-vuln">Open findings</h2><p data-testid="finding-total">${v.findings.total} open findings: ${v.findings.base} in base layers, ${v.findings.app} in app layers, ${v.findings.fixable} fixable.</p>
${trendSvg(v.trend)}<div class="scroll"><table data-testid="findings-by-severity"><caption>Open findings by severity, base and app</caption><thead><tr><th scope="col">Severity</th><th scope="col">Base</th><th scope="col">App</th></tr></thead><tbody>
${SEVERITIES.map((s) => html`<tr><th scope="row">${sev(s)}</th><td>${v.findings.bySeverity[s]!.base}</td><td>${v.findings.bySeverity[s]!.app}</td></tr>`)}</tbody></table></div></section>`;
  return layout('Overview', body, { nav: 'overview', ...(o.user ? { user: o.user } : {}) });
}

export function parseTableQuery(q: URLSearchParams): ImageTableQuery {
  const num = (k: string) => {
    const n = Number(q.get(k));
    return Number.isInteger(n) && n > 0 ? n : undefined;
  };
  const s = (k: string) => {
    const v = q.get(k)?.trim();
    return v ? v.slice(0, 500) : undefined;
  };
  const out: ImageTableQuery = {};
  for (const k of ['repository', 'cve', 'package', 'base', 'namespace', 'owner', 'sort'] as const) {
    const v = s(k);
    if (v) out[k] = v;
  }
  if (q.get('dir') === 'desc') out.dir = 'desc';
  const page = num('page');
  const size = num('size');
  if (page) out.page = page;
  if (size) out.size = size;
  return out;
}

export async function imagesPage(store: MetaStore, q: ImageTableQuery, o: { catalog?: Catalog; user?: string }): Promise<string> {
  const t = await imageTable(store, q, o);
  const verdicts = await lastVerdicts(store, t.rows);
  // A signature on the image, or on the index it is a platform of (plinth verify TAG signs what the tag names).
  const signed = await store.resourcesWith('ATTESTATION', { uris: [...new Set(t.rows.flatMap((i) => [i.uri, indexUri(i) ?? []].flat()))] });
  const keep = { repository: q.repository, cve: q.cve, package: q.package, base: q.base, namespace: q.namespace, owner: q.owner, size: q.size };
  const sortLink = (key: string, label: string) => {
    const active = (q.sort ?? 'repository') === key;
    const dir = active && q.dir !== 'desc' ? 'desc' : 'asc';
    return html`<a href="/images${qs({ ...keep, sort: key, dir })}"${active ? raw(` aria-sort-dir="${q.dir === 'desc' ? 'descending' : 'ascending'}"`) : ''}>${label}${active ? (q.dir === 'desc' ? ' \u25bc' : ' \u25b2') : ''}</a>`;
  };
  const field = (name: string, label: string, value: string | undefined) => html`<p><label for="f-${name}">${label}</label><input id="f-${name}" name="${name}" value="${value ?? ''}"></p>`;
  const pager = html`<nav class="pager" aria-label="Pages"><span data-testid="page-info">Page ${t.page} of ${t.pages} \u00b7 ${t.total} images</span>
${t.page > 1 ? html` <a rel="prev" href="/images${qs({ ...keep, sort: q.sort, dir: q.dir, page: t.page - 1 })}">Previous</a>` : ''}${t.page < t.pages ? html` <a rel="next" href="/images${qs({ ...keep, sort: q.sort, dir: q.dir, page: t.page + 1 })}">Next</a>` : ''}</nav>`;
  const body = html`<form class="filters" method="get" action="/images" role="search" aria-label="Filter images">${field('repository', 'Repository', q.repository)}${field('cve', 'CVE / advisory', q.cve)}${field('package', 'Package', q.package)}${field('base', 'Base', q.base)}${field('namespace', 'Namespace', q.namespace)}${field('owner', 'Owner', q.owner)}<p><button type="submit">Filter</button> <a href="/images">Clear</a></p></form>
${pager}<div class="scroll"><table data-testid="images"><caption>Images (sorted by ${q.sort ?? 'repository'})</caption><thead><tr><th scope="col">${sortLink('repository', 'Repository')}</th><th scope="col">Tags</th><th scope="col">Digest</th><th scope="col">Where it runs</th><th scope="col">${sortLink('base', 'Base')}</th><th scope="col">${sortLink('vulnerabilities', 'Vulnerabilities')}</th><th scope="col">${sortLink('size', 'Size')}</th><th scope="col">Owner</th><th scope="col">Signature</th><th scope="col">Last verdict</th></tr></thead><tbody>
${t.rows.length ? t.rows.map((i) => html`<tr><td><a href="${imageHref(i)}">${i.repository}</a>${i.platform ? html` <small>${i.platform}</small>` : ''}</td><td>${i.tags.join(', ') || '\u2013'}</td><td><code>${short(i.digest)}</code></td><td>${runningCell(i)}</td><td>${baseCell(i)}</td><td>${vulnCell(i)}</td><td>${bytes(i.size)}</td><td>${i.owner ?? '\u2013'}</td><td>${signed.has(i.uri) || signed.has(indexUri(i) ?? '') ? html`<a href="${imageHref(i)}#h-sigs"><span class="badge signed">verified</span></a>` : html`<span class="muted">none recorded</span>`}</td><td>${verdictCell(verdicts.get(i.uri))}</td></tr>`) : html`<tr><td colspan="10">No image matches.</td></tr>`}</tbody></table></div>${pager}`;
  return layout('Images', body, { nav: 'images', ...(o.user ? { user: o.user } : {}) });
}

function dl(rows: Array<[string, Html | string | number | null | undefined]>): Html {
  return html`<dl class="facts">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v === null || v === undefined || v === '' ? html`<span class="muted">\u2013</span>` : v}</dd>`)}</dl>`;
}

function findingsTable(fs: FindingRow[], o: { withImage?: boolean } = {}): Html {
  if (!fs.length) return html`<p>No open findings.</p>`;
  const sorted = [...fs].sort((a, b) => SEVERITIES.indexOf(a.severity as never) - SEVERITIES.indexOf(b.severity as never) || a.id.localeCompare(b.id));
  return html`<div class="scroll"><table data-testid="findings"><thead><tr><th scope="col">Advisory</th>${o.withImage ? html`<th scope="col">Image</th>` : ''}<th scope="col">Severity</th><th scope="col">Package</th><th scope="col">Installed</th><th scope="col">Fixed in</th><th scope="col">Layer</th><th scope="col">State</th></tr></thead><tbody>
${sorted.map((f) => html`<tr><td><a href="${vulnHref(f.id)}">${f.id}</a>${f.title ? html`<br><small>${f.title}</small>` : ''}</td>${o.withImage ? html`<td><a href="${imageHref(f)}">${f.repository}@${short(f.digest)}</a></td>` : ''}<td>${sev(f.severity)}</td><td>${f.package}</td><td>${f.installedVersion ?? '\u2013'}</td><td>${f.fixedVersion ?? html`<span class="muted">no fix</span>`}</td><td>${f.origin === 'base' ? 'base' : 'app'}</td><td>${f.resolved ? `resolved ${f.resolved}` : 'open'}</td></tr>`)}</tbody></table></div>`;
}

function verdictBadge(d: Verdict): Html {
  return d.allowed ? (d.messages.length ? html`<span class="badge warn">warn</span>` : html`<span class="badge ok">allowed</span>`) : html`<span class="badge bad">denied</span>`;
}

function verdictCell(d: Verdict | undefined): Html {
  if (!d) return html`<span class="muted">\u2013</span>`;
  return html`${verdictBadge(d)} <small title="${d.messages.join('; ')}">${d.time.slice(0, 10)}${d.policy ? ` \u00b7 ${d.policy}` : ''}</small>`;
}

function decisionsTable(ds: Array<DecisionRecord & { id: number; count: number }>): Html {
  if (!ds.length) return html`<p>No decisions recorded.</p>`;
  return html`<div class="scroll"><table data-testid="decisions"><thead><tr><th scope="col">Time</th><th scope="col">Verdict</th><th scope="col">Image</th><th scope="col">Where</th><th scope="col">Policy</th><th scope="col">Messages</th></tr></thead><tbody>
${ds.map((d) => html`<tr><td>${d.time}${d.count > 1 ? html` <small>\u00d7${d.count}</small>` : ''}</td><td>${verdictBadge(d)} <small>${d.source}${d.mode ? ` \u00b7 ${d.mode}` : ''}</small></td><td>${d.digest && d.repository ? html`<a href="${imageHref({ repository: d.repository, digest: d.digest })}">${d.image}</a>` : d.image}</td><td>${[d.cluster, d.namespace, d.workload].filter(Boolean).join('/') || '\u2013'}</td><td>${d.policy ?? '\u2013'}${d.policyVersion ? ` ${d.policyVersion}` : ''}</td><td>${d.messages.length ? html`<ul>${d.messages.map((m) => html`<li>${m}</li>`)}</ul>` : '\u2013'}</td></tr>`)}</tbody></table></div>`;
}

function tagsTable(tags: TagEvent[]): Html {
  if (!tags.length) return html`<p>No tag observed.</p>`;
  return html`<div class="scroll"><table data-testid="tags"><thead><tr><th scope="col">Tag</th><th scope="col">First seen</th><th scope="col">Last seen</th><th scope="col">Seen by</th></tr></thead><tbody>${tags.map((t) => html`<tr><td>${t.repository}:${t.tag}</td><td>${t.firstSeen}</td><td>${t.lastSeen}</td><td>${t.source ?? '\u2013'}</td></tr>`)}</tbody></table></div>`;
}

function layersTable(x: ImageDetails): Html {
  if (!x.layers.length) return html`<p class="muted">No layers recorded (recorded by plinth provenance or scan with --store).</p>`;
  const total = (o: string | null) => x.layers.filter((l) => l.origin === o).reduce((a, l) => a + l.size, 0);
  const nBase = x.layers.filter((l) => l.origin === 'base').length;
  return html`<p data-testid="layer-split">${nBase ? html`${nBase} layer(s) from the base (${bytes(total('base'))}), ${x.layers.length - nBase} added by the image (${bytes(total('image'))}).` : `${x.layers.length} layer(s)${x.layers.some((l) => l.origin === null) ? '; which of them the base brought is not known' : ''}.`}</p><div class="scroll"><table data-testid="layers"><thead><tr><th scope="col">#</th><th scope="col">From</th><th scope="col">Size (compressed)</th><th scope="col">Packages</th><th scope="col">Created by</th><th scope="col">Digest</th></tr></thead><tbody>
${x.layers.map((l) => html`<tr><td>${l.index + 1}</td><td>${l.origin === 'image' ? 'app' : l.origin ?? '?'}</td><td>${bytes(l.size)}</td><td>${l.packages && x.packages.length ? html`<a href="#layer-${l.index + 1}">${l.packages}</a>` : l.packages}</td><td>${l.createdBy ? html`<code>${l.createdBy.length > 300 ? `${l.createdBy.slice(0, 299)}\u2026` : l.createdBy}</code>` : html`<span class="muted">\u2013</span>`}</td><td><code>${short(l.digest)}</code></td></tr>`)}</tbody></table></div>`;
}

function packagesList(x: ImageDetails, count: number | null): Html {
  if (!x.packages.length) return html`<p class="muted">${x.packageCount ? `${x.packageCount} package(s) counted by plinth provenance; their list is recorded by plinth scan or sbom with --store.` : 'No packages recorded (plinth scan or sbom with --store).'}</p>`;
  const groups = new Map<number | null, ImageDetails['packages']>();
  for (const p of x.packages) groups.set(p.layerIndex, [...(groups.get(p.layerIndex) ?? []), p]);
  return html`${count !== null && count > x.packages.length ? html`<p>${x.packages.length} of ${count} packages are listed.</p>` : ''}${[...groups].map(([layer, ps]) => html`<details id="${layer === null ? 'layer-unknown' : `layer-${layer + 1}`}"${groups.size <= 2 && ps.length <= 50 ? raw(' open') : ''}><summary>${layer === null ? 'Layer unknown' : `Layer ${layer + 1}`}${ps[0]?.origin ? ` (${ps[0].origin === 'image' ? 'app' : ps[0].origin})` : ''}: ${ps.length} package(s)</summary><div class="scroll"><table data-testid="packages"><thead><tr><th scope="col">Package</th><th scope="col">Version</th><th scope="col">Type</th><th scope="col">License</th></tr></thead><tbody>${ps.map((p) => html`<tr><td><a href="/images${qs({ package: p.name })}">${p.name}</a></td><td>${p.version}</td><td>${p.type}</td><td>${p.license ?? '\u2013'}</td></tr>`)}</tbody></table></div></details>`)}`;
}

/** The image page: null when the store does not know the image (a 404). */
export async function imagePage(store: MetaStore, ref: string, o: { user?: string }): Promise<string | null> {
  const at = ref.lastIndexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : ref;
  const repository = at >= 0 ? ref.slice(0, at) : null;
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) return null;
  const images = (await store.images({ digest })).filter((i) => repository === null || i.repository === repository);
  if (!images.length) return null;
  const parts: Html[] = [];
  for (const i of images) {
    const findings = await store.findings({ uri: i.uri });
    const deployments = await store.deployments([i.uri]);
    const tags = (await store.tagHistory({ digest: i.digest })).filter((t) => t.repository === i.repository);
    // Decisions by digest, and those made on a reference only (a policy that needed no pull) by the image's current tags.
    const decisions = [...new Map([...(await store.decisions({ digest: i.digest, limit: 100 })), ...(await Promise.all([i.uri, ...i.tags.map((t) => `${i.repository}:${t}`)].map((image) => store.decisions({ image, limit: 100 })))).flat()].map((d) => [d.id, d])).values()].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : b.id - a.id));
    const x = await imageDetails(store, i.uri, { indexUri: indexUri(i) });
    const labels = Object.entries(i.labels);
    const L = (k: string) => i.labels[`org.opencontainers.image.${k}`] ?? null;
    parts.push(html`<section aria-labelledby="h-what"><h2 id="h-what">What is it?</h2>${dl([
      ['Reference', html`<code>${i.uri}</code>`],
      ['Tags', i.tags.join(', ')],
      ['Platform', i.platform],
      ['Index', i.indexDigest ? html`<code>${i.indexDigest}</code>` : null],
      ['OS', x.distribution ?? i.os],
      ['Packages', (i.packages ?? x.packageCount) === null ? null : html`<a href="#h-packages">${i.packages ?? x.packageCount}</a>`],
      ['Size', bytes(i.size)],
      ['Created', i.created],
      ['Title', L('title')],
      ['Version', L('version')],
      ['Vendor', L('vendor')],
      ['Licenses', L('licenses')],
      ['Owner', i.owner],
      ['First / last seen', `${i.firstSeen} / ${i.lastSeen}`],
    ])}
${labels.length ? html`<details><summary>Labels (${labels.length})</summary><table><tbody>${labels.map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${v}</td></tr>`)}</tbody></table></details>` : ''}</section>
<section aria-labelledby="h-base"><h2 id="h-base">Where did it come from?</h2>${dl([
      ['Base', baseCell(i)],
      ['Evidence confidence', i.base ? html`${i.base.confidence ?? '\u2013'}${x.baseVerified === true ? ' \u00b7 its layers are the image\'s first layers' : x.baseVerified === false ? ' \u00b7 known from metadata only (not confirmed by its layers)' : ''}` : null],
      ['Evidence', x.evidence.length ? html`<ul data-testid="evidence">${x.evidence.map((e) => html`<li>${e.kind}: ${e.source}${e.confirmed === true ? ' (layers confirmed)' : e.confirmed === false ? ' (layers do NOT match)' : ''}</li>`)}</ul>` : null],
      ['Catalog line', i.base?.line],
      ['Newest approved of the line', i.base?.newest ? html`<code>${i.base.newest}</code>` : null],
      ['Builder', x.builder],
      ['Source', L('source')],
      ['Revision', L('revision')],
    ])}${i.base?.behind ? html`<p>Rebuild or rebase onto the newest approved base: <code>plinth rebase ${i.tags[0] ? `${i.repository}:${i.tags[0]}` : i.uri} --dry-run</code></p>` : ''}</section>
<section aria-labelledby="h-rebuild"><h2 id="h-rebuild">How can I rebuild it?</h2>${x.rebuild ? html`${dl([
      ['Reproducible', x.rebuild.reproducible ? 'yes' : 'no'],
      ['Build materials', x.rebuild.materials],
    ])}${x.rebuild.missing.length ? html`<p>Missing for a reproducible rebuild:</p><ul data-testid="rebuild-missing">${x.rebuild.missing.map((m) => html`<li>${m}</li>`)}</ul>` : ''}${L('source') ? html`<p>Recipe: check out <code>${L('source')}</code>${L('revision') ? html` at <code>${L('revision')}</code>` : ''} and build on <code>${i.base?.digest ? `${i.base.name ?? '?'}@${i.base.digest}` : i.base?.name ?? 'its base'}</code>.</p>` : ''}` : html`<p class="muted">No provenance recorded (plinth provenance IMAGE --store \u2026).</p>`}</section>
<section aria-labelledby="h-layers"><h2 id="h-layers">Layers</h2>${layersTable(x)}</section>
<section aria-labelledby="h-vulns"><h2 id="h-vulns">Known vulnerabilities</h2><p>${vulnCell(i)}${i.scannedAt ? html` \u00b7 scanned ${i.scannedAt}${i.advisoryDb ? ` with ${i.advisoryDb}` : ''}` : ''}</p>${findingsTable(findings)}</section>
<section aria-labelledby="h-packages"><h2 id="h-packages">Packages</h2>${packagesList(x, i.packages)}</section>
<section aria-labelledby="h-sigs"><h2 id="h-sigs">Signatures and attestations</h2>${x.signatures.length ? html`<div class="scroll"><table data-testid="signatures"><thead><tr><th scope="col">Signer</th><th scope="col">Format</th><th scope="col">Found at</th><th scope="col">Signed digest</th><th scope="col">Verified</th></tr></thead><tbody>${x.signatures.map((g) => html`<tr><td><code>${g.signer}</code></td><td>${g.format}</td><td>${g.source}</td><td><code>${short(g.signedDigest)}</code>${g.viaIndex ? html` <small>(its index)</small>` : ''}</td><td>${g.verifiedAt ?? '\u2013'}</td></tr>`)}</tbody></table></div>` : html`<p>No verified signature recorded (<code>plinth verify IMAGE --key \u2026 --store \u2026</code> records them).</p>`}</section>
<section aria-labelledby="h-tags"><h2 id="h-tags">Tag history</h2>${tagsTable(tags)}</section>
<section aria-labelledby="h-ran"><h2 id="h-ran">Where it ran</h2>${deployments.length ? html`<div class="scroll"><table data-testid="deployments"><thead><tr><th scope="col">Cluster/namespace</th><th scope="col">Workload</th><th scope="col">Container</th><th scope="col">Seen</th><th scope="col">Now</th></tr></thead><tbody>${deployments.map((d) => html`<tr><td><a href="/images${qs({ namespace: d.namespace })}">${d.cluster}/${d.namespace}</a></td><td>${d.kind}/${d.name}</td><td>${d.container ?? '\u2013'}</td><td>${d.firstSeen} \u2013 ${d.lastSeen}</td><td>${d.running ? 'running' : 'gone'} <small>(${d.via})</small></td></tr>`)}</tbody></table></div>` : html`<p>Not seen running.</p>`}</section>
<section aria-labelledby="h-dec"><h2 id="h-dec">Decisions</h2>${decisionsTable(decisions)}</section>`);
  }
  return layout(images.length === 1 ? `${images[0]!.repository}@${short(digest)}` : `Image ${short(digest)}`, html`${parts}`, { nav: 'images', ...(o.user ? { user: o.user } : {}) });
}

export async function vulnerabilityPage(store: MetaStore, id: string, o: { user?: string }): Promise<string> {
  const all = await store.findings({ id, includeResolved: true });
  const open = all.filter((f) => !f.resolved);
  const images = new Set(open.map((f) => f.uri));
  const running = new Set((await store.images({ running: true })).map((i) => i.uri));
  const fixed = all.find((f) => f.fixedVersion)?.fixedVersion ?? null;
  const body = html`${all[0]?.title ? html`<p>${all[0].title}</p>` : ''}<p data-testid="vuln-summary">${images.size} image(s) affected now (${[...images].filter((u) => running.has(u)).length} running), ${all.length - open.length} finding(s) resolved. ${fixed ? html`Fixed in ${fixed}.` : 'No fix known.'}</p>
<p><a href="/images${qs({ cve: id })}">Images with ${id}</a> (filterable and paged)</p>${all.length ? html`${findingsTable(all.slice(0, LIST_CAP), { withImage: true })}${all.length > LIST_CAP ? html`<p>The first ${LIST_CAP} of ${all.length} findings; <a href="/images${qs({ cve: id })}">all affected images</a>.</p>` : ''}` : html`<p>No image in the store has this advisory.</p>`}`;
  return layout(id, body, { nav: 'vulns', ...(o.user ? { user: o.user } : {}) });
}

function versionsOverTime(lines: ReturnType<typeof catalogLines>): Html {
  if (!lines.length) return html``;
  return html`<section aria-labelledby="h-lines"><h2 id="h-lines">Catalog lines: versions over time</h2>${lines.map(({ line, versions }) => html`<div class="scroll"><table data-testid="line-versions"><caption>${line}</caption><thead><tr><th scope="col">Version</th><th scope="col">Platform</th><th scope="col">Created</th><th scope="col">Status</th><th scope="col">Since</th><th scope="col">Consumers</th><th scope="col">Move them</th></tr></thead><tbody>
${versions.map((v) => {
  const ref = `${v.name}@${v.digest}`;
  const since = v.status === 'deprecated' ? v.deprecatedAt : v.status === 'superseded' ? v.supersededAt : v.addedAt;
  return html`<tr><td>${v.consumers ? html`<a href="${baseHref(ref)}">${v.name}${v.tag ? `:${v.tag}` : ''}@${short(v.digest)}</a>` : html`${v.name}${v.tag ? `:${v.tag}` : ''}@${short(v.digest)}`}</td><td>${v.platform ?? '\u2013'}</td><td>${v.created ?? '\u2013'}</td><td>${status(v.status)}${v.reason ? html` <small>${v.reason}</small>` : ''}</td><td>${since ?? '\u2013'}</td><td>${v.consumers}</td><td>${v.consumers && (v.status === 'superseded' || v.status === 'deprecated') ? html`<code>plinth rebase --consumers-of ${ref} --store \u2026</code>` : '\u2013'}</td></tr>`;
})}</tbody></table></div>`)}</section>`;
}

export async function basesPage(store: MetaStore, o: { catalog?: Catalog; user?: string }): Promise<string> {
  const lines = await baseLines(store, o);
  const versions = catalogLines(o.catalog, lines.flatMap((l) => l.consumers));
  const inUse = lines.length
    ? html`<div class="scroll"><table data-testid="bases"><thead><tr><th scope="col">Line</th><th scope="col">Base</th><th scope="col">Status</th><th scope="col">Newest approved</th><th scope="col">Consumers</th><th scope="col">Behind</th><th scope="col">Move them</th></tr></thead><tbody>
${lines.map((b) => {
  const behind = b.consumers.filter((i) => i.base?.behind).length;
  const ref = baseRef(b);
  return html`<tr><td>${b.line ?? '\u2013'}</td><td>${ref ? html`<a href="${baseHref(ref)}">${b.name}${b.tag ? `:${b.tag}` : ''}${b.digest ? `@${short(b.digest)}` : ''}</a>` : '?'}</td><td>${status(b.status)}</td><td>${b.newest ? html`<code>${shortRef(b.newest)}</code>` : '\u2013'}</td><td>${b.consumers.length}</td><td>${behind}</td><td>${behind && ref ? html`<code>plinth rebase --consumers-of ${ref} --store \u2026</code>` : '\u2013'}</td></tr>`;
})}</tbody></table></div>`
    : html`<p>No image in the store has a known base.</p>`;
  const body = html`<section aria-labelledby="h-inuse"><h2 id="h-inuse">Bases in use</h2>${inUse}</section>${versionsOverTime(versions)}`;
  return layout('Bases', body, { nav: 'bases', ...(o.user ? { user: o.user } : {}) });
}

export async function basePage(store: MetaStore, ref: string, o: { catalog?: Catalog; user?: string }): Promise<string | null> {
  const c = await consumers(store, ref, o);
  if (!c.images.length) return null;
  const b = c.images[0]!.base!;
  const behind = c.images.filter((i) => i.base?.behind);
  const body = html`${dl([
    ['Repository', c.base.name],
    ['Tag', b.tag],
    ['Digest', c.base.digests.length ? html`${c.base.digests.map((d) => html`<code>${d}</code> `)}` : null],
    ['Status', status(b.status)],
    ['Catalog line', b.line],
    ['Newest approved', b.newest ? html`<code>${b.newest}</code>` : null],
  ])}
${behind.length ? html`<p>${behind.length} consumer(s) are behind. Rebase them all: <code>plinth rebase --consumers-of ${ref} --store \u2026</code></p>` : ''}
<h2>Consumers (${c.images.length})</h2>${c.images.length > LIST_CAP ? html`<p>The first ${LIST_CAP}; <a href="/images${qs({ base: ref })}">all consumers, filterable and paged</a>.</p>` : ''}<div class="scroll"><table data-testid="consumers"><thead><tr><th scope="col">Image</th><th scope="col">Tags</th><th scope="col">Vulnerabilities</th><th scope="col">Where it runs</th></tr></thead><tbody>${c.images.slice(0, LIST_CAP).map((i) => html`<tr><td><a href="${imageHref(i)}">${i.repository}@${short(i.digest)}</a></td><td>${i.tags.join(', ') || '\u2013'}</td><td>${vulnCell(i)}</td><td>${runningCell(i)}</td></tr>`)}</tbody></table></div>`;
  return layout(`Base ${c.base.name}${b.tag ? `:${b.tag}` : ''}`, body, { nav: 'bases', ...(o.user ? { user: o.user } : {}) });
}

export async function decisionsPage(store: MetaStore, q: URLSearchParams, o: { user?: string }): Promise<string> {
  const allowed = q.get('allowed');
  const ds = await store.decisions({ limit: 200, ...(allowed === 'true' || allowed === 'false' ? { allowed: allowed === 'true' } : {}) });
  const body = html`<p><a href="/decisions">All</a> \u00b7 <a href="/decisions?allowed=false">Denials</a> \u00b7 <a href="/decisions?allowed=true">Allowed (and warnings)</a></p>${decisionsTable(ds)}`;
  return layout('Decisions', body, { nav: 'decisions', ...(o.user ? { user: o.user } : {}) });
}

export function loginPage(message?: string): string {
  return layout('Sign in', html`${message ? html`<p class="error" role="alert">${message}</p>` : ''}<form method="post" action="/login"><p><label for="token">Access token</label> <input id="token" name="token" type="password" autocomplete="current-password" required></p><p><button type="submit">Sign in</button></p></form>`);
}

