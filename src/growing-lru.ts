// An LRU bounded by entry count that allocates as it fills. lru-cache given `max` allocates its
// bookkeeping for all max entries at once (~28 bytes each: 2.8 MB for 100 000 links, held while
// the cache is empty); bounded by `maxSize` with every entry sized 1 it holds the same number of
// entries, evicting the same way, with arrays that grow.
import { LRUCache } from 'lru-cache';

export function growingLru<K extends {}, V extends {}>(maxEntries: number): LRUCache<K, V> {
  return new LRUCache<K, V>({ maxSize: maxEntries, sizeCalculation: () => 1 });
}
