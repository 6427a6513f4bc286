#!/usr/bin/env node
// query.mjs — run SQL against an in-memory DuckDB and print the result rows
// as NDJSON, one JSON object per row, for the mlk interop tests.
//
//   node scripts/duckdb/query.mjs "SELECT count(*) AS n FROM read_ndjson_objects('lake/raw/**/*.gz', hive_partitioning=true)"
//
// Every argument is one SQL text, run in order on the same connection (so a
// CREATE VIEW in the first can be used by the second), and the rows of each
// are printed.  Within one argument, statements separated by ";" all run but
// only the last one's rows are printed.  Rows are streamed chunk by chunk,
// so large results do not sit in memory.
//
// Values go through DuckDB's JSON converter (dates, timestamps, decimals and
// blobs become strings; lists, structs and maps become arrays and objects),
// except that 64- and 128-bit integers, which JSON cannot carry losslessly in
// general, become numbers when they fit in a double exactly (count(*) prints
// as 3, not "3") and decimal strings otherwise; likewise DECIMALs of up to 15
// digits (avg and round results, literals like 1.5) become numbers.
//
// Errors go to stderr as "query.mjs: MESSAGE" with exit status 1.

import { DuckDBInstance, DuckDBTypeId, JsonDuckDBValueConverter } from '@duckdb/node-api';

const WIDE_INTS = new Set([
  DuckDBTypeId.BIGINT, DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT,
]);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

function convert(value, type, self) {
  if (value != null && WIDE_INTS.has(type.typeId)) {
    const b = BigInt(value);
    return b >= MIN_SAFE && b <= MAX_SAFE ? Number(b) : b.toString();
  }
  // Up to 15 significant digits survive a trip through a double.
  if (value != null && type.typeId === DuckDBTypeId.DECIMAL && type.width <= 15) {
    return Number(String(value));
  }
  return JsonDuckDBValueConverter(value, type, self);
}

function die(msg) {
  process.stderr.write(`query.mjs: ${msg}\n`);
  process.exit(1);
}

// A reader that goes away (query.mjs ... | head) is not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  die(err.message);
});

// Write without losing output when stdout is a pipe that fills up.
function write(text) {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

async function main(sqls) {
  if (sqls.length === 0) {
    process.stderr.write('usage: node query.mjs SQL [SQL ...]\n');
    process.exit(2);
  }
  if (sqls[0] === '--help' || sqls[0] === '-h') {
    process.stdout.write('usage: node query.mjs SQL [SQL ...]\n');
    process.exit(0);
  }
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    for (const sql of sqls) {
      const result = await connection.stream(sql);
      for await (const rows of result.yieldConvertedRowObjects(convert)) {
        if (rows.length === 0) continue;
        let out = '';
        for (const row of rows) out += JSON.stringify(row) + '\n';
        await write(out);
      }
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

main(process.argv.slice(2)).catch((err) => {
  if (err && err.code === 'EPIPE') process.exit(0);
  die(err && err.message ? err.message.split('\n').join(' ') : String(err));
});
