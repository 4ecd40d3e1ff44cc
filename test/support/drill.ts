// The tutorial's failure drill, applied in code: the same line swap the README asks
// the reader to make in src/activities.ts.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { createActivities } from '../../src/activities';
import { ROOT } from '../../tools/common';

export const ACTIVITIES_FILE = path.join(ROOT, 'src', 'activities.ts');

/** The line numbers the drill comment in src/activities.ts names. */
export function drillLines(source = readFileSync(ACTIVITIES_FILE, 'utf8')): {
  live: number;
  commented: number;
} {
  const match = /Failure drill: comment out line (\d+) and uncomment line (\d+)/.exec(source);
  if (!match) throw new Error('src/activities.ts has lost its failure drill comment');
  return { live: Number(match[1]), commented: Number(match[2]) };
}

/** src/activities.ts with the drill applied: the live deposit commented out, the failing one live. */
export function applyDrill(source = readFileSync(ACTIVITIES_FILE, 'utf8')): string {
  const { live, commented } = drillLines(source);
  const lines = source.split('\n');
  lines[live - 1] = lines[live - 1]!.replace(/^(\s*)/, '$1// ');
  lines[commented - 1] = lines[commented - 1]!.replace(/^(\s*)\/\/ /, '$1');
  return lines.join('\n');
}

/** Loads createActivities from the drilled copy of src/activities.ts. */
export function loadDrilledActivities(): typeof createActivities {
  const dir = path.join(ROOT, 'test', '.drill');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `activities-${process.pid}.ts`);
  writeFileSync(file, applyDrill().replaceAll("from './", "from '../../src/"));
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(file) as { createActivities: typeof createActivities }).createActivities;
  } finally {
    // Loaded now; the file is not needed any more. The folder goes once it is empty.
    rmSync(file);
    try {
      rmSync(dir);
    } catch {
      // another test file's copy is still there
    }
  }
}
