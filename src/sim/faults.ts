/**
 * The fault plan of a run: the scenario's own faults plus any drawn from the run's seed, in time
 * order, and the moment the faulty phase ends and everything heals.
 */
import { deriveSeed, Random } from '../engine/random.ts';
import { FAULT_KINDS, type Fault, type Scenario } from './scenario.ts';

/** Random faults last between these many milliseconds. */
const MIN_DURATION_MS = 200;
const MAX_DURATION_MS = 3_000;

/** Draws `scenario.randomFaults` from the seed; a lying peer is never more than a third of them. */
export function planFaults(scenario: Scenario, seed: number, peerIds: readonly string[]): Fault[] {
  const planned: Fault[] = [...scenario.faults];
  const spec = scenario.randomFaults;
  if (spec !== undefined && spec.count > 0 && peerIds.length > 0) {
    const random = new Random(deriveSeed(seed, 'faults'));
    const kinds = spec.kinds ?? FAULT_KINDS;
    const liars = new Set<string>();
    for (let i = 0; i < spec.count; i++) {
      const kind = random.pick(kinds);
      const atMs = random.nextInt(spec.windowMs + 1);
      const node = random.pick(peerIds);
      const durationMs = random.nextIntBetween(MIN_DURATION_MS, MAX_DURATION_MS);
      switch (kind) {
        case 'reset':
          planned.push({ kind, atMs, node });
          break;
        case 'crash':
          planned.push({ kind, atMs, node, restartAfterMs: durationMs });
          break;
        case 'move':
          planned.push({ kind, atMs, node, restartAfterMs: random.nextInt(MIN_DURATION_MS) });
          break;
        case 'owner-leave':
          planned.push({ kind, atMs });
          break;
        case 'partition': {
          const group = random
            .shuffle([...peerIds])
            .slice(0, 1 + random.nextInt(Math.max(1, Math.floor(peerIds.length / 2))));
          planned.push({ kind, atMs, nodes: group, healAfterMs: durationMs });
          break;
        }
        case 'slow':
          planned.push({
            kind,
            atMs,
            node,
            uploadBytesPerSecond: random.chance(1, 2) ? 1 : 20_000,
            durationMs,
          });
          break;
        case 'corrupt':
          // Honest peers must stay the majority, or nobody could be required to finish.
          if ((liars.size + 1) * 3 <= peerIds.length && !liars.has(node)) {
            liars.add(node);
            planned.push({ kind, atMs, node });
          }
          break;
        case 'disk-full':
          planned.push({ kind, atMs, node, durationMs });
          break;
      }
    }
  }
  // A stable sort: equal times keep plan order, so the run stays reproducible.
  return planned
    .map((fault, order) => ({ fault, order }))
    .sort((a, b) => a.fault.atMs - b.fault.atMs || a.order - b.order)
    .map(({ fault }) => fault);
}

/** When a fault is over by itself (undefined: it lasts until the run heals, or for good). */
export function faultEndMs(fault: Fault): number | undefined {
  switch (fault.kind) {
    case 'crash':
      return fault.restartAfterMs === undefined ? undefined : fault.atMs + fault.restartAfterMs;
    case 'move':
      return fault.atMs + fault.restartAfterMs;
    case 'partition':
      return fault.healAfterMs === undefined ? undefined : fault.atMs + fault.healAfterMs;
    case 'slow':
    case 'disk-full':
      return fault.durationMs === undefined ? undefined : fault.atMs + fault.durationMs;
    default:
      return fault.atMs;
  }
}

/** The end of the faulty phase: the scenario's `healAtMs`, else when the last fault is over. */
export function healTimeMs(scenario: Scenario, faults: readonly Fault[]): number {
  if (scenario.healAtMs !== undefined) return scenario.healAtMs;
  let heal = 0;
  for (const fault of faults) heal = Math.max(heal, faultEndMs(fault) ?? fault.atMs + MAX_DURATION_MS);
  return heal;
}

export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case 'partition':
      return `${fault.atMs}ms partition [${fault.nodes.join(',')}]${fault.healAfterMs === undefined ? '' : ` for ${fault.healAfterMs}ms`}`;
    case 'owner-leave':
      return `${fault.atMs}ms owner leaves`;
    case 'slow':
      return `${fault.atMs}ms ${fault.node} slows to ${fault.uploadBytesPerSecond} B/s`;
    default:
      return `${fault.atMs}ms ${fault.kind} ${fault.node}`;
  }
}
