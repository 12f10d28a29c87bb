// Every scenario a fuzz case can run in the child process, by name.
import { stream } from './scenarios/stream.mjs';

export const scenarios = { stream };
