/**
 * What a simulation run reports: per peer, whether it finished, with which file and from whom, the
 * trace digest, the fault plan as it ran, the first failure, and the lower bound on finishing time
 * that the run is measured against.
 */
import { createHash } from 'node:crypto';
import type { FileChunks } from './memory-disk.ts';
import type { SimNode } from './sim-node.ts';

export interface PeerReport {
  readonly id: string;
  readonly complete: boolean;
  readonly fileSha256: string | null;
  readonly completedAtMs: number | null;
  readonly chunksFromOwner: number;
  readonly chunksFromPeers: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export interface SimFailure {
  readonly kind: 'incomplete' | 'invariant' | 'time-limit' | 'liveness';
  readonly message: string;
  readonly atMs: number;
}

export interface SimResult {
  readonly scenario: string;
  readonly seed: number;
  readonly digest: string;
  readonly simulatedMs: number;
  readonly lowerBoundMs: number;
  readonly fileSha256: string;
  readonly peers: PeerReport[];
  readonly owner: { readonly bytesUp: number };
  readonly activityCounts: Record<string, number>;
  readonly events: number;
  /** The fault plan, one line per fault, as it ran. */
  readonly faults: readonly string[];
  readonly failure: SimFailure | undefined;
}

export function lowerBoundMs(
  fileBytes: number,
  ownerUploadBytesPerSecond: number,
  peers: readonly { uploadBytesPerSecond: number; downloadBytesPerSecond: number }[],
): number {
  const minDownload = Math.min(...peers.map((peer) => peer.downloadBytesPerSecond));
  const totalUpload =
    ownerUploadBytesPerSecond + peers.reduce((sum, peer) => sum + peer.uploadBytesPerSecond, 0);
  const seconds = Math.max(
    fileBytes / ownerUploadBytesPerSecond,
    fileBytes / minDownload,
    (peers.length * fileBytes) / totalUpload,
  );
  return Math.ceil(seconds * 1000);
}

/** The SHA-256 of the scenario file, from its chunks. */
export function fileSha256Of(file: FileChunks): string {
  const hash = createHash('sha256');
  for (const chunk of file.canonical) hash.update(chunk);
  return hash.digest('hex');
}

/** One peer's line of the report; bytes moved by earlier incarnations count too. */
export function peerReport(node: SimNode, sha256OfFile: string): PeerReport {
  const stats = node.engine?.getStats();
  return {
    id: node.id,
    complete: node.completedAtMs !== undefined,
    fileSha256: node.disk.fileSha256(sha256OfFile),
    completedAtMs: node.completedAtMs ?? null,
    chunksFromOwner: node.totals.chunksFromOwner,
    chunksFromPeers: node.totals.chunksFromPeers,
    bytesUp: node.totals.bytesUp + (stats?.bytesUp ?? 0),
    bytesDown: node.totals.bytesDown + (stats?.bytesDown ?? 0),
  };
}
