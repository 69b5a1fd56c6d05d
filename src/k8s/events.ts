// Kubernetes Events (events.k8s.io/v1) on the Services the translation made
// a decision about. The translation reports its decisions each time it runs
// (a pool stays exhausted for as long as it does); an Event is written when a
// decision appears, not each time it is reported again: newEvents() is the
// edge, pure. A decision that goes away and comes back is written again.
// Writes are bounded: at most MAX_IN_FLIGHT at once, and a backlog over
// MAX_QUEUED drops the oldest (counted and logged), so a flood of bad
// Services cannot make the director queue without end.
import { EventsV1Api, V1MicroTime, type EventsV1Event, type KubeConfig, type V1ObjectReference, type V1Service } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.ts';
import type { KubeEvent } from './translate.ts';

/** The reportingController of every Event the director writes. */
export const REPORTING_CONTROLLER = 'xdplb.io/director';

const MAX_IN_FLIGHT = 8;
const MAX_QUEUED = 1000;

export function eventKey(e: KubeEvent): string {
  return `${e.service}\n${e.type}\n${e.reason}\n${e.message}`;
}

/** The events of `now` that `before` did not have (by eventKey), in the order of `now`. */
export function newEvents(before: ReadonlySet<string>, now: readonly KubeEvent[]): KubeEvent[] {
  return now.filter((e) => !before.has(eventKey(e)));
}

/** The API server refuses a note over 1024 bytes (not characters): cut at a character boundary. */
export function noteOf(message: string): string {
  const bytes = Buffer.from(message);
  if (bytes.length <= 1024) return message;
  return new TextDecoder().decode(bytes.subarray(0, 1021)).replace(/\uFFFD$/, '') + '...';
}

/** What the event says it did: the action field, a machine-readable verb per reason. */
function actionOf(e: KubeEvent): string {
  return e.type === 'Normal' ? 'Allocate' : 'Refuse';
}

/**
 * An Event as xdplb writes it (the director's and the node agent's): named
 * after what it regards, reported by REPORTING_CONTROLLER, at a MicroTime the
 * server accepts, its note cut to the server's 1024 bytes.
 */
export function eventBody(o: { namespace: string; instance: string; action: string; reason: string; note: string; type: 'Normal' | 'Warning'; regarding: V1ObjectReference }): EventsV1Event {
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${o.regarding.name ?? 'xdplb'}.${randomBytes(8).toString('hex')}`, namespace: o.namespace },
    eventTime: new V1MicroTime(), // six fractional digits: a Date is sent with three, which the server refuses
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: o.instance,
    action: o.action,
    reason: o.reason,
    note: noteOf(o.note),
    type: o.type,
    regarding: o.regarding,
  };
}

export class EventRecorder {
  private readonly api: EventsV1Api;
  private readonly instance: string;
  private readonly log: Logger;
  /** The decisions of the last translation (eventKey). */
  private reported = new Set<string>();
  private readonly queue: { event: KubeEvent; uid: string | undefined }[] = [];
  private inFlight = 0;
  written = 0;
  failed = 0;
  dropped = 0;

  /** instance: the reportingInstance (the director's host name). */
  constructor(kc: KubeConfig, instance: string, log: Logger) {
    this.api = kc.makeApiClient(EventsV1Api);
    this.instance = instance;
    this.log = log;
  }

  /**
   * The decisions of a translation: those new since the last one are written
   * (when `write`; a standby director only keeps track, so that it does not
   * write the whole backlog when it takes over). service(): the Service, for
   * its uid.
   */
  record(events: readonly KubeEvent[], write: boolean, service: (key: string) => V1Service | undefined): void {
    const fresh = newEvents(this.reported, events);
    this.reported = new Set(events.map(eventKey));
    if (!write) return;
    for (const event of fresh) this.queue.push({ event, uid: service(event.service)?.metadata?.uid });
    if (this.queue.length > MAX_QUEUED) {
      const n = this.queue.length - MAX_QUEUED;
      this.queue.splice(0, n);
      this.dropped += n;
      this.log.warn({ dropped: n }, 'too many Events waiting to be written: the oldest were dropped');
    }
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const { event, uid } = this.queue.shift()!;
      this.inFlight++;
      void this.write(event, uid).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async write(e: KubeEvent, uid: string | undefined): Promise<void> {
    const [namespace = 'default', name = ''] = e.service.split('/');
    try {
      await this.api.createNamespacedEvent({
        namespace,
        body: eventBody({ namespace, instance: this.instance, action: actionOf(e), reason: e.reason, note: e.message, type: e.type, regarding: { apiVersion: 'v1', kind: 'Service', namespace, name, ...(uid ? { uid } : {}) } }),
      });
      this.written++;
    } catch (err) {
      this.failed++;
      this.log.warn({ service: e.service, reason: e.reason, err }, 'writing an Event failed');
    }
  }
}
