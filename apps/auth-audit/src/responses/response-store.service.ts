import { status } from '@grpc/grpc-js';
import type { audit } from '@airlock/contracts';
import type { Authenticator } from '../auth/authenticator.js';
import type { ContentSealer } from '../audit/content-sealer.js';
import type { AuthAuditDb } from '../database/database.js';
import { AuthAuditError, failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { tenantRepository } from '../tenants/tenant.repository.js';
import { MAX_BODY_BYTES, requireRequestId } from '../validation.js';
import { storedResponseRepository, type ResponseOwner } from './stored-response.repository.js';

const RESPONSE_ID_PATTERN = /^resp_[A-Za-z0-9_-]{1,120}$/;

export interface ResponseStoreOptions {
  /** AIRLOCK_RESPONSES_RETENTION_DAYS: how long a stored response can be read. */
  retentionDays: number;
  clock?: () => Date;
}

/**
 * Stored responses of the Responses API. Only a tenant whose content capture is `full` keeps them (the
 * tenant has agreed that content is kept, and a content key exists); both bodies are sealed with the
 * content key, bound to the response id and its owner, so a row moved to another owner does not open.
 */
export class ResponseStoreService {
  private readonly now: () => Date;

  constructor(
    private readonly db: AuthAuditDb,
    private readonly authenticator: Authenticator,
    private readonly sealer: ContentSealer,
    private readonly options: ResponseStoreOptions,
  ) {
    this.now = options.clock ?? (() => new Date());
  }

  async store(request: audit.StoreResponseRequest): Promise<audit.StoreResponseResponse> {
    const owner = await this.owner(request.credential);
    const id = responseId(request.responseId);
    const requestId = requireRequestId(request.requestId);
    const responseJson = request.responseJson ?? new Uint8Array();
    const inputItemsJson = request.inputItemsJson ?? new Uint8Array();
    if (responseJson.length + inputItemsJson.length > MAX_BODY_BYTES) {
      throw invalidArgument(`response_json and input_items_json are larger than ${MAX_BODY_BYTES} bytes`);
    }
    const tenant = await tenantRepository.findById(this.db, owner.tenantId);
    const capture = tenant?.contentCapture ?? 'digest';
    if (capture !== 'full' || !this.sealer.canEncrypt) {
      throw failedPrecondition(
        `tenant "${owner.tenantId}" has content_capture "${capture}": stored responses need "full"`,
        'content_capture_not_full',
      );
    }
    const response = this.sealer.seal(responseJson, 'full', associatedData(id, owner, 'response'));
    const inputItems = this.sealer.seal(inputItemsJson, 'full', associatedData(id, owner, 'input_items'));
    const createdAt = this.now();
    const expiresAt = new Date(createdAt.getTime() + this.options.retentionDays * 86_400_000);
    try {
      await storedResponseRepository.insert(this.db, {
        id,
        tenant_id: owner.tenantId,
        principal_id: owner.principalId,
        request_id: requestId,
        content_key_id: response.keyId,
        response_ciphertext: response.ciphertext,
        input_items_ciphertext: inputItems.ciphertext,
        created_at: createdAt,
        expires_at: expiresAt,
      });
    } catch (error) {
      if ((error as { code?: unknown }).code === '23505') {
        throw new AuthAuditError(status.ALREADY_EXISTS, `response "${id}" is already stored`);
      }
      throw error;
    }
    return { expiresAt: expiresAt.toISOString() };
  }

  async get(request: audit.GetStoredResponseRequest): Promise<audit.GetStoredResponseResponse> {
    const owner = await this.owner(request.credential);
    const id = responseId(request.responseId);
    const row = await storedResponseRepository.find(this.db, id, owner, this.now());
    if (!row) throw notFound(`no stored response "${id}"`);
    return {
      responseJson: this.sealer.open(
        row.response_ciphertext,
        row.content_key_id,
        associatedData(id, owner, 'response'),
      ),
      inputItemsJson: this.sealer.open(
        row.input_items_ciphertext,
        row.content_key_id,
        associatedData(id, owner, 'input_items'),
      ),
    };
  }

  async delete(request: audit.DeleteStoredResponseRequest): Promise<audit.DeleteStoredResponseResponse> {
    const owner = await this.owner(request.credential);
    const id = responseId(request.responseId);
    if (!(await storedResponseRepository.delete(this.db, id, owner, this.now()))) {
      throw notFound(`no stored response "${id}"`);
    }
    return {};
  }

  /** Retention: removes expired responses (reads already refuse them). */
  pruneExpired(): Promise<number> {
    return storedResponseRepository.deleteExpired(this.db, this.now());
  }

  private async owner(credential: string | undefined): Promise<ResponseOwner> {
    const principal = await this.authenticator.authenticate(credential);
    this.authenticator.require(principal, 'inference');
    return { tenantId: principal.tenant, principalId: principal.id };
  }
}

function responseId(value: string | undefined): string {
  if (!value || !RESPONSE_ID_PATTERN.test(value)) {
    throw invalidArgument('response_id must be "resp_" and 1..120 characters of [A-Za-z0-9_-]');
  }
  return value;
}

/** Ties a ciphertext to its response, its owner and which body it is. */
function associatedData(id: string, owner: ResponseOwner, part: 'response' | 'input_items'): string {
  return `airlock.responses.v1|${id}|${owner.tenantId}|${owner.principalId}|${part}`;
}
