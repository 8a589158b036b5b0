// Loads wharf's sendfile(2) addon (native/sendfile.c), built by `npm run build:native` during
// npm ci. Absent (no compiler where wharf was installed, another OS), wharf streams instead.
import { createRequire } from 'node:module';

export interface SendfileTransfer {
  /** Stops the transfer; its callback then runs with an ECANCELED error. */
  cancel(): void;
}

export interface SendfileAddon {
  /** Sends length bytes of fileFd from offset to the socket; calls back once, on the event loop. */
  send(socketFd: number, fileFd: number, offset: number, length: number, done: (err: NodeJS.ErrnoException | null, sent: number) => void): SendfileTransfer;
}

/** Where npm run build:native puts the addon: the same from src/ and from dist/. */
export const SENDFILE_ADDON_PATH = new URL('../../native/build/Release/sendfile.node', import.meta.url).pathname;

/** The addon, or the reason it cannot be used. */
export function loadSendfileAddon(): SendfileAddon | Error {
  if (process.platform !== 'linux') return new Error(`sendfile is used on Linux only, not ${process.platform}`);
  try {
    return createRequire(import.meta.url)(SENDFILE_ADDON_PATH) as SendfileAddon;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}
