/**
 * What a simulated run prints: the summary table and the `--json` object.
 */
import type { PeerReport, SimResult } from '../sim/simulator.ts';

export function toJson(result: SimResult) {
  return {
    scenario: result.scenario,
    seed: result.seed,
    digest: result.digest,
    simulatedMs: result.simulatedMs,
    lowerBoundMs: result.lowerBoundMs,
    fileSha256: result.fileSha256,
    peers: result.peers.map((peer) => ({
      id: peer.id,
      complete: peer.complete,
      fileSha256: peer.fileSha256,
      completedAtMs: peer.completedAtMs,
      chunksFromOwner: peer.chunksFromOwner,
      chunksFromPeers: peer.chunksFromPeers,
      bytesUp: peer.bytesUp,
      bytesDown: peer.bytesDown,
    })),
    ...(result.failure === undefined ? {} : { failure: result.failure }),
  };
}

export function replayCommand(path: string, seed: number): string {
  return `npm run sim -- ${path} --seed ${seed}`;
}

/** A fixed-width table: first column left-aligned, the rest right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] as number) : cell.padStart(widths[column] as number),
      )
      .join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** One row per peer: the table the simulator and `npm start` both print. */
export function formatPeerTable(
  peers: readonly PeerReport[],
  fileSha256: string,
  name: (id: string) => string = (id) => id,
): string {
  return formatTable(
    ['peer', 'done', 'time ms', 'from owner', 'from peers', 'bytes up', 'bytes down', 'file ok'],
    peers.map((peer) => [
      name(peer.id),
      peer.complete ? 'yes' : 'no',
      peer.completedAtMs === null ? '-' : String(peer.completedAtMs),
      String(peer.chunksFromOwner),
      String(peer.chunksFromPeers),
      String(peer.bytesUp),
      String(peer.bytesDown),
      peer.fileSha256 === fileSha256 ? 'yes' : 'NO',
    ]),
  );
}

/** The per-peer table, then the time against the lower bound. */
export function formatSummary(result: SimResult): string {
  const ratio = result.lowerBoundMs > 0 ? (result.simulatedMs / result.lowerBoundMs).toFixed(3) : '-';
  return [
    '',
    `scenario ${result.scenario}, seed ${result.seed}`,
    formatPeerTable(result.peers, result.fileSha256),
    '',
    `simulated ${result.simulatedMs} ms; lower bound ${result.lowerBoundMs} ms; ratio ${ratio}`,
    `file sha256 ${result.fileSha256}`,
    `trace digest ${result.digest}`,
    '',
  ].join('\n');
}
