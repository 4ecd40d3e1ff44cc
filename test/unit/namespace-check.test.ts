import { classifyServer, registerCommands } from '../../src/platform/namespace-check';

describe('classifyServer', () => {
  test.each([
    ['localhost:7233', 'sqlite'],
    ['127.0.0.1:7233', 'sqlite'],
    ['127.0.0.5:17233', 'sqlite'],
    ['[::1]:7233', 'sqlite'],
    ['LOCALHOST', 'sqlite'],
  ])('%s on %s is a local dev server', (address, store) => {
    expect(classifyServer(address, store)).toBe('local-dev-server');
  });

  test.each([
    // A self-hosted cluster on this machine: its attributes are its operator's to register.
    ['localhost:7233', 'postgres12'],
    ['127.0.0.1:7233', 'mysql8'],
    ['localhost:7233', 'cassandra'],
    ['localhost:7233', undefined],
    // A dev server on another host is someone else's.
    ['temporal.internal:7233', 'sqlite'],
    ['10.0.0.5:7233', 'sqlite'],
    ['127.example.com:7233', 'sqlite'],
  ])('%s on %s is not', (address, store) => {
    expect(classifyServer(address, store)).toBe('other');
  });

  test.each(['ns.acct.tmprl.cloud:7233', 'us-east-1.aws.api.temporal.io:7233'])(
    '%s is Temporal Cloud',
    (address) => {
      expect(classifyServer(address, 'sqlite')).toBe('temporal-cloud');
    },
  );
});

describe('registerCommands', () => {
  test('a self-hosted server gets the temporal CLI command', () => {
    expect(registerCommands({ address: 'temporal.internal:7233', namespace: 'payments' })).toEqual([
      'temporal operator search-attribute create --namespace payments --name TransferStatus --type Keyword',
    ]);
  });

  test('Temporal Cloud gets the tcld command too, with the account in the namespace', () => {
    expect(
      registerCommands({ address: 'us-east-1.aws.api.temporal.io:7233', namespace: 'pay.a1b2c' }),
    ).toEqual([
      'temporal operator search-attribute create --namespace pay.a1b2c --name TransferStatus --type Keyword',
      'tcld namespace search-attributes add --namespace pay.a1b2c --search-attribute "TransferStatus=Keyword"',
    ]);
  });
});
