// `npm run api`: the HTTP front door. Other services start payments here, idempotently,
// and read them back; each request carries a bearer JWT from the issuer AUTH_* names.
// The routes are in src/api/app.ts, the reference in docs/api.md.
import { buildApi } from './api/app';
import { authSettings, jwksVerifier } from './api/auth';
import { deskSettings } from './api/desk';
import { connectClient, describeError, loadSettings, StartupError } from './platform/config';

async function main(): Promise<void> {
  const settings = loadSettings();
  const auth = authSettings();
  const host = process.env.API_HOST || '127.0.0.1';
  const port = Number(process.env.API_PORT || 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new StartupError(`API_PORT must be a port number, got '${process.env.API_PORT}'.`);
  }
  const desk = deskSettings(process.env, { host, port });
  const client = await connectClient(settings);
  const app = await buildApi({ client, settings, verify: jwksVerifier(auth), desk });
  await app.listen({ host, port });
  const { port: bound } = app.server.address() as { port: number };
  console.log(
    `API listening on http://${host}:${bound}: Temporal ${settings.address}, namespace ${settings.namespace}, ` +
      `task queue ${settings.taskQueue}; tokens from ${auth.issuer} for ${auth.audience}. OpenAPI: /openapi.json`,
  );
  if (desk) console.log(`Operators' desk: ${desk.publicUrl}/desk, signing in at ${desk.issuer}.`);
  // SIGTERM drains: no new connections, the requests in flight finish, then it exits.
  const stop = (signal: string) => {
    console.log(`${signal} received: finishing the requests in flight, then stopping.`);
    app
      .close()
      .then(() => client.connection.close())
      .then(
        () => console.log('API stopped.'),
        (err: unknown) => {
          console.error(`API: stopping failed: ${describeError(err)}`);
          process.exitCode = 1;
        },
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(describeError(err));
  process.exitCode = 1;
});
