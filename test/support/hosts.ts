// Test hosts on one machine: each host is a network namespace with its own addresses, on
// bridges the test owns; this process (the driver) has an address on each bridge too. A
// partition takes a host's link down at the bridge, as if its cable were pulled, and
// brings it back. `ip_forward` stays off, so the driver routes nothing between the nets.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { isAlive } from '../../tools/common';

/** The nets a host can sit on: Temporal's, and the bank's. */
export type Net = 'cluster' | 'bank';
const NETS: readonly Net[] = ['cluster', 'bank'];

export interface Host {
  name: string;
  /** The namespace under /run/netns, for `nsenter --net` (ManagedProcess's and ScriptProcess's `netns`). */
  netns: string;
  /** Its address on `net`; it must sit on it. */
  address(net?: Net): string;
  /** Takes its link to `net` (every net it sits on, if none is named) down at the bridge. */
  cut(net?: Net): void;
  /** Brings the link back up. */
  heal(net?: Net): void;
  /** Whether its link to `net` is up. */
  linked(net: Net): boolean;
}

export interface Hosts {
  /** The driver's address on `net`: what a host sees as this process. */
  driver(net: Net): string;
  /** The net's addresses, as a CIDR. */
  subnet(net: Net): string;
  get(name: string): Host;
  all(): Host[];
  /** Deletes every namespace and link this made; safe to call twice. */
  remove(): void;
}

/**
 * Prefix of everything this makes, followed by the pid that made it (for clean-up of a
 * killed run) and a letter per call: two test files may run in one process.
 */
const PREFIX = 'mt';
let calls = 0;

/**
 * Creates `spec`'s hosts (name → the nets it sits on). Needs root (CAP_NET_ADMIN and
 * CAP_SYS_ADMIN): without it, fails saying so. Removes what a killed earlier run left.
 */
export function createHosts(spec: Record<string, readonly Net[]>): Hosts {
  requireNetworkPrivilege();
  removeLeftovers();
  const tag = `${PREFIX}${process.pid}${String.fromCharCode(97 + (calls++ % 26))}`;
  const subnets = pickSubnets();
  const made: { netns: string[]; bridges: string[] } = { netns: [], bridges: [] };
  const remove = () => {
    for (const netns of made.netns.splice(0)) quiet('ip', ['netns', 'delete', netns]); // takes its veths along
    for (const bridge of made.bridges.splice(0)) quiet('ip', ['link', 'delete', bridge]);
  };
  try {
    const bridge = (net: Net) => `${tag}-${net === 'cluster' ? 'c' : 'b'}`;
    for (const net of NETS) {
      made.bridges.push(bridge(net));
      ip('link', 'add', bridge(net), 'type', 'bridge');
      ip('addr', 'add', `${subnets[net]}.1/24`, 'dev', bridge(net));
      ip('link', 'set', bridge(net), 'up');
    }
    const hosts = new Map<string, Host>();
    for (const [i, [name, nets]] of Object.entries(spec).entries()) {
      if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`host name '${name}': lower-case letters, digits, '-'`);
      const netns = `${tag}-${name}`;
      made.netns.push(netns);
      ip('netns', 'add', netns);
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      const octet = 10 + i;
      // The bridge's side of each link, named so that it fits IFNAMSIZ (15).
      const outer = (net: Net) => `${tag}${net[0]}${i}`;
      for (const net of nets) {
        ip('link', 'add', outer(net), 'type', 'veth', 'peer', 'name', `eth-${net}`, 'netns', netns);
        ip('link', 'set', outer(net), 'master', bridge(net), 'up');
        ip('-n', netns, 'addr', 'add', `${subnets[net]}.${octet}/24`, 'dev', `eth-${net}`);
        ip('-n', netns, 'link', 'set', `eth-${net}`, 'up');
      }
      const sitsOn = (net: Net) => {
        if (!nets.includes(net)) throw new Error(`host ${name} is not on the ${net} net`);
        return net;
      };
      const links = (net?: Net) => (net ? [sitsOn(net)] : [...nets]);
      hosts.set(name, {
        name,
        netns,
        address: (net = nets[0]!) => `${subnets[sitsOn(net)]}.${octet}`,
        cut: (net) => links(net).forEach((n) => ip('link', 'set', outer(n), 'down')),
        heal: (net) => links(net).forEach((n) => ip('link', 'set', outer(n), 'up')),
        linked: (net) => /<[^>]*\bUP\b[^>]*>/.test(ip('-o', 'link', 'show', outer(sitsOn(net)))),
      });
    }
    return {
      driver: (net) => `${subnets[net]}.1`,
      subnet: (net) => `${subnets[net]}.0/24`,
      get: (name) => {
        const host = hosts.get(name);
        if (!host) throw new Error(`no test host named ${name}`);
        return host;
      },
      all: () => [...hosts.values()],
      remove,
    };
  } catch (err) {
    remove();
    throw err;
  }
}

/** Fails with what the test needs when this process cannot make namespaces. */
function requireNetworkPrivilege(): void {
  const needs =
    'The partitions test makes network namespaces, veth links and bridges (`ip netns`, `ip link`), ' +
    'which needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the iproute2 and util-linux (nsenter) tools.';
  if (process.getuid?.() !== 0) throw new Error(`${needs} This process runs as uid ${process.getuid?.()}.`);
  const probe = `${PREFIX}probe${process.pid}`;
  try {
    ip('netns', 'add', probe);
    execFileSync('nsenter', [`--net=/run/netns/${probe}`, '--', 'true'], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`${needs} Making a probe namespace failed: ${(err as Error).message}`);
  } finally {
    quiet('ip', ['netns', 'delete', probe]);
  }
}

/** Two /24s under 10.0.0.0/8 that no interface of this machine uses. */
function pickSubnets(): Record<Net, string> {
  const used = ip('-o', '-4', 'addr', 'show');
  for (;;) {
    const base = `10.${100 + Math.floor(Math.random() * 150)}.${Math.floor(Math.random() * 250)}`;
    const [a, b] = [base, base.replace(/\.(\d+)$/, (_, n: string) => `.${Number(n) + 1}`)];
    if (!used.includes(` inet ${a}.`) && !used.includes(` inet ${b}.`)) return { cluster: a, bank: b };
  }
}

/** Namespaces and bridges of earlier runs whose process has died (SIGKILLed, timed out). */
function removeLeftovers(): void {
  const own = new RegExp(`^${PREFIX}(\\d+)[a-z]-`);
  const dead = (name: string) => {
    const match = own.exec(name);
    return match !== null && !isAlive(Number(match[1]));
  };
  const namespaces = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
  for (const netns of namespaces.filter(dead)) quiet('ip', ['netns', 'delete', netns]);
  const links = ip('-o', 'link', 'show', 'type', 'bridge')
    .split('\n')
    .map((line) => line.split(': ')[1]?.split('@')[0] ?? '');
  for (const bridge of links.filter(dead)) quiet('ip', ['link', 'delete', bridge]);
}

function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`);
  }
}

function quiet(command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
  } catch {
    // already gone
  }
}
