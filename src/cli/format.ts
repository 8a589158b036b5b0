// Sizes as the commands print them: MB = 10^6 bytes, one decimal.
export function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
