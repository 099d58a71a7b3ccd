#!/usr/bin/env node
// nydusd's entry point. The signal answers come first, before the rest of the program is
// even loaded (~100 ms): until they exist, a SIGUSR1 opens Node's inspector (daemon/signals.ts).
import './daemon/signals.js';

await import('./daemon/program.js');
