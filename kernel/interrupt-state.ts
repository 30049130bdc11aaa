/**
 * Shared memory between the shell thread and the control worker. The worker must see whether a cell is
 * running and ask it to stop while the shell thread is busy in synchronous code, when no message can be
 * delivered to it; an Int32Array over a SharedArrayBuffer is read and written with Atomics from both sides.
 */
const BUSY = 0; // id of the running execution, 0 when idle
const INTERRUPT = 1; // id of the execution an interrupt was requested for
const SLOTS = 2;

export class InterruptState {
  readonly view: Int32Array;
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 4)) {
    this.view = new Int32Array(buffer);
  }
  get buffer(): SharedArrayBuffer {
    return this.view.buffer as SharedArrayBuffer;
  }
  get running(): number {
    return Atomics.load(this.view, BUSY);
  }
  set running(id: number) {
    Atomics.store(this.view, BUSY, id);
  }
  /** Marks the running execution as interrupted; returns its id, or 0 when nothing runs. */
  requestInterrupt(): number {
    const id = this.running;
    if (id !== 0) Atomics.store(this.view, INTERRUPT, id);
    return id;
  }
  isInterrupted(id: number): boolean {
    return id !== 0 && Atomics.load(this.view, INTERRUPT) === id;
  }
}
