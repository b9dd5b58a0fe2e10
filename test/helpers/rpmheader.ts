/**
 * A minimal rpm header ENCODER, for tests: the inverse of src/packages/rpm.ts's parser, laid
 * out the way rpm writes headers into its database — entries sorted by tag, values aligned to
 * their type, an immutable region (tag 63) whose 16-byte trailer closes the region's data, and
 * optional "dribble" entries after the region.
 */

export type RpmValue =
  | { type: 'string'; value: string }
  | { type: 'i18n'; value: string[] }
  | { type: 'strings'; value: string[] }
  | { type: 'char'; value: Buffer }
  | { type: 'int16'; value: number[] }
  | { type: 'int32'; value: number[] }
  | { type: 'int64'; value: bigint[] }
  | { type: 'bin'; value: Buffer };

const TYPE_CODE = { char: 1, int16: 3, int32: 4, int64: 5, string: 6, bin: 7, strings: 8, i18n: 9 } as const;
const ALIGN = { char: 1, int16: 2, int32: 4, int64: 8, string: 1, bin: 1, strings: 1, i18n: 1 } as const;

function valueBytes(v: RpmValue): { bytes: Buffer; count: number } {
  switch (v.type) {
    case 'string':
      return { bytes: Buffer.from(v.value + '\0', 'utf8'), count: 1 };
    case 'i18n':
    case 'strings':
      return { bytes: Buffer.concat(v.value.map((s) => Buffer.from(s + '\0', 'utf8'))), count: v.value.length };
    case 'char':
    case 'bin':
      return { bytes: v.value, count: v.value.length };
    case 'int16': {
      const b = Buffer.alloc(2 * v.value.length);
      v.value.forEach((n, i) => b.writeUInt16BE(n, 2 * i));
      return { bytes: b, count: v.value.length };
    }
    case 'int32': {
      const b = Buffer.alloc(4 * v.value.length);
      v.value.forEach((n, i) => b.writeInt32BE(n, 4 * i));
      return { bytes: b, count: v.value.length };
    }
    case 'int64': {
      const b = Buffer.alloc(8 * v.value.length);
      v.value.forEach((n, i) => b.writeBigUInt64BE(n, 8 * i));
      return { bytes: b, count: v.value.length };
    }
  }
}

export interface EncodeOptions {
  /** Wrap the entries in an immutable region (tag 63), as rpm does. Default true. */
  region?: boolean;
  /** Entries appended after the region (they replace region entries with the same tag). */
  dribbles?: Array<[number, RpmValue]>;
}

interface Entry {
  tag: number;
  type: number;
  offset: number;
  count: number;
}

export function encodeRpmHeader(tags: Array<[number, RpmValue]>, options: EncodeOptions = {}): Buffer {
  const region = options.region ?? true;
  const sorted = [...tags].sort((a, b) => a[0] - b[0]);
  const chunks: Buffer[] = [];
  let size = 0;
  const entries: Entry[] = [];
  const put = (tag: number, v: RpmValue) => {
    const align = ALIGN[v.type];
    const pad = (align - (size % align)) % align;
    if (pad) {
      chunks.push(Buffer.alloc(pad));
      size += pad;
    }
    const { bytes, count } = valueBytes(v);
    entries.push({ tag, type: TYPE_CODE[v.type], offset: size, count });
    chunks.push(bytes);
    size += bytes.length;
  };
  for (const [tag, v] of sorted) put(tag, v);
  let regionEntry: Entry | undefined;
  if (region) {
    const ril = entries.length + 1;
    const trailer = Buffer.alloc(16);
    trailer.writeInt32BE(63, 0);
    trailer.writeUInt32BE(7, 4);
    trailer.writeInt32BE(-(ril * 16), 8);
    trailer.writeUInt32BE(16, 12);
    regionEntry = { tag: 63, type: 7, offset: size, count: 16 };
    chunks.push(trailer);
    size += 16;
  }
  for (const [tag, v] of [...(options.dribbles ?? [])].sort((a, b) => a[0] - b[0])) put(tag, v);
  const all = regionEntry ? [regionEntry, ...entries] : entries;
  const index = Buffer.alloc(8 + 16 * all.length);
  index.writeUInt32BE(all.length, 0);
  index.writeUInt32BE(size, 4);
  all.forEach((e, i) => {
    const o = 8 + 16 * i;
    index.writeInt32BE(e.tag, o);
    index.writeUInt32BE(e.type, o + 4);
    index.writeInt32BE(e.offset, o + 8);
    index.writeUInt32BE(e.count, o + 12);
  });
  return Buffer.concat([index, ...chunks]);
}

export interface RpmPackageSpec {
  name?: string;
  version?: string;
  release?: string;
  epoch?: number;
  arch?: string;
  license?: string;
  vendor?: string;
  sourceRpm?: string;
}

/** A header like an installed package's: the tags Plinth reads plus realistic company (summary, sizes, file lists). */
export function rpmPackageHeader(p: RpmPackageSpec, options: EncodeOptions = {}): Buffer {
  const tags: Array<[number, RpmValue]> = [
    [100, { type: 'strings', value: ['C'] }], // HEADERI18NTABLE
    [1004, { type: 'i18n', value: [`${p.name ?? 'x'} summary`] }], // SUMMARY
    [1009, { type: 'int32', value: [123456] }], // SIZE
    [1028, { type: 'int32', value: [10, 2000, 30] }], // FILESIZES
    [1030, { type: 'int16', value: [0o100644, 0o100755, 0o040755] }], // FILEMODES
    [1117, { type: 'strings', value: ['a', 'b', 'c'] }], // BASENAMES
    [5009, { type: 'int64', value: [1n << 40n] }], // LONGSIZE
  ];
  if (p.name !== undefined) tags.push([1000, { type: 'string', value: p.name }]);
  if (p.version !== undefined) tags.push([1001, { type: 'string', value: p.version }]);
  if (p.release !== undefined) tags.push([1002, { type: 'string', value: p.release }]);
  if (p.epoch !== undefined) tags.push([1003, { type: 'int32', value: [p.epoch] }]);
  if (p.vendor !== undefined) tags.push([1011, { type: 'string', value: p.vendor }]);
  if (p.license !== undefined) tags.push([1014, { type: 'string', value: p.license }]);
  if (p.arch !== undefined) tags.push([1022, { type: 'string', value: p.arch }]);
  if (p.sourceRpm !== undefined) tags.push([1044, { type: 'string', value: p.sourceRpm }]);
  return encodeRpmHeader(tags, options);
}
