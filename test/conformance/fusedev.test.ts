// The posix conformance suite on the project's own /dev/fuse session.
import { test } from 'node:test';
import { runConformance } from './run-suite.js';

test('posix conformance over fusedev (/dev/fuse session)', (t) => runConformance(t, 'fusedev', { nsecTimes: true, ino64: true, lseek: true }));
