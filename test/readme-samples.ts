// The README's sample outputs, read by name (`<!-- sample: name -->`), and turned into
// patterns that let the parts that vary from run to run vary.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../tools/processes';

export const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

export function sample(name: string): string {
  const match = new RegExp(`<!-- sample: ${name} -->\\n\\n?\`\`\`text\\n([\\s\\S]*?)\\n\`\`\``).exec(README);
  if (!match?.[1]) throw new Error(`README.md has no sample named ${name}`);
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
