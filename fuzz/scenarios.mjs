// Every scenario a fuzz case can run in the child process, by name.
import { args } from './scenarios/args.mjs';
import { datagram } from './scenarios/datagram.mjs';
import { stream } from './scenarios/stream.mjs';

export const scenarios = { args, datagram, stream };
