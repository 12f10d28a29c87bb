// Every scenario a fuzz case can run in the child process, by name.
import { args } from './scenarios/args.mjs';
import { datagram } from './scenarios/datagram.mjs';
import { loop } from './scenarios/loop.mjs';
import { pipe } from './scenarios/pipe.mjs';
import { stream } from './scenarios/stream.mjs';
import { subprocess } from './scenarios/subprocess.mjs';
import { worker } from './scenarios/worker.mjs';

export const scenarios = { args, datagram, loop, pipe, stream, subprocess, worker };
