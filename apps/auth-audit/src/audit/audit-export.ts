import {
  CANONICAL_FIELDS,
  CANONICAL_FIELDS_V2,
  CANONICAL_FIELDS_V3,
  type AuditRecordRow,
} from './audit-record.js';

/**
 * Export columns: the stored fields under their stored names (the ones the hash covers, then the hash), so
 * that an auditor can recompute the chain from an export alone.
 */
export const EXPORT_COLUMNS = [
  ...CANONICAL_FIELDS,
  'hash',
  ...CANONICAL_FIELDS_V2,
  ...CANONICAL_FIELDS_V3,
] as const;

type ExportRecord = Record<(typeof EXPORT_COLUMNS)[number], string | number>;

function exportRecord(row: AuditRecordRow): ExportRecord {
  const record = {} as ExportRecord;
  for (const column of EXPORT_COLUMNS) {
    record[column] = column === 'time' ? row.time.toISOString() : (row[column] ?? '');
  }
  return record;
}

export function toJsonLines(rows: AuditRecordRow[]): string {
  return rows.map((row) => `${JSON.stringify(exportRecord(row))}\n`).join('');
}

export const CSV_HEADER = `${EXPORT_COLUMNS.join(',')}\r\n`;

/**
 * RFC 4180: every text field quoted, embedded quotes doubled. A cell a spreadsheet would run as a formula
 * (starting with =, +, -, @, tab or CR, after any single quotes) gets one more leading `'`; to re-hash, drop
 * one leading `'` from a cell matching /^'+[=+\-@\t\r]/ (JSON Lines exports stay byte-exact).
 */
export function toCsvRows(rows: AuditRecordRow[]): string {
  return rows
    .map((row) => {
      const record = exportRecord(row);
      return `${EXPORT_COLUMNS.map((column) => csvField(record[column])).join(',')}\r\n`;
    })
    .join('');
}

const FORMULA_START = /^'*[=+\-@\t\r]/;

export function csvField(value: string | number): string {
  if (typeof value === 'number') return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return `"${text.replaceAll('"', '""')}"`;
}
