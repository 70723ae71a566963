import { describe, expect, it } from 'vitest';
import { SocketSampler, connectionQueues } from '../src/live/qemu/sockets.ts';

// /proc/net/tcp as Linux prints it: sl, local and remote address:port (hex), state (01:
// established), tx_queue:rx_queue (hex), then fields the sampler does not read.
const HEAD = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const line = (sl: number, local: number, remote: number, tx: number, rx: number, st = '01') =>
  `  ${sl}: 0100007F:${local.toString(16).toUpperCase().padStart(4, '0')} 0100007F:${remote.toString(16).toUpperCase().padStart(4, '0')} ${st} ${tx.toString(16).toUpperCase().padStart(8, '0')}:${rx.toString(16).toUpperCase().padStart(8, '0')} 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1`;

describe('the migration connection\'s queues (/proc/net/tcp)', () => {
  const PORT = 40403;

  it('takes the source\'s Send-Q and the destination\'s Recv-Q; of two connections to the port (preempt), the fuller', () => {
    const text = [HEAD,
      line(0, PORT, 0, 0, 0, '0A'), // the listening socket
      line(1, 54684, PORT, 3_145_728, 0), // the source's main channel
      line(2, PORT, 54684, 0, 262_144), // the destination's end of it
      line(3, 54690, PORT, 4_096, 0), // the preempt channel
      line(4, PORT, 54690, 0, 0),
      line(5, 22, 51000, 999_999, 999_999), // something else
    ].join('\n');
    expect(connectionQueues(text, PORT)).toEqual({ send: 3_145_728, recv: 262_144 });
    expect(connectionQueues([HEAD, line(1, 54684, PORT, 1, 0)].join('\n'), PORT)).toBeNull(); // no destination end yet
  });

  it('counts only samples with a QEMUFile buffer or more queued, and gives their medians', () => {
    const texts = [[3_000_000, 100_000], [0, 0], [4_000_000, 300_000], [20_000, 0], [2_000_000, 200_000]];
    let i = 0;
    const s = new SocketSampler(PORT, 5, () => {
      const [tx, rx] = texts[i++]!;
      return [HEAD, line(1, 50000, PORT, tx!, 0), line(2, PORT, 50000, 0, rx!)].join('\n');
    });
    for (let k = 0; k < texts.length; k++) s.sample();
    expect(s.stop()).toEqual({
      samples: 5, 'busy-samples': 3, 'send-q-p50': 3_000_000, 'send-q-max': 4_000_000, 'recv-q-p50': 200_000, 'ahead-p50': 3_100_000,
    });
    // An unreadable file is no sample.
    const none = new SocketSampler(PORT, 5, () => { throw new Error('gone'); });
    none.sample();
    expect(none.stop()).toEqual({ samples: 0, 'busy-samples': 0, 'send-q-p50': null, 'send-q-max': null, 'recv-q-p50': null, 'ahead-p50': null });
  });
});
