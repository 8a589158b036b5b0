// Runs the FileSender contract against both ways of sending a cached blob file.
import { sendfileFileSender, streamFileSender } from '../../src/http/file-sender.ts';
import { loadSendfileAddon } from '../../src/http/sendfile-addon.ts';
import { fileSenderContract } from './file-sender.contract.ts';

fileSenderContract('sendfile (native addon)', () => {
  const addon = loadSendfileAddon();
  // npm ci builds the addon on every machine wharf supports; its absence is a failure here.
  if (addon instanceof Error) throw new Error(`the sendfile addon does not load (npm run build:native): ${addon.message}`);
  return sendfileFileSender(addon);
});
fileSenderContract('Node streams', streamFileSender);
