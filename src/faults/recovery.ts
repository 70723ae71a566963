import type { Kernel } from '../kernel/kernel.ts';
import type { Link } from '../link/link.ts';
import type { Pager } from '../pager/pager.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { Source } from '../source/source.ts';
import { RECORD_HEADER_BYTES, bitmapBytes } from '../stream/records.ts';
import type { FaultTarget } from './schedule.ts';

/** QEMU's query-migrate status names (docs/recovery.md). */
export type MigrationStatus =
  | 'setup' | 'active' | 'device' | 'postcopy-active' | 'postcopy-paused' | 'postcopy-recover-setup' | 'postcopy-recover' | 'completed' | 'failed';

/** What recovery needs from the emulator around it. */
export interface RecoveryHost {
  /** Drops every record in flight and every queued byte on each direction of the connection. */
  dropConnection(): void;
  /** POSTCOPY_TRANSITION has reached the destination (the guest's CPU state is there). */
  switchedOver(): boolean;
  /** The status changed (observers). */
  statusChanged(status: MigrationStatus): void;
}

/** MIG_RP_MSG_RESUME_ACK on the return path: a 4-byte header and the 4-byte value. */
const RESUME_ACK_BYTES = 8;

/**
 * The postcopy state machine under connection failures, after QEMU's postcopy recovery (the
 * source's query-migrate status): active → paused (cut or crash) → recover-setup (the link is
 * back: the operator's migrate-recover and migrate -r) → recover (connected, `migrate_fd_connect`)
 * → active (RESUME_ACK read). While recovering the source asks for the destination's received
 * bitmap (MIG_CMD_RECV_BITMAP), reloads it, sends MIG_CMD_POSTCOPY_RESUME and sends no page until
 * RESUME_ACK; the destination, on RESUME, is active again: it sends RESUME_ACK, then asks again
 * for every page still requested (`loadvm_postcopy_handle_resume`, QEMU 6.0+). `epoch` counts
 * connections: a record or step from an older connection is stale and dropped when its event
 * fires.
 */
export class Recovery implements FaultTarget {
  status: MigrationStatus = 'postcopy-active';
  readonly history: { status: MigrationStatus; at: number }[] = [{ status: 'postcopy-active', at: 0 }];
  /** Why the run failed (a sentence), or null. */
  failure: string | null = null;
  epoch = 0;
  private upAt = 0;
  /** When postcopy stopped being active (ns), or −1 while active. */
  downSince = -1;
  private bitmap: Uint8Array | null = null;
  /** The destination's side: active (its requests and COMPLETE go out), or paused until RESUME. */
  private destinationActive = true;
  private readonly upKind: number;
  private readonly connectKind: number;
  private readonly bitmapSendKind: number;
  private readonly bitmapArriveKind: number;
  private readonly ackArriveKind: number;
  /** Stats. */
  pauses = 0;
  resentPages = 0;
  reRequestedPages = 0;
  pausedNs = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly params: Scenario['recovery'],
    private readonly stream: Link,
    private readonly backChannel: Link,
    private readonly source: Source,
    private readonly pager: Pager,
    private readonly host: RecoveryHost,
  ) {
    const current = (f: () => void) => (epoch: number) => {
      if (epoch === this.epoch) f();
    };
    this.upKind = kernel.register(current(() => this.linkUp()));
    this.connectKind = kernel.register(current(() => this.connected()));
    this.bitmapSendKind = kernel.register(current(() => this.sendBitmap()));
    this.bitmapArriveKind = kernel.register(current(() => this.bitmapArrived()));
    this.ackArriveKind = kernel.register(current(() => this.ackArrived()));
  }

  /** The destination's FAULT and COMPLETE records get through only while its side is active. */
  get destinationConnected(): boolean {
    return this.destinationActive;
  }

  cut(downNs: number, crash: boolean): void {
    if (this.source.done || this.status === 'failed') return;
    const what = crash ? 'the source process crashed' : 'the migration connection was cut';
    if (!this.host.switchedOver()) {
      return this.fail(`${what} before the destination had the guest's CPU state: the migration failed and the guest resumes at the source`);
    }
    if (!this.params.enabled) {
      return this.fail(`${what} during postcopy with recovery disabled: the guest's memory is split between the hosts and the guest is lost`);
    }
    this.epoch++;
    this.destinationActive = false;
    this.host.dropConnection();
    if (crash) this.source.crash();
    else this.source.pause();
    if (this.downSince < 0) this.downSince = this.kernel.now;
    if (this.status !== 'postcopy-paused') {
      this.pauses++;
      this.setStatus('postcopy-paused');
    }
    // A second cut while down keeps the connection down until the later of the two ends.
    this.upAt = Math.max(this.upAt, this.kernel.now + downNs);
    this.kernel.at(this.upAt, this.upKind, this.epoch);
  }

  /** The destination read MIG_CMD_POSTCOPY_RESUME: RESUME_ACK goes out, then every page still requested is asked again. */
  resumeReceived(): void {
    this.destinationActive = true;
    this.kernel.at(this.backChannel.sendRead(this.kernel.now, RESUME_ACK_BYTES), this.ackArriveKind, this.epoch);
    this.reRequestedPages += this.pager.resend();
  }

  private linkUp(): void {
    this.setStatus('postcopy-recover-setup');
    // The operator's recover commands, then the TCP connect (one round trip).
    this.kernel.after(this.params.setupNs + this.stream.latencyNs + this.backChannel.latencyNs, this.connectKind, this.epoch);
  }

  /** Connected: the source asks for the received bitmap (MIG_CMD_RECV_BITMAP). */
  private connected(): void {
    this.setStatus('postcopy-recover');
    this.kernel.at(this.stream.sendRead(this.kernel.now, RECORD_HEADER_BYTES), this.bitmapSendKind, this.epoch);
  }

  /** The destination answers MIG_CMD_RECV_BITMAP on the return path (MIG_RP_MSG_RECV_BITMAP). */
  private sendBitmap(): void {
    this.bitmap = this.pager.receivedMap();
    this.kernel.at(this.backChannel.send(this.kernel.now, bitmapBytes(this.bitmap.length)), this.bitmapArriveKind, this.epoch);
  }

  /** The source reloads the bitmap and sends MIG_CMD_POSTCOPY_RESUME. */
  private bitmapArrived(): void {
    this.resentPages += this.source.recover(this.bitmap!);
    this.bitmap = null;
  }

  /** The source read RESUME_ACK: both sides are active, the migration thread sends again. */
  private ackArrived(): void {
    this.setStatus('postcopy-active');
    this.pausedNs += this.kernel.now - this.downSince;
    this.downSince = -1;
    this.source.resumeAcked();
  }

  private fail(sentence: string): void {
    this.failure = sentence;
    this.setStatus('failed');
    this.kernel.halt();
  }

  private setStatus(status: MigrationStatus): void {
    this.status = status;
    this.history.push({ status, at: this.kernel.now });
    this.host.statusChanged(status);
  }
}
