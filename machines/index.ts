// Public entry of the pure machine definitions: the daemon lifecycle, the questions
// answered from it (accepts, outcomes, trigger paths), and the replay of its journal.
export * from './daemon.js';
export * from './daemon-table.js';
export * from './daemon-replay.js';
