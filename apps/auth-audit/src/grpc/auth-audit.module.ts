import { Module, type DynamicModule } from '@nestjs/common';
import { AuthorizationService } from '../services/authorization.service.js';
import { AdminService } from '../services/admin.service.js';
import { AuditLogService } from '../services/audit-log.service.js';
import { ResponseStoreService } from '../responses/response-store.service.js';
import { AuditGrpcController } from './audit-grpc.controller.js';

export interface AuthAuditServices {
  authorization: AuthorizationService;
  admin: AdminService;
  auditLog: AuditLogService;
  responses: ResponseStoreService;
}

/** The services are built (and their database opened) before Nest starts; the module only wires them in. */
@Module({})
export class AuthAuditModule {
  static register(services: AuthAuditServices): DynamicModule {
    return {
      module: AuthAuditModule,
      controllers: [AuditGrpcController],
      providers: [
        { provide: AuthorizationService, useValue: services.authorization },
        { provide: AdminService, useValue: services.admin },
        { provide: AuditLogService, useValue: services.auditLog },
        { provide: ResponseStoreService, useValue: services.responses },
      ],
    };
  }
}
