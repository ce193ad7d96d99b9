import type { Operation } from '../auth/permissions.js';

/** Actions Authorize accepts: the name recorded in the audit log, and the operation the role matrix checks. */
export const AUTHORIZE_ACTIONS = {
  ACTION_CHAT_COMPLETIONS: {
    name: 'chat.completions',
    operation: 'inference',
    needsModel: true,
    quota: true,
  },
  ACTION_COMPLETIONS: { name: 'completions', operation: 'inference', needsModel: true, quota: true },
  ACTION_EMBEDDINGS: { name: 'embeddings', operation: 'inference', needsModel: true, quota: true },
  ACTION_RESPONSES: { name: 'responses', operation: 'inference', needsModel: true, quota: true },
  ACTION_GET_STORED_RESPONSE: {
    name: 'responses.get',
    operation: 'inference',
    needsModel: false,
    quota: false,
  },
  ACTION_DELETE_STORED_RESPONSE: {
    name: 'responses.delete',
    operation: 'inference',
    needsModel: false,
    quota: false,
  },
  ACTION_CONSOLE_SIGN_IN: {
    name: 'console.sign_in',
    operation: 'console.sign_in',
    needsModel: false,
    quota: false,
  },
  ACTION_LIST_MODELS: { name: 'models.list', operation: 'models.list', needsModel: false, quota: false },
  ACTION_MANAGE_MODELS: {
    name: 'models.manage',
    operation: 'models.manage',
    needsModel: false,
    quota: false,
  },
} as const satisfies Record<
  string,
  { name: string; operation: Operation; needsModel: boolean; quota: boolean }
>;

export type AuthorizeActionKey = keyof typeof AUTHORIZE_ACTIONS;
export type AuthorizeAction = (typeof AUTHORIZE_ACTIONS)[AuthorizeActionKey];
