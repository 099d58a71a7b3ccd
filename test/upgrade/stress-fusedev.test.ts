// 20 hot upgrades and 20 kill -9 failovers under 8 readers with --fs-driver fusedev (stress.ts).
import { stressTest } from './stress.js';

stressTest('fusedev');
