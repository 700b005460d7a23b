/**
 * Unit tests for the pieces of the engine's rooms that are pure and were not reachable on their own
 * before the engine was split: the upload order and the peer-id parse.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { latin1Bytes } from '../src/engine/bencode.ts';
import { nodeNameOf, peerLabel } from '../src/engine/peer-id.ts';
import { compareUploads, type UploadCandidate } from '../src/engine/serving.ts';

const candidate = (overrides: Partial<UploadCandidate>): UploadCandidate => ({
  continues: false,
  copies: 0,
  held: 0,
  sequence: 0,
  ...overrides,
});

test('upload order: a chunk under way, then fewest copies, then fewest held, then the oldest request', () => {
  const ordered = [
    candidate({ continues: true, copies: 9, held: 9, sequence: 9 }),
    candidate({ copies: 0, held: 9, sequence: 8 }),
    candidate({ copies: 1, held: 0, sequence: 7 }),
    candidate({ copies: 1, held: 1, sequence: 1 }),
    candidate({ copies: 1, held: 1, sequence: 2 }),
  ];
  const shuffled = [ordered[3], ordered[0], ordered[4], ordered[2], ordered[1]] as UploadCandidate[];
  assert.equal([...shuffled].sort(compareUploads), ordered);
  for (const a of ordered) {
    assert.is(compareUploads(a, a), 0);
    for (const b of ordered) assert.is(Math.sign(compareUploads(a, b)), -Math.sign(compareUploads(b, a)));
  }
});

test('peer ids: our node name, else a client tag with the address, else the address', () => {
  const ours = latin1Bytes('-SW0100-peer1...abcd');
  assert.is(nodeNameOf(ours), 'peer1');
  assert.is(peerLabel(ours, '10.0.0.1:6881'), 'peer1');
  const dots = latin1Bytes('-SW0100-........abcd');
  assert.is(nodeNameOf(dots), undefined);
  assert.is(peerLabel(dots, '10.0.0.1:6881'), 'SW0100@10.0.0.1:6881');
  assert.is(peerLabel(latin1Bytes('-qB4500-abcdefghijkl'), '10.0.0.2:1'), 'qB4500@10.0.0.2:1');
  assert.is(peerLabel(latin1Bytes('M7-2-0--abcdefghijkl'), '10.0.0.3:1'), '10.0.0.3:1');
  assert.is(nodeNameOf(latin1Bytes('-SW0100-peer1')), undefined);
});

test.run();
