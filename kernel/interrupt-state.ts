/**
 * Shared memory between the shell thread and the control worker. The worker must see whether a cell is
 * running and ask it to stop while the shell thread is busy in synchronous code, when no message can be
 * delivered to it; an Int32Array over a SharedArrayBuffer is read and written with Atomics from both sides.
 *
 * An interrupt request is delivered once (like one KeyboardInterrupt per Ctrl-C): the first interrupt
 * point that takes it throws, later ones let the cell's cleanup run. Pressing interrupt again delivers
 * another.
 */
const RUNNING = 0; // id of the running execution, 0 when idle
const TARGET = 1; // id of the execution the latest interrupt was requested for
const REQUESTED = 2; // interrupt requests so far
const DELIVERED = 3; // requests already thrown into cell code
const IN_KERNEL = 4; // depth of tf.js kernels executing now (hard termination inside one is unsafe)
const SIGNALS = 5; // SIGINTs the control worker has sent to this process
const SLOTS = 6;

export class InterruptState {
  readonly view: Int32Array;
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 4)) {
    this.view = new Int32Array(buffer);
  }
  get buffer(): SharedArrayBuffer {
    return this.view.buffer as SharedArrayBuffer;
  }
  get running(): number {
    return Atomics.load(this.view, RUNNING);
  }
  set running(id: number) {
    Atomics.store(this.view, RUNNING, id);
  }
  /** Asks the running execution to stop; returns its id, or 0 when nothing runs. */
  requestInterrupt(): number {
    const id = this.running;
    if (id !== 0) {
      Atomics.store(this.view, TARGET, id);
      Atomics.add(this.view, REQUESTED, 1);
    }
    return id;
  }
  /** Whether an interrupt was ever requested for execution `id`. */
  isInterrupted(id: number): boolean {
    return id !== 0 && Atomics.load(this.view, TARGET) === id;
  }
  /** True once per request for execution `id`: the caller must then throw an InterruptError. */
  takeInterrupt(id: number): boolean {
    if (!this.isInterrupted(id)) return false;
    const requested = Atomics.load(this.view, REQUESTED);
    return Atomics.exchange(this.view, DELIVERED, requested) !== requested;
  }
  enterKernel(): void {
    Atomics.add(this.view, IN_KERNEL, 1);
  }
  exitKernel(): void {
    Atomics.sub(this.view, IN_KERNEL, 1);
  }
  get inKernel(): boolean {
    return Atomics.load(this.view, IN_KERNEL) > 0;
  }
  /** Called by the worker right before it signals the process. */
  countSignal(): void {
    Atomics.add(this.view, SIGNALS, 1);
  }
  get signals(): number {
    return Atomics.load(this.view, SIGNALS);
  }
  /** After a termination: whether it hit inside a tf.js kernel (the depth never came back to 0). */
  takeKernelTermination(): boolean {
    return Atomics.exchange(this.view, IN_KERNEL, 0) > 0;
  }
}
