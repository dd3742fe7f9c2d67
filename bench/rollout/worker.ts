import { parentPort } from 'node:worker_threads';
import { type Task, runTask } from './tasks.js';

parentPort?.on('message', (msg: { id: number; task: Task }) => {
  parentPort?.postMessage({ id: msg.id, result: runTask(msg.task) });
});
