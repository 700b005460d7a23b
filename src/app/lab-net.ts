/**
 * The lab's network, made and unmade with iproute2: one bridge, a namespace per node joined to it
 * by a veth pair, the node's address on its end, and its caps (lab-shaping.ts; upload: egress of
 * the node's end; download: egress of the bridge's end). Also the network faults: addresses
 * moved, links down and up, connections reset. Every command has a deadline; a failure is one
 * line (RunFailure).
 */
import { execFile } from 'node:child_process';
import { RunFailure } from './command.ts';
import { LAB_PREFIX_LENGTH, type LabNode, type LabPlan } from './lab-plan.ts';
import { capQdisc } from './lab-shaping.ts';

/** No single iproute2 command may take longer than this. */
const COMMAND_TIMEOUT_MS = 10_000;

/** Runs one command; resolves with its stdout, or rejects with its first line of stderr. */
export function run(program: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, { timeout: COMMAND_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error === null) return resolve(stdout);
      const why = stderr.trim().split('\n')[0] || error.message;
      reject(new RunFailure(`${program} ${args.join(' ')}: ${why}`));
    });
    // A command that exits without reading its input must not fail the run with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

const ip = (...args: string[]): Promise<string> => run('ip', args);
const tc = (...args: string[]): Promise<string> => run('tc', args);

/** Why namespaces cannot be made here (not root, no iproute2), or undefined when they can. */
export async function namespaceRefusal(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the lab needs root to make network namespaces (run it as root)';
  try {
    await ip('netns', 'list');
    await run('tc', ['-V']);
    await run('ss', ['-V']);
  } catch (error) {
    return `the lab cannot make network namespaces here: ${(error as Error).message} (install iproute2)`;
  }
  return undefined;
}

/** Makes the bridge and every node's namespace, link, address and caps. */
export async function buildNetwork(plan: LabPlan): Promise<void> {
  await ip('link', 'add', plan.bridge, 'type', 'bridge');
  await ip('link', 'set', plan.bridge, 'up');
  for (const node of [plan.owner, ...plan.peers]) await buildNode(plan, node);
}

async function buildNode(plan: LabPlan, node: LabNode): Promise<void> {
  const ns = node.namespace;
  await ip('netns', 'add', ns);
  // IPv4 only: no link-local IPv6 address, so every packet of the run is on 198.18.0.0/15.
  for (const scope of ['all', 'default'])
    await run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.ipv6.conf.${scope}.disable_ipv6=1`]);
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
  await ip('link', 'add', node.hostLink, 'type', 'veth', 'peer', 'name', node.nodeLink);
  await ip('link', 'set', node.nodeLink, 'netns', ns);
  await ip('link', 'set', node.hostLink, 'master', plan.bridge, 'up');
  await ip('-n', ns, 'addr', 'add', `${node.addresses[0]}/${LAB_PREFIX_LENGTH}`, 'dev', node.nodeLink);
  await ip('-n', ns, 'link', 'set', node.nodeLink, 'up');
  await tc('-n', ns, 'qdisc', 'add', 'dev', node.nodeLink, 'root', ...capQdisc(node.uploadBytesPerSecond));
  await tc('qdisc', 'add', 'dev', node.hostLink, 'root', ...capQdisc(node.downloadBytesPerSecond));
}

/** What a run may have made, by name: enough to unmake it even from a state file. */
export interface LabNames {
  readonly namespaces: readonly string[];
  readonly links: readonly string[];
}

export function namesOf(plan: LabPlan): LabNames {
  const nodes = [plan.owner, ...plan.peers];
  return {
    namespaces: nodes.map((node) => node.namespace),
    links: [plan.bridge, plan.islandBridge, ...nodes.map((node) => node.hostLink)],
  };
}

/**
 * Unmakes whatever of `names` exists: processes still inside a namespace (ours: nothing else runs
 * there) are killed by PID, the links deleted (a veth end takes its pair along), then the
 * namespaces. The kernel finishes a namespace's removal in the background, so this waits, with a
 * deadline, until none of the names is listed. Resolves with what could not be removed.
 */
export async function teardownNetwork(names: LabNames): Promise<string[]> {
  const problems: string[] = [];
  const namespaces = new Set(await listNamespaces());
  for (const ns of names.namespaces) {
    if (!namespaces.has(ns)) continue;
    const pids = (await ip('netns', 'pids', ns).catch(() => ''))
      .split(/\s+/)
      .filter((pid) => /^\d+$/.test(pid));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  }
  const links = new Set(await listLinks());
  for (const link of names.links)
    if (links.has(link)) await ip('link', 'del', link).catch((error: Error) => problems.push(error.message));
  for (const ns of names.namespaces)
    if (namespaces.has(ns))
      await ip('netns', 'del', ns).catch((error: Error) => problems.push(error.message));
  const deadline = Date.now() + TEARDOWN_WAIT_MS;
  let left = await remaining(names);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, TEARDOWN_POLL_MS));
    left = await remaining(names);
  }
  return [...problems, ...left.map((name) => `${name} is still there`)];
}

/** How long teardown waits for the kernel to finish removing what it was told to remove. */
const TEARDOWN_WAIT_MS = 10_000;
const TEARDOWN_POLL_MS = 100;

/** The namespaces and links of `names` that exist now. */
export async function remaining(names: LabNames): Promise<string[]> {
  const namespaces = new Set(names.namespaces);
  const links = new Set(names.links);
  return [
    ...(await listNamespaces()).filter((name) => namespaces.has(name)).map((name) => `namespace ${name}`),
    ...(await listLinks()).filter((name) => links.has(name)).map((name) => `link ${name}`),
  ];
}

export async function listNamespaces(): Promise<string[]> {
  const text = await ip('netns', 'list');
  return text
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

export async function listLinks(): Promise<string[]> {
  const text = await ip('-o', 'link', 'show');
  return text
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '')
    .filter((name) => name !== '');
}

/** A move, first half: connections on the address are reset (as a NAT or a lost lease does), then it goes. */
export async function dropAddress(node: LabNode, address: string): Promise<void> {
  await run('ip', ['netns', 'exec', node.namespace, 'ss', '-K', '-t', 'src', address]);
  await ip('-n', node.namespace, 'addr', 'del', `${address}/${LAB_PREFIX_LENGTH}`, 'dev', node.nodeLink);
}

/** A move, second half: the new address (and with it the route to the others). */
export async function addAddress(node: LabNode, address: string): Promise<void> {
  await ip('-n', node.namespace, 'addr', 'add', `${address}/${LAB_PREFIX_LENGTH}`, 'dev', node.nodeLink);
}

/** Every TCP connection of the node reset. */
export async function resetConnections(node: LabNode): Promise<void> {
  await run('ip', ['netns', 'exec', node.namespace, 'ss', '-K', '-t', 'state', 'established']);
}

/**
 * A partition, as the simulator has it: the nodes' links move to a bridge of their own, where they
 * still reach each other but nobody else; at the heal they move back and that bridge goes. (One
 * island at a time: nodes of two overlapping partitions share it.)
 */
export async function setIsland(
  plan: LabPlan,
  nodes: readonly LabNode[],
  partitioned: boolean,
): Promise<void> {
  const island = plan.islandBridge;
  if (partitioned && !(await listLinks()).includes(island)) {
    await ip('link', 'add', island, 'type', 'bridge');
    await ip('link', 'set', island, 'up');
  }
  for (const node of nodes)
    await ip('link', 'set', node.hostLink, 'master', partitioned ? island : plan.bridge);
  if (!partitioned) {
    const stillThere = (await ip('-o', 'link', 'show', 'master', island).catch(() => '')).trim();
    if (stillThere === '') await ip('link', 'del', island).catch(() => undefined);
  }
}
