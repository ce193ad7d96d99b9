import { canonicalRecordText, emptyDraft, recordHash } from './audit-record.js';

// The worked example of docs/audit-log.md: if this changes, the documented format changed.
describe('canonical serialisation of an audit record', () => {
  const record = {
    ...emptyDraft(),
    sequence: 1,
    time: new Date('2025-01-01T00:00:00.000Z'),
    kind: 'request',
    request_id: 'req-1',
    principal_id: 'key:abcd1234',
    principal_kind: 'api_key',
    tenant: 'default',
    role: 'user',
    action: 'chat.completions',
    model: 'stories260K',
    outcome: 'allowed',
    content_capture: 'digest',
    request_digest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    prev_hash: '0'.repeat(64),
  };

  it('is a compact JSON array of the version tag and the fields in their documented order', () => {
    expect(canonicalRecordText(record)).toBe(
      '["airlock.audit.v1",1,"2025-01-01T00:00:00.000Z","request","req-1","key:abcd1234","api_key","default",' +
        '"user","chat.completions","stories260K","","","","allowed",0,"",0,0,0,0,0,"digest",' +
        '"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","","","","","","",' +
        '"0000000000000000000000000000000000000000000000000000000000000000"]',
    );
  });

  it('hashes to the documented value', () => {
    expect(recordHash(record)).toBe(HASH);
  });
});

const HASH = '8ad4a1ad0c32f472b868672bc249f95e5297fd581830c0acd74cd3670baf8f68';
