// Claims the docs make about the code, checked against the code.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/helpers';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** Every environment variable the application reads, from its source. */
function variablesRead(): string[] {
  const names = new Set<string>();
  for (const file of readdirSync(path.join(ROOT, 'src'), { recursive: true }) as string[]) {
    if (!file.endsWith('.ts')) continue;
    for (const [, name] of read(path.join('src', file)).matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g))
      names.add(name!);
  }
  return [...names].sort();
}

// Set by the npm scripts' launcher for the worker, not by people.
const INTERNAL = ['DEV_WORKFLOW_BUNDLE'];

test('docs/configuration.md, with the pages its table links, names every environment variable src/ reads', () => {
  const docs = ['configuration.md', 'encryption.md', 'metrics.md', 'tracing.md']
    .map((f) => read(`docs/${f}`))
    .join('\n');
  const read_ = variablesRead();
  expect(read_.length).toBeGreaterThan(10); // the scan found them
  expect(read_.filter((name) => !INTERNAL.includes(name) && !docs.includes(`\`${name}`))).toEqual([]);
});

test('docs/replay.md names every recorded history in test/fixtures/histories/', () => {
  const histories = readdirSync(path.join(ROOT, 'test', 'fixtures', 'histories')).filter((f) =>
    f.endsWith('.json'),
  );
  expect(histories.length).toBeGreaterThan(0);
  const replay = read('docs/replay.md');
  expect(histories.filter((file) => !replay.includes(file.replace(/\.json$/, '')))).toEqual([]);
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchor(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[`*]/g, '')
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

test('every relative link in the README and docs/ reaches a file, and an anchor there if it names one', () => {
  const pages = [
    'README.md',
    ...readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  const broken: string[] = [];
  let links = 0;
  for (const page of pages) {
    const text = read(page).replace(/```[\s\S]*?```/g, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // https:, mailto:
      links++;
      const [file, hash] = target!.split('#') as [string, string | undefined];
      const resolved = file ? path.posix.join(path.posix.dirname(page), file) : page;
      let body: string;
      try {
        body = read(resolved);
      } catch {
        broken.push(`${page}: ${target} (no file ${resolved})`);
        continue;
      }
      if (hash && !/\.md$/.test(resolved)) continue;
      if (hash && ![...body.matchAll(/^#+ (.+)$/gm)].some(([, h]) => anchor(h!) === hash)) {
        broken.push(`${page}: ${target} (no heading #${hash} in ${resolved})`);
      }
    }
  }
  expect(links).toBeGreaterThan(20);
  expect(broken).toEqual([]);
});
