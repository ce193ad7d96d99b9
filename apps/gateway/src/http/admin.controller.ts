import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Patch,
  Put,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { audit } from '@airlock/contracts';
import { AUTH_AUDIT } from '../auth/auth-audit.port.js';
import type { AuthAuditClient } from '../auth/auth-audit.port.js';
import {
  auditFilterQuery,
  createKeyBody,
  parseAdmin,
  toAdminJson,
  toAuditFilter,
  upsertTenantBody,
} from './admin-mapping.js';
import { ApiError } from '../errors/api-error.js';
import { bearer } from './http-context.js';

/**
 * The admin API: keys, tenants and the audit log pass through to auth-audit with the caller's own
 * credential (auth-audit checks the role and audits the action). Models: admin-models.controller.ts.
 */
@Controller('admin/v1')
export class AdminController {
  constructor(@Inject(AUTH_AUDIT) private readonly auth: AuthAuditClient) {}

  @Post('keys')
  @HttpCode(201)
  async createKey(@Req() request: FastifyRequest, @Body() body: unknown): Promise<unknown> {
    const input = parseAdmin(createKeyBody, body);
    const response = await this.auth.admin<audit.CreateApiKeyResponse>('CreateApiKey', {
      ...caller(request),
      tenant: input.tenant,
      name: input.name,
      role: input.role,
      allowedModels: input.allowed_models,
      requestsPerMinute: input.requests_per_minute,
      tokensPerMinute: input.tokens_per_minute,
      tokensPerDay: input.tokens_per_day,
      tokensPerMonth: input.tokens_per_month,
      global: input.global,
      expiresAt: input.expires_at ?? '',
    });
    return toAdminJson(response);
  }

  @Get('keys')
  async listKeys(@Req() request: FastifyRequest, @Query() query: Record<string, string>): Promise<unknown> {
    const response = await this.auth.admin<audit.ListApiKeysResponse>('ListApiKeys', {
      credential: bearer(request),
      tenant: query.tenant ?? '',
      includeRevoked: query.include_revoked === 'true',
    });
    return { object: 'list', data: toAdminJson(response.keys) };
  }

  @Delete('keys/:id')
  async revokeKey(@Req() request: FastifyRequest, @Param('id') id: string): Promise<unknown> {
    const response = await this.auth.admin<audit.RevokeApiKeyResponse>('RevokeApiKey', {
      ...caller(request),
      keyId: id,
    });
    return toAdminJson(response.key);
  }

  @Get('tenants')
  async listTenants(@Req() request: FastifyRequest): Promise<unknown> {
    const response = await this.auth.admin<audit.ListTenantsResponse>('ListTenants', {
      credential: bearer(request),
    });
    return { object: 'list', data: toAdminJson(response.tenants) };
  }

  /** PUT and PATCH alike: only the fields in the body change (a PUT with just a name resets nothing). */
  @Put('tenants/:id')
  putTenant(
    @Req() request: FastifyRequest,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<unknown> {
    return this.updateTenant(request, id, body);
  }

  @Patch('tenants/:id')
  patchTenant(
    @Req() request: FastifyRequest,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<unknown> {
    return this.updateTenant(request, id, body);
  }

  private async updateTenant(request: FastifyRequest, id: string, body: unknown): Promise<unknown> {
    const input = parseAdmin(upsertTenantBody, body);
    const response = await this.auth.admin<audit.UpsertTenantResponse>('UpsertTenant', {
      ...caller(request),
      tenant: {
        id,
        name: input.name ?? id,
        allowedModels: input.allowed_models ?? [],
        requestsPerMinute: input.requests_per_minute ?? 0,
        tokensPerMinute: input.tokens_per_minute ?? 0,
        tokensPerDay: input.tokens_per_day ?? 0,
        tokensPerMonth: input.tokens_per_month ?? 0,
        contentCapture: input.content_capture ?? 'CONTENT_CAPTURE_DIGEST',
        disabled: input.disabled ?? false,
      },
      updateFields: Object.keys(input).filter((key) => (input as Record<string, unknown>)[key] !== undefined),
    });
    return toAdminJson(response);
  }

  @Get('audit/records')
  async queryAudit(@Req() request: FastifyRequest, @Query() query: unknown): Promise<unknown> {
    const q = parseAdmin(auditFilterQuery, query);
    const response = await this.auth.admin<audit.QueryAuditRecordsResponse>('QueryAuditRecords', {
      credential: bearer(request),
      filter: toAuditFilter(q),
      pageSize: q.page_size ?? 0,
      pageToken: q.page_token ?? '',
    });
    return {
      object: 'list',
      data: toAdminJson(response.records),
      next_page_token: response.nextPageToken || null,
    };
  }

  /**
   * The decrypted request and response bodies of a `full`-capture record (admin and auditor roles; auth-audit
   * checks and records every read). The bodies pass through as text and are never logged.
   */
  @Get('audit/records/:sequence/content')
  async recordContent(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Param('sequence') sequence: string,
  ): Promise<unknown> {
    if (!/^[1-9][0-9]{0,15}$/.test(sequence)) {
      throw ApiError.badRequest('sequence must be a positive whole number', 'sequence');
    }
    const response = await this.auth.admin<audit.GetAuditRecordContentResponse>('GetAuditRecordContent', {
      ...caller(request),
      sequence: Number(sequence),
    });
    void reply.header('cache-control', 'no-store');
    const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('utf8');
    return {
      object: 'audit.record_content',
      sequence: Number(response.sequence),
      request_id: response.requestId,
      request_sequence: Number(response.requestSequence) || null,
      request_body: response.requestSequence ? text(response.requestBody) : null,
      response_sequence: Number(response.responseSequence) || null,
      response_body: response.responseSequence ? text(response.responseBody) : null,
      read_sequence: Number(response.readSequence),
    };
  }

  /** Streams the export straight through: nothing is buffered here whatever the size of the log. */
  @Get('audit/export')
  async exportAudit(
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @Query() query: unknown,
  ): Promise<void> {
    const q = parseAdmin(auditFilterQuery, query);
    const abort = new AbortController();
    reply.raw.once('close', () => abort.abort());
    const chunks = this.auth.adminStream<audit.ExportAuditRecordsResponse>(
      'ExportAuditRecords',
      {
        ...caller(request),
        filter: toAuditFilter(q),
        format: q.format === 'csv' ? 'EXPORT_FORMAT_CSV' : 'EXPORT_FORMAT_JSONL',
      },
      abort.signal,
    );
    const iterator = chunks[Symbol.asyncIterator]();
    // The first chunk decides the status: a refusal is still an ordinary JSON error.
    const first = await iterator.next();
    reply.hijack();
    reply.raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': q.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
    });
    try {
      for (let next = first; !next.done; next = await iterator.next()) {
        if (!reply.raw.write(next.value.data))
          await new Promise((resolve) => reply.raw.once('drain', resolve));
      }
    } finally {
      reply.raw.end();
    }
  }

  @Post('audit/verify')
  @HttpCode(200)
  async verifyAudit(
    @Req() request: FastifyRequest,
    @Body() body: { from_last_checkpoint?: unknown } | undefined,
  ): Promise<unknown> {
    const response = await this.auth.admin<audit.VerifyAuditChainResponse>('VerifyAuditChain', {
      credential: bearer(request),
      fromLastCheckpoint: body?.from_last_checkpoint === true,
    });
    return toAdminJson(response);
  }

  /** RFC 9162 inclusion proof of a record (sequence) or of a receipt, against a signed checkpoint. */
  @Get('audit/proofs/inclusion')
  async inclusionProof(
    @Req() request: FastifyRequest,
    @Query() query: Record<string, string>,
  ): Promise<unknown> {
    const response = await this.auth.admin<audit.GetAuditInclusionProofResponse>('GetAuditInclusionProof', {
      credential: bearer(request),
      sequence: Number(query.sequence ?? 0) || 0,
      treeSize: Number(query.tree_size ?? 0) || 0,
      receipt: typeof query.receipt === 'string' ? query.receipt : '',
    });
    return toAdminJson(response);
  }

  /** RFC 9162 consistency proof between two signed checkpoints' trees. */
  @Get('audit/proofs/consistency')
  async consistencyProof(
    @Req() request: FastifyRequest,
    @Query() query: Record<string, string>,
  ): Promise<unknown> {
    const response = await this.auth.admin<audit.GetAuditConsistencyProofResponse>(
      'GetAuditConsistencyProof',
      {
        credential: bearer(request),
        firstTreeSize: Number(query.first ?? 0) || 0,
        secondTreeSize: Number(query.second ?? 0) || 0,
      },
    );
    return toAdminJson(response);
  }

  @Get('audit/checkpoints')
  async listCheckpoints(
    @Req() request: FastifyRequest,
    @Query() query: Record<string, string>,
  ): Promise<unknown> {
    const response = await this.auth.admin<audit.ListAuditCheckpointsResponse>('ListAuditCheckpoints', {
      credential: bearer(request),
      fromSequence: Number(query.from_sequence ?? 0) || 0,
      pageSize: Number(query.page_size ?? 0) || 0,
    });
    return toAdminJson(response);
  }
}

/** Who is acting, for auth-audit's record of the admin action. */
function caller(request: FastifyRequest) {
  return {
    credential: bearer(request),
    requestId: request.id,
    clientAddress: request.ip,
    userAgent: request.headers['user-agent'] ?? '',
  };
}
