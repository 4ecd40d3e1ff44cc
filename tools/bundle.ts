// `npm run build` runs this after tsc: it prebuilds the workflow bundle, so a
// production worker (NODE_ENV=production) starts without running webpack.
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_PATH } from '../src/worker';

export async function buildWorkflowBundle(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    logger: new DefaultLogger('WARN'),
  });
  return code;
}

if (require.main === module) {
  buildWorkflowBundle().then(
    (code) => writeFileSync(WORKFLOW_BUNDLE_PATH, code),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
