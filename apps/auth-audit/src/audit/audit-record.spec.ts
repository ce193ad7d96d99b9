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

// docs/audit-log.md's v3 example: a completion naming the weights that answered.
describe('canonical serialisation v3 (model provenance)', () => {
  const completion = {
    ...emptyDraft(),
    sequence: 2,
    time: new Date('2025-01-01T00:00:01.000Z'),
    kind: 'completion',
    request_id: 'req-1',
    principal_id: 'key:abcd1234',
    principal_kind: 'api_key',
    tenant: 'default',
    role: 'user',
    action: 'chat.completions',
    model: 'stories260K',
    worker: '10.0.0.7:50051',
    outcome: 'succeeded',
    status_code: 200,
    prompt_tokens: 5,
    completion_tokens: 8,
    latency_us: 41000,
    ttft_us: 9000,
    content_capture: 'digest',
    response_digest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    prev_hash: HASH,
    model_sha256: '270cd5a6ba9b2f6c6c4d4ab7c8f2f67dee3a0d70ad4d1c6fd5b86e8b46a4a0e1',
    model_signer: 'sha256:5f0c1a0e9d7b3c2a1f4e6d8b0a9c7e5f3d1b2a4c6e8f0a1b3c5d7e9f0a2b4c6d',
  };

  it('appends client_request_id, field_flags, model_sha256 and model_signer under the v3 tag', () => {
    expect(canonicalRecordText(completion)).toBe(
      '["airlock.audit.v3",2,"2025-01-01T00:00:01.000Z","completion","req-1","key:abcd1234","api_key",' +
        '"default","user","chat.completions","stories260K","10.0.0.7:50051","","","succeeded",200,"",5,8,0,' +
        '41000,9000,"digest","","e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","","","",' +
        `"","","${HASH}","","",` +
        '"270cd5a6ba9b2f6c6c4d4ab7c8f2f67dee3a0d70ad4d1c6fd5b86e8b46a4a0e1",' +
        '"sha256:5f0c1a0e9d7b3c2a1f4e6d8b0a9c7e5f3d1b2a4c6e8f0a1b3c5d7e9f0a2b4c6d"]',
    );
    expect(recordHash(completion)).toBe('89ab3f8bcba3db8df155a88072fd7cff4e01aabf4e7ce6ba4918fd40d31933c1');
  });

  it('covers the signer: a record claiming another signer hashes differently', () => {
    expect(recordHash({ ...completion, model_signer: '' })).not.toBe(recordHash(completion));
  });

  it('leaves records without model fields on v1 and v2, as they were hashed before', () => {
    const unsignedNone = { ...completion, model_sha256: '', model_signer: '' };
    expect(JSON.parse(canonicalRecordText(unsignedNone))[0]).toBe('airlock.audit.v1');
    expect(JSON.parse(canonicalRecordText({ ...unsignedNone, field_flags: 'after_interrupted' }))[0]).toBe(
      'airlock.audit.v2',
    );
  });
});
