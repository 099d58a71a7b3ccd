// Public entry of the pure machine definitions: the daemon lifecycle and the
// questions answered from it (accepts, outcomes, composite trigger plans).
export * from './daemon.js';
export * from './daemon-table.js';
