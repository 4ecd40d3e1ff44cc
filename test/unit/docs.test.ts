// Claims the docs make about the code, checked against the code.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers';

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

test('docs/replay.md names every recorded history in test/histories/', () => {
  const histories = readdirSync(path.join(ROOT, 'test', 'histories')).filter((f) => f.endsWith('.json'));
  expect(histories.length).toBeGreaterThan(0);
  const replay = read('docs/replay.md');
  expect(histories.filter((file) => !replay.includes(file.replace(/\.json$/, '')))).toEqual([]);
});
