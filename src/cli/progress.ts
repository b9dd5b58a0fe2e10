import type { CopyEvent } from '../source/copy.js';

/** Copy progress on stderr: a live bar on a terminal, one line per blob otherwise (like skopeo). */
export function progressReporter(stream: NodeJS.WriteStream, quiet: boolean): { onEvent: (e: CopyEvent) => void; finish: () => void } {
  if (quiet) return { onEvent: () => {}, finish: () => {} };
  const tty = stream.isTTY === true;
  let total = 0;
  let done = 0;
  let blobs = 0;
  let finished = 0;
  let last = 0;
  const short = (d: string) => d.replace(/^(sha\d+:)(.{12}).*$/, '$1$2');
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : finished === blobs ? 1 : 0;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '-');
    stream.write(`\r[${bar}] ${fmt(done)} / ${fmt(total)}  blobs ${finished}/${blobs}  `);
  };
  return {
    onEvent: (e) => {
      switch (e.type) {
        case 'blob-start':
          blobs++;
          total += e.size;
          if (tty) draw();
          break;
        case 'blob-progress':
          done += e.bytes;
          if (tty) draw();
          break;
        case 'blob-done':
          finished++;
          if (e.how !== 'copied') total -= e.how === 'foreign' ? 0 : e.size;
          if (tty) draw();
          else stream.write(`Copying blob ${short(e.digest)} ${e.how === 'copied' ? 'done' : e.how === 'skipped' ? 'skipped: already exists' : e.how === 'mounted' ? 'mounted' : 'skipped: foreign layer'}\n`);
          break;
        case 'manifest':
          if (!tty) stream.write(`Writing manifest ${short(e.digest)}\n`);
          break;
      }
    },
    finish: () => {
      if (tty) {
        draw(true);
        stream.write('\n');
      }
    },
  };
}

export function fmt(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
}
