import { Module, type DynamicModule } from '@nestjs/common';
import { AUTH_AUDIT, type AuthAuditClient } from './auth/auth-audit.port.js';
import { CompletionRecorder } from './auth/completion-recorder.js';
import { GATEWAY_CONFIG, type GatewayConfig } from './config.js';
import { AdminModelsController } from './http/admin-models.controller.js';
import { AdminController } from './http/admin.controller.js';
import { OpenAiController } from './http/openai.controller.js';
import { ResponsesController } from './http/responses.controller.js';
import { InferenceService } from './inference/inference.service.js';
import { ResponsesService } from './inference/responses.service.js';
import { REPLICA_SCALER, type ReplicaScaler } from './workers/replica-scaler.js';
import { WorkerPool } from './workers/worker-pool.js';

/** The parts built (and closed) by startGatewayApp, handed to Nest as ready-made values. */
export interface GatewayParts {
  config: GatewayConfig;
  pool: WorkerPool;
  recorder: CompletionRecorder;
  auth: AuthAuditClient;
  inference: InferenceService;
  responses: ResponsesService;
  scaler: ReplicaScaler;
}

@Module({})
export class GatewayModule {
  static with(parts: GatewayParts): DynamicModule {
    return {
      module: GatewayModule,
      controllers: [OpenAiController, ResponsesController, AdminController, AdminModelsController],
      providers: [
        { provide: GATEWAY_CONFIG, useValue: parts.config },
        { provide: WorkerPool, useValue: parts.pool },
        { provide: CompletionRecorder, useValue: parts.recorder },
        { provide: AUTH_AUDIT, useValue: parts.auth },
        { provide: InferenceService, useValue: parts.inference },
        { provide: ResponsesService, useValue: parts.responses },
        { provide: REPLICA_SCALER, useValue: parts.scaler },
      ],
    };
  }
}
