import { Controller, Delete, Get, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AUTH_AUDIT } from '../auth/auth-audit.port.js';
import type { AuthAuditClient } from '../auth/auth-audit.port.js';
import { GATEWAY_CONFIG } from '../config.js';
import type { GatewayConfig } from '../config.js';
import { ApiError } from '../errors/api-error.js';
import { ResponsesService } from '../inference/responses.service.js';
import type { RequestLimits } from '../openai/chat-request.js';
import { parseInputItemsQuery, parseResponsesRequest } from '../openai/responses-request.js';
import { authorizeRequest, bearer, openStream, requestLimits } from './http-context.js';

/** OpenAI's Responses API. Each handler: parse → authorise (audited) → delegate; errors go to the filter. */
@Controller('v1/responses')
export class ResponsesController {
  private readonly limits: RequestLimits;

  constructor(
    private readonly responses: ResponsesService,
    @Inject(AUTH_AUDIT) private readonly auth: AuthAuditClient,
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
  ) {
    this.limits = requestLimits(config);
  }

  @Post()
  async create(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const parsed = parseResponsesRequest(request.body, this.limits);
    const ctx = await authorizeRequest(this.auth, request, reply, 'responses', parsed.model, { early: true });
    const sse = parsed.stream ? openStream(reply) : null;
    const body = await this.responses.create(parsed, ctx, bearer(request), sse);
    if (body) await reply.code(200).send(body);
  }

  @Get(':id')
  async retrieve(
    @Param('id') id: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    // Replaying a finished response as a stream is not offered: the stored object is the whole answer.
    const query = (request.query ?? {}) as Record<string, unknown>;
    if (query.stream !== undefined && query.stream !== 'false') throw ApiError.unsupported('stream');
    const ctx = await authorizeRequest(this.auth, request, reply, 'responses.get', '');
    await reply.send(await this.responses.retrieve(id, ctx, bearer(request)));
  }

  @Get(':id/input_items')
  async inputItems(
    @Param('id') id: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const query = parseInputItemsQuery(request.query);
    const ctx = await authorizeRequest(this.auth, request, reply, 'responses.get', '');
    await reply.send(await this.responses.inputItems(id, query, ctx, bearer(request)));
  }

  @Delete(':id')
  async delete(
    @Param('id') id: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const ctx = await authorizeRequest(this.auth, request, reply, 'responses.delete', '');
    await reply.send(await this.responses.delete(id, ctx, bearer(request)));
  }
}
