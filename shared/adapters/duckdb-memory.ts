/**
 * Settings of every DuckDB instance Smelter opens (conversions and the local warehouse): memory DuckDB
 * frees goes back to the OS after each task. Its allocator keeps it otherwise until a task peaks above
 * `allocator_flush_threshold` (128 MiB by default, above our memory limits), so a conversion's buffers
 * stayed resident while the warehouse loaded the file it had just written.
 */
export const RELEASE_MEMORY = {
  allocator_flush_threshold: '16MB',
  allocator_background_threads: 'true',
} as const;
