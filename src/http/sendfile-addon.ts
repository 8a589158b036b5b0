// wharf's sendfile(2) addon (native/sendfile.c). Absent, wharf streams instead.
import { loadNativeAddon } from '../native-addon.ts';

export interface SendfileTransfer {
  /** Stops the transfer; its callback then runs with an ECANCELED error. */
  cancel(): void;
}

export interface SendfileAddon {
  /** Sends length bytes of fileFd from offset to the socket; calls back once, on the event loop. */
  send(socketFd: number, fileFd: number, offset: number, length: number, done: (err: NodeJS.ErrnoException | null, sent: number) => void): SendfileTransfer;
}

/** The addon, or the reason it cannot be used. */
export function loadSendfileAddon(): SendfileAddon | Error {
  return loadNativeAddon<SendfileAddon>('sendfile');
}
