// Fixed values of the page: presentation labels, time-range presets, page size, storage key.

/** Display names of resources (presentation only: another shows capitalized; order is the catalog's). */
export const RESOURCE_LABELS = {
  key: 'Keys', api: 'APIs', permission: 'Permissions', role: 'Roles',
  ratelimit: 'Rate limits', workspace: 'Workspace',
};
export const DAY = 86400000;
export const PRESETS = [
  { id: '1h', label: 'Last hour', ms: 3600000 },
  { id: '24h', label: 'Last 24 hours', ms: DAY },
  { id: '7d', label: 'Last 7 days', ms: 7 * DAY },
  { id: '30d', label: 'Last 30 days', ms: 30 * DAY },
  { id: '90d', label: 'Last 90 days', ms: 90 * DAY },
];
export const PAGE_SIZE = 50;
export const TOKEN_KEY = 'auditlog.token';
export const ACTOR_LABELS = { user: 'User', root_key: 'Root key', system: 'System' };
