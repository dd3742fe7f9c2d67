import os from 'node:os';

/** What every benchmark returns: one table for people, flat numeric metrics for machines. */
export interface BenchResult {
  metrics: Record<string, number>;
  /** Rows printed as a table; the first row's keys are the columns. */
  table: Array<Record<string, string | number>>;
  /** Free-form lines printed under the table (calibration chosen, caveats). */
  notes?: string[];
  /** A subset run (a flag chose part of the benchmark): written beside the full result, never over it. */
  partial?: boolean;
}

export type Benchmark = (args: string[]) => Promise<BenchResult>;

export function machine() {
  return {
    cpus: os.cpus().length,
    memory: os.totalmem(),
    node: process.version,
  };
}
