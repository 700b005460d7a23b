/**
 * The lab's caps as tc queues: one tbf for a node's upload and one for its download, each drained
 * at the cap in order of arrival. (An htb class per destination, sharing an uplink in turn as the
 * simulator's model does, made lab-hetero12 slower, 0.67 of real time against 0.74: the fast
 * peers lost more than the slow ones gained.)
 */

/**
 * A scenario's capacities are TCP payload (what the simulator moves); tc counts whole frames. A
 * full 1500-byte packet carries 1448 bytes of payload (20 IP, 32 TCP with timestamps) in a frame
 * of 1514 (14 Ethernet): the cap is raised by that much.
 */
const FRAME_BYTES_PER_PAYLOAD_BYTE = 1514 / 1448;
/** A bucket of a hundredth of a second of the rate, at least this (a few full-size frames). */
const MIN_BURST_BYTES = 16 * 1024;
/**
 * A queue of this long at the rate (a modest router's buffer), at least this. Half a second made
 * lab-mesh12 slower by a tenth: HAVEs and requests waited behind that much data.
 */
const QUEUE_SECONDS = 0.1;
const MIN_QUEUE_BYTES = 64 * 1024;

function wire(payloadBytesPerSecond: number) {
  const bytesPerSecond = Math.round(payloadBytesPerSecond * FRAME_BYTES_PER_PAYLOAD_BYTE);
  return {
    bits: bytesPerSecond * 8,
    burst: Math.max(MIN_BURST_BYTES, Math.round(bytesPerSecond / 100)),
    queue: Math.max(MIN_QUEUE_BYTES, Math.round(bytesPerSecond * QUEUE_SECONDS)),
  };
}

/** A cap: tbf arguments after `tc qdisc add dev LINK root`. */
export function capQdisc(payloadBytesPerSecond: number): string[] {
  const { bits, burst, queue } = wire(payloadBytesPerSecond);
  return ['tbf', 'rate', `${bits}bit`, 'burst', String(burst), 'limit', String(queue)];
}
