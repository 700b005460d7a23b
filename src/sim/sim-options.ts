/**
 * What a caller may ask of one simulated run besides its scenario: another seed, the activity lines
 * and events as they happen, engine limits, and a progress callback for long runs.
 */
import type { ActivityEvent } from '../engine/activity.ts';
import type { EngineLimits } from '../engine/engine.ts';

export interface SimOptions {
  /** Overrides the scenario's seed for the run (not for the file's bytes). */
  readonly seed?: number;
  /** Called with every activity line, in order. */
  readonly onLine?: (line: string) => void;
  /** Called with every activity event as data (virtual ms, node id, event), in order: for reports. */
  readonly onActivity?: (atMs: number, node: string, event: ActivityEvent) => void;
  readonly limits?: Partial<EngineLimits>;
  /** Called every PROGRESS_EVERY_EVENTS events, for a long run's progress line; it cannot change the run. */
  readonly onProgress?: (progress: SimProgress) => void;
}

/** Where a run stands: for a progress line (the caller adds wall-clock rates). */
export interface SimProgress {
  readonly simulatedMs: number;
  readonly events: number;
  readonly peersComplete: number;
  readonly peers: number;
}

/** How often `onProgress` hears of a run: often enough for a line a second, rare enough to cost nothing. */
export const PROGRESS_EVERY_EVENTS = 50_000;
