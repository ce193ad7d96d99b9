export * from './config.js';
export * from './gateway-app.js';
