// Export the records the current filters match, as JSON Lines or CSV, streamed with a running count; the
// file is assembled in the page and saved through a blob: link (nothing leaves this origin).
import { useState } from 'preact/hooks';
import { apiRaw, query } from '../api';
import { ErrorNote } from '../ui';

export function ExportButtons({ filters }: { filters: Record<string, string> }) {
  const [progress, setProgress] = useState<{ format: string; records: number; bytes: number } | null>(null);
  const [done, setDone] = useState('');
  const [error, setError] = useState<unknown>(null);

  const run = async (format: 'jsonl' | 'csv') => {
    setError(null);
    setDone('');
    setProgress({ format, records: 0, bytes: 0 });
    try {
      const response = await apiRaw('GET', `/admin/v1/audit/export${query({ ...filters, format })}`);
      const reader = response.body!.getReader();
      const parts: Uint8Array[] = [];
      let bytes = 0;
      let lines = 0;
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) break;
        parts.push(value);
        bytes += value.length;
        for (const byte of value) if (byte === 10) lines++;
        setProgress({ format, records: format === 'csv' ? Math.max(lines - 1, 0) : lines, bytes });
      }
      const records = format === 'csv' ? Math.max(lines - 1, 0) : lines;
      const blob = new Blob(parts as BlobPart[], {
        type: format === 'csv' ? 'text/csv' : 'application/x-ndjson',
      });
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = `airlock-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.${format}`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      setDone(`Exported ${records} records (${(bytes / 1024).toFixed(1)} KB) as ${format.toUpperCase()}.`);
    } catch (failure) {
      setError(failure);
    } finally {
      setProgress(null);
    }
  };

  return (
    <div class="export">
      <button type="button" class="secondary" disabled={progress !== null} onClick={() => void run('jsonl')}>
        Export JSONL
      </button>
      <button type="button" class="secondary" disabled={progress !== null} onClick={() => void run('csv')}>
        Export CSV
      </button>
      <span role="status" aria-live="polite" class="muted">
        {progress
          ? `Exporting ${progress.format.toUpperCase()}: ${progress.records} records, ${(progress.bytes / 1024).toFixed(1)} KB…`
          : done}
      </span>
      <ErrorNote error={error} />
    </div>
  );
}
