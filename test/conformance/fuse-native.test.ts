// The posix conformance suite through fuse-native (libfuse2): millisecond
// times, 32-bit inode numbers and no lseek are what that binding can carry.
import { test } from 'node:test';
import { runConformance } from './run-suite.js';

test('posix conformance over fuse-native (libfuse2)', (t) => runConformance(t, 'fuse-native', { nsecTimes: false, ino64: false, lseek: false }));
