#!/usr/bin/env node
// nydus-image: build, check, inspect and unpack RAFS images, push them to a registry and
// convert registry images in place (convert --oci-ref), with upstream's flag names.
import { Command } from 'commander';
import { versionText } from '../util/build-info.js';
import { registerCheck } from './image/check-command.js';
import { registerConvert } from './image/convert-command.js';
import { registerCreate } from './image/create-command.js';
import { registerInspect } from './image/inspect-command.js';
import { registerMerge } from './image/merge-command.js';
import { registerPush } from './image/push-command.js';
import { registerStat } from './image/stat-command.js';
import { registerUnpack } from './image/unpack-command.js';
import { runCli } from './run.js';

const program = new Command('nydus-image')
  .description('Build, analyze, inspect or validate RAFS filesystems/Nydus accelerated container images')
  .version(versionText('nydus-image'), '-V, --version')
  .option('-L, --log-file <file>', 'log file path')
  .option('-l, --log-level <level>', 'log level: trace, debug, info, warn, error', 'info');

registerCreate(program);
registerMerge(program);
registerCheck(program);
registerInspect(program);
registerStat(program);
registerUnpack(program);
registerPush(program);
registerConvert(program);

await runCli(program);
