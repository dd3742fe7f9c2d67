/** A tiny worker_threads pool: one worker per core, tasks split into seed chunks. */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { CompactResult, Task } from './tasks.js';

export class Pool {
  private readonly workers: Worker[];
  private readonly idle: Worker[];
  private readonly queue: Array<{
    task: Task;
    resolve: (r: CompactResult[]) => void;
    reject: (e: unknown) => void;
  }> = [];
  private readonly pending = new Map<
    number,
    { resolve: (r: CompactResult[]) => void; reject: (e: unknown) => void; w: Worker }
  >();
  private nextId = 0;
  /** Seconds of simulation work per worker, for the "where time goes" note. */
  constructor(size = Math.max(1, os.availableParallelism?.() ?? os.cpus().length)) {
    const url = new URL('./worker.ts', import.meta.url).href;
    // Node 20 does not carry --import hooks into workers: register tsx inside the worker, then load it.
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`;
    this.workers = Array.from({ length: size }, () => new Worker(boot, { eval: true }));
    this.idle = [...this.workers];
    for (const w of this.workers) {
      w.on('message', (m: { id: number; result: CompactResult[] }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.idle.push(w);
        p?.resolve(m.result);
        this.pump();
      });
      w.on('error', (e) => {
        for (const [id, p] of this.pending)
          if (p.w === w) {
            this.pending.delete(id);
            p.reject(e);
          }
      });
    }
  }
  get size(): number {
    return this.workers.length;
  }
  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      const id = this.nextId++;
      this.pending.set(id, { resolve: job.resolve, reject: job.reject, w });
      w.postMessage({ id, task: job.task });
    }
  }
  private runChunk(task: Task): Promise<CompactResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.pump();
    });
  }
  /** Run a task's seed range split into chunks across the workers; results in seed order. */
  async run(task: Task, chunk = 100): Promise<CompactResult[]> {
    const parts: Promise<CompactResult[]>[] = [];
    for (let from = task.from; from < task.to; from += chunk) {
      parts.push(this.runChunk({ ...task, from, to: Math.min(task.to, from + chunk) }));
    }
    return (await Promise.all(parts)).flat();
  }
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
