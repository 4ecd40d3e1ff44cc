// The README's sample outputs, read by name (`<!-- sample: name -->`), and turned into
// patterns that let the parts that vary from run to run vary.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../tools/common';

export const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The README and the pages of docs/, by path: samples live in both. */
export const PAGES: ReadonlyMap<string, string> = new Map([
  ['README.md', README],
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((file) => file.endsWith('.md'))
    .map((file): [string, string] => [`docs/${file}`, readFileSync(path.join(ROOT, 'docs', file), 'utf8')]),
]);

/** The page that shows the sample `name`; there must be exactly one. */
export function pageOf(name: string): string {
  const pages = [...PAGES].filter(([, text]) => text.includes(`<!-- sample: ${name} -->`));
  if (pages.length !== 1) {
    throw new Error(`${pages.length} pages show a sample named ${name}: ${pages.map(([p]) => p).join(', ')}`);
  }
  return pages[0]![1];
}

export function sample(name: string): string {
  const match = new RegExp(`<!-- sample: ${name} -->\\n\\n?\`\`\`text\\n([\\s\\S]*?)\\n\`\`\``).exec(
    pageOf(name),
  );
  if (!match?.[1]) throw new Error(`the sample named ${name} has no text block after its marker`);
  return match[1];
}

/**
 * Turns a sample into a pattern: ids, ports and the CLI's version line vary from run
 * to run; everything else must match exactly, line for line.
 */
export function samplePattern(text: string, replace: Array<[string, string]> = []): RegExp {
  let pattern = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const [from, to] of replace) pattern = pattern.replaceAll(from, to);
  pattern = pattern
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '[0-9a-f-]{36}')
    .replace(/\b([WD])-[A-Z0-9]{10}\b/g, '$1-[A-Z0-9]{10}')
    .replace(/^CLI .*$/m, 'CLI .*')
    .replace(/localhost:\d+/g, 'localhost:\\d+');
  return new RegExp(`^${pattern}$`);
}

/**
 * The same for the `temporal` CLI's output: its times, sizes and build ids vary too, the
 * test's task queue stands in for the default one, and trailing blanks do not count.
 */
export function cliPattern(text: string, taskQueue: string): RegExp {
  const source = samplePattern(text.replace(/[ \t]+$/gm, ''), [['TRANSFER_MONEY_TASK_QUEUE', taskQueue]])
    .source.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g, String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
    .replace(/((?:StartTime|CloseTime|ExecutionTime) +)now/g, '$1.+')
    .replace(/(RunTime +)\d+ms/g, String.raw`$1[\d.]+m?s`)
    .replace(/((?:HistorySize|StateTransitionCount) +)\d+/g, String.raw`$1\d+`)
    .replace(/[0-9a-f]{64}/g, '[0-9a-f]{64}');
  return new RegExp(source);
}

/** The shell commands after `<!-- commands: name -->`, as a script, to run as the README says. */
export function commands(name: string): string {
  const page = [...PAGES.values()].find((text) => text.includes(`<!-- commands: ${name} -->`));
  const match =
    page && new RegExp(`<!-- commands: ${name} -->\\n\\n?\`\`\`sh\\n([\\s\\S]*?)\\n\`\`\``).exec(page);
  if (!match?.[1]) throw new Error(`no sh block after <!-- commands: ${name} -->`);
  return match[1];
}
