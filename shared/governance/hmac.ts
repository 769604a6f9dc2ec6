/**
 * Keyed hashing of `hash` columns: HMAC-SHA256, hex. Computed inside DuckDB during the conversion (so
 * values never pass through JS), from two session variables holding the key's inner and outer pads —
 * set per connection with `hmacSetupSql`, so the key is never part of a query text that could be
 * logged. `hmacHex` is the same function in JS (routeEvent, tests).
 */
import { createHash, createHmac } from 'node:crypto';

const BLOCK = 64;

function pads(key: string): { ipad: Buffer; opad: Buffer } {
  let k = Buffer.from(key, 'utf8');
  if (k.length > BLOCK) k = createHash('sha256').update(k).digest();
  const padded = Buffer.alloc(BLOCK);
  k.copy(padded);
  return {
    ipad: Buffer.from(padded.map((b) => b ^ 0x36)),
    opad: Buffer.from(padded.map((b) => b ^ 0x5c)),
  };
}

/** Statements run on a DuckDB connection before a query that uses `hmacSql`. */
export function hmacSetupSql(key: string): string {
  const { ipad, opad } = pads(key);
  return `SET VARIABLE smelter_hmac_ipad = unhex('${ipad.toString('hex')}'); SET VARIABLE smelter_hmac_opad = unhex('${opad.toString('hex')}')`;
}

/** DuckDB SQL: HMAC-SHA256 (hex) of a VARCHAR expression; NULL stays NULL. */
export const hmacSql = (expr: string): string =>
  `sha256(getvariable('smelter_hmac_opad') || unhex(sha256(getvariable('smelter_hmac_ipad') || encode(${expr}))))`;

export const hmacHex = (key: string, value: string): string =>
  createHmac('sha256', key).update(value, 'utf8').digest('hex');
