export { startAuthAuditApp, type AuthAuditApp, type StartOptions } from './auth-audit-app.js';
export {
  loadAuthAuditSettings,
  SettingsError,
  type AuthAuditSettings,
  type OidcSettings,
} from './config/auth-audit-settings.js';
