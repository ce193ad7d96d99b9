export * from './free-port.js';
export * from './logger.js';
export * from './nest-logger.js';
export * from './ops-server.js';
