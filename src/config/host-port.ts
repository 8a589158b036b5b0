// The host:port values the config holds (listen addresses, Redis sentinels and cluster nodes),
// already checked by the schema: split into a host (IPv6 brackets removed) and a port.
export function splitHostPort(value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':');
  return { host: value.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(value.slice(colon + 1)) };
}
