// Section names carry binaries as users wrote them (`uprobe/./victim:f`, `uprobe/libc.so.6:malloc`).
// Paths are resolved on the host, where the user's working directory is known, and must
// exist; bare names (libraries) are left for the agent to find among loaded modules.

import * as fs from 'fs';
import * as path from 'path';
import type { LoadRequest } from '../../protocol/messages';
import { SessionError } from './SessionError';

export function resolveBinaries<T extends Pick<LoadRequest, 'objects' | 'links'>>(req: T, baseDir: string): T {
  const links = req.links.map((link) => {
    const a = link.attach;
    if ((a.kind !== 'uprobe' && a.kind !== 'usdt') || a.binary === undefined || !a.binary.includes('/')) return link;
    const abs = path.resolve(baseDir, a.binary);
    if (!fs.existsSync(abs)) {
      const obj = req.objects[link.object];
      throw new SessionError(`${obj.path}: program ${link.program}: binary ${a.binary} does not exist (resolved to ${abs})`, 'attach');
    }
    return { ...link, attach: { ...a, binary: fs.realpathSync(abs) } };
  });
  return { ...req, links };
}
